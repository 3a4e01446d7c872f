"""Issue 29 item 4: the churn example of docs/guide/churn.md on the apparel log (52 weeks); run from the repository
root as `.venv/bin/python benchmarks/churn_apparel_default.py [--unchecked] [--purchases] [cutoff ...]`.

Train at c - 52 weeks on labels from (c - 52, c], then predict the 52 weeks after c and compare
with what happened: purchases MAE, activity AUC and Brier score. Rows: the base model refitted
at c (the issue's "base"), the adjuster's own base model (fitted at c - 52) and the adjuster as
the guide uses it. Usage: python apparel_readme.py [--unchecked] [--purchases] [cutoff ...]"""
import sys, time, warnings
import numpy as np, pandas as pd
from sklearn.metrics import roc_auc_score
import clvlab
from clvlab.churn import churn_training_data

A = "../shared/data/apparel/"
args = [a for a in sys.argv[1:] if not a.startswith("--")]
unchecked, with_counts = "--unchecked" in sys.argv, "--purchases" in sys.argv
log = pd.read_csv(A + "apparel_transactions.csv")
attributes = pd.read_csv(A + "apparel_static_covariates.csv").set_index("Id").astype(float)
h = 52.0
opts = dict(customer_col="Id", date_col="Date", amount_col="Price", customer_attributes=attributes)
kw = {} if not unchecked else {"gain_check": False}
for cut in args or ["2008-12-28"]:
    c = pd.Timestamp(cut)
    X, y = churn_training_data(log, c - pd.Timedelta(weeks=h), horizon=h, **opts)
    purchases_train = clvlab.backtesting.calibration_data(log, c - pd.Timedelta(weeks=h), h, **opts)[1].to_numpy(float)
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adjuster = clvlab.ChurnAdjuster(clvlab.ParetoNBD(), horizon=h, **kw).fit(
            X, y, **({"purchases": purchases_train} if with_counts else {}))
    fit_s = time.time() - t0
    X_now, _ = churn_training_data(log, c, horizon=h, **opts)
    purchases = clvlab.backtesting.calibration_data(log, c, h, **opts)[1].to_numpy(float)
    active = purchases > 0
    rfm = X_now[["frequency", "recency", "T"]]
    refit = clvlab.ParetoNBD().fit(rfm)
    own = adjuster.base_model_
    rows = {"base model refitted at c": (refit.probability_of_purchase(rfm, h), refit.expected_purchases(rfm, h)),
            "adjuster's base model (c - h)": (own.probability_of_purchase(rfm, h), own.expected_purchases(rfm, h)),
            "adjuster (guide)": (adjuster.probability_of_purchase(X_now), adjuster.expected_purchases(X_now))}
    out = {name: dict(mae=np.abs(purchases - e.to_numpy()).mean(), auc=roc_auc_score(active, p.to_numpy()),
                      brier=((p.to_numpy() - active) ** 2).mean()) for name, (p, e) in rows.items()}
    print(f"\nclvlab from {clvlab.__file__}\ncutoff {c.date()} (trained at {(c - pd.Timedelta(weeks=h)).date()}), {len(X_now)} customers, "
          f"fit {fit_s:.1f} s, {'unchecked' if unchecked else 'default'}{', fit given purchases' if with_counts else ''}")
    print(pd.DataFrame(out).T.round(4).to_string())
    for w in caught:
        print(f"  {w.category.__name__}: {w.message}")
    print("  summary:", adjuster.summary().replace("\n", "\n  "))
