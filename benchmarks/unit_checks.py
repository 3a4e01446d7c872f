"""The figures the RFM guide (docs/guide/rfm.md) quotes for the time-unit check and the far-past-the-log warning (not a
timing): `.venv/bin/python benchmarks/unit_checks.py`.

- 52-week expected purchases of the CDNOW sample (Pareto/NBD) as of the log's end and five
  years later, when every customer looks silent for five years;
- the evidence (log-likelihood units, on the check's sample of 2,000 customers) for each other
  unit, on CDNOW's summary in weeks and on the same summary in days.
"""
import warnings, clvlab
from clvlab.datasets import load_cdnow, load_cdnow_summary
from clvlab.models.table_units import duration_evidence
warnings.simplefilter("ignore")
log = load_cdnow(sample=True)
opts = dict(customer_col="customer_id", date_col="date", amount_col="amount", time_unit="W")
rfm = clvlab.rfm_summary(log, **opts)
m = clvlab.ParetoNBD().fit(rfm)
late = clvlab.rfm_summary(log, observation_end="2003-06-30", **opts)
print("52-week expected purchases, as of the log's end:", round(m.expected_purchases(rfm, 52).sum(), 1),
      "5 years late:", round(m.expected_purchases(late, 52).sum(), 1))
weeks = load_cdnow_summary()
for cls in (clvlab.ParetoNBD, clvlab.BetaGeo):
    f = cls().fit(weeks)
    days = weeks.assign(recency=weeks.recency * 7, T=weeks["T"] * 7)
    print(cls.__name__, "days table evidence", {k: round(v) for k, v in duration_evidence(f, days).items()},
          "weeks table", {k: round(v) for k, v in duration_evidence(f, weeks).items()})
