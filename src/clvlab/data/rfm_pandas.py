"""The pandas engine of :func:`clvlab.rfm_summary` (the rules are documented there)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import DataValidationError, example_row
from clvlab.data.rfm_rules import Settings, check_customers, finish, resolve_window

# A UTC offset after a time of day ("10:00:00+02:00", "10:00Z"); a bare date never matches.
OFFSET_PATTERN = r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d(?::?\d\d)?)$"

DIGITS_ONLY = r"\s*\d+\s*"  # a date written as a number: refused without date_format

# The wording both engines use, so that a log gets the same message from a DataFrame or a file.
NUMBERS_ARE_NOT_DATES = ("numbers are not dates; pass date_format (--date-format on the command "
                         "line), e.g. '%Y%m%d', or convert the column to datetimes")


def date_rule(date_format: str | None) -> str:
    """The rule a date that does not parse broke."""
    if date_format:
        return f"is not a date in format {date_format!r} (date_format, --date-format)"
    return ("is not a parseable date (ISO 8601 expected, e.g. '2024-03-31'; pass date_format, "
            "--date-format on the command line, e.g. '%d/%m/%Y', for other layouts)")


def header_hint(row: dict[str, Any] | None) -> str | None:
    """A hint when the offending row is a copy of the header (files concatenated with their
    headers): its values are the column names."""
    if not row:
        return None
    repeats = [name for name, value in row.items() if name != "<row>" and str(value) == name]
    if len(repeats) >= 2:
        return ("this row repeats the header inside the data (files concatenated with their "
                "header rows?); remove those rows")
    return None


def amount_hint(value: Any, decimal: str) -> str | None:
    """What a text amount that cannot be read most likely needs."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.search(r"\d", text) and re.search(r"[^\d\s.,+\-eE]", text):
        return ("the amount carries a currency sign or other text: strip it from the column "
                "first (clvlab does not convert currencies)" + (
                    "; amounts with a decimal comma need decimal=',' (--decimal ',')"
                    if "," in text and decimal != "," else ""))
    if decimal != "," and re.fullmatch(r"[+-]?\d+,\d+", text):
        return ("it looks like a decimal comma: pass decimal=',' (--decimal ',' on the command "
                "line), and the delimiter if it is not detected (delimiter=';', --delimiter ';')")
    return None


def summarise(frame: pd.DataFrame, settings: Settings, calibration_end: Any,
              observation_end: Any) -> tuple[pd.DataFrame, dict[str, int]]:
    excluded = None
    if isinstance(frame, pd.DataFrame) and (settings.consent_col is not None
                                            or settings.withdrawn is not None):
        from clvlab.data.privacy import consented_log

        frame = consented_log(frame, settings.customer_col, settings.consent_col, settings.withdrawn)
        excluded = frame.attrs.get("customers_excluded")
        if excluded is not None and len(frame) == 0:
            raise DataValidationError(None, f"no transactions are left after excluding the "
                                            f"{excluded} customers who withdrew consent")
    ids, ts, amount = validated_columns(frame, settings)
    window = resolve_window(ts.min(), ts.max(), calibration_end, observation_end, settings)

    keep = (ts <= window.observation_end).to_numpy()
    holdout = (ts[keep] > window.calibration_end).to_numpy() if window.has_holdout else False
    periods, counts = merge_periods(ids.to_numpy()[keep], ts[keep],
                                    amount[keep] if amount is not None else None,
                                    holdout, settings.merge_period)

    cal = periods[~periods["holdout"]].sort_values(["cid", "p"], kind="stable")
    by_customer = cal.groupby("cid", sort=True)
    table = pd.DataFrame({
        "n_cal": by_customer.size(),
        "first_p": by_customer["p"].first(),
        "last_p": by_customer["p"].last(),
        "total": by_customer["value"].sum(),
        "first_value": by_customer["value"].first(),
    })
    hold = periods[periods["holdout"]].groupby("cid", sort=False)
    table["n_hold"] = hold.size().reindex(table.index, fill_value=0)
    table["total_hold"] = hold["value"].sum().reindex(table.index, fill_value=0.0)

    check_customers(len(table), window)
    all_customers = pd.Index(periods["cid"].unique())
    counts["customers_first_seen_after_cut"] = int(len(all_customers.difference(table.index)))
    if excluded is not None:
        counts["customers_excluded"] = excluded
    return finish(table, settings, window, counts), counts


def merge_periods(ids: np.ndarray, ts: pd.Series, amount: np.ndarray | None, holdout: Any,
                  merge_period: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per customer, holdout flag and merge period: ``cid``, ``holdout``, ``p`` (epoch
    seconds of the period start) and ``value``, after the refund rule (refund-only periods set
    aside, negative totals valued 0). ``holdout`` is decided on raw timestamps, before merging."""
    period_start = ts.dt.floor("h" if merge_period == "h" else "D")
    periods = pd.DataFrame({
        "cid": ids,
        "holdout": holdout,
        "p": _epoch_seconds(period_start),
        "value": amount if amount is not None else 0.0,
        "purchase": amount >= 0 if amount is not None else True,
    })
    periods = (periods.groupby(["cid", "holdout", "p"], sort=False)
               .agg(value=("value", "sum"), purchase=("purchase", "any"))
               .reset_index())
    counts = {
        "refund_only_periods": int((~periods["purchase"]).sum()),
        "negative_periods_zeroed": int((periods["purchase"] & (periods["value"] < 0)).sum()),
    }
    periods = periods[periods["purchase"]]
    return periods.assign(value=periods["value"].clip(lower=0.0)), counts


def _epoch_seconds(ts: pd.Series) -> np.ndarray:
    return ts.to_numpy().astype("datetime64[s]").astype(np.int64)


def validated_columns(frame: pd.DataFrame, settings: Settings):
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(None, f"transactions must be a DataFrame or file path, not "
                                        f"{type(frame).__name__}")
    needed = [settings.customer_col, settings.date_col]
    if settings.amount_col is not None:
        needed.append(settings.amount_col)
    for column in needed:
        if column not in frame.columns:
            raise DataValidationError(column, "is missing from the transaction log",
                                      hint=f"columns present: {list(frame.columns)}")
    if len(frame) == 0:
        raise DataValidationError(None, "the transaction log is empty")

    ids = frame[settings.customer_col]
    check_ids(frame, ids, settings.customer_col)
    ts = parse_dates(frame, settings.date_col, settings.date_format, settings.timezone)
    if settings.time_unit == "h" and bool((ts == ts.dt.floor("D")).all()):
        raise DataValidationError(
            settings.date_col, "time_unit='h' needs timestamps with a time of day, but every "
                               "timestamp is at midnight", example_row(frame, 0))
    amount = None
    if settings.amount_col is not None:
        amount = _amounts(frame, settings.amount_col, settings.decimal)
    return ids, ts, amount


def _first(mask: np.ndarray | pd.Series) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def check_ids(frame: pd.DataFrame, ids: pd.Series, column: str) -> None:
    missing = ids.isna().to_numpy()
    if missing.any():
        raise DataValidationError(column, "customer id is missing", example_row(frame, _first(missing)))
    if ids.dtype == object:
        kinds = ids.map(type)
        if kinds.nunique() > 1:
            first_kind = kinds.iloc[0]
            raise DataValidationError(
                column, f"customer ids mix types ({', '.join(sorted(k.__name__ for k in kinds.unique()))}); "
                        "convert the column to one type", example_row(frame, _first(kinds != first_kind)))


def parse_dates(frame: pd.DataFrame, column: str, date_format: str | None,
                timezone: str) -> pd.Series:
    """Parse a date column to naive timestamps in ``timezone``, or raise naming a bad row."""
    raw = frame[column]
    missing = raw.isna().to_numpy()
    if missing.any():
        raise DataValidationError(column, "date is missing", example_row(frame, _first(missing)))
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert(timezone).dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return raw
    if pd.api.types.is_numeric_dtype(raw.dtype):
        if date_format is None:
            raise DataValidationError(column, NUMBERS_ARE_NOT_DATES, example_row(frame, 0))
        raw = raw.astype(str)
    text = raw.astype(str)
    if date_format is None:
        zoned = text.str.contains(OFFSET_PATTERN, regex=True).to_numpy()
        if zoned.any() and not zoned.all():
            raise DataValidationError(
                column, "timestamps mix naive values and values with a UTC offset; the naive ones "
                        "are ambiguous", example_row(frame, _first(~zoned if zoned[0] else zoned)))
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=bool(zoned.any()))
        # digits alone are a number (as in a CSV file, or to DuckDB), not ISO 8601's basic format
        digits = text.str.fullmatch(DIGITS_ONLY).to_numpy(dtype=bool)
        parsed = parsed.mask(digits)
    else:
        digits = np.zeros(len(text), dtype=bool)
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = example_row(frame, _first(bad))
        rule = NUMBERS_ARE_NOT_DATES if digits[_first(bad)] else date_rule(date_format)
        raise DataValidationError(column, rule, row, hint=header_hint(row))
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert(timezone).dt.tz_localize(None)
    return parsed


def _amounts(frame: pd.DataFrame, column: str, decimal: str = ".") -> np.ndarray:
    raw = frame[column]
    numeric = pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype)
    text = not numeric and (pd.api.types.is_string_dtype(raw.dtype) or raw.dtype == object)
    if text and decimal == ",":
        # text with decimal commas, read by the rule the user gave (missing values stay missing)
        raw = pd.to_numeric(raw.astype("string").str.strip().str.replace(",", ".", regex=False),
                            errors="coerce").where(raw.notna())
        bad = raw.isna().to_numpy() & frame[column].notna().to_numpy()
        if bad.any():
            row = example_row(frame, _first(bad))
            raise DataValidationError(
                column, "amount must be numeric (a number written with a decimal comma)", row,
                hint=header_hint(row) or amount_hint(row[column], decimal))
    elif not numeric:
        numbers = pd.to_numeric(raw, errors="coerce")
        bad = numbers.isna().to_numpy() & raw.notna().to_numpy()
        row = example_row(frame, _first(bad) if bad.any() else 0)
        raise DataValidationError(column, f"amount must be numeric (dtype is {raw.dtype})", row,
                                  hint=header_hint(row) or amount_hint(row[column], decimal))
    values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    if missing.any():
        raise DataValidationError(column, "amount is missing or NaN", example_row(frame, _first(missing)))
    infinite = np.isinf(values)
    if infinite.any():
        raise DataValidationError(column, "amount is infinite", example_row(frame, _first(infinite)))
    return values
