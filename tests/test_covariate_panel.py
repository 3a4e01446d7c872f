"""Time-varying covariates, the panel's side: the calendar grid, every rule a covariate panel or
calendar obeys (each broken rule's message: column, rule, example row), the same messages from
the pandas and DuckDB engines, and seasonal_covariates' values at known dates."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.data.covariate_panel import floor_period, next_period, seasonal_covariates
from clvlab.data.covariate_paths import covariate_paths

CAL = "2024-01-31"  # a Wednesday


def _us(text: str) -> int:
    return int(pd.Timestamp(text).value // 1_000)


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    """Three customers, weeks: a first buys Wed 2024-01-03, b Mon 01-15, c on 01-31 (T = 0)."""
    log = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c", "b"],
                        "date": ["2024-01-03", "2024-01-10", "2024-01-15", "2024-01-24",
                                 "2024-01-31", "2024-02-05"]})
    return clvlab.rfm_summary(log, time_unit="W", calibration_end=CAL)


def weekly_panel(start="2024-01-01", weeks=6, customers=("a", "b", "c")) -> pd.DataFrame:
    """Monday weeks for every customer, covariates x (number) and channel (text)."""
    periods = pd.date_range(start, periods=weeks, freq="7D")
    return pd.DataFrame({"customer_id": np.repeat(customers, weeks),
                         "period": np.tile(periods, len(customers)),
                         "x": np.arange(weeks * len(customers), dtype=np.float64),
                         "channel": "web"})


ENGINES = ["pandas", "duckdb"]


def error_of(panel, rfm, engine="pandas", **kwargs) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        covariate_paths(panel, rfm, engine=engine, **kwargs)
    return info.value


# ---- the grid ----------------------------------------------------------------------------------

@pytest.mark.parametrize("unit, instant, start, after", [
    ("h", "2024-03-31 01:59:59", "2024-03-31 01:00", "2024-03-31 02:00"),
    ("D", "1969-12-31 23:00", "1969-12-31", "1970-01-01"),
    ("W", "2024-01-07 23:59", "2024-01-01", "2024-01-08"),      # Monday weeks (anchor 0)
    ("M", "2024-02-29 12:00", "2024-02-01", "2024-03-01"),
    ("M", "1969-12-15", "1969-12-01", "1970-01-01"),
])
def test_floor_and_next_period(unit, instant, start, after):
    got = floor_period(np.array([_us(instant)]), unit, 0)[0]
    assert got == _us(start)
    assert next_period(np.array([got]), unit)[0] == _us(after)


def test_weekly_floor_follows_the_anchor_weekday():
    """Sunday weeks (anchor 6): Wednesday 2024-01-03 lies in the week of Sunday 2023-12-31,
    as pandas' W-SAT periods (weeks ending Saturday) say; also before 1970."""
    days = pd.date_range("1969-12-20", "1970-01-20").append(
        pd.date_range("2024-01-01", "2024-01-14"))
    for day in days:
        expected = day.to_period("W-SAT").start_time
        assert floor_period(np.array([_us(str(day))]), "W", 6)[0] == _us(str(expected))


# ---- the rules, message by message -------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_a_clean_panel_passes_and_other_customers_are_ignored(rfm, engine):
    panel = pd.concat([weekly_panel(), weekly_panel(customers=("zz",)).assign(x=np.nan)])
    paths = covariate_paths(panel, rfm, engine=engine)
    assert list(paths.customers) == ["a", "b", "c"]
    assert paths.covariates == ("x", "channel")


@pytest.mark.parametrize("engine", ENGINES)
def test_period_off_the_weekly_grid(rfm, engine):
    panel = weekly_panel()
    panel.loc[8, "period"] = pd.Timestamp("2024-01-16")  # b's third week on a Tuesday
    err = error_of(panel, rfm, engine)
    assert err.column == "period"
    assert "start at midnight on one weekday" in err.rule and "Monday" in err.rule
    assert err.row == {"customer_id": "b", "period": pd.Timestamp("2024-01-16")}


@pytest.mark.parametrize("engine", ENGINES)
def test_period_not_at_midnight(rfm, engine):
    panel = weekly_panel()
    panel.loc[1, "period"] = pd.Timestamp("2024-01-08 06:00")
    err = error_of(panel, rfm, engine)
    assert "midnight" in err.rule and err.row["period"] == pd.Timestamp("2024-01-08 06:00")


@pytest.mark.parametrize("engine", ENGINES)
def test_duplicate_customer_period(rfm, engine):
    panel = weekly_panel()
    panel = pd.concat([panel, panel.iloc[[8]]])  # b's first week twice
    err = error_of(panel, rfm, engine)
    assert err.column == "period" and "same customer and period" in err.rule
    assert err.row == {"customer_id": "b", "period": pd.Timestamp("2024-01-15")}
    # rows outside a path are not read: b's week of 01-01, before its first purchase
    covariate_paths(pd.concat([weekly_panel(), weekly_panel().iloc[[6]]]), rfm, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_gap_in_a_customers_periods(rfm, engine):
    panel = weekly_panel().drop(index=2)  # a without the week of 2024-01-15
    err = error_of(panel, rfm, engine)
    assert "gap" in err.rule and "one week apart" in err.rule and "2024-01-08" in err.rule
    assert err.row == {"customer_id": "a", "period": pd.Timestamp("2024-01-22")}


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_and_infinite_values(rfm, engine):
    panel = weekly_panel()
    panel.loc[16, "x"] = np.nan
    err = error_of(panel, rfm, engine)
    assert err.column == "x" and "missing" in err.rule
    assert err.row["customer_id"] == "c" and err.row["period"] == pd.Timestamp("2024-01-29")
    assert np.isnan(err.row["x"])
    panel.loc[16, "x"] = np.inf
    assert "infinite" in error_of(panel, rfm, engine).rule
    panel.loc[16, "x"] = 1.0
    panel.loc[4, "channel"] = None
    err = error_of(panel, rfm, engine)
    assert err.column == "channel" and "missing" in err.rule and err.row["customer_id"] == "a"


def test_refused_covariate_type(rfm):
    panel = weekly_panel().assign(when=pd.Timestamp("2024-01-01"))
    err = error_of(panel, rfm)
    assert err.column == "when" and "numbers, booleans, text or categories" in err.rule


@pytest.mark.parametrize("engine", ENGINES)
def test_customer_not_covered_from_its_first_purchase(rfm, engine):
    panel = weekly_panel(start="2024-01-08", weeks=5)  # a's first purchase is in week 01-01
    err = error_of(panel, rfm, engine)
    assert "does not cover customer 'a'" in err.rule and "2024-01-01" in err.rule
    assert err.row == {"customer_id": "a", "period": pd.Timestamp("2024-01-01")}


@pytest.mark.parametrize("engine", ENGINES)
def test_customer_not_covered_to_the_horizon(rfm, engine):
    panel = weekly_panel()  # to the week of 2024-02-05: enough for horizon 1, not 2
    covariate_paths(panel, rfm, horizon=1, engine=engine)
    err = error_of(panel, rfm, engine, horizon=2)
    # the whole panel stops short: said of the panel, not of its first customer
    assert "ends with the period starting 2024-02-05 00:00:00 for every customer" in err.rule
    assert "calibration_end + horizon" in err.rule and "extend the covariate panel" in err.hint
    assert err.row["period"] == pd.Timestamp("2024-02-12")
    one_short = panel[(panel["customer_id"] != "b") | (panel["period"] < "2024-02-05")]
    err = error_of(one_short, rfm, engine, horizon=1)
    assert "does not cover customer 'b'" in err.rule


@pytest.mark.parametrize("engine", ENGINES)
def test_customer_without_rows(rfm, engine):
    err = error_of(weekly_panel(customers=("a", "c")), rfm, engine)
    assert "does not cover customer 'b'" in err.rule and err.hint is None
    assert err.row == {"customer_id": "b", "period": pd.Timestamp("2024-01-15")}
    err = error_of(weekly_panel(customers=("A", "B", "C")), rfm, engine)
    assert "are they the same ids (the table's look like 'a')" in err.hint


@pytest.mark.parametrize("engine", ENGINES)
def test_unparseable_period(rfm, engine):
    panel = weekly_panel()
    panel["period"] = panel["period"].dt.strftime("%Y-%m-%d").astype(object)
    panel.loc[3, "period"] = "2024-13-01"
    err = error_of(panel, rfm, engine)
    assert err.column == "period" and "not a parseable date" in err.rule


def test_missing_column_and_bad_covariate_choices(rfm):
    with pytest.raises(DataValidationError, match="'period'.*missing from the covariate panel"):
        covariate_paths(weekly_panel().rename(columns={"period": "week"}), rfm)
    with pytest.raises(DataValidationError, match="neither the panel nor the calendar"):
        covariate_paths(weekly_panel(), rfm, covariates=["y"])
    with pytest.raises(DataValidationError, match="may not be named like"):
        covariate_paths(weekly_panel().rename(columns={"x": "start"}), rfm)
    calendar = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=6, freq="7D"), "x": 1})
    with pytest.raises(DataValidationError, match="both the panel and the calendar"):
        covariate_paths(weekly_panel(), rfm, calendar=calendar)


def test_calendar_rules(rfm):
    calendar = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=6, freq="7D"),
                             "promo": [0, 1, 0, 0, 1, 0]})
    covariate_paths(weekly_panel(), rfm, calendar=calendar)
    with pytest.raises(DataValidationError, match="the calendar starts with the period "
                                                  "2024-01-08 00:00:00, after the one holding "
                                                  "the first purchase of customer 'a'") as info:
        covariate_paths(weekly_panel(), rfm, calendar=calendar.iloc[1:])
    assert info.value.row == {"period": pd.Timestamp("2024-01-01")}  # a calendar has no customer
    with pytest.raises(DataValidationError, match="the calendar ends with the period starting "
                                                  "2024-02-05 00:00:00, but the paths need") as info:
        covariate_paths(weekly_panel(), rfm, calendar=calendar, horizon=3)
    assert info.value.row == {"period": pd.Timestamp("2024-02-12")}
    assert "seasonal_covariates" in info.value.hint
    sunday = calendar.assign(period=calendar["period"] - pd.Timedelta(days=1))
    with pytest.raises(DataValidationError, match="the calendar's weeks start on Sunday"):
        covariate_paths(weekly_panel(), rfm, calendar=sunday)
    with pytest.raises(DataValidationError, match="gap"):
        covariate_paths(weekly_panel(), rfm, calendar=calendar.drop(index=2))


def test_calendar_joins_on_its_own_period_column(rfm):
    """A panel whose period column is named like a calendar covariate (``month``): the calendar
    of seasonal_covariates is joined on its own ``period``, and its ``month`` is a covariate;
    only a calendar without ``period`` is joined on period_col; both holding dates: refused."""
    panel = weekly_panel().rename(columns={"period": "month"})
    calendar = seasonal_covariates("2024-01-01", "2024-02-11", "W", month=True)
    paths = covariate_paths(panel, rfm, period_col="month", calendar=calendar, merge=False)
    assert paths.covariates == ("x", "channel", "month")
    a = paths.table[paths.table["customer"] == "a"]
    assert a["month"].astype(str).tolist() == ["01", "01", "01", "01", "02"]  # 01-29: mostly Feb
    own = calendar[["period"]].rename(columns={"period": "month"}).assign(promo=1)
    assert covariate_paths(panel, rfm, period_col="month", calendar=own).covariates == (
        "x", "channel", "promo")
    both = calendar.assign(month=calendar["period"])
    err = error_of(panel, rfm, period_col="month", calendar=both)
    assert err.column == "month" and "two period columns holding dates" in err.rule
    assert "joined on its own 'period'" in err.rule
    assert err.row["month"] == pd.Timestamp("2024-01-01")
    err = error_of(panel, rfm, period_col="month", calendar=own.rename(columns={"month": "p0"}))
    assert "the calendar has no period column" in err.rule and "'p0'" in err.hint


@pytest.mark.parametrize("engine", ENGINES)
def test_period_layout_error_gives_a_fix_that_works(rfm, engine):
    """Periods that are no ISO dates: date_format is the log's, so the message says to convert
    the panel's (calendar's) column first, and that fix works."""
    panel = weekly_panel()
    panel["period"] = panel["period"].dt.strftime("%d/%m/%Y")
    err = error_of(panel, rfm, engine, transactions=None, date_format="%d/%m/%Y")
    assert err.column == "period" and "not a parseable date" in err.rule
    assert "pass date_format" not in err.rule
    assert "transaction log only" in err.rule
    assert "panel['period'] = pd.to_datetime(panel['period'], format='%d/%m/%Y')" in err.rule
    assert err.row["customer_id"] == "a" and err.row["period"] == "01/01/2024"
    panel["period"] = pd.to_datetime(panel["period"], format="%d/%m/%Y")
    covariate_paths(panel, rfm, engine=engine)
    numbers = weekly_panel()
    numbers["period"] = numbers["period"].dt.strftime("%Y%m%d").astype(np.int64)
    err = error_of(numbers, rfm, engine)
    assert "numbers are not dates" in err.rule and "pass date_format" not in err.rule
    assert "pd.to_datetime(panel['period'].astype(str), format='%Y%m%d')" in err.rule
    numbers["period"] = pd.to_datetime(numbers["period"].astype(str), format="%Y%m%d")
    covariate_paths(numbers, rfm, engine=engine)
    calendar = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=6, freq="7D")
                             .strftime("%d/%m/%Y"), "promo": 1})
    err = error_of(weekly_panel(), rfm, engine, calendar=calendar)
    assert "calendar['period'] = pd.to_datetime(calendar['period']" in err.rule


def test_weekday_messages_name_the_table_and_its_first_row(rfm):
    """A Friday calendar with a Monday panel: each table's weekday, the panel's first row, the
    calendar's row as the example and a calendar start that fits."""
    friday = seasonal_covariates("2023-12-29", "2024-02-29", "W", month=True)
    err = error_of(weekly_panel(), rfm, calendar=friday)
    assert err.column == "period" and "the calendar's weeks start on Friday" in err.rule
    assert ("the panel's weeks start on Monday, the weekday of its first row (customer_id=a, "
            "period=2024-01-01 00:00:00)") in err.rule
    assert err.row == {"period": pd.Timestamp("2023-12-29")}
    assert "seasonal_covariates('2023-12-25', ..., 'W') (a Monday)" in err.hint
    calendar = seasonal_covariates("2024-01-01", "2024-02-29", "W", month=True)
    calendar.loc[3, "period"] = pd.Timestamp("2024-01-23")  # a Tuesday
    err = error_of(None, rfm, calendar=calendar)
    assert ("the calendar's weeks start on Monday, the weekday of its first row "
            "(period=2024-01-01 00:00:00)") in err.rule
    assert err.row == {"period": pd.Timestamp("2024-01-23")}
    panel = weekly_panel()
    panel.loc[8, "period"] = pd.Timestamp("2024-01-16")
    assert "the panel's weeks start on Monday, the weekday of its first row (customer_id=a" in \
        error_of(panel, rfm).rule


@pytest.mark.parametrize("engine", ENGINES)
def test_zoned_periods_name_their_conversion_to_the_tables_zone(rfm, engine):
    """Monday midnights in Berlin are Sunday 23:00 in the table's UTC: the message says so."""
    panel = weekly_panel()
    panel["period"] = panel["period"].dt.tz_localize("Europe/Berlin")
    err = error_of(panel, rfm, engine)
    assert err.column == "period" and "at midnight on one weekday" in err.rule
    assert err.row == {"customer_id": "a", "period": pd.Timestamp("2023-12-31 23:00")}
    assert "converted to the RFM table's time zone 'UTC'" in err.hint
    if engine == "pandas":
        assert ("(Monday 2024-01-01 00:00 in Europe/Berlin is Sunday 2023-12-31 23:00 in UTC)"
                in err.hint)
        assert "panel['period'].dt.tz_localize(None)" in err.hint
        assert "timezone='Europe/Berlin'" in err.hint
    else:
        assert "TIMESTAMP WITH TIME ZONE" in err.hint
    panel["period"] = panel["period"].dt.tz_localize(None)
    covariate_paths(panel, rfm, engine=engine)


def test_panel_indexed_by_customer_and_period(rfm):
    want = covariate_paths(weekly_panel(), rfm).table
    for levels in (["customer_id", "period"], "customer_id", "period"):
        got = covariate_paths(weekly_panel().set_index(levels), rfm).table
        pd.testing.assert_frame_equal(got, want)


def test_whole_number_ids_print_plainly():
    log = pd.DataFrame({"customer_id": [1001, 1002, 1002],
                        "date": ["2024-01-03", "2024-01-10", "2024-02-10"]})
    rfm = clvlab.rfm_summary(log, time_unit="W", calibration_end=CAL)
    err = error_of(weekly_panel(customers=(1001,)), rfm)
    assert "does not cover customer 1002:" in err.rule and "np." not in str(err)
    err = error_of(weekly_panel(customers=(1001, 1002)), rfm,
                   calendar=seasonal_covariates("2023-12-29", "2024-02-29", "W", month=True))
    assert "(customer_id=1001, period=2024-01-01 00:00:00)" in err.rule and "np." not in str(err)


def test_rfm_table_without_its_settings_or_with_a_rounded_T(rfm):
    bare = rfm.copy()
    bare.attrs = {}
    with pytest.raises(ClvlabError, match="does not record its calibration_end"):
        covariate_paths(weekly_panel(), bare)
    rounded = rfm.copy()
    rounded["T"] = rounded["T"].round(2)  # b's T is 16/7 weeks
    with pytest.raises(DataValidationError, match="calibration_end - T must be the start of a "
                                                  "merge period") as info:
        covariate_paths(weekly_panel(), rounded)
    assert info.value.row["customer_id"] == "b"


def test_monthly_and_hourly_grids():
    log = pd.DataFrame({"customer_id": [1, 1, 2], "date": ["2024-01-20", "2024-03-05",
                                                           "2024-02-29"]})
    rfm = clvlab.rfm_summary(log, time_unit="M", observation_end="2024-03-10")
    months = pd.DataFrame({"customer_id": np.repeat([1, 2], 3),
                           "period": np.tile(pd.to_datetime(["2024-01-01", "2024-02-01",
                                                             "2024-03-01"]), 2), "x": 1.0})
    month = 30.436875  # days: clvlab's "M" unit; the pieces are calendar months
    table = covariate_paths(months, rfm, merge=False).table
    assert table.loc[table["customer"] == 1, ["start", "end"]].to_numpy().tolist() == [
        [0.0, 12 / month], [12 / month, 41 / month], [41 / month, 50 / month]]
    off = months.assign(period=months["period"] + pd.Timedelta(days=1))
    assert "1st of a calendar month" in error_of(off, rfm).rule
    hours = pd.DataFrame({"customer_id": [1, 1, 1], "date": ["2024-01-01 10:15",
                                                             "2024-01-01 12:40",
                                                             "2024-01-01 13:05"]})
    rfm_h = clvlab.rfm_summary(hours, time_unit="h", calibration_end="2024-01-01 12:30")
    panel = pd.DataFrame({"customer_id": 1, "period": pd.date_range("2024-01-01 10:00",
                                                                    periods=3, freq="h"),
                          "x": [1.0, 2.0, 3.0]})
    paths = covariate_paths(panel, rfm_h)
    assert paths.table["end"].iloc[-1] == rfm_h["T"].iloc[0] == 2.5  # 10:00 to 12:30
    half = panel.assign(period=panel["period"] + pd.Timedelta(minutes=30))
    assert "on the hour" in error_of(half, rfm_h).rule


def test_zoned_periods_are_read_in_the_tables_time_zone():
    log = pd.DataFrame({"customer_id": [1, 1], "date": ["2024-01-02", "2024-01-05"]})
    rfm = clvlab.rfm_summary(log, time_unit="D", observation_end="2024-01-06",
                             timezone="Europe/Berlin")
    days = pd.date_range("2024-01-02", periods=4, freq="D", tz="Europe/Berlin")
    panel = pd.DataFrame({"customer_id": 1, "period": days.tz_convert("UTC"), "x": 1.0})
    for engine in ENGINES:
        assert covariate_paths(panel, rfm, engine=engine).table["end"].iloc[-1] == 4.0


# ---- seasonal covariates ----------------------------------------------------------------------

def test_seasonal_weeks_months_and_christmas():
    cal = seasonal_covariates("2005-01-02", "2006-12-31", "W", month=True, quarter=True,
                              holidays={"christmas": "12-25", "sale": ["2006-07-01"]})
    assert cal["period"].iloc[0] == pd.Timestamp("2005-01-02")
    assert (cal["period"].dt.day_of_week == 6).all() and len(cal) == 105
    christmas = cal.loc[cal["christmas"] == 1, "period"].dt.strftime("%Y-%m-%d").tolist()
    assert christmas == ["2005-12-25", "2006-12-24"]  # a Sunday, then the Monday of that week
    assert cal.loc[cal["sale"] == 1, "period"].tolist() == [pd.Timestamp("2006-06-25")]
    # the week of Sun 2005-01-30 has 5 of its 7 days in February: its midpoint, Wed 12:00, is
    # 2005-02-02
    row = cal.set_index("period").loc["2005-01-30"]
    assert row["month"] == "02" and row["quarter"] == "Q1"
    assert list(cal["month"].cat.categories) == [f"{m:02d}" for m in range(1, 13)]
    assert cal["christmas"].dtype == np.int64


def test_seasonal_fourier_terms_at_known_midpoints():
    """t is the midpoint in units since 1970-01-01: a day from 1970-01-01 00:00 has its midpoint
    at 0.5 days; with year_length 2 days that is a quarter turn (sin 1, cos 0)."""
    cal = seasonal_covariates("1970-01-01", "1970-01-02", "D", fourier=2, year_length=2.0)
    assert np.allclose(cal["fourier_sin_1"], [1.0, -1.0], atol=1e-12)  # 1/4 and 3/4 turn
    assert np.allclose(cal["fourier_cos_1"], [0.0, 0.0], atol=1e-12)
    assert np.allclose(cal["fourier_cos_2"], [-1.0, -1.0], atol=1e-12)  # 1/2 and 3/2 turns
    weeks = seasonal_covariates("2024-01-01", "2024-12-31", "W", fourier=1)
    mid = (weeks["period"] + pd.Timedelta(days=3.5) - pd.Timestamp(0)) / pd.Timedelta(days=365.2425)
    assert np.allclose(weeks["fourier_sin_1"], np.sin(2 * np.pi * mid), atol=1e-12)
    assert np.allclose(weeks["fourier_cos_1"], np.cos(2 * np.pi * mid), atol=1e-12)


def test_seasonal_months_hours_and_leap_days():
    months = seasonal_covariates("2023-11-01", "2024-03-15", "M", quarter=True,
                                 holidays={"leap": "02-29"})
    assert months["period"].dt.strftime("%Y-%m").tolist() == ["2023-11", "2023-12", "2024-01",
                                                              "2024-02", "2024-03"]
    assert months["quarter"].tolist() == ["Q4", "Q4", "Q1", "Q1", "Q1"]
    assert months["leap"].tolist() == [0, 0, 0, 1, 0]
    hours = seasonal_covariates("2024-12-24 20:00", "2024-12-26 02:00", "h",
                                holidays={"christmas": [datetime.date(2024, 12, 25)]})
    assert hours["christmas"].sum() == 24
    assert hours.loc[hours["christmas"] == 1, "period"].iloc[0] == pd.Timestamp("2024-12-25")


def test_seasonal_refuses_bad_input():
    with pytest.raises(ClvlabError, match="not a period start"):
        seasonal_covariates("2024-01-03 12:00", "2024-02-01", "D", month=True)
    with pytest.raises(ClvlabError, match="not a period start"):
        seasonal_covariates("2024-01-03", "2024-02-01", "M", month=True)
    with pytest.raises(ClvlabError, match="'MM-DD'"):
        seasonal_covariates("2024-01-01", "2024-02-01", "D", holidays={"x": "13-01"})
    with pytest.raises(ClvlabError, match="at least one"):
        seasonal_covariates("2024-01-01", "2024-02-01", "D")
    with pytest.raises(ClvlabError, match="fourier"):
        seasonal_covariates("2024-01-01", "2024-02-01", "D", fourier=1.5)


def test_names_stay_importable_where_they_were_first_defined():
    """The split modules' public names are the same objects from covariate_panel and
    covariate_paths, which other code imports them from."""
    from clvlab.data import (covariate_engines, covariate_grid, covariate_inputs,
                             covariate_panel, covariate_paths, covariate_pieces, seasonal)

    assert covariate_panel.seasonal_covariates is seasonal.seasonal_covariates
    for name in ("floor_period", "next_period", "weekday_of", "grid_rule", "as_micros",
                 "WEEKDAYS", "RESERVED", "US"):
        assert getattr(covariate_panel, name) is getattr(covariate_grid, name), name
    for name in ("PieceSpec", "build_pieces", "repeat_counts"):
        assert getattr(covariate_paths, name) is getattr(covariate_pieces, name), name
    for module in (covariate_panel, covariate_paths, covariate_engines, covariate_grid,
                   covariate_pieces, covariate_inputs, seasonal):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__
    assert clvlab.seasonal_covariates is seasonal.seasonal_covariates
    assert clvlab.covariate_paths is covariate_paths.covariate_paths
