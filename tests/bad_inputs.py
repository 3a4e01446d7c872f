"""The catalogue of bad inputs: each case is code a user might run and the error clvlab gives.

``tests/test_bad_inputs.py`` runs every case (each must raise a ClvlabError) and checks that
``docs/bad-inputs.md`` shows exactly these cases with today's messages. After changing a case or
a message, regenerate the page with::

    .venv/bin/python tests/bad_inputs.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

import clvlab

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"

# Every case runs with these names defined: a clean log and RFM table to break, and a fitted
# BG/NBD model; file cases run in an empty temporary folder (paths in messages stay short).
SETUP = """
log = pd.DataFrame({"customer_id": [1, 1, 2, 2, 3],
                    "date": ["2024-01-02", "2024-02-10", "2024-01-05", "2024-03-01", "2024-02-20"],
                    "amount": [20.0, 35.5, 12.0, 18.0, 50.0]})
rfm = pd.DataFrame({"frequency": [1, 1, 0, 3], "recency": [5.5, 8.0, 0.0, 20.0],
                    "T": [10.0, 12.0, 4.0, 30.0], "monetary_value": [35.5, 18.0, 0.0, 22.0]})
model = clvlab.BetaGeo.from_params(r=0.24, alpha=4.4, a=0.79, b=2.43, time_unit="W")
"""

CASES: list[tuple[str, str, str]] = [
    # (section, title, code)
    ("Transaction logs", "A required column is missing",
     "clvlab.rfm_summary(log.drop(columns='date'))"),
    ("Transaction logs", "The amount column named is not there",
     "clvlab.rfm_summary(log, amount_col='revenue')"),
    ("Transaction logs", "An empty log",
     "clvlab.rfm_summary(log.iloc[:0])"),
    ("Transaction logs", "A missing customer id",
     "clvlab.rfm_summary(log.assign(customer_id=[1, None, 2, 2, 3]))"),
    ("Transaction logs", "Customer ids of mixed types (17 and '17' would be two customers)",
     "clvlab.rfm_summary(log.assign(customer_id=pd.Series([1, '1', 2, 2, 3], dtype=object)))"),
    ("Transaction logs", "A missing date",
     "clvlab.rfm_summary(log.assign(date=['2024-01-02', None, '2024-01-05', '2024-03-01', '2024-02-20']))"),
    ("Transaction logs", "A date that is not a date",
     "clvlab.rfm_summary(log.assign(date=['2024-01-02', '2024-13-45', '2024-01-05', '2024-03-01', '2024-02-20']))"),
    ("Transaction logs", "Dates held as integers, without a format",
     "clvlab.rfm_summary(log.assign(date=[20240102, 20240210, 20240105, 20240301, 20240220]))"),
    ("Transaction logs", "Dates that do not match the format given",
     "clvlab.rfm_summary(log, date_format='%d/%m/%Y')"),
    ("Transaction logs", "An amount written with a decimal comma",
     "clvlab.rfm_summary(log.assign(amount=['20,00', '35,50', '12,00', '18,00', '50,00']), amount_col='amount')"),
    ("Transaction logs", "A missing (NaN) amount",
     "clvlab.rfm_summary(log.assign(amount=[20.0, np.nan, 12.0, 18.0, 50.0]), amount_col='amount')"),
    ("Transaction logs", "An infinite amount",
     "clvlab.rfm_summary(log.assign(amount=[20.0, np.inf, 12.0, 18.0, 50.0]), amount_col='amount')"),
    ("Transaction logs", "Naive timestamps mixed with timestamps that carry an offset",
     "clvlab.rfm_summary(log.assign(date=['2024-01-02T10:00', '2024-02-10T10:00+02:00', "
     "'2024-01-05T09:00', '2024-03-01T12:00', '2024-02-20T08:00']))"),
    ("Transaction logs", "A calibration end before the first purchase",
     "clvlab.rfm_summary(log, calibration_end='2023-06-30')"),
    ("Transaction logs", "A calibration end after the last purchase",
     "clvlab.rfm_summary(log, calibration_end='2025-06-30')"),
    ("Transaction logs", "An observation end before the calibration end",
     "clvlab.rfm_summary(log, calibration_end='2024-02-15', observation_end='2024-02-01')"),
    ("Transaction logs", "Hours as the time unit, but every timestamp is at midnight",
     "clvlab.rfm_summary(log, time_unit='h')"),
    ("Transaction logs", "A time unit clvlab does not know",
     "clvlab.rfm_summary(log, time_unit='fortnight')"),
    ("Transaction logs", "A time zone that does not exist",
     "clvlab.rfm_summary(log, timezone='Mars/Olympus_Mons')"),
    ("Transaction logs", "A log that holds only refunds",
     "clvlab.rfm_summary(log.assign(amount=-log['amount']), amount_col='amount')"),
    ("Transaction logs", "A file that does not exist",
     "clvlab.rfm_summary('exports/2024-*.parquet')"),
    ("Transaction logs", "A file of an unknown format",
     "Path('log.xlsx').write_bytes(b'PK'); clvlab.rfm_summary('log.xlsx')"),
    ("Consent", "A consent value that is neither yes nor no",
     "clvlab.rfm_summary(log.assign(consent=['yes', 'yes', 'maybe', 'no', 'yes']), consent_col='consent')"),
    ("Consent", "A consent column with a missing value",
     "clvlab.rfm_summary(log.assign(consent=[True, True, None, True, True]), consent_col='consent')"),
    ("Consent", "Every customer withdrew consent",
     "clvlab.rfm_summary(log, withdrawn=[1, 2, 3])"),
    ("Consent", "A withdrawn-customers file that does not exist",
     "clvlab.rfm_summary(log, withdrawn='withdrawn.txt')"),
    ("RFM tables", "Recency after T (the last purchase after the cut)",
     "clvlab.BetaGeo().fit(rfm.assign(recency=[5.5, 8.0, 0.0, 31.0]))"),
    ("RFM tables", "A negative frequency",
     "clvlab.BetaGeo().fit(rfm.assign(frequency=[1, -1, 0, 3]))"),
    ("RFM tables", "A fractional frequency",
     "clvlab.ParetoNBD().fit(rfm.assign(frequency=[1, 1.5, 0, 3]))"),
    ("RFM tables", "Repeat purchases with recency 0",
     "clvlab.BetaGeo().fit(rfm.assign(recency=[5.5, 0.0, 0.0, 20.0]))"),
    ("RFM tables", "A recency without repeat purchases",
     "clvlab.BetaGeo().fit(rfm.assign(recency=[5.5, 8.0, 2.0, 20.0]))"),
    ("RFM tables", "Age T of 0 with repeat purchases",
     "clvlab.BetaGeo().fit(rfm.assign(T=[10.0, 0.0, 4.0, 30.0], recency=[5.5, 0.0, 0.0, 20.0]))"),
    ("RFM tables", "A NaN in a column",
     "clvlab.BetaGeo().fit(rfm.assign(T=[10.0, np.nan, 4.0, 30.0]))"),
    ("RFM tables", "A column missing from the RFM table",
     "clvlab.BetaGeo().fit(rfm.drop(columns='T'))"),
    ("RFM tables", "Not a DataFrame",
     "clvlab.BetaGeo().fit(rfm.to_numpy())"),
    ("RFM tables", "A negative monetary value",
     "clvlab.GammaGamma().fit(rfm.assign(monetary_value=[35.5, -18.0, 0.0, 22.0]))"),
    ("Fits", "Nobody made a repeat purchase",
     "clvlab.ParetoNBD().fit(rfm.assign(frequency=0, recency=0.0))"),
    ("Fits", "A single customer",
     "clvlab.BetaGeo().fit(rfm.head(1))"),
    ("Fits", "A spend model without repeat buyers of positive value",
     "clvlab.GammaGamma().fit(rfm.assign(monetary_value=0.0))"),
    ("Predictions", "A horizon of zero",
     "model.expected_purchases(rfm, 0)"),
    ("Predictions", "Predicting before fitting",
     "clvlab.ParetoNBD().p_alive(rfm)"),
    ("Predictions", "Parameters that are not positive",
     "clvlab.BetaGeo.from_params(r=0.24, alpha=-4.4, a=0.79, b=2.43)"),
    ("Predictions", "An RFM table in days for a model fitted in weeks",
     "model.p_alive(clvlab.rfm_summary(log))"),
    ("Model files", "A model file that does not exist",
     "clvlab.load_model('models/bg.json')"),
    ("Model files", "A truncated model file",
     "model.save('bg.json'); Path('bg.json').write_text(Path('bg.json').read_text()[:60]); "
     "clvlab.load_model('bg.json')"),
    ("Model files", "A model file from a future clvlab",
     "model.save('bg.json'); Path('bg.json').write_text(Path('bg.json').read_text()"
     ".replace('\"schema_version\": 1', '\"schema_version\": 7')); clvlab.load_model('bg.json')"),
    ("Model files", "A JSON file that is not a model",
     "Path('bg.json').write_text('{\"hello\": 1}'); clvlab.load_model('bg.json')"),
    ("Backtests and jobs", "A holdout horizon of zero",
     "clvlab.backtest(log, ['bg-nbd'], ['2024-02-01'], 0)"),
    ("Backtests and jobs", "A cutoff whose holdout runs past the data",
     "clvlab.backtest(log, ['bg-nbd'], ['2024-02-15'], 52)"),
    ("Backtests and jobs", "Hashing customer ids with a short salt",
     "clvlab.privacy.hash_ids(log['customer_id'], salt='pepper')"),
]


def run_case(code: str) -> str:
    """Run one case in a fresh namespace and empty folder; the ClvlabError's message."""
    namespace = {"clvlab": clvlab, "pd": pd, "np": np, "Path": Path}
    exec(SETUP, namespace)  # noqa: S102 - our own fixed code
    before = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            exec(code, namespace)  # noqa: S102
        except clvlab.ClvlabError as exc:
            return str(exc)
        finally:
            os.chdir(before)
    raise AssertionError(f"no ClvlabError from: {code}")


def render() -> str:
    lines = ["# Bad inputs and the errors they get", "",
             "Every entry is code a user might run and the message clvlab answers with; each is run",
             "by the tests (`tests/test_bad_inputs.py`), so the messages below are today's. Every",
             "error is a `clvlab.ClvlabError` (a `ValueError`); errors about data are",
             "`DataValidationError`s, which also carry `column`, `rule` and `row` attributes.",
             "Regenerate this page with `.venv/bin/python tests/bad_inputs.py`.", "",
             "The cases start from this log, RFM table and model:", "", "```python",
             SETUP.strip(), "```", ""]
    section = None
    for number, (group, title, code) in enumerate(CASES, start=1):
        if group != section:
            lines += [f"## {group}", ""]
            section = group
        message = run_case(code)
        lines += [f"**{number}. {title}**", "", "```python", *code.split("; "), "```", "",
                  "```text", *textwrap.wrap(message, 100, break_on_hyphens=False), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render())
    print(f"wrote {len(CASES)} cases to {DOC}", file=sys.stderr)
