"""Covariate plots: the coefficient forest plot draws summary()'s estimates and intervals,
grouped by process, with a line at 0; the segment plot draws each segment's P(alive) and
expected purchases (distribution or mean with its interval). Non-interactive backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

import clvlab  # noqa: E402
from clvlab import ClvlabError, plotting  # noqa: E402

PARETO = dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)


@pytest.fixture(scope="module")
def fitted():
    """A Pareto/NBD with a 0/1 covariate in both processes and a text one in purchase."""
    rfm = clvlab.simulate.with_covariates(
        "pareto-nbd", 3000, params=PARETO, coefficients={"purchase": {"x1": 0.5, "x2": -0.4},
                                                         "dropout": {"x1": -0.5}}, T=39.0, seed=2)
    rfm["channel"] = np.where(rfm["x2"] == 1, "web", "store")
    rfm = rfm[["frequency", "recency", "T", "x1", "channel"]]
    rfm.attrs = {"clvlab": {"time_unit": "W"}}
    model = clvlab.ParetoNBD(purchase_covariates=["x1", "channel"],
                             dropout_covariates=["x1"]).fit(rfm)
    yield rfm, model
    plt.close("all")


def _bars(container):
    """(estimates, y positions, interval ends) of one error bar series."""
    points = container.lines[0].get_xydata()
    segments = np.array(container.lines[2][0].get_segments())  # one [[low, y], [high, y]] each
    return points[:, 0], points[:, 1], segments[:, :, 0]


def test_coefficients_are_the_summarys_estimates_and_intervals(fitted):
    _, model = fitted
    summary = model.summary(0.9)
    ax = plotting.plot_coefficients(model, level=0.9)
    purchase, dropout = ax.containers  # one series per process, in the summary's order
    expected = {purchase: ["purchase.x1", "purchase.channel[web]"], dropout: ["dropout.x1"]}
    ys = []
    for container, names in expected.items():
        estimates, y, ends = _bars(container)
        assert len(estimates) == len(names)
        np.testing.assert_allclose(estimates, summary.loc[names, "estimate"])
        np.testing.assert_allclose(ends[:, 0], summary.loc[names, "lower 90%"])
        np.testing.assert_allclose(ends[:, 1], summary.loc[names, "upper 90%"])
        ys.extend(y)
    # top to bottom in the summary's order, a gap between the processes
    assert ys == sorted(ys, reverse=True) and ys[1] - ys[2] > 1
    labels = {tick.get_position()[1]: tick.get_text() for tick in ax.get_yticklabels()}
    assert [labels[y] for y in ys] == ["x1", "channel[web]", "x1"]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["purchase (+ = more purchasing)", "dropout (+ = faster dropout)"]
    zero = [line for line in ax.lines if list(line.get_xdata()) == [0.0, 0.0]]
    assert len(zero) == 1
    # the base parameters (r, alpha, s, beta) are not coefficients
    assert sum(len(_bars(c)[0]) for c in ax.containers) == 3


def test_coefficients_of_shared_and_spend_covariates():
    rfm = clvlab.simulate.with_covariates(
        "pareto-nbd", 1500, params=PARETO, coefficients={"purchase": {"x1": 0.4},
                                                         "dropout": {"x1": 0.4}}, T=39.0, seed=4)
    model = clvlab.ParetoNBD(purchase_covariates=["x1"], dropout_covariates=["x1"],
                             shared_covariates=["x1"]).fit(rfm)
    ax = plotting.plot_coefficients(model)
    (shared,) = ax.containers
    estimates, _, ends = _bars(shared)
    summary = model.summary()
    np.testing.assert_allclose(estimates, summary.loc[["shared.x1"], "estimate"])
    np.testing.assert_allclose(ends[:, 1], summary.loc[["shared.x1"], "upper 95%"])
    assert ax.get_legend().get_texts()[0].get_text() == "shared by purchase and dropout"

    frequency = np.random.default_rng(5).integers(1, 6, 1500)
    spend = clvlab.simulate.with_covariates(
        "gamma-gamma", 1500, params=dict(p=6.25, q=3.74, v=15.44),
        coefficients={"spend": {"x1": 0.3}}, frequency=frequency, seed=6)
    spend["recency"], spend["T"] = 1.0, 2.0  # an RFM table's columns, unused by the spend model
    gg = clvlab.GammaGamma(spend_covariates=["x1"]).fit(spend)
    ax = plotting.plot_coefficients(gg)
    (container,) = ax.containers
    np.testing.assert_allclose(_bars(container)[0], gg.summary().loc[["spend.x1"], "estimate"])
    plt.close("all")


def test_coefficients_refuse_models_without_covariates(fitted):
    rfm, _ = fitted
    with pytest.raises(ClvlabError, match="no covariates"):
        plotting.plot_coefficients(clvlab.ParetoNBD().fit(rfm[["frequency", "recency", "T"]]))
    with pytest.raises(ClvlabError, match="not fitted"):
        plotting.plot_coefficients(clvlab.ParetoNBD(purchase_covariates=["x1"]))
    plt.close("all")


def test_segment_boxes_show_each_segments_customers(fitted):
    rfm, model = fitted
    axes = plotting.plot_segments(model, rfm, "channel", horizon=13)
    assert len(axes) == 2
    p_alive = model.p_alive(rfm)
    expected = model.expected_purchases(rfm, 13)
    for axis, values in zip(axes, (p_alive, expected)):
        ticks = [tick.get_text() for tick in axis.get_xticklabels()]
        counts = rfm["channel"].value_counts()
        assert ticks == [f"{level}\n(n={counts[level]:,})" for level in ("store", "web")]
        # each box marks its segment's mean (a one-point line) and its median
        for position, level in enumerate(("store", "web"), start=1):
            segment = values[rfm["channel"] == level]
            means = [line.get_ydata()[0] for line in axis.lines
                     if len(line.get_xdata()) == 1 and line.get_xdata()[0] == position]
            assert means == pytest.approx([segment.mean()])
            medians = [line for line in axis.lines if len(line.get_ydata()) == 2
                       and np.allclose(line.get_ydata(), segment.median())
                       and abs(np.mean(line.get_xdata()) - position) < 1e-9]
            assert medians
    assert axes[1].get_title() == "expected purchases, next 13 weeks"
    assert axes[0].get_xlabel() == "channel"
    plt.close("all")


def test_segment_means_with_intervals_from_a_series(fitted):
    rfm, model = fitted
    # a Series on the table's index, in another order: aligned on the index
    segment = pd.Series(np.where(rfm["frequency"] > 2, "frequent", "rare"), index=rfm.index,
                        name="buyers").iloc[::-1]
    figure, pair = plt.subplots(1, 2)
    axes = plotting.plot_segments(model, rfm, segment, horizon=26, kind="mean", level=0.9, ax=pair)
    assert axes[0] is pair[0]
    z = stats.norm.ppf(0.95)
    aligned = segment.reindex(rfm.index)
    for axis, values in zip(axes, (model.p_alive(rfm), model.expected_purchases(rfm, 26))):
        (bars,) = [c for c in axis.containers if hasattr(c, "patches")]
        assert len(bars.patches) == 2
        groups = [values[aligned == level] for level in ("frequent", "rare")]
        heights = [patch.get_height() for patch in bars.patches]
        assert heights == pytest.approx([g.mean() for g in groups])
        (error,) = [c for c in axis.containers if not hasattr(c, "patches")]
        ends = np.array(error.lines[2][0].get_segments())[:, :, 1]
        half = [z * g.std(ddof=1) / np.sqrt(len(g)) for g in groups]
        np.testing.assert_allclose(ends[:, 0], np.array(heights) - half)
        np.testing.assert_allclose(ends[:, 1], np.array(heights) + half)
    assert axes[0].get_xlabel() == "buyers"
    plt.close(figure)


def test_segments_of_a_model_without_covariates(fitted):
    rfm, _ = fitted
    plain = clvlab.ParetoNBD().fit(rfm[["frequency", "recency", "T"]])
    axes = plotting.plot_segments(plain, rfm, rfm["x1"].to_numpy(), horizon=13, kind="mean")
    (bars,) = [c for c in axes[0].containers if hasattr(c, "patches")]
    assert [p.get_height() for p in bars.patches] == pytest.approx(
        plain.p_alive(rfm).groupby(rfm["x1"]).mean().to_list())
    plt.close("all")


def test_segment_errors(fitted):
    rfm, model = fitted
    with pytest.raises(ClvlabError, match="not a column"):
        plotting.plot_segments(model, rfm, "region", 13)
    gaps = rfm["channel"].where(rfm["frequency"] > 0)
    with pytest.raises(ClvlabError, match="no segment"):
        plotting.plot_segments(model, rfm, gaps, 13)
    with pytest.raises(ClvlabError, match="bin it first"):
        plotting.plot_segments(model, rfm, rfm["recency"], 13)
    with pytest.raises(ClvlabError, match="one value per row"):
        plotting.plot_segments(model, rfm, np.zeros(10), 13)
    with pytest.raises(ClvlabError, match="every customer"):
        plotting.plot_segments(model, rfm, rfm["channel"].iloc[:100], 13)
    with pytest.raises(ClvlabError, match="kind"):
        plotting.plot_segments(model, rfm, "channel", 13, kind="violin")
    with pytest.raises(ClvlabError, match="two axes"):
        plotting.plot_segments(model, rfm, "channel", 13, ax=plt.subplots()[1])
    spend = clvlab.GammaGamma.from_params(p=6.25, q=3.74, v=15.44)
    with pytest.raises(ClvlabError, match="not a transaction model"):
        plotting.plot_segments(spend, rfm, "channel", 13)
    plt.close("all")


def test_plots_render(fitted, tmp_path):
    rfm, model = fitted
    for name, figure in (("coefficients", plotting.plot_coefficients(model).figure),
                         ("segments", plotting.plot_segments(model, rfm, "x1", 13)[0].figure)):
        figure.savefig(tmp_path / f"{name}.png", dpi=60)
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    plt.close("all")


def test_the_tracking_plot_of_a_covariate_model_sums_each_segments_own_curve():
    from clvlab import expected_cumulative_purchases, simulate

    segments = {"store": (600, {"r": 0.6, "alpha": 12.0, "s": 0.5, "beta": 30.0}),
                "web": (600, {"r": 0.6, "alpha": 4.0, "s": 0.5, "beta": 10.0})}
    log, channel = simulate.segmented_transaction_log(
        segments, model="pareto-nbd", start="2024-01-01", acquisition_period=13,
        observation_period=52, time_unit="W", seed=3)
    rfm = clvlab.rfm_summary(log, time_unit="W", calibration_end="2024-09-01",
                             customer_attributes=channel.rename("channel").to_frame())
    model = clvlab.ParetoNBD(purchase_covariates=["channel"], dropout_covariates=["channel"]).fit(rfm)
    ax = plotting.plot_tracking({"by channel": model}, rfm, log, calibration_end="2024-09-01")
    line = next(line for line in ax.get_lines() if line.get_label() == "by channel")
    x = line.get_xdata()
    first = log.groupby("customer_id")["date"].min().dt.floor("D")
    births = (first - first.min()).dt.total_seconds() / 604_800
    by_hand = sum(expected_cumulative_purchases(model.for_attributes({"channel": level}),
                                                births[channel == level].to_numpy(), x).to_numpy()
                  for level in segments)
    np.testing.assert_allclose(line.get_ydata(), by_hand, rtol=1e-10)
