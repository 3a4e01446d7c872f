"""What the user hands :mod:`clvlab.data.rfm` besides a DataFrame: transaction files, dates given as
options, and RFM tables on disk, which keep their time unit.

Dates given as options (``calibration_end``, backtest cutoffs, the scoring ``as_of``) follow the
date column's rule, ISO 8601 or the given ``date_format``: "05/06/2007" is 5 June to some and 6
May to others, and a guess would move every customer's T without a word.

An RFM table is a number of time units per customer; without its unit it cannot be scored
correctly, and no default is safe (a days table read as weeks gives 7 times too long a life).
So the unit travels with the table: in ``attrs["clvlab"]`` in memory, and in the Parquet file's
key-value metadata on disk (``clvlab`` for any reader, ``PANDAS_ATTRS`` so that plain
``pandas.read_parquet`` restores the attrs, as it does for a table pandas wrote itself). A CSV
file cannot carry it: its reader must say the unit.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, warn
from clvlab.core.timeunits import normalize_time_unit

__all__ = ["read_rfm", "parse_option_date", "parquet_metadata", "expand_paths", "file_format",
           "read_files", "read_csv_file"]

METADATA_KEY = "clvlab"
PANDAS_KEY = "PANDAS_ATTRS"  # where pandas (>= 2.1) keeps df.attrs in a Parquet file
DEFAULT_CUSTOMER_COL = "customer_id"  # rfm_summary's and the command line's default name


def parse_option_date(value: Any, name: str, *, date_format: str | None = None,
                      timezone: str = "UTC") -> pd.Timestamp | None:
    """A date given as an option (``calibration_end``, a backtest cutoff, a scoring ``as_of``),
    read by the date column's rule, as a naive timestamp in ``timezone``.

    Parameters
    ----------
    value
        A ``pd.Timestamp``, ``datetime``, ``date`` or ``numpy.datetime64`` (used as it is), or
        text (an integer too, with ``date_format``). None (the option was not given) gives None.
    name
        The option's name, for the error message (e.g. ``"cutoff"``).
    date_format
        The log's strptime format. Text must be ISO 8601 or match it; text that reads as both,
        to different dates (``"2007-01-02"`` with ``"%Y-%d-%m"``), is refused. Digits alone
        (``"20070102"``) are a number, read only by ``date_format``.
    timezone
        Zoned values are converted to this zone; naive ones are taken as already in it.

    Returns
    -------
    pandas.Timestamp or None
        The date as a naive timestamp in ``timezone``, or None for None.

    Raises
    ------
    ClvlabError
        Naming the option, the value and the rule, for anything else: ``"05/06/2007"`` is 5 June
        to some and 6 May to others, so it is never guessed.
    """
    if value is None:
        return None
    rule = ("ISO 8601 (e.g. '2024-03-31') or the date_format "
            f"{date_format!r}" if date_format else
            "ISO 8601 (e.g. '2024-03-31'), the rule of the date column; pass date_format "
            "(--date-format on the command line) to read other layouts")
    if isinstance(value, (pd.Timestamp, datetime.date, np.datetime64)):
        ts = pd.Timestamp(value)
    elif isinstance(value, str) or (isinstance(value, (int, np.integer))
                                    and not isinstance(value, bool) and date_format):
        text = str(value).strip()
        # digits alone are a number, never ISO 8601's basic format (as in the date column)
        ts = _parse_text(text, isinstance(value, str) and not text.isdigit(), date_format)
        if isinstance(ts, tuple):
            raise ClvlabError(f"{name}={value!r} reads two ways: {ts[0].date()} in ISO 8601 and "
                              f"{ts[1].date()} in the date_format {date_format!r}; write it in "
                              "ISO 8601 with dashes (YYYY-MM-DD)")
    else:
        ts = None
    if ts is None or pd.isna(ts):
        raise ClvlabError(f"{name}={value!r} is not a date in {rule}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(timezone).tz_localize(None)
    return ts


def _parse_text(text: str, may_be_iso: bool, date_format: str | None):
    """The timestamp ``text`` stands for, None when it reads as none, and the two readings when
    ISO 8601 and ``date_format`` disagree."""
    iso = pd.to_datetime(text, format="ISO8601", errors="coerce") if may_be_iso else pd.NaT
    if date_format is None:
        return iso
    formatted = pd.to_datetime(text, format=date_format, errors="coerce")
    if pd.isna(iso) or pd.isna(formatted):
        return formatted if pd.isna(iso) else iso
    return iso if iso == formatted else (iso, formatted)


def parquet_metadata(info: dict[str, Any]) -> dict[str, str]:
    """The key-value metadata that carries ``attrs["clvlab"]`` (``info``) in a Parquet file."""
    return {METADATA_KEY: json.dumps(info), PANDAS_KEY: json.dumps({"clvlab": info})}


def read_rfm(path: str | os.PathLike, *, time_unit: str | None = None,
             customer_col: str | None = None, require_time_unit: bool = True) -> pd.DataFrame:
    """Read an RFM table written by ``clvlab rfm``, ``rfm_summary(...).to_parquet`` or by hand.

    Parameters
    ----------
    path
        A Parquet (``.parquet``, ``.pq``) or CSV (``.csv``, ``.csv.gz``) file.
    time_unit
        The table's time unit (``"h"``, ``"D"``, ``"W"``, ``"M"`` or a spelled-out alias). Needed
        when the file does not record one (any CSV); when the file records one, it must agree.
    require_time_unit
        False for tables without durations in a time unit (a Gamma-Gamma, BG/BB or sBG input):
        an unknown unit is then recorded as None instead of being an error.
    customer_col
        The customer-id column, which becomes the index. By default the one the file records;
        for a file that records none, ``"customer_id"`` when present, else the index is left as
        read.

    Returns
    -------
    DataFrame indexed by customer id, with ``attrs["clvlab"]`` as :func:`clvlab.rfm_summary`
    sets it (what the file records; at least ``"time_unit"``, and ``"attributes"``, the names of
    the customer-attribute columns, for a summary made with ``customer_attributes``).

    Raises
    ------
    ClvlabError
        The file is missing or of an unknown kind, its unit is unknown and ``time_unit`` was not
        given, or ``time_unit`` contradicts the file. DataValidationError when ``customer_col``
        (or the recorded customer column) is not in the table.
    """
    path = Path(path)
    if not path.is_file():
        raise ClvlabError(f"the RFM table {path} does not exist")
    kind = _kind(str(path))
    if kind is None:
        raise ClvlabError(f"the RFM table {path} must be a .parquet/.pq or .csv file")
    recorded: dict[str, Any] = {}
    if kind == "parquet":
        table = pd.read_parquet(path)
        recorded = _recorded_info(path)
    else:
        table = read_csv_file(path, {"sep": "\t" if ".tsv" in path.name.lower() else ","})
    table.attrs = {}
    info = dict(recorded)
    if require_time_unit or time_unit is not None or recorded.get("time_unit") is not None:
        info["time_unit"] = _resolve_unit(path, recorded.get("time_unit"), time_unit)
    else:
        info["time_unit"] = None
    column = customer_col or recorded.get("customer_col")
    if column is None and DEFAULT_CUSTOMER_COL in table.columns:
        column = DEFAULT_CUSTOMER_COL
    if column is not None:
        table = _customer_index(table, column, path, named=customer_col is not None)
        info["customer_col"] = column
    table.attrs["clvlab"] = info
    return table


def _recorded_info(path: Path) -> dict[str, Any]:
    """``attrs["clvlab"]`` as the file records it (clvlab's key, else pandas' attrs), or {}."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    try:
        if METADATA_KEY.encode() in metadata:
            info = json.loads(metadata[METADATA_KEY.encode()])
        elif PANDAS_KEY.encode() in metadata:
            info = json.loads(metadata[PANDAS_KEY.encode()]).get("clvlab", {})
        else:
            return {}
    except (ValueError, AttributeError):
        raise ClvlabError(f"the clvlab metadata of {path} is not valid JSON; write the table "
                          "again with clvlab rfm (or rfm_summary(...).to_parquet)") from None
    if not isinstance(info, dict):
        raise ClvlabError(f"the clvlab metadata of {path} is not a mapping: {info!r}")
    return info


def _resolve_unit(path: Path, recorded: Any, given: str | None) -> str:
    if recorded is None and given is None:
        what = "a CSV file does not record it" if _kind(str(path)) == "csv" else \
            "the file does not record it (it was not written by clvlab rfm or rfm_summary)"
        raise ClvlabError(
            f"the time unit of the RFM table {path} is unknown ({what}); pass time_unit= "
            f"(--time-unit on the command line): 'h', 'D', 'W' or 'M', the unit recency and T "
            f"were computed in")
    if given is None:
        return normalize_time_unit(recorded)
    unit = normalize_time_unit(given)
    if recorded is not None and normalize_time_unit(recorded) != unit:
        raise ClvlabError(
            f"time_unit={given!r} (--time-unit) contradicts the RFM table {path}, whose recency "
            f"and T are in {normalize_time_unit(recorded)!r} (recorded when it was written); "
            f"drop the option, or summarise the log again in the unit you want")
    return unit


def _customer_index(table: pd.DataFrame, column: str, path: Path, named: bool) -> pd.DataFrame:
    if table.index.name == column:
        return table
    if column not in table.columns:
        source = "customer_col (--customer-col)" if named else "the customer column recorded in the file"
        raise DataValidationError(
            column, f"is missing from the RFM table {path} ({source})",
            hint=f"columns present: {list(table.columns)}")
    return table.set_index(column)


def expand_paths(transactions: Any) -> list[str]:
    """Turn a path, glob or list of them into a list of existing files, or raise."""
    import glob

    items = [transactions] if isinstance(transactions, (str, os.PathLike)) else list(transactions)
    files: list[str] = []
    for item in items:
        text = os.fspath(item)
        matches = sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
        if not matches or not all(Path(m).is_file() for m in matches):
            raise ClvlabError(f"no transaction file matches {text!r}")
        files.extend(matches)
    if not files:
        raise ClvlabError("no transaction files given")
    return files


def file_format(files: list[str]) -> str:
    kinds = {_kind(f) for f in files}
    if len(kinds) != 1 or None in kinds:
        raise ClvlabError(
            f"transaction files must all be CSV (.csv, .csv.gz, .tsv, .txt) or all Parquet "
            f"(.parquet, .pq); got {sorted(files)[:3]}")
    return kinds.pop()


def _kind(path: str) -> str | None:
    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")):
        return "csv"
    return None


def read_files(transactions: Any, delimiter: str | None = None,
               decimal: str | None = None) -> pd.DataFrame:
    """Read transaction files into one DataFrame (the pandas engine's reader).

    ``delimiter`` None sniffs it; ``decimal`` is the decimal mark of numbers in CSV files
    (``"."`` by default). Dates stay text (pandas does not guess them), so the date rule of
    rfm_summary decides.
    """
    files = expand_paths(transactions)
    if file_format(files) == "parquet":
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    options: dict[str, Any] = {"sep": delimiter, "decimal": decimal or "."}
    if delimiter is None:
        options["engine"] = "python"  # the only pandas reader that sniffs the delimiter
    return pd.concat([read_csv_file(f, options) for f in files], ignore_index=True)


# digits with a leading zero ("00017"): an id as written, not the number 17
_ZERO_PADDED = r"^[+-]?0\d+$"


def read_csv_file(path: str | os.PathLike, options: dict[str, Any]) -> pd.DataFrame:
    """One CSV file read by pandas (``options`` go to ``pandas.read_csv``), where a column of
    whole numbers written with leading zeros (ids such as ``"00017"``) stays text as written.

    pandas would read such a column as the numbers 17..., so the ids of a log, an attributes
    file and an RFM table would no longer match ids that other readers (DuckDB, Spark, a
    Parquet file) keep as text, and two customers "017" and "17" would become one. A
    ClvlabWarning names each column read as text, with an example value.
    """
    frame = pd.read_csv(path, **options)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)
               and not pd.api.types.is_bool_dtype(frame[c].dtype)]
    if not numeric or frame.empty:
        return frame
    wanted = set(numeric)
    text = pd.read_csv(path, **{**options, "usecols": lambda name: name in wanted, "dtype": str,
                                "keep_default_na": False, "na_values": [""]})
    for column in numeric:
        values = text[column].str.strip()
        padded = values.str.match(_ZERO_PADDED, na=False)
        if padded.any():
            frame[column] = values.where(values.notna(), None).astype(object)
            warn(f"column {column!r} of {os.fspath(path)} holds whole numbers written "
                          f"with leading zeros (e.g. {values[padded].iloc[0]!r}): read as text, "
                          "as written, so that they keep their zeros and match ids read as text",
                          ClvlabWarning)
    return frame
