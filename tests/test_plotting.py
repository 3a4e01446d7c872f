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
    ax = plotting.plot_clv_deciles(clv, actual=rfm["frequency_holdout"] * rfm["monetary_value_holdout"])
    heights = [patch.get_height() for patch in ax.patches[:10]]
    assert sum(heights) == pytest.approx(1.0) and heights[-1] == max(heights)
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
