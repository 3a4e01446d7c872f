"""Plots of time-varying covariate models (issue 31): the data each plot draws, checked against
independent references (scipy quadrature, the plain Pareto/NBD, the model's own predictions,
the covariance by hand), not pixels. Non-interactive backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, stats  # noqa: E402

import clvlab  # noqa: E402
from clvlab import ClvlabError  # noqa: E402
from clvlab.data.covariate_paths import covariate_paths  # noqa: E402
from clvlab.data.simulate import transaction_log  # noqa: E402
from clvlab.models.time_varying_predict import PathPredictor  # noqa: E402
from clvlab.plotting.time_varying import (pareto_nbd_new_customer_expected,  # noqa: E402
                                          plot_time_varying_multipliers,
                                          plot_time_varying_tracking, time_varying_multipliers,
                                          time_varying_tracking)

START = "2024-01-07"  # a Sunday: the calendar's weeks start on Sundays
CUTOFF = pd.Timestamp("2024-09-01")  # a Sunday too
HOLDOUT = 26


def _calendar(weeks: int = 100) -> pd.DataFrame:
    week = np.arange(weeks)
    return pd.DataFrame({"period": pd.date_range(START, periods=weeks, freq="7D"),
                         "promo": (week % 5 == 0).astype(np.int64),
                         "season": np.array(["low", "mid", "peak"])[(week // 4) % 3]})


@pytest.fixture(scope="module")
def setting():
    log = transaction_log(2000, model="pareto-nbd", params=dict(r=0.8, alpha=8.0, s=0.6, beta=20.0),
                          start=START, acquisition_period=13, observation_period=78, seed=4)
    calendar = _calendar()
    rfm = clvlab.rfm_summary(log, calibration_end=CUTOFF,
                             observation_end=CUTOFF + pd.Timedelta(weeks=HOLDOUT), time_unit="W")
    calibration = rfm[["frequency", "recency", "T"]].copy()
    calibration.attrs = rfm.attrs
    paths = covariate_paths(None, calibration, transactions=log, calendar=calendar, horizon=HOLDOUT)
    model = clvlab.ParetoNBD(purchase_covariates=["promo", "season"],
                             dropout_covariates=["promo"]).fit(calibration, covariate_paths=paths)
    static = clvlab.ParetoNBD().fit(calibration)
    yield dict(log=log, calendar=calendar, rfm=rfm, calibration=calibration, paths=paths,
               model=model, static=static)
    plt.close("all")


# --- a new customer's expectation along a path ---------------------------------------------------

def _quadrature(own, seg_end, eta_p, eta_d, age):
    """r/alpha int_0^age exp(eta_p(u)) (beta / (beta + B(u)))^s du, segment by segment."""
    r, alpha, s, beta = own
    total, clock, lower = 0.0, 0.0, 0.0
    for end, ep, ed in zip(seg_end, eta_p, eta_d):
        upper = min(end, age)
        if upper > lower:
            value, _ = integrate.quad(
                lambda u: np.exp(ep) * (beta / (beta + clock + np.exp(ed) * (u - lower))) ** s,
                lower, upper, epsabs=0, epsrel=1e-13, limit=200)
            total += value
        clock += np.exp(ed) * (end - lower)
        lower = end
    return r / alpha * total


def test_the_new_customer_expectation_along_a_path_is_the_integral_by_quadrature():
    rng = np.random.default_rng(7)
    # s = 1 exactly, just off it, small and large; alpha >> beta and the reverse
    owns = np.array([[0.5, 10.0, 1.0, 12.0], [2.0, 3.0, 1.0 + 1e-9, 0.5], [0.3, 0.2, 0.25, 50.0],
                     [1.5, 40.0, 6.0, 4.0]])
    counts = np.array([1, 3, 7, 12])
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    seg_end = np.concatenate([np.cumsum(rng.uniform(0.2, 9.0, c)) for c in counts])
    eta_p, eta_d = rng.uniform(-2, 2, counts.sum()), rng.uniform(-2, 2, counts.sum())
    ends = seg_end[offsets[1:] - 1]
    ages = np.column_stack([np.zeros(4), ends * 0.37, ends * 0.81, ends])
    got = pareto_nbd_new_customer_expected(owns, offsets, seg_end, eta_p, eta_d, ages)
    for i in range(4):
        part = slice(offsets[i], offsets[i + 1])
        want = [_quadrature(owns[i], seg_end[part], eta_p[part], eta_d[part], a) for a in ages[i]]
        np.testing.assert_allclose(got[i], want, rtol=1e-9, atol=1e-14)


def test_a_constant_path_gives_the_plain_pareto_nbd_at_the_shifted_rates():
    own = np.array([[0.55, 10.58, 0.61, 11.67]])
    seg_end = np.array([3.0, 7.5, 20.0, 52.0])
    ages = np.array([[1e-3, 1.0, 7.5, 13.0, 52.0]])
    for c_p, c_d in ((0.0, 0.0), (0.7, -0.4)):
        got = pareto_nbd_new_customer_expected(own, np.array([0, 4]), seg_end, np.full(4, c_p),
                                               np.full(4, c_d), ages)
        plain = clvlab.ParetoNBD.from_params(r=0.55, alpha=10.58 * np.exp(-c_p), s=0.61,
                                             beta=11.67 * np.exp(-c_d), time_unit="W")
        np.testing.assert_allclose(got[0], plain.expected_purchases_new_customer(ages[0]),
                                   rtol=1e-12)


# --- multipliers -----------------------------------------------------------------------------------

def test_the_multipliers_along_a_calendar_are_exp_of_x_g_with_delta_method_bands(setting):
    model, calendar = setting["model"], setting["calendar"]
    table = time_varying_multipliers(model, calendar, level=0.9)
    assert table.attrs["covariates"] == ["promo", "season"]
    params, cov = model.params_, model.covariance_
    promo = calendar["promo"].to_numpy(float)
    mid = (calendar["season"] == "mid").to_numpy(float)
    peak = (calendar["season"] == "peak").to_numpy(float)
    names = ["purchase.promo", "purchase.season[mid]", "purchase.season[peak]"]
    x = np.column_stack([promo, mid, peak])
    eta = x @ params[names].to_numpy()
    se = np.sqrt(np.einsum("ij,jk,ik->i", x, cov.loc[names, names].to_numpy(), x))
    z = stats.norm.ppf(0.95)
    purchase = table[table["process"] == "purchase"]
    np.testing.assert_allclose(purchase["multiplier"], np.exp(eta), rtol=1e-12)
    np.testing.assert_allclose(purchase["se"], se, rtol=1e-10)
    np.testing.assert_allclose(purchase["lower"], np.exp(eta - z * se), rtol=1e-10)
    np.testing.assert_allclose(purchase["upper"], np.exp(eta + z * se), rtol=1e-10)
    # the reference (promo 0, season "low") is the fitted baseline: 1 exactly, no band
    base = purchase[(promo == 0) & (mid == 0) & (peak == 0)]
    assert len(base) and (base["multiplier"] == 1).all() and (base["se"] == 0).all()
    dropout = table[table["process"] == "dropout"]
    g, v = params["dropout.promo"], cov.loc["dropout.promo", "dropout.promo"]
    np.testing.assert_allclose(dropout["multiplier"], np.exp(g * promo), rtol=1e-12)
    np.testing.assert_allclose(dropout["se"], np.sqrt(v) * promo, rtol=1e-10)
    assert (purchase["start"].to_numpy() == calendar["period"].to_numpy()).all()
    assert (purchase["end"].iloc[:-1].to_numpy() == calendar["period"].iloc[1:].to_numpy()).all()


def test_a_customers_path_is_placed_in_calendar_time_with_the_calendars_multipliers(setting):
    model, paths, calendar = setting["model"], setting["paths"], setting["calendar"]
    by_date = time_varying_multipliers(model, calendar)
    customer = paths.table["customer"].iloc[-1]
    along = time_varying_multipliers(model, covariate_paths=paths, customer=customer)
    T = setting["calibration"].loc[customer, "T"]
    first = CUTOFF - pd.Timedelta(weeks=T)
    for process in ("purchase", "dropout"):
        mine = along[along["process"] == process].reset_index(drop=True)
        assert abs((mine["start"].iloc[0] - first).total_seconds()) < 1
        assert abs((mine["end"].iloc[-1] - (CUTOFF + pd.Timedelta(weeks=HOLDOUT)))
                   .total_seconds()) < 1
        # each piece has the multiplier of the calendar week holding its start
        theirs = by_date[by_date["process"] == process]
        matched = pd.merge_asof(mine[["start"]].assign(start=mine["start"].dt.round("s")),
                                theirs[["start", "multiplier"]], on="start", direction="backward")
        np.testing.assert_allclose(mine["multiplier"], matched["multiplier"], rtol=1e-12)
    assert along.attrs["customer"] == customer


def test_a_path_plot_names_its_customer_and_refuses_to_pick_one(setting):
    """Paths of many customers need customer= (the error names an id plainly); the paths of one
    customer are drawn as theirs, the title naming them and fitting the figure."""
    model, paths, calibration = setting["model"], setting["paths"], setting["calibration"]
    with pytest.raises(ClvlabError, match=r"hold 2,000 customers: name the one to draw with "
                                          r"customer=, e.g. customer=\d+ \(the longest path\)"):
        time_varying_multipliers(model, covariate_paths=paths)
    with pytest.raises(ClvlabError, match=r"customer 99999 is not in the covariate paths; they "
                                          r"hold e.g. \[\d+, \d+, \d+\]"):
        time_varying_multipliers(model, covariate_paths=paths, customer=np.int64(99999))
    one = calibration.iloc[[7]].copy()
    one.attrs = calibration.attrs
    own = covariate_paths(None, one, transactions=setting["log"], calendar=setting["calendar"],
                          horizon=HOLDOUT)
    who = one.index[0]
    table = time_varying_multipliers(model, covariate_paths=own)
    pd.testing.assert_frame_equal(table, time_varying_multipliers(model, covariate_paths=paths,
                                                                  customer=who))
    assert table.attrs["customer"] == who and type(table.attrs["customer"]) is int
    ax = plot_time_varying_multipliers(model, covariate_paths=own)
    title = ax.get_title()
    assert f"along the path of customer {who} " in title.replace("\n", " ")
    assert "np.int64" not in title and "'" not in title  # ids as written, text ids unquoted
    assert "promo, season" in title and "95% pointwise bands" in title
    # the title fits the figure: its own figure, and the width of a narrow one given
    narrow = plot_time_varying_multipliers(model, covariate_paths=own,
                                           ax=plt.subplots(figsize=(6, 3))[1])
    for ax, top in ((ax, True), (narrow, False)):
        ax.figure.canvas.draw()
        box, page = ax.title.get_window_extent(), ax.figure.bbox
        assert page.x0 <= box.x0 and box.x1 <= page.x1, (box, page)
        assert box.y1 <= page.y1 or not top, (box, page)


def test_the_multiplier_plot_draws_the_table(setting):
    model, calendar = setting["model"], setting["calendar"]
    table = time_varying_multipliers(model, calendar)
    ax = plot_time_varying_multipliers(model, calendar)
    lines = [line for line in ax.get_lines() if line.get_drawstyle() == "steps-post"]
    assert len(lines) == 2 and ax.get_yscale() == "log"
    for line, process in zip(lines, ("purchase", "dropout")):
        part = table[table["process"] == process]
        np.testing.assert_allclose(line.get_ydata(), np.r_[part["multiplier"],
                                                           part["multiplier"].iloc[-1]])
    assert len(ax.collections) == 2  # one band each
    assert "promo, season" in ax.get_title()


def test_the_multipliers_refuse_what_they_cannot_show(setting):
    with pytest.raises(ClvlabError, match="not fitted with time-varying covariates"):
        time_varying_multipliers(setting["static"], setting["calendar"])
    with pytest.raises(ClvlabError, match="either calendar="):
        time_varying_multipliers(setting["model"], setting["calendar"],
                                 covariate_paths=setting["paths"])
    with pytest.raises(ClvlabError, match=r"the calendar lacks the time-varying covariate\(s\) "
                                          r"\['promo', 'season'\] \(columns: \['period'\]\)"):
        time_varying_multipliers(setting["model"], setting["calendar"][["period"]])


def test_a_calendar_without_one_of_the_covariates_is_refused_unless_asked_for_a_part(setting):
    model, calendar = setting["model"], setting["calendar"]
    for plot in (time_varying_multipliers, plot_time_varying_multipliers):
        with pytest.raises(ClvlabError) as caught:
            plot(model, calendar.drop(columns="season"))
        message = str(caught.value)
        assert "the calendar lacks the time-varying covariate(s) ['season']" in message
        assert "['period', 'promo']" in message and "covariates=['promo']" in message
    part = time_varying_multipliers(model, calendar.drop(columns="season"), covariates=["promo"])
    assert part.attrs["covariates"] == ["promo"]
    purchase = part[part["process"] == "purchase"]
    np.testing.assert_allclose(purchase["multiplier"], np.exp(
        model.params_["purchase.promo"] * calendar["promo"].to_numpy(float)), rtol=1e-12)
    ax = plot_time_varying_multipliers(model, calendar, covariates="promo")
    assert "multipliers of promo\n" in ax.get_title()
    with pytest.raises(ClvlabError, match=r"covariates= must name some of the model's "
                                          r"time-varying covariates \['promo', 'season'\]"):
        time_varying_multipliers(model, calendar, covariates=["weather"])


# --- tracking ---------------------------------------------------------------------------------------

def test_tracking_counts_the_logs_repeat_purchases_and_sums_each_models_expectations(setting):
    model, static, paths = setting["model"], setting["static"], setting["paths"]
    calibration, rfm = setting["calibration"], setting["rfm"]
    table = time_varying_tracking({"tv": model, "static": static}, calibration, setting["log"],
                                  paths)
    held = table[table["part"] == "holdout"]
    fit = table[table["part"] == "calibration"]
    assert len(held) == HOLDOUT and held["start"].iloc[0] == CUTOFF
    np.testing.assert_array_equal(held["t"], np.arange(1.0, HOLDOUT + 1))
    # the log's repeat purchases, as rfm_summary counts them on each side of the cutoff
    assert fit["actual"].sum() == calibration["frequency"].sum()
    assert held["actual"].sum() == rfm["frequency_holdout"].sum()
    # holdout: the models' conditional expectations, window by window
    for label, along in (("tv", {"covariate_paths": paths}), ("static", {})):
        chosen = {"tv": model, "static": static}[label]
        for h in (1.0, 9.0, float(HOLDOUT)):
            want = chosen.expected_purchases(calibration, h, **along).sum()
            np.testing.assert_allclose(held[f"expected[{label}]"].iloc[:int(h)].sum(), want,
                                       rtol=1e-9)
    # calibration: a new customer's expectation from each first purchase, bin by bin
    T = calibration["T"].to_numpy()
    edges = np.arange(-len(fit), 1.0)
    ages = np.clip(T[:, None] + edges[None, :], 0.0, T[:, None])
    cumulative = np.zeros_like(ages)
    cumulative[ages > 0] = static.expected_purchases_new_customer(ages[ages > 0])
    np.testing.assert_allclose(fit["expected[static]"], np.diff(cumulative.sum(axis=0)),
                               rtol=1e-9)


def test_the_time_varying_calibration_fit_integrates_each_customers_path(setting):
    model, calibration, log = setting["model"], setting["calibration"], setting["log"]
    few = calibration.iloc[::200].copy()  # ten customers: each checked by quadrature
    few.attrs = calibration.attrs
    paths = covariate_paths(None, few, transactions=log, calendar=setting["calendar"],
                            horizon=HOLDOUT)
    table = time_varying_tracking(model, few, log, paths)
    fit = table[table["part"] == "calibration"]["expected[Pareto/NBD]"].to_numpy()
    predictor = PathPredictor(model, few, paths)
    seg, T = predictor.segments, few["T"].to_numpy()
    edges = np.arange(-len(fit), 1.0)
    total = np.zeros(len(edges))
    for i in range(len(few)):
        part = slice(seg.offsets[i], seg.offsets[i + 1])
        total += [_quadrature(predictor.own[i], seg.seg_end[part], predictor.eta["purchase"][part],
                              predictor.eta["dropout"][part], min(max(T[i] + e, 0.0), T[i]))
                  for e in edges]
    np.testing.assert_allclose(fit, np.diff(total), rtol=1e-8, atol=1e-12)


def test_the_tracking_plot_draws_the_table(setting):
    models = {"tv": setting["model"], "static": setting["static"]}
    args = (models, setting["calibration"], setting["log"], setting["paths"])
    table = time_varying_tracking(*args, horizon=10)
    assert (table["part"] == "holdout").sum() == 10
    ax = plot_time_varying_tracking(*args, horizon=10)
    lines = ax.get_lines()
    np.testing.assert_array_equal(lines[0].get_ydata(), table["actual"])
    np.testing.assert_allclose(lines[1].get_ydata(), table["expected[tv]"])
    np.testing.assert_allclose(lines[2].get_ydata(), table["expected[static]"])
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["actual", "tv", "static", "calibration end"]


def test_tracking_reads_the_log_columns_the_table_records(setting):
    """A log with its own column names and refunds: the summary records date_col and
    amount_col, and the tracking takes them as covariate_paths does (refund-only days are no
    purchases: the actual counts are the summary's frequencies)."""
    log = setting["log"].rename(columns={"customer_id": "cust", "date": "ts"})
    log["revenue"] = 20.0
    refunds = log.groupby("cust").head(1).iloc[::5].copy()  # a refund two days after a purchase
    refunds["ts"] += pd.Timedelta(days=2)
    refunds["revenue"] = -20.0
    log = pd.concat([log, refunds[refunds["ts"] < CUTOFF]], ignore_index=True)
    with pytest.warns(clvlab.ClvlabWarning, match="held only refunds"):
        rfm = clvlab.rfm_summary(log, customer_col="cust", date_col="ts", amount_col="revenue",
                                 calibration_end=CUTOFF, time_unit="W",
                                 observation_end=CUTOFF + pd.Timedelta(weeks=HOLDOUT))
    assert rfm.attrs["clvlab"]["refund_only_periods"] > 50  # the amount column matters
    calibration = rfm[["frequency", "recency", "T"]].copy()
    calibration.attrs = rfm.attrs
    paths = covariate_paths(None, calibration, transactions=log, calendar=setting["calendar"],
                            horizon=HOLDOUT)
    table = time_varying_tracking(setting["model"], calibration, log, paths)
    fit, held = (table[table["part"] == part] for part in ("calibration", "holdout"))
    assert fit["actual"].sum() == calibration["frequency"].sum()
    assert held["actual"].sum() == rfm["frequency_holdout"].sum()
    unrecorded = calibration.copy()
    unrecorded.attrs = {"clvlab": {k: v for k, v in rfm.attrs["clvlab"].items()
                                   if k != "date_col"}}
    with pytest.raises(ClvlabError) as caught:
        plot_time_varying_tracking(setting["model"], unrecorded, log, paths)
    assert "column 'date': is missing from the transaction log" in str(caught.value)
    assert "records no date column" in str(caught.value)
    assert "date_col='order_date'" in str(caught.value)
    with pytest.raises(ClvlabError, match=r"column 'ts': is missing.*records it as the date "
                                          r"column of the log it was built from.*date_col="):
        time_varying_tracking(setting["model"], calibration, log.rename(columns={"ts": "t"}),
                              paths)


def test_a_time_varying_bg_nbd_tracks_the_plain_bg_nbd_in_its_purchase_clock(setting):
    calibration, log = setting["calibration"], setting["log"]
    model = clvlab.BetaGeo(purchase_covariates=["promo"]).fit(calibration,
                                                              covariate_paths=setting["paths"])
    few = calibration.iloc[::200].copy()
    few.attrs = calibration.attrs
    paths = covariate_paths(None, few, transactions=log, calendar=setting["calendar"],
                            horizon=HOLDOUT)
    table = time_varying_tracking(model, few, log, paths)
    fit = table[table["part"] == "calibration"]["expected[BG/NBD]"].to_numpy()
    predictor = PathPredictor(model, few, paths)
    seg, T = predictor.segments, few["T"].to_numpy()
    plain = clvlab.BetaGeo.from_params(**model.params_[["r", "alpha", "a", "b"]], time_unit="W")
    edges = np.arange(-len(fit), 1.0)
    total = np.zeros(len(edges))
    for i in range(len(few)):
        ends = seg.seg_end[seg.offsets[i]:seg.offsets[i + 1]]
        starts = np.r_[0.0, ends[:-1]]
        rate = np.exp(predictor.eta["purchase"][seg.offsets[i]:seg.offsets[i + 1]])
        for j, e in enumerate(edges):
            age = min(max(T[i] + e, 0.0), T[i])
            clock = np.sum(rate * np.clip(np.minimum(ends, age) - starts, 0.0, None))
            total[j] += plain.expected_purchases_new_customer(clock) if clock > 0 else 0.0
    np.testing.assert_allclose(fit, np.diff(total), rtol=1e-9, atol=1e-12)


def test_each_purchase_is_counted_in_the_bin_that_starts_on_its_day():
    """Daily unit, times of day in the log: a day's purchases go to the bin that starts that
    day (they were counted in the day before: their merged time stands at a bin's start); a
    purchase at the calibration end itself stays in the last calibration bin."""
    cutoff = pd.Timestamp("2024-03-01")
    rows = [("a", "2024-02-01 10:00"), ("a", "2024-02-10 09:00"), ("a", "2024-02-10 18:00"),
            ("a", "2024-02-29 23:00"), ("a", "2024-03-01 00:00"), ("a", "2024-03-01 15:00"),
            ("a", "2024-03-04 08:00"), ("b", "2024-02-05 12:00"), ("b", "2024-02-20 07:00"),
            ("b", "2024-03-02 11:00"), ("c", "2024-02-07 00:00"), ("c", "2024-02-08 00:00")]
    log = pd.DataFrame(rows, columns=["customer_id", "date"]).assign(
        date=lambda f: pd.to_datetime(f["date"]))
    rfm = clvlab.rfm_summary(log, calibration_end=cutoff, time_unit="D",
                             observation_end=cutoff + pd.Timedelta(days=5))
    calibration = rfm[["frequency", "recency", "T"]].copy()
    calibration.attrs = rfm.attrs
    calendar = clvlab.seasonal_covariates("2024-01-01", "2024-03-31", "D", fourier=1)
    paths = covariate_paths(None, calibration, transactions=log, calendar=calendar, horizon=5)
    static = clvlab.ParetoNBD().from_params(r=1.0, alpha=5.0, s=1.0, beta=10.0)
    table = time_varying_tracking(static, calibration, log, paths).set_index("start")
    actual = table.loc[table["actual"] > 0, "actual"]
    want = {"2024-02-08": 1.0,  # c's second day
            "2024-02-10": 1.0,  # two of a's purchases that day, merged
            "2024-02-20": 1.0, "2024-02-29": 1.0,
            # a's purchase at 2024-03-01 00:00 is the calibration end itself: counted in
            # calibration by rfm_summary, so in the last calibration bin (starting 02-29)
            "2024-03-01": 1.0,  # a, 15:00 on the cutoff's day: the first holdout bin
            "2024-03-02": 1.0, "2024-03-04": 1.0}
    want["2024-02-29"] += 1.0
    pd.testing.assert_series_equal(actual, pd.Series(want, name="actual").rename_axis("start")
                                   .set_axis(pd.to_datetime(list(want)), axis=0)
                                   .rename_axis("start"), check_freq=False)
    assert table.loc[table["part"] == "calibration", "actual"].sum() == calibration["frequency"].sum()
    assert table.loc[table["part"] == "holdout", "actual"].sum() == rfm["frequency_holdout"].sum()
