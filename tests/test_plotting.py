"""Every plot renders to a PNG (non-interactive backend) from real fits on CDNOW."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import clvlab  # noqa: E402
from clvlab import ClvlabError, plotting  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fitted():
    log = clvlab.datasets.load_cdnow(sample=True)
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W", calibration_end="1997-09-30",
                             observation_end="1998-06-30")
    model = clvlab.ParetoNBD().fit(rfm)
    spend = clvlab.GammaGamma().fit(rfm[rfm["frequency"] > 0])
    return log, rfm, model, spend


def _render(ax, path):
    figure = np.atleast_1d(ax)[0].figure
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5_000  # a drawn figure, not an empty canvas
    return data


def test_model_diagnostics_render(fitted, tmp_path):
    log, rfm, model, spend = fitted
    _render(plotting.plot_frequency_histogram(model, rfm), tmp_path / "frequency.png")
    ax = plotting.plot_calibration_holdout(model, rfm)
    assert len(ax.lines) == 2
    _render(ax, tmp_path / "calibration.png")
    ax = plotting.plot_tracking(model, rfm, log, calibration_end="1997-09-30")
    actual, expected = (line.get_ydata() for line in ax.lines[:2])
    assert actual[-1] == pytest.approx(expected[-1], rel=0.15)  # the model tracks the cohort
    _render(ax, tmp_path / "tracking.png")
    _render(plotting.plot_tracking(model, rfm, log, cumulative=False), tmp_path / "weekly.png")
    _render(plotting.plot_p_alive_matrix(model, T=39), tmp_path / "p_alive.png")
    _render(plotting.plot_expected_purchases_matrix(model, T=39, horizon=13),
            tmp_path / "expected.png")
    ax = plotting.plot_p_alive_history(model, [0, 2, 3, 10], until=39)
    history = ax.lines[0].get_ydata()
    assert np.all((history >= 0) & (history <= 1))
    _render(ax, tmp_path / "history.png")


def test_clv_plots_render(fitted, tmp_path):
    _, rfm, model, spend = fitted
    clv = clvlab.customer_lifetime_value(model, spend, rfm, 52, 0.01, unvalued="population")
    _render(plotting.plot_clv_distribution(clv), tmp_path / "clv.png")
    unknown = clv.copy()
    unknown.iloc[:5] = np.nan
    assert plotting.plot_clv_distribution(unknown).get_title() \
        == f"CLV of {len(clv):,} customers (0 at 0, 5 unknown)"
    ax = plotting.plot_clv_deciles(clv, actual=rfm["frequency_holdout"] * rfm["monetary_value_holdout"])
    heights = [patch.get_height() for patch in ax.patches[:10]]
    # decile 1 holds the top customers, as in BacktestResult.plot_deciles
    assert sum(heights) == pytest.approx(1.0) and heights[0] == max(heights)
    assert ax.get_xlabel() == "decile of customers by CLV (1 = highest)"
    _render(ax, tmp_path / "deciles.png")


def test_plots_refuse_what_they_cannot_draw(fitted):
    log, rfm, model, spend = fitted
    with pytest.raises(ClvlabError, match="frequency_holdout"):
        plotting.plot_calibration_holdout(model, rfm.drop(columns="frequency_holdout"))
    with pytest.raises(ClvlabError, match="no posterior"):
        plotting.plot_posteriors(model)
    with pytest.raises(ClvlabError, match="start at 0"):
        plotting.plot_p_alive_history(model, [1, 2], until=10)
    plt.close("all")


@pytest.mark.slow
def test_posterior_densities_render(fitted, tmp_path):
    _, rfm, _, _ = fitted
    model = clvlab.BetaGeo(method="nuts", draws=200, tune=200, chains=2, random_seed=1,
                           progressbar=False).fit(rfm)
    axes = plotting.plot_posteriors(model)
    assert len(axes) == 4
    _render(axes, tmp_path / "posterior.png")


def test_models_show_their_summary_in_notebooks(fitted):
    _, _, model, _ = fitted
    page = model._repr_html_()
    assert page.startswith("<p><code>&lt;ParetoNBD: r=") and "<table" in page and "alpha" in page
    assert "<table" not in clvlab.BetaGeo()._repr_html_()


def _legend(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_time_axes_name_their_unit(fitted):
    log, rfm, model, _ = fitted
    ax = plotting.plot_calibration_holdout(model, rfm)
    assert ax.get_ylabel() == "mean purchases in the holdout (39 weeks)"
    ax = plotting.plot_tracking(model, rfm, log, calibration_end="1997-09-30")
    assert ax.get_xlabel() == "time since the first acquisition (weeks)"
    assert ax.get_ylabel() == "cumulative repeat purchases"
    ax = plotting.plot_tracking(model, rfm, log, cumulative=False)
    assert ax.get_ylabel() == "repeat purchases per week"
    ax = plotting.plot_p_alive_matrix(model, T=39)
    assert ax.get_title() == "P(alive) at age T = 39 weeks"
    assert ax.get_xlabel() == "recency (time of the last purchase, weeks)"
    ax = plotting.plot_expected_purchases_matrix(model, T=39, horizon=13)
    assert ax.get_title() == "Expected purchases in the next 13 weeks at age T = 39 weeks"
    ax = plotting.plot_p_alive_history(model, [0, 2, 3, 10], until=39)
    assert ax.get_xlabel() == "time since the first purchase (weeks)"
    plt.close("all")


def test_legends_show_model_names_not_classes(fitted):
    log, rfm, model, _ = fitted
    assert _legend(plotting.plot_frequency_histogram(model, rfm)) == ["data", "Pareto/NBD"]
    assert _legend(plotting.plot_calibration_holdout(model, rfm)) == ["actual", "Pareto/NBD"]
    ax = plotting.plot_tracking(model, rfm, log, calibration_end="1997-09-30")
    assert _legend(ax) == ["actual", "Pareto/NBD", "calibration end"]
    names = {clvlab.ParetoNBD: "Pareto/NBD", clvlab.BetaGeo: "BG/NBD",
             clvlab.ModifiedBetaGeo: "MBG/NBD", clvlab.GammaGamma: "Gamma-Gamma",
             clvlab.BetaGeoBetaBinom: "BG/BB", clvlab.ShiftedBetaGeo: "sBG"}
    for cls, name in names.items():
        assert plotting.model_label(cls()) == name
    plt.close("all")


def test_several_models_on_one_calibration_holdout_plot(fitted):
    _, rfm, model, _ = fitted
    bgnbd = clvlab.BetaGeo().fit(rfm)
    ax = plotting.plot_calibration_holdout([model, bgnbd], rfm)
    assert _legend(ax) == ["actual", "Pareto/NBD", "BG/NBD"] and len(ax.lines) == 3
    np.testing.assert_allclose(  # each curve is its own model's, not the first one's
        ax.lines[2].get_ydata()[0],
        bgnbd.expected_purchases(rfm[rfm["frequency"] == 0], 39).mean())
    ax = plotting.plot_calibration_holdout({"mine": model, "theirs": bgnbd}, rfm)
    assert _legend(ax) == ["actual", "mine", "theirs"]
    ax = plotting.plot_calibration_holdout([model, clvlab.ParetoNBD().fit(rfm)], rfm)
    assert _legend(ax) == ["actual", "Pareto/NBD", "Pareto/NBD (2)"]
    days = clvlab.BetaGeo.from_params(time_unit="D", **dict(bgnbd.params_))
    with pytest.raises(ClvlabError, match="time unit"):
        plotting.plot_calibration_holdout([model, days], rfm)
    with pytest.raises(ClvlabError, match="at least one model"):
        plotting.plot_calibration_holdout([], rfm)
    plt.close("all")


def test_no_plot_assumes_weeks(fitted):
    """A model and a table that record no unit: a plot that needs one refuses, a plot that only
    labels says the unit is unknown, and an explicit or recorded unit is used."""
    log, rfm, model, _ = fitted
    bare = clvlab.ParetoNBD.from_params(**dict(model.params_))
    table = rfm.copy()
    table.attrs = {}
    with pytest.raises(ClvlabError, match="time unit.*time_unit="):
        plotting.plot_tracking(bare, table, log, customer_col="customer_id")
    ax = plotting.plot_tracking(bare, table, log, customer_col="customer_id", time_unit="W")
    assert ax.get_xlabel() == "time since the first acquisition (weeks)"
    ax = plotting.plot_tracking(bare, rfm, log)  # the table's recorded unit
    assert ax.get_xlabel() == "time since the first acquisition (weeks)"
    with pytest.raises(ClvlabError, match="time_unit='D'.*'W'"):
        plotting.plot_tracking(model, rfm, log, time_unit="D")
    ax = plotting.plot_calibration_holdout(bare, table)
    assert ax.get_ylabel() == "mean purchases in the holdout (39 time units)"
    assert plotting.plot_calibration_holdout(bare, table, time_unit="W").get_ylabel() \
        == "mean purchases in the holdout (39 weeks)"
    assert plotting.plot_p_alive_matrix(bare, T=39).get_title() == "P(alive) at age T = 39 time units"
    in_days = clvlab.rfm_summary(log, time_unit="D", calibration_end="1997-09-30")
    with pytest.raises(ClvlabError, match="time units differ.*Pareto/NBD 'W'.*RFM table 'D'"):
        plotting.plot_frequency_histogram(model, in_days)  # weekly rates on ages in days
    plt.close("all")


def test_tracking_takes_the_customer_column_from_the_rfm_table(fitted):
    log, _, model, _ = fitted
    renamed = log.rename(columns={"customer_id": "cust"})
    rfm = clvlab.rfm_summary(renamed, customer_col="cust", time_unit="W",
                             calibration_end="1997-09-30", observation_end="1998-06-30")
    ax = plotting.plot_tracking(model, rfm, renamed)  # no customer_col: the table's
    reference = plotting.plot_tracking(model, rfm, renamed, customer_col="cust")
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), reference.lines[0].get_ydata())
    anonymous = rfm.rename_axis(None)
    anonymous.attrs = {"clvlab": {"time_unit": "W"}}
    with pytest.raises(ClvlabError, match="customer_col.*'cust'"):
        plotting.plot_tracking(model, anonymous, renamed)
    with pytest.raises(ClvlabError, match="customer_col 'buyer' is not a column.*'cust'"):
        plotting.plot_tracking(model, rfm, renamed, customer_col="buyer")
    plt.close("all")


def test_tracking_curve_is_expected_cumulative_purchases(fitted):
    log, rfm, model, _ = fitted
    ax = plotting.plot_tracking(model, rfm, log)
    x, expected = ax.lines[1].get_xdata(), ax.lines[1].get_ydata()
    first = log.groupby("customer_id")["date"].min()
    births = ((first - first.min()) / np.timedelta64(7, "D")).to_numpy()
    from clvlab.cumulative import expected_cumulative_purchases

    np.testing.assert_allclose(expected, expected_cumulative_purchases(model, births, x).to_numpy())
    plt.close("all")


def test_p_alive_history_from_a_log(fitted):
    log, rfm, model, _ = fitted
    customer = rfm.index[rfm["frequency"] == 3][0]
    days = log.loc[log["customer_id"] == customer, "date"].dt.floor("D").drop_duplicates()
    weeks = ((days - days.min()) / np.timedelta64(7, "D")).to_numpy()
    until = (np.datetime64("1998-06-30") - days.min().to_datetime64()) / np.timedelta64(7, "D")
    ax = plotting.plot_p_alive_history(model, log, customer_id=customer)
    reference = plotting.plot_p_alive_history(model, weeks, until=until)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), reference.lines[0].get_ydata())
    assert ax.get_xlabel() == "time since the first purchase (weeks)"
    assert f"customer {customer}" in ax.get_title()
    ax = plotting.plot_p_alive_history(model, log, customer_id=customer, until="1997-09-30")
    assert ax.lines[0].get_xdata()[-1] == pytest.approx(
        (np.datetime64("1997-09-30") - days.min().to_datetime64()) / np.timedelta64(7, "D"))
    with pytest.raises(ClvlabError, match="customer_id.*not in"):
        plotting.plot_p_alive_history(model, log, customer_id=-5)
    bare = clvlab.ParetoNBD.from_params(**dict(model.params_))
    with pytest.raises(ClvlabError, match="time unit"):
        plotting.plot_p_alive_history(bare, log, customer_id=customer)
    with pytest.raises(ClvlabError, match="holds 2,357 customers.*customer_id="):
        plotting.plot_p_alive_history(model, log)  # several customers merged would be nobody
    one = log[log["customer_id"] == customer]  # a log of the customer alone needs no id
    np.testing.assert_allclose(plotting.plot_p_alive_history(model, one, until=until)
                               .lines[0].get_ydata(), reference.lines[0].get_ydata())
    plt.close("all")


def test_tracking_reads_zoned_dates_in_the_tables_zone(fitted):
    """A log with UTC offsets tracks like the same log in naive local dates: days are the RFM
    table's calendar days (its timezone), not UTC's."""
    log, rfm, model, _ = fitted
    zoned = log.assign(date=log["date"].dt.tz_localize("Asia/Tokyo").dt.tz_convert("UTC"))
    table = clvlab.rfm_summary(zoned, time_unit="W", timezone="Asia/Tokyo",
                               calibration_end="1997-09-30", observation_end="1998-06-30")
    ax = plotting.plot_tracking(model, table, zoned, calibration_end="1997-09-30")
    reference = plotting.plot_tracking(model, rfm, log, calibration_end="1997-09-30")
    for line, expected in zip(ax.lines, reference.lines):
        np.testing.assert_allclose(line.get_ydata(), expected.get_ydata())
        np.testing.assert_allclose(line.get_xdata(), expected.get_xdata())
    plt.close("all")


def test_jobs_save_their_plots_without_pyplot_and_leave_the_backend_alone(tmp_path):
    """A tracked fit or backtest in a notebook must not switch matplotlib to Agg: the
    notebook's next figures would no longer show inline (matplotlib.use before pyplot did)."""
    import subprocess
    import sys

    code = f"""
import sys
import matplotlib
before = matplotlib.rcParams._get("backend")
import clvlab
from clvlab.ops.tracking import _frequency_plot
rfm = clvlab.datasets.load_cdnow_summary()
_frequency_plot(clvlab.BetaGeo().fit(rfm), rfm, {str(tmp_path / "f.png")!r})
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
assert matplotlib.rcParams._get("backend") == before, matplotlib.rcParams._get("backend")
"""
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")
