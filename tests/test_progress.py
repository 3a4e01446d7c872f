"""Progress bars: shown when asked, never in logs unless asked, and they count the work."""

from __future__ import annotations

import io
import sys

import clvlab
from clvlab import _progress


def test_bars_appear_only_when_wanted(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, not a notebook
    assert _progress.wanted(None) is False
    assert _progress.wanted(True) is True and _progress.wanted(False) is False
    with _progress.progress_bar(3, "quiet", None) as bar:
        bar.update()
    assert sys.stderr.getvalue() == ""
    with _progress.progress_bar(3, "counted", True, unit="fit") as bar:
        for _ in range(3):
            bar.update()
    assert "counted" in sys.stderr.getvalue() and "3/3" in sys.stderr.getvalue()


def test_backtest_and_posterior_count_their_steps(cdnow_sample, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    clvlab.backtest(cdnow_sample, ["bg-nbd", "historical-average"],
                    cutoffs=["1997-09-30", "1997-12-31"], horizon=13, progress=True,
                    keep_predictions=False)
    text = sys.stderr.getvalue()
    assert "backtest" in text and "4/4" in text and "cutoff 1997-12-31: historical-average" in text
    rfm = clvlab.rfm_summary(cdnow_sample, time_unit="W", calibration_end="1997-09-30")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    clvlab.BetaGeo().fit(rfm).posterior_predict("p_alive", rfm, n_draws=30, progress=True)
    assert "parameter draws" in sys.stderr.getvalue() and "30/30" in sys.stderr.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    clvlab.BetaGeo().fit(rfm).posterior_predict("p_alive", rfm, n_draws=30)  # small: no bar
    assert sys.stderr.getvalue() == ""
