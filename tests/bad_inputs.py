"""The catalogue of bad inputs: each case is code a user might run and the error clvlab gives.

``tests/test_bad_inputs.py`` runs every case: each must raise a ClvlabError whose message names
what the case lists (the column or option, the rule broken, the offending value or row), and
``docs/bad-inputs.md`` must show exactly these cases with today's messages. After changing a case or
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
import pyarrow as pa

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

CASES: list[tuple[str, str, str, tuple[str, ...]]] = [
    # (section, title, code, what the message must name: the column or option, the rule and
    # the offending value or row)
    ('Transaction logs', 'A required column is missing',
     "clvlab.rfm_summary(log.drop(columns='date'))",
     ("'date'", 'is missing')),
    ('Transaction logs', 'The amount column named is not there',
     "clvlab.rfm_summary(log, amount_col='revenue')",
     ("'revenue'", 'is missing')),
    ('Transaction logs', 'An empty log',
     'clvlab.rfm_summary(log.iloc[:0])',
     ('transaction log', 'empty')),
    ('Transaction logs', 'A missing customer id',
     'clvlab.rfm_summary(log.assign(customer_id=[1, None, 2, 2, 3]))',
     ("'customer_id'", 'customer id is missing', 'example row')),
    ('Transaction logs', "Customer ids of mixed types (17 and '17' would be two customers)",
     "clvlab.rfm_summary(log.assign(customer_id=pd.Series([1, '1', 2, 2, 3], dtype=object)))",
     ("'customer_id'", 'mix types', "customer_id='1'")),
    ('Transaction logs', 'A missing date',
     "clvlab.rfm_summary(log.assign(date=['2024-01-02', None, '2024-01-05', '2024-03-01', "
     "'2024-02-20']))",
     ("'date'", 'date is missing', 'example row')),
    ('Transaction logs', 'A date that is not a date',
     "clvlab.rfm_summary(log.assign(date=['2024-01-02', '2024-13-45', '2024-01-05', "
     "'2024-03-01', '2024-02-20']))",
     ("'date'", 'ISO 8601', 'date_format', '--date-format', "'2024-13-45'")),
    ('Transaction logs', 'Dates held as integers, without a format',
     'clvlab.rfm_summary(log.assign(date=[20240102, 20240210, 20240105, 20240301, '
     '20240220]))',
     ("'date'", 'numbers are not dates', 'date_format', '20240102')),
    ('Transaction logs', 'Dates that do not match the format given',
     "clvlab.rfm_summary(log, date_format='%d/%m/%Y')",
     ("'date'", "'%d/%m/%Y'", "'2024-01-02'")),
    ('Transaction logs', 'An amount written with a decimal comma',
     "clvlab.rfm_summary(log.assign(amount=['20,00', '35,50', '12,00', '18,00', '50,00']), "
     "amount_col='amount')",
     ("'amount'", 'numeric', "decimal=','", "'20,00'")),
    ('Transaction logs', 'A missing (NaN) amount',
     'clvlab.rfm_summary(log.assign(amount=[20.0, np.nan, 12.0, 18.0, 50.0]), '
     "amount_col='amount')",
     ("'amount'", 'NaN', 'amount=nan')),
    ('Transaction logs', 'An infinite amount',
     'clvlab.rfm_summary(log.assign(amount=[20.0, np.inf, 12.0, 18.0, 50.0]), '
     "amount_col='amount')",
     ("'amount'", 'infinite', 'amount=inf')),
    ('Transaction logs', 'Naive timestamps mixed with timestamps that carry an offset',
     "clvlab.rfm_summary(log.assign(date=['2024-01-02T10:00', '2024-02-10T10:00+02:00', "
     "'2024-01-05T09:00', '2024-03-01T12:00', '2024-02-20T08:00']))",
     ("'date'", 'UTC offset', 'naive', 'example row')),
    ('Transaction logs', 'A calibration end before the first purchase',
     "clvlab.rfm_summary(log, calibration_end='2023-06-30')",
     ('calibration_end', '2023-06-30', 'before the first transaction')),
    ('Transaction logs', 'A calibration end after the last purchase',
     "clvlab.rfm_summary(log, calibration_end='2025-06-30')",
     ('calibration_end', '2025-06-30', 'after the last transaction')),
    ('Transaction logs', 'An observation end before the calibration end',
     "clvlab.rfm_summary(log, calibration_end='2024-02-15', observation_end='2024-02-01')",
     ('observation_end', '2024-02-01', 'after calibration_end')),
    ('Transaction logs', 'A date option in an ambiguous layout (5 February or 2 May?)',
     "clvlab.rfm_summary(log, calibration_end='05/02/2024')",
     ("calibration_end='05/02/2024'", 'ISO 8601', 'date_format', '--date-format')),
    ('Transaction logs', 'A date option that does not match the date format',
     "clvlab.rfm_summary(log.assign(date=['02/01/2024', '10/02/2024', '05/01/2024', "
     "'01/03/2024', '20/02/2024']), date_format='%d/%m/%Y', calibration_end='15.02.2024')",
     ("calibration_end='15.02.2024'", "'%d/%m/%Y'")),
    ('Transaction logs', 'Hours as the time unit, but every timestamp is at midnight',
     "clvlab.rfm_summary(log, time_unit='h')",
     ("'date'", "time_unit='h'", 'time of day')),
    ('Transaction logs', 'A time unit clvlab does not know',
     "clvlab.rfm_summary(log, time_unit='fortnight')",
     ('time_unit', "'fortnight'", "'W'")),
    ('Transaction logs', 'A time zone that does not exist',
     "clvlab.rfm_summary(log, timezone='Mars/Olympus_Mons')",
     ('timezone', "'Mars/Olympus_Mons'", 'not a known time zone')),
    ('Transaction logs', 'A log that holds only refunds',
     "clvlab.rfm_summary(log.assign(amount=-log['amount']), amount_col='amount')",
     ('amount >= 0', 'only refunds')),
    ('Transaction logs', 'A file that does not exist',
     "clvlab.rfm_summary('exports/2024-*.parquet')",
     ("'exports/2024-*.parquet'", 'no transaction file')),
    ('Transaction logs', 'A file of an unknown format',
     "Path('log.xlsx').write_bytes(b'PK'); clvlab.rfm_summary('log.xlsx')",
     ('log.xlsx', 'CSV', 'Parquet')),
    ('Transaction logs', 'A CSV file with dates that are not ISO 8601',
     "Path('log.csv').write_text('customer_id,date\\n1,02/01/2024\\n1,10/02/2024\\n2,05/01/2024\\n'); "
     "clvlab.rfm_summary('log.csv')",
     ("'date'", 'ISO 8601', 'date_format', '--date-format', "'02/01/2024'")),
    ('Transaction logs', 'A CSV file that repeats its header row inside the data',
     "Path('log.csv').write_text('customer_id,date,amount\\n1,2024-01-02,20.0\\ncustomer_id,date,amount\\n2,2024-01-05,12.0\\n'); "
     "clvlab.rfm_summary('log.csv', amount_col='amount')",
     ("'amount'", 'numeric', "amount='amount'", 'repeats the header')),
    ('Transaction logs', 'A European CSV file read without the decimal option',
     "Path('log.csv').write_text('customer_id;date;amount\\n1;2024-01-02;20,50\\n1;2024-02-10;35,50\\n'); "
     "clvlab.rfm_summary('log.csv', amount_col='amount', delimiter=';')",
     ("'amount'", 'numeric', "'20,50'", "decimal=','", '--decimal')),
    ('Transaction logs', 'An amount with a currency sign',
     "Path('log.csv').write_text('customer_id,date,amount\\n1,2024-01-02,$20.50\\n1,2024-02-10,$35.50\\n'); "
     "clvlab.rfm_summary('log.csv', amount_col='amount')",
     ("'amount'", 'currency sign', "'$20.50'")),
    ('Transaction logs', 'A delimiter of more than one character',
     "clvlab.rfm_summary(log, delimiter=';;')",
     ("delimiter=';;'", 'one character')),
    ('Consent', 'A consent value that is neither yes nor no',
     "clvlab.rfm_summary(log.assign(consent=['yes', 'yes', 'maybe', 'no', 'yes']), "
     "consent_col='consent')",
     ("'consent'", 'true/false', "consent='maybe'")),
    ('Consent', 'A consent column with a missing value',
     'clvlab.rfm_summary(log.assign(consent=[True, True, None, True, True]), '
     "consent_col='consent')",
     ("'consent'", 'missing values are refused', 'consent=None')),
    ('Consent', 'Every customer withdrew consent',
     'clvlab.rfm_summary(log, withdrawn=[1, 2, 3])',
     ('3 customers', 'withdrew consent')),
    ('Consent', 'A withdrawn-customers file that does not exist',
     "clvlab.rfm_summary(log, withdrawn='withdrawn.txt')",
     ('withdrawn.txt', 'does not exist')),
    ('RFM tables', 'Recency after T (the last purchase after the cut)',
     'clvlab.BetaGeo().fit(rfm.assign(recency=[5.5, 8.0, 0.0, 31.0]))',
     ("'recency'", '<= T', 'recency=31.0')),
    ('RFM tables', 'A negative frequency',
     'clvlab.BetaGeo().fit(rfm.assign(frequency=[1, -1, 0, 3]))',
     ("'frequency'", '>= 0', 'frequency=-1')),
    ('RFM tables', 'A fractional frequency',
     'clvlab.ParetoNBD().fit(rfm.assign(frequency=[1, 1.5, 0, 3]))',
     ("'frequency'", 'whole number', 'frequency=1.5')),
    ('RFM tables', 'Repeat purchases with recency 0',
     'clvlab.BetaGeo().fit(rfm.assign(recency=[5.5, 0.0, 0.0, 20.0]))',
     ("'recency'", '> 0', 'repeat purchases', 'recency=0.0')),
    ('RFM tables', 'A recency without repeat purchases',
     'clvlab.BetaGeo().fit(rfm.assign(recency=[5.5, 8.0, 2.0, 20.0]))',
     ("'recency'", 'must be 0', 'recency=2.0')),
    ('RFM tables', 'Age T of 0 with repeat purchases',
     'clvlab.BetaGeo().fit(rfm.assign(T=[10.0, 0.0, 4.0, 30.0], recency=[5.5, 0.0, 0.0, '
     '20.0]))',
     ("'T'", '> 0', 'T=0.0')),
    ('RFM tables', 'A NaN in a column',
     'clvlab.BetaGeo().fit(rfm.assign(T=[10.0, np.nan, 4.0, 30.0]))',
     ("'T'", 'NaN', 'T=nan')),
    ('RFM tables', 'A column missing from the RFM table',
     "clvlab.BetaGeo().fit(rfm.drop(columns='T'))",
     ("'T'", 'is missing from the RFM table')),
    ('RFM tables', 'Not a DataFrame',
     'clvlab.BetaGeo().fit(rfm.to_numpy())',
     ('DataFrame', 'ndarray')),
    ('RFM tables', 'A negative monetary value',
     'clvlab.GammaGamma().fit(rfm.assign(monetary_value=[35.5, -18.0, 0.0, 22.0]))',
     ("'monetary_value'", '>= 0', 'monetary_value=-18.0')),
    ('RFM tables', 'An RFM table in CSV read without its time unit',
     "clvlab.rfm_summary(log).to_csv('rfm.csv'); clvlab.rfm.read_rfm('rfm.csv')",
     ('rfm.csv', 'time unit', 'unknown', 'time_unit=', '--time-unit')),
    ('RFM tables', 'A time unit that contradicts the RFM file',
     "clvlab.rfm_summary(log, time_unit='D').to_parquet('rfm.parquet'); "
     "clvlab.rfm.read_rfm('rfm.parquet', time_unit='W')",
     ("time_unit='W'", "'D'", 'contradicts', 'rfm.parquet')),
    ('Fits', 'Nobody made a repeat purchase',
     'clvlab.ParetoNBD().fit(rfm.assign(frequency=0, recency=0.0))',
     ('repeat purchase', 'not identified')),
    ('Fits', 'A single customer',
     'clvlab.BetaGeo().fit(rfm.head(1))',
     ('BetaGeo', 'more than one customer')),
    ('Fits', 'A spend model without repeat buyers of positive value',
     'clvlab.GammaGamma().fit(rfm.assign(monetary_value=0.0))',
     ("'monetary_value'", '> 0', 'monetary_value=0.0')),
    ('Predictions', 'A horizon of zero',
     "model.expected_purchases(rfm, 0, time_unit='W')",
     ('horizon', '> 0', '0')),
    ('Predictions', 'A horizon given as text',
     "model.expected_purchases(rfm, '52', time_unit='W')",
     ('t', 'number', "text '52'")),
    ('Predictions', 'The transaction and spend models swapped',
     'clvlab.customer_lifetime_value(clvlab.GammaGamma.from_params(p=6.0, q=4.0, v=15.0), '
     'model, rfm, 52, 0.01)',
     ('transaction_model', 'GammaGamma', 'swapped')),
    ('Predictions', 'An RFM table whose time unit was lost (read back from CSV, merged)',
     'model.p_alive(rfm)',
     ('does not record the time unit', "weeks ('W')", "time_unit='W'")),
    ('Predictions', 'Predicting before fitting',
     'clvlab.ParetoNBD().p_alive(rfm)',
     ('not fitted', 'fit()')),
    ('Predictions', 'Parameters that are not positive',
     'clvlab.BetaGeo.from_params(r=0.24, alpha=-4.4, a=0.79, b=2.43)',
     ("'alpha': -4.4", '> 0')),
    ('Predictions', 'An RFM table in days for a model fitted in weeks',
     'model.p_alive(clvlab.rfm_summary(log))',
     ("days ('D')", "weeks ('W')", "time_unit='W'")),
    ('Model files', 'A model file that does not exist',
     "clvlab.load_model('models/bg.json')",
     ('models/bg.json', 'does not exist')),
    ('Model files', 'A truncated model file',
     "model.save('bg.json'); Path('bg.json').write_text(Path('bg.json').read_text()[:60]); "
     "clvlab.load_model('bg.json')",
     ('bg.json', 'not valid JSON')),
    ('Model files', 'A model file from a future clvlab',
     "model.save('bg.json'); "
     'Path(\'bg.json\').write_text(Path(\'bg.json\').read_text().replace(\'"schema_version": 1\', '
     '\'"schema_version": 7\')); clvlab.load_model(\'bg.json\')',
     ('bg.json', 'version 7', 'version 1')),
    ('Model files', 'A JSON file that is not a model',
     'Path(\'bg.json\').write_text(\'{"hello": 1}\'); clvlab.load_model(\'bg.json\')',
     ('bg.json', 'not a clvlab model')),
    ('Backtests and jobs', 'A holdout horizon of zero',
     "clvlab.backtest(log, ['bg-nbd'], ['2024-02-01'], 0)",
     ('horizon', '> 0', '0')),
    ('Backtests and jobs', 'A cutoff whose holdout runs past the data',
     "clvlab.backtest(log, ['bg-nbd'], ['2024-02-15'], 52)",
     ('cutoff', '2024-02-15', 'horizon', 'after the data')),
    ('Backtests and jobs', 'A covariate panel for a model without time-varying covariates',
     "clvlab.serving.score_frame(model, None, None, rfm, {'horizon': 10, 'time_unit': 'W', "
     "'covariates': 'panel.parquet'})",
     ("'covariates'", 'is for a model fitted with time-varying covariates', 'BetaGeo')),
    ('Backtests and jobs', 'Hashing customer ids with a short salt',
     "clvlab.privacy.hash_ids(log['customer_id'], salt='pepper')",
     ('salt', '16 characters')),
    ('polars and Arrow tables', 'An Arrow log with an infinite amount: the rule and the row, as '
     'for pandas',
     "clvlab.rfm_summary(pa.Table.from_pandas(log.assign(amount=[20.0, np.inf, 12.0, 18.0, "
     "50.0])), amount_col='amount')",
     ("'amount'", 'infinite', 'example row')),
    ('polars and Arrow tables', 'An RFM table in Arrow (or polars) that does not record its '
     'time unit',
     'model.expected_purchases(pa.Table.from_pandas(rfm), 10)',
     ('time unit', "time_unit='W'")),
    ('polars and Arrow tables', 'Withdrawn customers given as a table, not as ids',
     "clvlab.rfm_summary(log, withdrawn=pa.table({'customer_id': [1]}))",
     ('withdrawn', 'ids')),
]


def run_case(code: str) -> str:
    """Run one case in a fresh namespace and empty folder; the ClvlabError's message."""
    namespace = {"clvlab": clvlab, "pd": pd, "np": np, "pa": pa, "Path": Path}
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
    for number, (group, title, code, _) in enumerate(CASES, start=1):
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
