"""The inputs of :func:`clvlab.data.covariate_paths.covariate_paths` as users hand them over,
made into what the engines read, and the messages that name the user's own table:

- :func:`read_calendar`: a calendar given as a DataFrame or as Parquet/CSV file(s);
- :func:`calendar_period_column`: the calendar's period column (its own ``period``; only a
  calendar without one is joined on the panel's ``period_col``);
- :func:`index_as_columns`: a pandas panel whose customer or period column is an index level;
- :func:`parse_periods`, :func:`period_rule`: periods that are no dates, with a fix that works
  for a panel or calendar (``date_format`` is the transaction log's only);
- :func:`zone_of`, :func:`zone_hint`: zoned periods converted to the RFM table's time zone,
  named in grid messages;
- :func:`files_lacking`: the files of a multi-file panel that lack a needed column.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError, example_row

__all__ = ["read_calendar", "calendar_period_column", "index_as_columns", "parse_periods",
           "period_rule", "zone_of", "zone_hint", "files_lacking"]


def read_calendar(calendar: Any) -> pd.DataFrame | None:
    """A calendar as a DataFrame: as given, or read from Parquet or CSV file(s) (a path, glob
    or list), as ``clvlab fit --calendar`` reads it (CSV periods stay text and are parsed as
    ISO 8601 dates with the calendar's rules)."""
    if calendar is None or isinstance(calendar, pd.DataFrame):
        return calendar
    if not isinstance(calendar, (str, os.PathLike, list, tuple)):
        raise ClvlabError(f"calendar must be a pandas DataFrame (one row per period, e.g. "
                          f"clvlab.seasonal_covariates(...)) or a Parquet/CSV file, not "
                          f"{type(calendar).__name__}")
    from clvlab.data.rfm_io import expand_paths, file_format

    try:
        files = expand_paths(calendar)
        kind = file_format(files)
    except ClvlabError:
        raise ClvlabError(f"calendar={calendar!r}: not an existing Parquet (.parquet) or CSV "
                          "(.csv, .csv.gz) file; pass the calendar's file or a DataFrame "
                          "(e.g. clvlab.seasonal_covariates(...))") from None
    read = pd.read_parquet if kind == "parquet" else pd.read_csv
    return pd.concat([read(f) for f in files], ignore_index=True)


def _holds_dates(series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return True
    values = series.dropna()
    if not len(values) or not isinstance(values.iloc[0], str) or values.iloc[0].strip().isdigit():
        return False
    return not pd.isna(pd.to_datetime(values.iloc[0], format="ISO8601", errors="coerce"))


def calendar_period_column(calendar: pd.DataFrame, period_col: str) -> str:
    """The calendar's period column: its own ``period`` (which seasonal_covariates makes), else
    the panel's ``period_col``. A calendar with both holding dates is ambiguous: refused."""
    columns = [str(c) for c in calendar.columns]
    if "period" in columns:
        if period_col != "period" and period_col in columns and \
                _holds_dates(calendar[period_col]):
            raise DataValidationError(
                period_col, f"the calendar has two period columns holding dates, 'period' and "
                            f"{period_col!r} (the panel's period_col); a calendar is joined on "
                            "its own 'period' column", example_row(calendar, 0),
                hint=f"drop or rename the calendar's column {period_col!r} (or its 'period', "
                     f"if {period_col!r} holds the periods)")
        return "period"
    if period_col in columns:
        return period_col
    raise DataValidationError(
        "period", f"the calendar has no period column: neither 'period' (a calendar's own, as "
                  f"seasonal_covariates makes) nor {period_col!r} (the panel's period_col)",
        hint=f"columns present: {columns}; name the calendar's period-start column 'period'")


def index_as_columns(panel: Any, names: tuple[str, str]) -> Any:
    """A pandas panel whose customer or period column is an index level (a panel indexed by
    (customer, period)): those levels made columns; anything else as given."""
    if not isinstance(panel, pd.DataFrame):
        return panel
    levels = [n for n in dict.fromkeys(names) if n not in panel.columns
              and n in [str(level) for level in panel.index.names if level is not None]]
    return panel.reset_index(level=levels) if levels else panel


def period_rule(column: str, where: str, numbers: bool = False) -> str:
    """The rule periods of a panel or calendar broke when they are no dates, with a fix that
    works (``date_format`` applies to the transaction log only)."""
    fix = (f"pd.to_datetime({where}[{column!r}].astype(str), format='%Y%m%d')" if numbers
           else f"pd.to_datetime({where}[{column!r}], format='%d/%m/%Y')")
    broke = ("numbers are not dates" if numbers else
             "is not a parseable date (ISO 8601 expected, e.g. '2024-03-31')")
    return (f"{broke}: the {where}'s periods are read as datetimes or ISO 8601 text "
            f"(date_format and --date-format apply to the transaction log only); convert the "
            f"{where}'s column to datetimes first with its layout, e.g. {where}[{column!r}] = "
            f"{fix}, or write the periods as ISO 8601 dates (2024-03-31) in the file")


def parse_periods(frame: pd.DataFrame, column: str, timezone: str, where: str) -> pd.Series:
    """The period column parsed like a log's dates (a zoned one converted to ``timezone``);
    periods that are no dates are refused with :func:`period_rule`'s fix."""
    from clvlab.data.rfm_pandas import NUMBERS_ARE_NOT_DATES, date_rule, parse_dates

    try:
        return parse_dates(frame, column, None, timezone)
    except DataValidationError as exc:
        if exc.rule not in (NUMBERS_ARE_NOT_DATES, date_rule(None)):
            raise
        raise DataValidationError(column, period_rule(column, where,
                                                      exc.rule == NUMBERS_ARE_NOT_DATES),
                                  exc.row, hint=exc.hint) from None


def zone_of(raw: pd.Series) -> str | None:
    """The zone of a period column whose timestamps carry one (converted to the RFM table's
    zone when read): a time zone's name, ``"UTC offsets"`` for text with offsets, else None."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return str(raw.dt.tz)
    if not (pd.api.types.is_object_dtype(raw.dtype) or pd.api.types.is_string_dtype(raw.dtype)):
        return None
    present = raw.notna().to_numpy()
    first = raw.iloc[int(present.argmax())] if present.any() else None
    if isinstance(first, str):
        import re

        from clvlab.data.rfm_pandas import OFFSET_PATTERN

        if re.search(OFFSET_PATTERN, first.strip()):
            return "UTC offsets"
    return None


def zone_hint(where: str, column: str, zone: str | None, timezone: str,
              example_us: Any = None) -> str | None:
    """For a grid message: the ``where``'s zoned periods were converted to the RFM table's
    zone (midnight in one zone is another hour in the other), and how to keep them as written."""
    if zone is None:
        return None
    text = (f"the {where}'s column {column!r} holds zoned timestamps ({zone}), which were "
            f"converted to the RFM table's time zone {timezone!r}")
    named = zone not in ("UTC offsets", "TIMESTAMP WITH TIME ZONE")
    if named and example_us is not None:
        try:
            there = pd.Timestamp(int(example_us), unit="us")
            here = there.tz_localize(timezone).tz_convert(zone)
            text += (f" ({here:%A %Y-%m-%d %H:%M} in {zone} is {there:%A %Y-%m-%d %H:%M} in "
                     f"{timezone})")
        except (ValueError, TypeError, OverflowError):
            pass
    keep = (f"{where}[{column!r}] = {where}[{column!r}].dt.tz_localize(None)" if named
            else "write them without a zone or offset")
    return (text + "; periods are wall-clock times of the RFM table's zone: to keep the periods "
            f"as written, drop their zone ({keep})"
            + (f", or build the RFM table with timezone={zone!r}" if named else ""))


def files_lacking(con: Any, files: list[str], reader: str, needed: list[str]) -> None:
    """Refuse a panel of several files some of which lack a needed column, naming them (DuckDB
    reads them together by name, which would give the column's rows there as missing)."""
    if len(files) < 2:
        return
    present = {}
    for f in files:
        quoted = "'" + f.replace("'", "''") + "'"
        present[f] = [r[0] for r in con.execute(
            f"DESCRIBE SELECT * FROM {reader.format(quoted)}").fetchall()]
    for column in needed:
        lacking = [f for f in files if column not in present[f]]
        if lacking:
            having = len(files) - len(lacking)
            raise DataValidationError(
                column, f"is missing from {len(lacking)} of the {len(files)} covariate panel "
                        f"files ({having} have it), e.g. {lacking[0]} (columns "
                        f"{present[lacking[0]]})" + (f"; also {lacking[1:4]}" if len(lacking) > 1
                                                     else ""),
                hint="the files of a glob or list are read together by column name and need "
                     "the same columns: narrow the glob to the panel's files, or rename the "
                     "column in those files")
