"""The uncertainty plots render to PNG from real fits on CDNOW, with the numbers they show."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import clvlab  # noqa: E402
from clvlab import ClvlabError, bayes  # noqa: E402
from clvlab.models.totals import cumulative_purchase_fan  # noqa: E402
from clvlab.plotting.uncertainty import plot_fan_chart, plot_predictive_distribution  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
CALIBRATION_END = pd.Timestamp("1997-09-30")


@pytest.fixture(scope="module")
def cdnow():
    log = clvlab.datasets.load_cdnow(sample=True)
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W",
                             calibration_end="1997-09-30", observation_end="1998-06-30")
    return log, rfm, clvlab.ParetoNBD().fit(rfm)


def _render(ax, path) -> None:
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=80)
    plt.close(ax.figure)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5_000


def _actual_cumulative(log: pd.DataFrame, times) -> pd.Series:
    """The cohort's purchases after the calibration end (one a customer-day, as rfm_summary
    counts them), cumulated at each time in weeks."""
    days = log.assign(day=pd.to_datetime(log["date"]).dt.normalize())[["customer_id", "day"]]
    days = days.drop_duplicates()
    weeks = (days["day"] - CALIBRATION_END).dt.days.to_numpy() / 7
    return pd.Series([np.sum((weeks > 0) & (weeks <= t)) for t in times], index=times)


def test_fan_chart(cdnow, tmp_path):
    log, rfm, model = cdnow
    times = [4.0, 8.0, 13.0, 26.0, 39.0]
    fan = cumulative_purchase_fan(model, rfm, times, parameter_draws=bayes.parameter_draws(
        model, 20, seed=0))
    actual = _actual_cumulative(log, times)
    assert actual.iloc[-1] == rfm["frequency_holdout"].sum()  # 1,882: the holdout's purchases
    ax = plot_fan_chart(fan, actual=actual)
    assert "weeks" in ax.get_xlabel() and "count" in ax.get_ylabel()
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["95% interval", "80% interval", "50% interval", "expected", "actual"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), fan["expected"])
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), actual)
    _render(ax, tmp_path / "fan.png")
    with pytest.raises(ClvlabError, match="one value per time"):
        plot_fan_chart(fan, actual=[1, 2])
    with pytest.raises(ClvlabError, match="cumulative_purchase_fan's table"):
        plot_fan_chart(fan[["expected"]])


def test_predictive_distribution(cdnow, tmp_path):
    """A repeat buyer: bars sum to ~1, the interval of the expected value (parameters) is
    narrower than the prediction interval of the count, and the legend says which is which."""
    _, rfm, model = cdnow
    customer = rfm[rfm["frequency"] == 4].index[0]
    ax = plot_predictive_distribution(model, rfm.loc[[customer]], 26, parameter_draws=30)
    heights = np.array([bar.get_height() for bar in ax.patches if bar.get_width() == 0.8])
    assert heights.sum() == pytest.approx(1.0, abs=1e-3)
    legend = " | ".join(text.get_text() for text in ax.get_legend().get_texts())
    assert "90% prediction interval of the count" in legend
    mean_low, mean_high = map(float, legend.split("expected value: ")[1].split(" |")[0].split("-"))
    count_low, count_high = map(int, legend.split("of the count: ")[1].split(" |")[0].split("-"))
    assert count_high - count_low > 5 * (mean_high - mean_low)
    assert count_low <= mean_low and mean_high <= count_high
    assert "26 weeks" in ax.get_xlabel() and ax.get_ylabel() == "probability"
    _render(ax, tmp_path / "customer.png")
    # a row as a Series needs its unit
    ax = plot_predictive_distribution(model, rfm.loc[customer], 26, parameter_draws=0,
                                      time_unit="W")
    plt.close(ax.figure)
    with pytest.raises(ClvlabError, match="rfm_row must be one customer"):
        plot_predictive_distribution(model, rfm.head(2), 26)
