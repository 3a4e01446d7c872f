"""Customer data protection: consent, withdrawn customers and salted hashing of ids.

- **Consent.** ``rfm_summary`` (and every job built on it: fits, backtests, the scoring job)
  takes ``consent_col`` (a column of the transaction log) and ``withdrawn`` (customer ids, or a
  file with one id per line). A customer is left out entirely when their id is withdrawn or when
  *any* of their rows says no consent: a withdrawal anywhere in the log applies to the person,
  and a later row does not bring them back (ask them again, and drop the old rows, for that).
  The number of customers left out is reported (``attrs["clvlab"]["customers_excluded"]``, the
  command line, the MLflow scoring run). Ids are compared as text, so ``17`` and ``"17"`` match.
- **Consent values** are booleans, 0/1, or the words true/false, yes/no, y/n, t/f (any case);
  anything else, missing values included, is refused with the offending row (a silent default
  would either process people who said no or drop people who said yes).
- **Hashing.** Customer ids that must leave the machine (for example per-customer rows logged to
  MLflow on request) are replaced by HMAC-SHA256(salt, id): the same id and salt always give the
  same hash, and without the salt the ids cannot be recovered by hashing candidate ids. The salt
  comes from the caller or the CLVLAB_ID_SALT environment variable; there is no default salt.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError, example_row
from clvlab.data.tables import accepts_tables, is_foreign_table

__all__ = ["hash_ids", "resolve_salt", "withdrawn_ids", "exclude_customers", "consented_log",
           "CONSENT_TRUE", "CONSENT_FALSE"]

CONSENT_TRUE = ("true", "1", "1.0", "yes", "y", "t")
CONSENT_FALSE = ("false", "0", "0.0", "no", "n", "f")
SALT_VARIABLE = "CLVLAB_ID_SALT"


def resolve_salt(salt: str | bytes | None) -> bytes:
    """The caller's salt, else CLVLAB_ID_SALT; an error when neither is set or it is short.

    Parameters
    ----------
    salt : str, bytes or None
        The salt; None: the environment variable CLVLAB_ID_SALT.

    Returns
    -------
    bytes
        The salt.

    Raises
    ------
    ClvlabError
        Where neither is set, or the salt is shorter than 16 characters.
    """
    salt = salt if salt is not None else os.environ.get(SALT_VARIABLE)
    if not salt:
        raise ClvlabError(f"hashing customer ids needs a salt: pass salt= or set {SALT_VARIABLE} "
                          "(keep it secret and the same across runs, so hashes stay comparable)")
    salt = salt.encode() if isinstance(salt, str) else bytes(salt)
    if len(salt) < 16:
        raise ClvlabError("the id salt must be at least 16 characters (a short salt can be "
                          "guessed, and with it every id)")
    return salt


def hash_ids(ids: Iterable[Any], salt: str | bytes | None = None) -> list[str]:
    """HMAC-SHA256 of each id (as text) under ``salt``, as 32 hex characters (128 bits).

    Parameters
    ----------
    ids : iterable
        The customer ids.
    salt : str or bytes, optional
        The salt (None: CLVLAB_ID_SALT; :func:`resolve_salt`).

    Returns
    -------
    list of str
        One hash per id, in order.

    Raises
    ------
    ClvlabError
        Where there is no salt or it is too short.
    """
    key = resolve_salt(salt)
    return [hmac.new(key, str(i).encode(), hashlib.sha256).hexdigest()[:32] for i in ids]


def withdrawn_ids(withdrawn: Any) -> set[str]:
    """Normalise ``withdrawn``: None, an iterable of ids, or a path to a text file with one id per
    line (blank lines and lines starting with # are skipped). Ids become text.

    Parameters
    ----------
    withdrawn : None, iterable, str or os.PathLike
        The ids of customers who withdrew consent, or a file of them.

    Returns
    -------
    set of str
        The ids as text (empty for None).

    Raises
    ------
    ClvlabError
        Where the file does not exist or is not text, or ``withdrawn`` is a DataFrame.
    """
    if withdrawn is None:
        return set()
    if isinstance(withdrawn, (str, os.PathLike)):
        path = Path(withdrawn)
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            raise ClvlabError(f"the withdrawn-customers file {path} does not exist") from None
        except UnicodeDecodeError:
            raise ClvlabError(f"the withdrawn-customers file {path} is not text (one id per line)") from None
        return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}
    if isinstance(withdrawn, pd.DataFrame) or is_foreign_table(withdrawn):
        raise ClvlabError("withdrawn must be ids (a list, Series or file), not a table "
                          f"({type(withdrawn).__name__}): pass its id column")
    return {str(i) for i in withdrawn}


def consent_flags(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The consent column as booleans, or a DataValidationError naming the first bad row."""
    values = frame[column]
    if values.dtype == bool:
        return values.to_numpy()
    text = values.astype("string").str.strip().str.lower()
    yes = text.isin(CONSENT_TRUE).fillna(False).to_numpy(bool)
    no = text.isin(CONSENT_FALSE).fillna(False).to_numpy(bool)
    bad = ~(yes | no)
    if bad.any():
        raise DataValidationError(column, "consent must be true/false, 1/0 or yes/no (missing "
                                  "values are refused)", example_row(frame, int(np.flatnonzero(bad)[0])))
    return yes


@accepts_tables("frame")
def exclude_customers(frame: pd.DataFrame, customer_col: str, consent_col: str | None,
                      withdrawn: Any) -> tuple[pd.DataFrame, int]:
    """The log without the customers who withdrew consent, and how many customers that was.

    Parameters
    ----------
    frame : pandas or polars DataFrame or pyarrow Table
        The transaction log: a pandas or polars DataFrame or a pyarrow Table
        (:mod:`clvlab.data.tables`).
    customer_col : str
        Its id column.
    consent_col : str or None
        A column of consent flags (true/false, 1/0, yes/no): a customer with any row without
        consent is left out; None: no such column.
    withdrawn : None, iterable, str or os.PathLike
        Ids of customers who withdrew, or a file of them (:func:`withdrawn_ids`).

    Returns
    -------
    kept : pandas.DataFrame
        The log without those customers' rows (a pandas DataFrame whatever the input).
    excluded : int
        How many customers were left out.

    Raises
    ------
    DataValidationError
        Where ``consent_col`` is missing or holds a value that is not a consent flag.
    ClvlabError
        As :func:`withdrawn_ids`.
    """
    if consent_col is None and withdrawn is None:
        return frame, 0
    if consent_col is not None and consent_col not in frame.columns:
        raise DataValidationError(consent_col, "is missing from the transaction log",
                                  hint=f"columns present: {list(frame.columns)}")
    ids = frame[customer_col].astype(str)
    excluded = set(withdrawn_ids(withdrawn))
    if consent_col is not None:
        excluded |= set(ids[~consent_flags(frame, consent_col)])
    drop = ids.isin(excluded).to_numpy()
    return frame[~drop], int(ids[drop].nunique())


@accepts_tables("frame", follow="frame")
def consented_log(frame: pd.DataFrame, customer_col: str, consent_col: str | None,
                  withdrawn: Any) -> pd.DataFrame:
    """:func:`exclude_customers` for pandas jobs that read a whole log (backtests, the scoring
    job's churn features): the kept rows, with the number left out in
    ``attrs["customers_excluded"]``. The log is returned as it is when there is nothing to
    exclude or no customer column (the jobs' own validation names that).

    Parameters
    ----------
    frame : pandas or polars DataFrame or pyarrow Table
        The transaction log: a pandas or polars DataFrame or a pyarrow Table
        (:mod:`clvlab.data.tables`).
    customer_col : str
        Its id column.
    consent_col : str or None
        A column of consent flags, or None.
    withdrawn : None, iterable, str or os.PathLike
        Ids of customers who withdrew, or a file of them.

    Returns
    -------
    pandas.DataFrame, polars.DataFrame or pyarrow.Table
        The kept rows, with ``attrs["customers_excluded"]``; ``frame`` itself when nothing is
        to be excluded. The input's kind for a polars or Arrow log (a polars DataFrame, a
        pyarrow Table, which keeps ``attrs`` in its schema's metadata; a new table even when
        nothing is excluded), else a pandas DataFrame.

    Raises
    ------
    DataValidationError
        As :func:`exclude_customers`.
    """
    if (consent_col is None and withdrawn is None) or customer_col not in frame.columns:
        return frame
    kept, excluded = exclude_customers(frame, customer_col, consent_col, withdrawn)
    kept = kept.copy()
    kept.attrs["customers_excluded"] = excluded
    return kept


def consent_sql(consent: str) -> str:
    """SQL turning a consent column into true/false/NULL (NULL: refused), as consent_flags."""
    text = f"lower(trim(CAST({consent} AS VARCHAR)))"
    yes = ", ".join(f"'{v}'" for v in CONSENT_TRUE)
    no = ", ".join(f"'{v}'" for v in CONSENT_FALSE)
    return f"CASE WHEN {text} IN ({yes}) THEN true WHEN {text} IN ({no}) THEN false ELSE NULL END"
