"""clvlab: probabilistic customer-lifetime-value models with exact likelihoods.

Public API
----------
rfm_summary        transaction log (DataFrame or CSV/Parquet files) to one row per customer
read_rfm           read an RFM table back (Parquet keeps its time unit; a CSV needs time_unit)
parse_option_date  a date option by the date column's rule (ISO 8601 or the given date_format)
validate_rfm       check an RFM table against the rules every model relies on
covariate_paths    each customer's time-varying covariates (a panel and/or a calendar) for fits
                   and predictions along the path: ParetoNBD/BetaGeo.fit(rfm, covariate_paths=)
CovariatePaths     what covariate_paths returns
seasonal_covariates  calendar covariates shared by all customers: month, quarter, holidays, Fourier
datasets           bundled reference data (CDNOW, donations, sBG survival)
simulate           customer bases (every model, with covariates) and transaction logs
BetaGeo            the BG/NBD model (maximum likelihood)
GammaGamma         the Gamma-Gamma spend model
LogNormalSpend     a log-normal spend model, for heavy-tailed spend
ParetoNBD          the Pareto/NBD model (maximum likelihood, exact gradients)
ModifiedBetaGeo    the MBG/NBD model (BG/NBD with a dropout chance after the first purchase)
BetaGeoBetaBinom   the BG/BB model for discrete purchase opportunities
ShiftedBetaGeo     the shifted-beta-geometric model of contract renewals
discrete_rfm_summary      transaction log to BG/BB's summary over calendar periods
contract_durations        subscriptions (start, end) to the sBG input
durations_from_survivors  cohort survivor counts to the sBG input
load_model         read any model saved with ``model.save(path)`` (JSON)
customer_lifetime_value   discounted CLV from a transaction model and a spend model
value_distribution        the distribution of each customer's spend and CLV over a horizon
spend_moments             mean and variance of each customer's total spend over a horizon
spend_frequency_check     Gamma-Gamma's assumption: is spend independent of frequency?
purchase_totals, revenue_totals   totals of any group with intervals (process + parameters)
cumulative_purchase_fan   a cohort's cumulative purchases over time with intervals (fan chart)
lr_test            likelihood-ratio test between nested maximum-likelihood fits (covariates)
score_customers    the one scoring function (clvlab predict, the served model, scoring, Spark)
expected_cumulative_purchases   a cohort's expected cumulative repeat purchases over time
backtest           fit at calibration cutoffs, predict held-out windows, compare with baselines
backtesting        its result, candidates, baselines and metrics
ChurnAdjuster      a scikit-learn churn classifier that corrects a BTYD model's predictions
ZILNChallenger     the zero-inflated log-normal challenger (gradient boosting, Wang et al. 2019)
GBMPoissonChallenger  Poisson gradient boosting of holdout purchases on a BTYD model's offset
event_features     features of an event log (visits, e-mails, returns...) at a cutoff, in pandas,
                   DuckDB or Spark; basket_features: the basket size of a quantity column;
                   check_events: an event log validated and normalised
churn              its features, training data and backtest candidate
tracking           MLflow runs of fits and backtests (MLflow imported only when used)
serving            the MLflow CLV model (loader-module pyfunc, JSON files only), register, promote
privacy            consent and withdrawn customers, salted hashes of customer ids
plotting           diagnostic plots (matplotlib): calibration, tracking, P(alive), CLV, posteriors
scoring            the batch scoring job: a registered model scores a log as of a date
experiments        declarative TOML experiments into MLflow, and their leaderboard
selection          an experiment's [selection] rule: champion, challengers, promotion, decisions
monitoring         monitor(scores, log, as_of): a scoring job's forecasts against what happened
                   since, with a verdict (fine, watch, retrain) and a logged run
clvlab.spark       (import it; pip install clvlab[spark]) RFM, fits and scoring on Spark
lifetimes          lifetimes 0.11's API on clvlab's models: import clvlab.lifetimes as lifetimes
bayes              Bayesian fits (method="nuts"|"advi"|"map"), parameter draws (posterior,
                   normal, bootstrap_fit) and predictions with intervals
(every transaction model: purchase_pmf, purchase_quantiles, prediction_interval,
purchase_moments, draw_future_purchases: the predictive distribution of each customer's counts)
ClvlabError, DataValidationError, ClvlabWarning
"""

from typing import TYPE_CHECKING

from clvlab import _old_paths

_old_paths.install()  # before anything can ask for an old module path

from clvlab.core import lazy

# Every public name is imported on first use (PEP 562), so that `import clvlab` and the command
# line's --help stay fast: the models import scikit-learn, numba and PyMC, the churn challengers
# scikit-learn, the operations MLflow. The table says where each name is defined; the
# TYPE_CHECKING imports below say the same to type checkers and IDEs (tests/test_fast_start.py
# checks that the two agree). Old module paths (clvlab.rfm, clvlab.spark ...) and the
# subpackages (clvlab.models ...) are found as attributes too, imported when first asked for.
__getattr__, __dir__ = lazy.attach(__name__, attributes={
    "clvlab.churn": ["ChurnAdjuster", "GBMPoissonChallenger", "ZILNChallenger"],
    "clvlab.core.errors": ["ClvlabError", "ClvlabWarning", "DataValidationError"],
    "clvlab.core.version": ["__version__"],
    "clvlab.data.covariate_panel": ["seasonal_covariates"],
    "clvlab.data.covariate_paths": ["CovariatePaths", "covariate_paths"],
    "clvlab.data.discrete": ["contract_durations", "discrete_rfm_summary"],
    "clvlab.data.events": ["basket_features", "check_events", "event_features"],
    "clvlab.data.rfm": ["parse_option_date", "read_rfm", "rfm_summary"],
    "clvlab.data.validation": ["validate_rfm"],
    "clvlab.models": ["BetaGeo", "BetaGeoBetaBinom", "GammaGamma", "ModifiedBetaGeo", "ParetoNBD",
                      "ShiftedBetaGeo", "durations_from_survivors", "load_model"],
    "clvlab.models.checks": ["frequency_ppc"],  # not in __all__: clvlab.bayes.frequency_ppc
    "clvlab.models.clv": ["customer_lifetime_value"],
    "clvlab.models.comparison": ["lr_test"],
    "clvlab.models.cumulative": ["expected_cumulative_purchases"],
    "clvlab.models.customer_scores": ["score_customers"],
    "clvlab.models.lognormal_spend": ["LogNormalSpend"],
    "clvlab.models.spend_checks": ["SpendFrequencyCheck", "spend_frequency_check"],
    "clvlab.models.value_distribution": ["spend_moments", "value_distribution"],
    "clvlab.models.totals": ["cumulative_purchase_fan", "purchase_totals", "revenue_totals"],
    "clvlab.evaluation": ["backtest"],
}, modules={
    "datasets": "clvlab.data.datasets",
    "privacy": "clvlab.data.privacy",
    "simulate": "clvlab.data.simulate",
    "bayes": "clvlab.inference.bayes",
    "churn": "clvlab.churn",
    "backtesting": "clvlab.evaluation",
    "plotting": "clvlab.plotting",
    "experiments": "clvlab.ops.experiments",
    "scoring": "clvlab.ops.scoring",
    "serving": "clvlab.ops.serving",
    "tracking": "clvlab.ops.tracking",
    "selection": "clvlab.ops.selection",
    "monitoring": "clvlab.ops.monitoring",
    "lifetimes": "clvlab.lifetimes",
})

if TYPE_CHECKING:
    from clvlab import churn, evaluation as backtesting, lifetimes, plotting
    from clvlab.churn import ChurnAdjuster, GBMPoissonChallenger, ZILNChallenger
    from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError
    from clvlab.core.version import __version__
    from clvlab.data import datasets, privacy, simulate
    from clvlab.data.covariate_panel import seasonal_covariates
    from clvlab.data.covariate_paths import CovariatePaths, covariate_paths
    from clvlab.data.discrete import contract_durations, discrete_rfm_summary
    from clvlab.data.events import basket_features, check_events, event_features
    from clvlab.data.rfm import parse_option_date, read_rfm, rfm_summary
    from clvlab.data.validation import validate_rfm
    from clvlab.evaluation import backtest
    from clvlab.inference import bayes
    from clvlab.models import (BetaGeo, BetaGeoBetaBinom, GammaGamma, ModifiedBetaGeo, ParetoNBD,
                               ShiftedBetaGeo, durations_from_survivors, load_model)
    from clvlab.models.clv import customer_lifetime_value
    from clvlab.models.comparison import lr_test
    from clvlab.models.cumulative import expected_cumulative_purchases
    from clvlab.models.customer_scores import score_customers
    from clvlab.models.lognormal_spend import LogNormalSpend
    from clvlab.models.spend_checks import SpendFrequencyCheck, spend_frequency_check
    from clvlab.models.totals import cumulative_purchase_fan, purchase_totals, revenue_totals
    from clvlab.models.value_distribution import spend_moments, value_distribution
    from clvlab.ops import experiments, monitoring, scoring, selection, serving, tracking


__all__ = [
    "rfm_summary",
    "read_rfm",
    "parse_option_date",
    "validate_rfm",
    "covariate_paths",
    "CovariatePaths",
    "seasonal_covariates",
    "BetaGeo",
    "GammaGamma",
    "LogNormalSpend",
    "ParetoNBD",
    "ModifiedBetaGeo",
    "BetaGeoBetaBinom",
    "ShiftedBetaGeo",
    "discrete_rfm_summary",
    "contract_durations",
    "durations_from_survivors",
    "load_model",
    "customer_lifetime_value",
    "value_distribution",
    "spend_moments",
    "purchase_totals",
    "revenue_totals",
    "cumulative_purchase_fan",
    "spend_frequency_check",
    "SpendFrequencyCheck",
    "lr_test",
    "score_customers",
    "expected_cumulative_purchases",
    "backtest",
    "backtesting",
    "ChurnAdjuster",
    "ZILNChallenger",
    "GBMPoissonChallenger",
    "event_features",
    "basket_features",
    "check_events",
    "churn",
    "tracking",
    "serving",
    "privacy",
    "plotting",
    "scoring",
    "experiments",
    "selection",
    "monitoring",
    "lifetimes",
    "bayes",
    "datasets",
    "simulate",
    "ClvlabError",
    "ClvlabWarning",
    "DataValidationError",
    "__version__",
]
