"""Files in and out of :mod:`clvlab.rfm`: reading transaction files with pandas, and RFM tables on
disk that keep their time unit.

An RFM table is a number of time units per customer; without its unit it cannot be scored
correctly, and no default is safe (a days table read as weeks gives 7 times too long a life).
So the unit travels with the table: in ``attrs["clvlab"]`` in memory, and in the Parquet file's
key-value metadata on disk (``clvlab`` for any reader, ``PANDAS_ATTRS`` so that plain
``pandas.read_parquet`` restores the attrs, as it does for a table pandas wrote itself). A CSV
file cannot carry it: its reader must say the unit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ClvlabError, DataValidationError
from .timeunits import normalize_time_unit

__all__ = ["read_rfm", "parquet_metadata", "expand_paths", "file_format", "read_files"]

METADATA_KEY = "clvlab"
PANDAS_KEY = "PANDAS_ATTRS"  # where pandas (>= 2.1) keeps df.attrs in a Parquet file
DEFAULT_CUSTOMER_COL = "customer_id"  # rfm_summary's and the command line's default name


def parquet_metadata(info: dict[str, Any]) -> dict[str, str]:
    """The key-value metadata that carries ``attrs["clvlab"]`` (``info``) in a Parquet file."""
    return {METADATA_KEY: json.dumps(info), PANDAS_KEY: json.dumps({"clvlab": info})}


def read_rfm(path: str | os.PathLike, *, time_unit: str | None = None,
             customer_col: str | None = None) -> pd.DataFrame:
    """Read an RFM table written by ``clvlab rfm``, ``rfm_summary(...).to_parquet`` or by hand.

    Parameters
    ----------
    path
        A Parquet (``.parquet``, ``.pq``) or CSV (``.csv``, ``.csv.gz``) file.
    time_unit
        The table's time unit (``"h"``, ``"D"``, ``"W"``, ``"M"`` or a spelled-out alias). Needed
        when the file does not record one (any CSV); when the file records one, it must agree.
    customer_col
        The customer-id column, which becomes the index. By default the one the file records;
        for a file that records none, ``"customer_id"`` when present, else the index is left as
        read.

    Returns
    -------
    DataFrame indexed by customer id, with ``attrs["clvlab"]`` as :func:`clvlab.rfm_summary`
    sets it (what the file records; at least ``"time_unit"``).

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
        table = pd.read_csv(path)
    table.attrs = {}
    info = dict(recorded)
    info["time_unit"] = _resolve_unit(path, recorded.get("time_unit"), time_unit)
    column = customer_col or recorded.get("customer_col")
    if column is None and DEFAULT_CUSTOMER_COL in table.columns:
        column = DEFAULT_CUSTOMER_COL
    if column is not None:
        table = _customer_index(table, column, path, named=customer_col is not None)
        if customer_col is not None and "customer_col" in info:
            info["customer_col"] = customer_col
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
    return pd.concat([pd.read_csv(f, **options) for f in files], ignore_index=True)
