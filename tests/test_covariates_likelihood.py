"""The covariate core held to independent references (issue 22).

Each model with covariates is the plain model at each customer's own parameters,
theta_i = theta * exp(sign * x_i' g) (the forms in docs/guide/covariates.md /
``covariate_links``). Here the own parameters are computed by hand from that documented form
(``own_params``, from the
``LINKS`` written below, not from clvlab's covariate code) and fed to the mpmath references of
tests/reference.py; predictions are compared with the plain model at those parameters.

Covariates everywhere: ``flag`` (0/1), ``score`` (continuous) and ``channel`` (text, levels
mail < store < web, so mail is the reference level and the covariates are channel[store] and
channel[web]).
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pandas as pd
import pytest

import reference
from clvlab import (BetaGeo, BetaGeoBetaBinom, ClvlabError, DataValidationError, GammaGamma,
                    ModifiedBetaGeo, ParetoNBD, ShiftedBetaGeo, load_model, lr_test, simulate)
from clvlab.inference.mle import compress
from clvlab.models import covariates
from clvlab.models.base import model_from_dict

TOLERANCE = 1e-9
LEVELS = ["mail", "store", "web"]
COLUMNS = ["flag", "score", "channel"]

#: parameter -> (process, sign), written from the documented forms (not read from clvlab)
LINKS = {
    "pareto": {"alpha": ("purchase", -1), "beta": ("dropout", -1)},
    "a_and_b": {"alpha": ("purchase", -1), "a": ("dropout", 1), "b": ("dropout", 1)},
    "b": {"alpha": ("purchase", -1), "b": ("dropout", -1)},
    "spend": {"v": ("spend", 1)},
    "sbg": {"beta": ("dropout", -1)},
    "bg_bb": {"beta": ("purchase", -1), "delta": ("dropout", -1)},
}

PURCHASE = {"flag": 0.4, "score": -0.3, "channel[store]": 0.2, "channel[web]": -0.5}
DROPOUT = {"flag": -0.35, "score": 0.25, "channel[store]": 0.5, "channel[web]": 0.3}
SPEND = {"flag": 0.3, "score": -0.2, "channel[store]": -0.4, "channel[web]": 0.25}


def transaction_rows(rng, n):
    x = rng.integers(0, 12, n).astype(float)
    T = rng.uniform(20.0, 60.0, n)
    t_x = np.where(x > 0, T * rng.uniform(0.05, 1.0, n), 0.0)
    t_x[np.flatnonzero(x > 0)[:2]] = T[np.flatnonzero(x > 0)[:2]]  # last purchase at the cut
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": T})


def spend_rows(rng, n):
    x = rng.integers(0, 6, n).astype(float)
    return pd.DataFrame({"frequency": x, "monetary_value": np.exp(rng.normal(3.0, 0.7, n)),
                         **spend_durations(x)})


def spend_durations(x):
    """recency and T, which every RFM table has (Gamma-Gamma does not read them)."""
    return {"recency": np.where(x > 0, 20.0, 0.0), "T": np.full(len(x), 40.0)}


def duration_rows(rng, n):
    churned = rng.uniform(size=n) < 0.6
    duration = np.where(churned, rng.integers(1, 10, n), rng.integers(0, 10, n))
    return pd.DataFrame({"duration": duration, "churned": churned})


def discrete_rows(rng, n):
    periods = np.full(n, 6)
    recency = rng.integers(0, 7, n)
    frequency = np.where(recency > 0, np.minimum(recency, rng.integers(1, 7, n)), 0)
    return pd.DataFrame({"frequency": frequency, "recency": recency, "periods": periods})


@dataclass
class Case:
    id: str
    cls: type
    base: dict[str, float]
    coefficients: dict[str, dict[str, float]]
    links: dict[str, tuple[str, int]]
    rows: Callable
    reference: Callable  # (own params dict, row) -> log-likelihood
    simulator: str
    sim_options: dict = field(default_factory=dict)
    dropout_form: str | None = None

    @property
    def time_unit(self):
        return "W" if self.cls.requires_time_unit else None


def _rfm(function):
    return lambda p, row: function(*p.values(), row.frequency, row.recency, row.T)


CASES = [
    Case("pareto", ParetoNBD, dict(r=0.55, alpha=10.6, s=0.61, beta=11.7),
         {"purchase": PURCHASE, "dropout": DROPOUT}, LINKS["pareto"], transaction_rows,
         _rfm(reference.pareto_nbd_loglik), "pareto-nbd", dict(T=39.0)),
    Case("bg_a_and_b", BetaGeo, dict(r=0.24, alpha=4.4, a=0.79, b=2.4),
         {"purchase": PURCHASE, "dropout": DROPOUT}, LINKS["a_and_b"], transaction_rows,
         _rfm(reference.bg_nbd_loglik), "bg-nbd", dict(T=39.0), "a_and_b"),
    Case("bg_b", BetaGeo, dict(r=0.24, alpha=4.4, a=0.79, b=2.4),
         {"purchase": PURCHASE, "dropout": DROPOUT}, LINKS["b"], transaction_rows,
         _rfm(reference.bg_nbd_loglik), "bg-nbd", dict(T=39.0), "b"),
    Case("mbg_a_and_b", ModifiedBetaGeo, dict(r=0.52, alpha=6.2, a=0.89, b=1.6),
         {"purchase": PURCHASE, "dropout": DROPOUT}, LINKS["a_and_b"], transaction_rows,
         _rfm(reference.mbg_nbd_loglik), "mbg-nbd", dict(T=39.0), "a_and_b"),
    Case("mbg_b", ModifiedBetaGeo, dict(r=0.52, alpha=6.2, a=0.89, b=1.6),
         {"purchase": PURCHASE, "dropout": DROPOUT}, LINKS["b"], transaction_rows,
         _rfm(reference.mbg_nbd_loglik), "mbg-nbd", dict(T=39.0), "b"),
    Case("gamma_gamma", GammaGamma, dict(p=6.25, q=3.74, v=15.4), {"spend": SPEND},
         LINKS["spend"], spend_rows,
         lambda p, row: reference.gamma_gamma_loglik(*p.values(), row.frequency, row.monetary_value)
         if row.frequency > 0 else np.nan, "gamma-gamma"),
    Case("sbg", ShiftedBetaGeo, dict(alpha=0.7, beta=1.2), {"dropout": DROPOUT}, LINKS["sbg"],
         duration_rows, lambda p, row: reference.sbg_loglik(*p.values(), row.duration, row.churned),
         "sbg", dict(periods=8)),
    Case("bg_bb", BetaGeoBetaBinom, dict(alpha=1.2, beta=0.75, gamma=0.66, delta=2.78),
         {"purchase": PURCHASE, "dropout": DROPOUT}, LINKS["bg_bb"], discrete_rows,
         lambda p, row: reference.bg_bb_loglik(*p.values(), row.frequency, row.recency, row.periods),
         "bg-bb", dict(periods=6)),
]
BY_ID = {case.id: case for case in CASES}
parametrize_cases = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


def attributes(rng, n):
    channel = rng.choice(LEVELS, n)
    channel[:3] = LEVELS  # every level present
    return pd.DataFrame({"flag": rng.integers(0, 2, n), "score": rng.normal(0.0, 1.0, n).round(4),
                         "channel": channel})


def table_for(case: Case, n: int = 30, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.concat([case.rows(rng, n), attributes(rng, n)], axis=1)
    table.index = pd.Index([f"c{i}" for i in range(n)], name="customer_id")
    if case.time_unit:  # as rfm_summary records it: the models refuse a table of unknown unit
        table.attrs = {"clvlab": {"time_unit": case.time_unit}}
    return table


def encoded(row) -> dict[str, float]:
    """Customer's covariate row x_i, encoded by hand (mail is the reference level)."""
    return {"flag": float(row.flag), "score": float(row.score),
            "channel[store]": float(row.channel == "store"), "channel[web]": float(row.channel == "web")}


def own_params(case: Case, row, base=None, coefficients=None) -> dict[str, float]:
    """theta_i = theta * exp(sign * x_i' g), from the documented form."""
    base = dict(case.base if base is None else base)
    coefficients = case.coefficients if coefficients is None else coefficients
    x = encoded(row)
    for name, (process, sign) in case.links.items():
        g = coefficients.get(process, {})
        base[name] *= math.exp(sign * sum(value * x[k] for k, value in g.items()))
    return base


def covariate_model(case: Case, base=None, coefficients=None):
    """The model at known parameters: from_params, and for dropout_form='b' its JSON payload
    with that setting (from_params builds the default form only)."""
    model = case.cls.from_params(time_unit=case.time_unit, levels={"channel": LEVELS},
                                 coefficients=case.coefficients if coefficients is None else coefficients,
                                 **(case.base if base is None else base))
    if case.dropout_form == "b":
        payload = model.to_dict()
        payload["settings"]["dropout_form"] = "b"
        model = model_from_dict(payload)
        assert model.dropout_form == "b"
    return model


def close(ours: float, ref: float, tolerance: float = TOLERANCE) -> bool:
    if np.isnan(ref):
        return bool(np.isnan(ours))
    return bool(np.isfinite(ours) and abs(ours - ref) <= tolerance * max(1.0, abs(ref)))


# --- (a) the per-customer log-likelihood against the paper's, at hand-computed parameters ------
@parametrize_cases
def test_links_are_the_documented_forms(case):
    model = case.cls(dropout_form=case.dropout_form) if case.dropout_form else case.cls()
    assert model.covariate_links() == case.links


@parametrize_cases
def test_per_customer_log_likelihood_matches_the_reference_at_own_parameters(case):
    table = table_for(case)
    ours = covariate_model(case).log_likelihood(table, per_customer=True)
    assert list(ours.index) == list(table.index)
    bad = [(i, ours[i], case.reference(own_params(case, row), row))
           for i, row in zip(table.index, table.itertuples())
           if not close(ours[i], case.reference(own_params(case, row), row))]
    assert not bad, bad[:3]
    # and the covariates matter: at the base parameters most customers' values differ
    differ = [not close(ours[row.Index], case.reference(dict(case.base), row), 1e-6)
              for row in table.itertuples() if not np.isnan(ours[row.Index])]
    assert np.mean(differ) > 0.5


@parametrize_cases
def test_total_log_likelihood_is_the_sum(case):
    table = table_for(case)
    model = covariate_model(case)
    rows = model.log_likelihood(table, per_customer=True)
    assert model.log_likelihood(table) == pytest.approx(rows.sum(), rel=1e-12)


# --- (b) the analytic gradient of the fit's objective ----------------------------------------
def fit_objective(case: Case, table: pd.DataFrame):
    """The objective ``fit`` maximises, built as fit_with_covariates builds it: (design,
    scales, rows, total); total(free) is sum(weights * loglik) and its gradient in the free
    parameters (base parameters, then coefficient x covariate scale)."""
    settings = {f"{process}_covariates": COLUMNS for process in case.coefficients}
    model = case.cls(dropout_form=case.dropout_form, **settings) if case.dropout_form else case.cls(**settings)
    if case.cls is GammaGamma:
        table = table[table["frequency"] > 0]
    design = covariates.design_for(model, table)
    base = model._data(table)
    x = design.encoder.transform(table, model=case.cls.__name__)
    distinct, counts = compress([*base, *x.T], None)
    grouped = covariates.GroupedData(model, distinct, counts, len(base))
    scales = design.scales()
    rows, total = covariates.group_likelihood(model, design, grouped, scales)
    return design, scales, grouped, rows, total


def split_names(design):
    return [tuple(name.split(".", 1)) for name in design.coefficient_names]


@parametrize_cases
def test_gradient_of_the_objective_matches_central_differences_of_log_likelihood(case):
    """Compared: d/d(g_process,c) of sum_i LL_i (each customer at own parameters), as the fit's
    objective gives it (its free coefficient is g x scale, so its gradient times the scale), with
    central differences of ``log_likelihood`` totals of ``from_params`` models at g +- h; and
    the same for each base parameter."""
    table = table_for(case, n=30, seed=3)
    design, scales, grouped, rows, total = fit_objective(case, table)
    names = split_names(design)
    k = len(case.base)
    coefficient_values = np.array([case.coefficients[p][c] for p, c in names])
    free = np.r_[list(case.base.values()), coefficient_values * scales]
    value, gradient = total(free)
    reference_total = covariate_model(case).log_likelihood(table)
    assert value == pytest.approx(reference_total, rel=1e-11)
    by_rows = grouped.weights @ rows(free)[1]
    np.testing.assert_allclose(by_rows, gradient, rtol=1e-9, atol=1e-9 * abs(value))

    def ll(base=None, coefficients=None):
        return covariate_model(case, base, coefficients).log_likelihood(table)

    analytic = np.r_[gradient[:k], gradient[k:] * scales]  # in (base, g) on the user's scale
    numeric = []
    for name, theta in case.base.items():
        h = 1e-6 * theta
        numeric.append((ll({**case.base, name: theta + h}) - ll({**case.base, name: theta - h})) / (2 * h))
    for process, covariate in names:
        h = 1e-5
        shifted = []
        for step in (h, -h):
            coefficients = copy.deepcopy(case.coefficients)
            coefficients[process][covariate] += step
            shifted.append(ll(coefficients=coefficients))
        numeric.append((shifted[0] - shifted[1]) / (2 * h))
    numeric = np.array(numeric)
    # rounding of the differences: ~1e-16 |LL| / h
    scale = np.r_[[abs(value) / t for t in case.base.values()], np.full(len(names), abs(value))]
    assert np.all(np.abs(analytic - numeric) <= 1e-6 * np.abs(numeric) + 1e-7 * scale), \
        (list(zip([*case.base, *design.coefficient_names], analytic, numeric)))


# --- fits on simulated customer bases --------------------------------------------------------
def simulated(case: Case, n: int, seed: int = 1, columns=("flag", "channel")) -> pd.DataFrame:
    """A base drawn from the case's model at its coefficients (``columns`` of the covariates;
    the text column from numeric dummies)."""
    rng = np.random.default_rng(seed)
    frame = attributes(rng, n)
    dummies = pd.DataFrame({"flag": frame["flag"], "score": frame["score"],
                            "channel[store]": (frame["channel"] == "store").astype(float),
                            "channel[web]": (frame["channel"] == "web").astype(float)})
    used = [c for c in dummies if c.split("[")[0] in columns]
    coefficients = {p: {c: v for c, v in g.items() if c in used} for p, g in case.coefficients.items()}
    options = dict(case.sim_options)
    if case.cls is GammaGamma:
        options["frequency"] = rng.integers(0, 8, n)
    if case.dropout_form:
        options["dropout_form"] = case.dropout_form
    table = simulate.with_covariates(case.simulator, n, params=case.base, coefficients=coefficients,
                                     attributes=dummies[used], seed=seed, **options)
    keep = [c for c in table.columns if not c.endswith("_") and c != "alive" and "[" not in c]
    table = table[keep]
    if case.cls is GammaGamma:
        table = table.assign(**spend_durations(table["frequency"].to_numpy()))
    if "channel" in columns:
        table = table.assign(channel=frame["channel"].to_numpy())
    if case.time_unit:
        table.attrs = {"clvlab": {"time_unit": case.time_unit}}
    return table


def fitted(case: Case, columns=("flag", "channel"), **settings):
    process_settings = {f"{process}_covariates": list(columns) for process in case.coefficients}
    if case.dropout_form:
        settings["dropout_form"] = case.dropout_form
    return case.cls(**process_settings, **settings)


FIT_CASES = [BY_ID[i] for i in ("pareto", "bg_b", "mbg_b", "gamma_gamma", "sbg", "bg_bb")]
parametrize_fit_cases = pytest.mark.parametrize("case", FIT_CASES, ids=[c.id for c in FIT_CASES])


# --- (c) row compression ---------------------------------------------------------------------
@parametrize_fit_cases
def test_weights_and_duplicated_rows_give_the_fit_of_the_expanded_table(case):
    table = simulated(case, 250, seed=5, columns=("flag", "score", "channel"))
    if case.cls is GammaGamma:  # see test_gamma_gamma_fits_a_table_with_customers_without_repeats
        table = table[table["frequency"] > 0]
    weights = np.random.default_rng(2).integers(1, 4, len(table))
    expanded = table.iloc[np.repeat(np.arange(len(table)), weights)]
    by_weights = fitted(case, COLUMNS).fit(table, weights=weights)
    by_rows = fitted(case, COLUMNS).fit(expanded)
    assert by_weights.n_customers_ == by_rows.n_customers_ == weights.sum()
    assert by_weights.n_distinct_rows_ == by_rows.n_distinct_rows_ <= len(table)
    # the same objective, so the same optimum up to the optimiser's tolerance: the estimates
    # agree to a thousandth of a standard error, the maximum to 1e-10
    assert by_weights.log_likelihood_ == pytest.approx(by_rows.log_likelihood_, rel=1e-10)
    difference = (by_weights.params_ - by_rows.params_).abs() / by_rows.standard_errors_
    assert difference.max() < 1e-3, difference
    pd.testing.assert_frame_equal(by_weights.covariance_, by_rows.covariance_, rtol=1e-3)
    # the fit is a maximum of the log-likelihood of the expanded table
    assert by_rows.log_likelihood(expanded) == pytest.approx(by_rows.log_likelihood_, rel=1e-10)


# --- (d) files, scoring errors, population-level methods, for_attributes ---------------------
def first_prediction(model, table):
    if isinstance(model, GammaGamma):
        return model.expected_spend(table)
    if isinstance(model, ShiftedBetaGeo):
        return model.renewal_probability(table)
    return model.p_alive(table)


@parametrize_cases
def test_json_round_trip_gives_identical_predictions(case, tmp_path):
    table = table_for(case)
    model = covariate_model(case)
    again = model_from_dict(model.to_dict())
    model.save(tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json")
    for other in (again, loaded):
        assert type(other) is case.cls and getattr(other, "dropout_form", None) == case.dropout_form
        pd.testing.assert_series_equal(other.params_, model.params_, check_exact=True)
        pd.testing.assert_series_equal(first_prediction(other, table), first_prediction(model, table),
                                       check_exact=True)
        pd.testing.assert_series_equal(other.log_likelihood(table, per_customer=True),
                                       model.log_likelihood(table, per_customer=True), check_exact=True)


def test_a_fitted_models_file_keeps_the_learned_scales_and_the_fit(tmp_path):
    case = BY_ID["pareto"]
    table = simulated(case, 300, columns=COLUMNS)
    model = fitted(case, COLUMNS).fit(table)
    model.save(tmp_path / "fit.json")
    loaded = load_model(tmp_path / "fit.json")
    assert loaded.covariates_.to_dict() == model.covariates_.to_dict()
    assert loaded.log_likelihood_ == model.log_likelihood_
    pd.testing.assert_frame_equal(loaded.summary(), model.summary(), check_exact=True)
    pd.testing.assert_frame_equal(loaded.scores(table, 10.0), model.scores(table, 10.0), check_exact=True)


@parametrize_cases
def test_an_unseen_text_level_at_scoring_is_an_error_naming_the_column(case):
    table = table_for(case)
    table.loc["c5", "channel"] = "phone"
    with pytest.raises(DataValidationError, match="phone") as caught:
        first_prediction(covariate_model(case), table)
    assert caught.value.column == "channel" and caught.value.row["<row>"] == "c5"


@parametrize_cases
def test_a_missing_covariate_column_is_an_error_naming_it(case):
    table = table_for(case).drop(columns="score")
    with pytest.raises(ClvlabError, match=r"\['score'\]"):
        first_prediction(covariate_model(case), table)


@pytest.mark.parametrize("column", ["score", "channel"])
@parametrize_cases
def test_a_missing_covariate_value_is_an_error_naming_the_customer(case, column):
    table = table_for(case)
    table[column] = table[column].astype(object)
    table.loc["c7", column] = np.nan
    with pytest.raises(DataValidationError, match="missing value") as caught:
        first_prediction(covariate_model(case), table)
    assert caught.value.column == column and caught.value.row["<row>"] == "c7"
    assert "c7" in str(caught.value)


POPULATION_ARGUMENTS = {"expected_purchases_new_customer": dict(t=10.0),
                        "population_mean_spend": {}, "survival": dict(t=3),
                        "churn_probability": dict(t=3), "retention_rate": dict(t=3),
                        "project_survivors": dict(cohort_size=100, periods=4)}


def population_methods(cls):
    return [name for name, member in inspect.getmembers(cls)
            if not name.startswith("_") and getattr(member, "population_level", False)]


@parametrize_cases
def test_population_level_methods_raise_pointing_to_for_attributes(case):
    model = covariate_model(case)
    names = population_methods(case.cls)
    assert names  # every model has a population-level prediction
    for name in names:
        assert name in POPULATION_ARGUMENTS, f"add arguments for the population method {name}"
        with pytest.raises(ClvlabError, match="for_attributes"):
            getattr(model, name)(**POPULATION_ARGUMENTS[name])
        plain = model.for_attributes({"flag": 0, "score": 0.0, "channel": "mail"})
        getattr(plain, name)(**POPULATION_ARGUMENTS[name])  # the plain model answers
    if "purchase_probability" in dir(case.cls):  # its new-customer form (no table)
        with pytest.raises(ClvlabError, match="for_attributes"):
            model.purchase_probability(1, 3)


@parametrize_cases
def test_for_attributes_is_the_plain_model_at_hand_computed_parameters(case):
    model = covariate_model(case)
    row = SimpleNamespace(flag=1, score=-0.7, channel="web")
    plain = model.for_attributes(vars(row))
    assert type(plain) is case.cls and not hasattr(plain, "covariates_")
    expected = own_params(case, row)
    assert list(plain.params_.index) == list(case.base)
    np.testing.assert_allclose(plain.params_.to_numpy(), list(expected.values()), rtol=1e-13)
    assert plain.time_unit_ == case.time_unit
    baseline = model.for_attributes({"flag": 0, "score": 0.0, "channel": "mail"})
    np.testing.assert_allclose(baseline.params_.to_numpy(), list(case.base.values()), rtol=1e-15)
    with pytest.raises(DataValidationError, match="channel"):
        model.for_attributes({"flag": 0, "score": 0.0, "channel": "phone"})


# --- (f) per-customer predictions = the plain model at each customer's parameters ------------
PREDICTION_ARGUMENTS = {
    "p_alive": {}, "expected_purchases": dict(t=10.0), "p_alive_at": dict(t=5.0),
    "probability_of_purchase": dict(t=10.0), "purchase_probability": dict(n=1, t=10.0),
    "scores": dict(t=10.0), "expected_spend": {}, "renewal_probability": {},
    "expected_residual_lifetime": dict(discount_rate=0.1),
    "discounted_expected_transactions": dict(discount_rate=0.1),
    "expected_purchases_by_horizon": dict(horizons=[2.0, 10.0]),
    "purchase_pmf": dict(t=10.0, max_n=6, tail=0.0), "purchase_cdf": dict(n=2, t=10.0),
    "purchase_quantiles": dict(t=10.0), "prediction_interval": dict(t=10.0),
    "purchase_moments": dict(t=10.0),
}
DISCRETE_ARGUMENTS = {"expected_purchases": dict(t=3), "purchase_probability": dict(k=1, t=3),
                      "purchase_pmf": dict(t=3, max_n=3, tail=0.0),
                      "purchase_cdf": dict(n=1, t=3), "purchase_quantiles": dict(t=3),
                      "prediction_interval": dict(t=3), "purchase_moments": dict(t=3)}
#: public methods that read a table but are not predictions of a customer: fitting, the total
#: log-likelihood (it delegates to a decorated private method), posterior_predict (it calls a
#: named prediction, which is decorated), and scikit-learn's metadata routing (set_fit_request,
#: whose keyword ``rfm`` is fit's argument name)
NOT_PREDICTIONS = {"fit", "log_likelihood", "posterior_predict", "set_fit_request",
                   # random draws (not a Series or DataFrame): tests/test_predictive.py checks
                   # that each customer draws at their own parameters
                   "draw_future_purchases"}


def table_methods(cls):
    """Public methods with a parameter named ``rfm`` or ``table``."""
    out = {}
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_"):
            continue
        if {"rfm", "table"} & set(inspect.signature(member).parameters):
            out[name] = member
    return out


@parametrize_cases
def test_every_public_method_that_takes_a_table_runs_by_covariate_group(case):
    methods = table_methods(case.cls)
    undecorated = [n for n, m in methods.items()
                   if n not in NOT_PREDICTIONS and not getattr(m, "by_covariate_group", False)]
    assert not undecorated, f"{case.cls.__name__}: {undecorated} take a table without by_covariate_group"
    assert set(methods) - NOT_PREDICTIONS  # there are predictions to check
    assert getattr(case.cls._log_likelihood_rows, "by_covariate_group", False)


def arguments_for(case, name):
    if case.cls is BetaGeoBetaBinom and name in DISCRETE_ARGUMENTS:
        return DISCRETE_ARGUMENTS[name]
    assert name in PREDICTION_ARGUMENTS, f"add arguments for the prediction {name}"
    return PREDICTION_ARGUMENTS[name]


@parametrize_cases
def test_every_prediction_is_the_plain_models_at_own_parameters(case):
    table = table_for(case)
    if case.cls is GammaGamma:
        table = table[table["frequency"] > 0]
    model = covariate_model(case)
    for name, method in table_methods(case.cls).items():
        if name in NOT_PREDICTIONS:
            continue
        arguments = arguments_for(case, name)
        together = getattr(model, name)(table=table, **arguments) if "table" in inspect.signature(
            method).parameters else getattr(model, name)(rfm=table, **arguments)
        expected = []
        for row in table.itertuples():
            plain = case.cls.from_params(time_unit=case.time_unit, **own_params(case, row))
            one = table.loc[[row.Index]]
            key = "table" if "table" in inspect.signature(method).parameters else "rfm"
            expected.append(getattr(plain, name)(**{key: one}, **arguments))
        expected = pd.concat(expected)
        assert together.index.equals(table.index), name
        if isinstance(together, pd.DataFrame):
            pd.testing.assert_frame_equal(together, expected, rtol=1e-11)
        else:
            pd.testing.assert_series_equal(together, expected, rtol=1e-11)


def test_an_array_argument_is_split_with_the_rows():
    case = BY_ID["pareto"]
    table = table_for(case)
    horizons = np.linspace(1.0, 30.0, len(table))
    together = covariate_model(case).expected_purchases(table, horizons)
    for (row, t), value in zip(zip(table.itertuples(), horizons), together):
        plain = ParetoNBD.from_params(time_unit="W", **own_params(case, row))
        assert value == pytest.approx(float(plain.expected_purchases(table.loc[[row.Index]], t).iloc[0]),
                                      rel=1e-12)


# --- (e) likelihood-ratio tests, shared coefficients, the penalty ----------------------------
@pytest.fixture(scope="module")
def pareto_fits():
    case = BY_ID["pareto"]
    table = simulated(case, 1500, seed=8)
    plain = ParetoNBD().fit(table)
    full = fitted(case).fit(table)
    return case, table, plain, full


def test_lr_test_between_nested_fits(pareto_fits):
    case, table, plain, full = pareto_fits
    out = lr_test(plain, full)
    assert out.df == 6  # flag and two channel covariates in each of two processes
    assert out.statistic == pytest.approx(2 * (full.log_likelihood_ - plain.log_likelihood_))
    assert out.p_value < 1e-6  # the simulated effects are real
    flag_only = ParetoNBD(purchase_covariates=["flag"], dropout_covariates=["flag"]).fit(table)
    assert lr_test(flag_only, full).df == 4
    assert lr_test(plain, flag_only).df == 2


def test_lr_test_refuses_what_it_cannot_compare(pareto_fits):
    case, table, plain, full = pareto_fits
    penalised = ParetoNBD(purchase_covariates=["flag", "channel"], dropout_covariates=["flag", "channel"],
                          covariate_penalty=1.0).fit(table)
    with pytest.raises(ClvlabError, match="penalty"):
        lr_test(plain, penalised)
    with pytest.raises(ClvlabError, match="penalty"):
        lr_test(ParetoNBD(penalty=0.01).fit(table), full)
    bayesian = copy.deepcopy(plain).set_params(method="map")
    with pytest.raises(ClvlabError, match="'map'"):
        lr_test(bayesian, full)
    with pytest.raises(ClvlabError, match="one model"):
        lr_test(BetaGeo().fit(table), full)
    one = ParetoNBD(purchase_covariates=["flag"], dropout_covariates=["channel"]).fit(table)
    other = ParetoNBD(purchase_covariates=["channel"], dropout_covariates=["flag"]).fit(table)
    with pytest.raises(ClvlabError, match="does not nest"):
        lr_test(one, other)
    with pytest.raises(ClvlabError, match="does not nest"):
        lr_test(full, plain)
    with pytest.raises(ClvlabError, match="different customers"):
        lr_test(ParetoNBD().fit(table.iloc[:-10]), full)
    with pytest.raises(ClvlabError, match="not fitted"):
        lr_test(ParetoNBD.from_params(time_unit="W", **case.base), full)


def test_lr_test_refuses_different_dropout_forms_only_where_they_differ():
    """A smaller fit without dropout covariates is the same model in either form, so it nests
    the larger one (a new user was refused); with dropout covariates in another form it does
    not."""
    case = BY_ID["bg_b"]
    table = simulated(case, 800, seed=4)
    b_form = fitted(case, ("flag",)).fit(table)
    plain_other_form = BetaGeo(dropout_form="a_and_b").fit(table)
    plain_b = BetaGeo(dropout_form="b").fit(table)
    other = lr_test(plain_other_form, b_form)
    assert other.df == 2 and other.statistic == pytest.approx(lr_test(plain_b, b_form).statistic,
                                                              rel=1e-6, abs=1e-6)
    smaller = fitted(case, ("flag",)).fit(table)
    assert smaller.dropout_covariates
    smaller.set_params(dropout_form="a_and_b")  # its dropout covariates in the other form
    with pytest.raises(ClvlabError, match="fit the smaller model with dropout_form='b'"):
        lr_test(smaller, b_form)


def test_shared_covariates_give_one_coefficient_between_the_two_fits(pareto_fits):
    case, table, plain, _ = pareto_fits
    both = ParetoNBD(purchase_covariates=["flag"], dropout_covariates=["flag"]).fit(table)
    shared = ParetoNBD(purchase_covariates=["flag"], dropout_covariates=["flag"],
                       shared_covariates=["flag"]).fit(table)
    assert list(shared.params_.index) == ["r", "alpha", "s", "beta", "shared.flag"]
    assert list(both.params_.index) == ["r", "alpha", "s", "beta", "purchase.flag", "dropout.flag"]
    assert plain.log_likelihood_ - 1e-6 <= shared.log_likelihood_ <= both.log_likelihood_ + 1e-6
    assert lr_test(plain, shared).df == 1
    assert lr_test(plain, both).df == 2
    # the shared coefficient moves alpha and beta together: its LL is the one of the
    # unconstrained model with both coefficients equal to it
    g = shared.params_["shared.flag"]
    at = ParetoNBD.from_params(time_unit="W", coefficients={"purchase": {"flag": g}, "dropout": {"flag": g}},
                               **shared.params_[list(case.base)].to_dict())
    assert at.log_likelihood(table) == pytest.approx(shared.log_likelihood_, rel=1e-10)


def test_covariate_penalty_shrinks_the_coefficients_only(pareto_fits):
    """At the penalised optimum of LL - P sum(g^2): dLL/dtheta = 0 for the base parameters
    (unpenalised) and dLL/dg = 2 P g for the coefficients (checked by differences of
    ``log_likelihood``), and |g| shrinks. CLVTools minimises -LL/N + lambda sum(g^2) (its
    interlayer_regularization), whose stationary point is the same with lambda = P / N."""
    case, table, _, full = pareto_fits
    P = 50.0
    penalised = fitted(case, covariate_penalty=P).fit(table)
    names = list(penalised.params_.index[4:])
    # (a ridge need not shrink every coefficient of correlated covariates, but their norm)
    assert (penalised.params_[names] ** 2).sum() < 0.8 * (full.params_[names] ** 2).sum()
    base = penalised.params_[list(case.base)].to_dict()
    coefficients = {"purchase": {}, "dropout": {}}
    for name in names:
        process, covariate = name.split(".", 1)
        coefficients[process][covariate] = penalised.params_[name]
    levels = {"channel": penalised.covariates_.encoder.levels["channel"]}

    def ll(base=base, coefficients=coefficients):
        return ParetoNBD.from_params(time_unit="W", coefficients=coefficients, levels=levels,
                                     **base).log_likelihood(table)

    n = len(table)
    for name, theta in base.items():
        h = 1e-6 * theta
        d = (ll({**base, name: theta + h}) - ll({**base, name: theta - h})) / (2 * h)
        assert abs(d * theta) < 1e-3, (name, d)  # no pull on the base parameters
    for name in names:
        process, covariate = name.split(".", 1)
        g, h = coefficients[process][covariate], 1e-5
        up, down = copy.deepcopy(coefficients), copy.deepcopy(coefficients)
        up[process][covariate] += h
        down[process][covariate] -= h
        d = (ll(coefficients=up) - ll(coefficients=down)) / (2 * h)
        assert d == pytest.approx(2 * P * g, rel=1e-3, abs=1e-3), name
        # CLVTools' per-customer objective, -LL/N + (P/N) g'g, is stationary there too
        assert -d / n + 2 * (P / n) * g == pytest.approx(0.0, abs=1e-3 / n)
    assert penalised.params_[list(case.base)].to_numpy() != pytest.approx(
        full.params_[list(case.base)].to_numpy(), rel=1e-6)  # the base adjusts, unpenalised


# --- covariates on one process; Gamma-Gamma on a table with customers without repeats -----
def test_a_model_with_covariates_on_one_process_only_predicts():
    """(Raised KeyError('dropout') until fddf197: the other process keeps the population's.)"""
    case = BY_ID["pareto"]
    table = table_for(case)
    model = ParetoNBD.from_params(time_unit="W", coefficients={"purchase": {"flag": 0.4}}, **case.base)
    ours = model.p_alive(table)
    for row in table.itertuples():
        alpha = case.base["alpha"] * math.exp(-0.4 * row.flag)
        plain = ParetoNBD.from_params(time_unit="W", **{**case.base, "alpha": alpha})
        assert ours[row.Index] == pytest.approx(plain.p_alive(table.loc[[row.Index]]).iloc[0], rel=1e-12)


def test_gamma_gamma_fits_a_table_with_customers_without_repeats():
    """(Raised a raw numpy ValueError until GammaGamma.fit kept the covariates' rows to the
    repeat customers without weights too.)"""
    case = BY_ID["gamma_gamma"]
    table = simulated(case, 300, seed=5)
    assert (table["frequency"] == 0).any()
    unweighted = GammaGamma(spend_covariates=["flag", "channel"]).fit(table)
    weighted = GammaGamma(spend_covariates=["flag", "channel"]).fit(table, weights=np.ones(len(table)))
    assert unweighted.log_likelihood_ == pytest.approx(weighted.log_likelihood_, rel=1e-10)
