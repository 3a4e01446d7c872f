"""Simulators with per-customer parameters, and customer bases drawn from covariates (issue 22).

The covariate effects are checked against the documented forms (parameter_i = parameter *
exp(sign * x_i' g)) through closed-form group means of the latent columns, and, where the data
show it directly, of observable ones.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from clvlab import ClvlabError, simulate

PARETO = dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)
BG = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
SPEND = dict(p=6.25, q=3.74, v=15.44)
SBG = dict(alpha=0.7, beta=1.2)
BG_BB = dict(alpha=1.2, beta=0.75, gamma=0.66, delta=2.78)
N = 200_000


def assert_mean(sample, expected: float, what: str, sigmas: float = 5.0) -> None:
    """The sample mean is within ``sigmas`` standard errors of ``expected``."""
    sample = np.asarray(sample, dtype=np.float64)
    error = sigmas * sample.std(ddof=1) / np.sqrt(sample.size)
    assert abs(sample.mean() - expected) < error, (
        f"{what}: mean {sample.mean():.6g}, expected {expected:.6g} +- {error:.2g}")


def groups(table: pd.DataFrame, *covariates: str):
    for key, group in table.groupby(list(covariates)):
        yield dict(zip(covariates, key)), group


def test_pareto_nbd_purchase_and_dropout_rates_move_as_documented():
    purchase, dropout = {"gender": 0.5, "channel": -0.3}, {"channel": 0.4}
    table = simulate.with_covariates("pareto-nbd", N, params=PARETO, T=39.0, seed=11,
                                     coefficients={"purchase": purchase, "dropout": dropout})
    for x, group in groups(table, "gender", "channel"):
        alpha_i = PARETO["alpha"] * np.exp(-(0.5 * x["gender"] - 0.3 * x["channel"]))
        beta_i = PARETO["beta"] * np.exp(-0.4 * x["channel"])
        assert_mean(group["lambda_"], PARETO["r"] / alpha_i, f"lambda_ at {x}")
        assert_mean(group["mu_"], PARETO["s"] / beta_i, f"mu_ at {x}")
        # observable: P(alive at T) = (beta_i / (beta_i + T))^s
        assert_mean(group["alive"], (beta_i / (beta_i + 39.0)) ** PARETO["s"], f"alive at {x}")
    by_gender = table.groupby("gender")["lambda_"].mean()
    assert by_gender[1] / by_gender[0] == pytest.approx(np.exp(0.5), rel=0.05)  # more purchasing
    by_channel = table.groupby("channel")["mu_"].mean()
    assert by_channel[1] / by_channel[0] == pytest.approx(np.exp(0.4), rel=0.05)  # faster dropout


@pytest.mark.parametrize("model", ["bg-nbd", "mbg-nbd"])
def test_beta_geometric_dropout_form_b_moves_the_mean_dropout_probability(model):
    table = simulate.with_covariates(model, N, params=BG, T=39.0, seed=12, dropout_form="b",
                                     coefficients={"purchase": {"gender": -0.4},
                                                   "dropout": {"channel": 0.6}})
    for x, group in groups(table, "gender", "channel"):
        alpha_i = BG["alpha"] * np.exp(0.4 * x["gender"])
        b_i = BG["b"] * np.exp(-0.6 * x["channel"])
        assert_mean(group["lambda_"], BG["r"] / alpha_i, f"lambda_ at {x}")
        assert_mean(group["p_"], BG["a"] / (BG["a"] + b_i), f"p_ at {x}")
    assert table.groupby("channel")["p_"].mean()[1] > table.groupby("channel")["p_"].mean()[0]


@pytest.mark.parametrize("model", ["bg-nbd", "mbg-nbd"])
def test_beta_geometric_dropout_form_a_and_b_keeps_the_mean_and_changes_the_spread(model):
    table = simulate.with_covariates(model, N, params=BG, T=39.0, seed=13,
                                     coefficients={"dropout": {"channel": 1.0}})
    mean = BG["a"] / (BG["a"] + BG["b"])
    for channel, group in table.groupby("channel"):
        a_i, b_i = BG["a"] * np.exp(channel), BG["b"] * np.exp(channel)
        assert_mean(group["p_"], mean, f"p_ at channel={channel}")
        variance = a_i * b_i / ((a_i + b_i) ** 2 * (a_i + b_i + 1))
        assert_mean((group["p_"] - mean) ** 2, variance, f"variance of p_ at channel={channel}")
        assert_mean(group["lambda_"], BG["r"] / BG["alpha"], f"lambda_ at channel={channel}")


def test_gamma_gamma_mean_spend_moves_as_documented():
    frequency = np.random.default_rng(0).integers(0, 6, N)
    table = simulate.with_covariates("gamma-gamma", N, params=SPEND, frequency=frequency, seed=14,
                                     coefficients={"spend": {"premium": 0.7, "region": -0.2}})
    np.testing.assert_array_equal(table["frequency"], frequency)
    for x, group in groups(table, "premium", "region"):
        v_i = SPEND["v"] * np.exp(0.7 * x["premium"] - 0.2 * x["region"])
        expected = SPEND["p"] * v_i / (SPEND["q"] - 1)
        assert_mean(group["mean_spend_"], expected, f"mean_spend_ at {x}")
        buyers = group[group["frequency"] > 0]
        assert_mean(buyers["monetary_value"], expected, f"monetary_value at {x}")


def test_shifted_beta_geometric_churn_moves_as_documented():
    table = simulate.with_covariates("sbg", N, params=SBG, periods=6, seed=15,
                                     coefficients={"dropout": {"monthly": 0.8}})
    for monthly, group in table.groupby("monthly"):
        churn = SBG["alpha"] / (SBG["alpha"] + SBG["beta"] * np.exp(-0.8 * monthly))
        assert_mean(group["theta_"], churn, f"theta_ at monthly={monthly}")
        # observable: the share churning in the first period is E[theta]
        assert_mean(group["churned"] & (group["duration"] == 1), churn, f"first-period churn at {monthly}")


def test_bg_bb_purchase_and_dropout_probabilities_move_as_documented():
    table = simulate.with_covariates("bg-bb", N, params=BG_BB, periods=6, seed=16,
                                     coefficients={"purchase": {"app": 0.5}, "dropout": {"app": -0.7}})
    for app, group in table.groupby("app"):
        beta_i = BG_BB["beta"] * np.exp(-0.5 * app)
        delta_i = BG_BB["delta"] * np.exp(0.7 * app)
        assert_mean(group["p_"], BG_BB["alpha"] / (BG_BB["alpha"] + beta_i), f"p_ at app={app}")
        assert_mean(group["theta_"], BG_BB["gamma"] / (BG_BB["gamma"] + delta_i), f"theta_ at app={app}")


# each simulator on 500 customers, with its other arguments, and scalar parameters
SIMULATORS = {
    "pareto-nbd": (partial(simulate.pareto_nbd, 500, T=30.0, T_holdout=10.0), PARETO),
    "bg-nbd": (partial(simulate.bg_nbd, 500, T=30.0, T_holdout=10.0), BG),
    "mbg-nbd": (partial(simulate.mbg_nbd, 500, T=30.0), BG),
    "gamma-gamma": (partial(simulate.gamma_gamma_spend, np.arange(500) % 7), SPEND),
    "sbg": (partial(simulate.shifted_beta_geometric, 500, periods=8), SBG),
    "bg-bb": (partial(simulate.bg_bb, 500, periods=6, periods_holdout=3), BG_BB),
}


@pytest.mark.parametrize("model", list(SIMULATORS))
def test_per_customer_parameters_equal_to_the_scalar_give_the_same_draws(model):
    simulator, params = SIMULATORS[model]
    scalar = simulator(seed=7, **params)
    arrays = simulator(seed=7, **{name: np.full(500, value) for name, value in params.items()})
    pd.testing.assert_frame_equal(arrays, scalar)
    # and an array is used customer by customer: doubling one customer's rate changes that customer
    name = next(iter(params))
    varied = np.full(500, params[name])
    varied[3] *= 2.0
    changed = simulator(seed=7, **{**params, name: varied})
    different = ~(changed == scalar).all(axis=1).to_numpy()
    assert different[3]


@pytest.mark.parametrize("model,name", [("pareto-nbd", "alpha"), ("bg-nbd", "b"), ("mbg-nbd", "r"),
                                        ("gamma-gamma", "v"), ("sbg", "beta"), ("bg-bb", "delta")])
@pytest.mark.parametrize("bad,message", [
    (np.full(499, 1.0), "must be a scalar or one value per customer"),
    (np.full((500, 1), 1.0), "must be a scalar or one value per customer"),
    (np.where(np.arange(500) == 9, 0.0, 1.0), "must be finite and > 0 for every customer"),
    (np.where(np.arange(500) == 9, -1.0, 1.0), "must be finite and > 0 for every customer"),
    (np.where(np.arange(500) == 9, np.nan, 1.0), "must be finite and > 0 for every customer"),
    (np.where(np.arange(500) == 9, np.inf, 1.0), "must be finite and > 0 for every customer"),
])
def test_bad_per_customer_parameters_are_errors_naming_the_parameter(model, name, bad, message):
    simulator, params = SIMULATORS[model]
    with pytest.raises(ClvlabError, match=f"parameter {name} {message}"):
        simulator(seed=1, **{**params, name: bad})


ZERO = {"pareto-nbd": ({"purchase": {"x": 0.0}, "dropout": {"x": 0.0}}, PARETO, {"T": 30.0}),
        "bg-nbd": ({"purchase": {"x": 0.0}, "dropout": {"x": 0.0}}, BG, {"T": 30.0, "T_holdout": 5.0}),
        "mbg-nbd": ({"dropout": {"x": 0.0}}, BG, {"T": 30.0}),
        "gamma-gamma": ({"spend": {"x": 0.0}}, SPEND, {}),
        "sbg": ({"dropout": {"x": 0.0}}, SBG, {"periods": 8}),
        "bg-bb": ({"purchase": {"x": 0.0}, "dropout": {"x": 0.0}}, BG_BB, {"periods": 6})}


@pytest.mark.parametrize("model", list(ZERO))
def test_zero_coefficients_reproduce_the_plain_simulator(model):
    coefficients, params, options = ZERO[model]
    attributes = pd.DataFrame({"x": np.arange(300) % 3}, index=pd.Index(np.arange(300) * 10, name="id"))
    if model == "gamma-gamma":
        options = {"frequency": np.arange(300) % 5}
    table = simulate.with_covariates(model, 300, params=params, coefficients=coefficients,
                                     attributes=attributes, seed=21, **options)
    plain = {"pareto-nbd": simulate.pareto_nbd, "bg-nbd": simulate.bg_nbd, "mbg-nbd": simulate.mbg_nbd,
             "sbg": simulate.shifted_beta_geometric, "bg-bb": simulate.bg_bb}
    if model == "gamma-gamma":
        expected = simulate.gamma_gamma_spend(options["frequency"], seed=21, **params)
        expected.insert(0, "frequency", options["frequency"])
    else:
        expected = plain[model](300, seed=21, **params, **options)
    expected.index = attributes.index
    expected["x"] = attributes["x"]
    pd.testing.assert_frame_equal(table, expected)


def test_zero_coefficients_with_drawn_attributes_keep_the_plain_distribution():
    table = simulate.with_covariates("pareto-nbd", N, params=PARETO, T=39.0, seed=22,
                                     coefficients={"purchase": {"a": 0.0}, "dropout": {"b": 0.0}})
    plain = simulate.pareto_nbd(N, **PARETO, T=39.0, seed=23)
    expected = PARETO["r"] * PARETO["beta"] / (PARETO["alpha"] * (PARETO["s"] - 1)) * (
        1 - (PARETO["beta"] / (PARETO["beta"] + 39.0)) ** (PARETO["s"] - 1))
    for column, target in [("frequency", expected), ("lambda_", PARETO["r"] / PARETO["alpha"])]:
        assert_mean(table[column], target, column)
        assert_mean(plain[column], target, f"plain {column}")
    for _, group in groups(table, "a", "b"):
        assert_mean(group["lambda_"], PARETO["r"] / PARETO["alpha"], "lambda_ by group")


def test_default_attributes_are_fair_coins_and_reproducible():
    coefficients = {"purchase": {"gender": 0.5, "channel": -0.3}, "dropout": {"channel": 0.4}}
    first = simulate.with_covariates("pareto-nbd", 20_000, params=PARETO, coefficients=coefficients,
                                     T=10.0, seed=5)
    assert list(first.columns[-2:]) == ["gender", "channel"]
    assert first.index.equals(pd.RangeIndex(20_000, name="customer_id"))
    for name in ("gender", "channel"):
        assert set(first[name].unique()) == {0, 1}
        assert_mean(first[name], 0.5, name)
    assert abs(np.corrcoef(first["gender"], first["channel"])[0, 1]) < 0.03
    pd.testing.assert_frame_equal(first, simulate.with_covariates(
        "pareto-nbd", 20_000, params=PARETO, coefficients=coefficients, T=10.0, seed=5))
    other = simulate.with_covariates("pareto-nbd", 20_000, params=PARETO, coefficients=coefficients,
                                     T=10.0, seed=6)
    assert not first["gender"].equals(other["gender"])


def test_given_attributes_are_joined_on_their_index():
    attributes = pd.DataFrame({"age": np.linspace(-1, 1, 50), "label": list("ab") * 25},
                              index=pd.Index([f"c{i}" for i in range(50)], name="customer"))
    table = simulate.with_covariates("sbg", 50, params=SBG, coefficients={"dropout": {"age": 1.0}},
                                     attributes=attributes, periods=4, seed=1)
    assert table.index.equals(attributes.index)
    pd.testing.assert_frame_equal(table[["age", "label"]], attributes)


@pytest.mark.parametrize("call,message", [
    (dict(model="pnbd"), "unknown model 'pnbd'"),
    (dict(params={"r": 1.0}), r"params of pareto-nbd must be exactly \['r', 'alpha', 's', 'beta'\]"),
    (dict(coefficients={"spend": {"x": 1.0}}), r"not on \['spend'\]"),
    (dict(coefficients={"purchase": {"x": np.nan}}), "coefficients must be finite"),
    (dict(dropout_form="b"), "dropout_form is a setting of bg-nbd and mbg-nbd only"),
    (dict(model="bg-nbd", params=BG, dropout_form="a"), "dropout_form must be one of"),
    (dict(attributes=pd.DataFrame({"y": np.zeros(100)})), r"covariates \['x'\] have coefficients"),
    (dict(attributes=pd.DataFrame({"x": np.zeros(99)})), "one row per customer"),
    (dict(attributes=pd.DataFrame({"x": ["m"] * 100})), "covariate 'x' must be numeric"),
    (dict(attributes=pd.DataFrame({"x": [np.nan] * 100})), "covariate 'x' must be finite"),
    (dict(attributes=pd.DataFrame({"x": np.zeros(100), "T": np.ones(100)})), r"columns \['T'\] clash"),
    (dict(coefficients={"purchase": {"x": 800.0}}, attributes=pd.DataFrame({"x": np.ones(100)})),
     "parameter alpha must be finite and > 0 for every customer"),
    (dict(model="gamma-gamma", params=SPEND, coefficients={}, T=None), "gamma-gamma needs frequency="),
    (dict(model="gamma-gamma", params=SPEND, coefficients={}, T=None, frequency=np.ones(3)),
     "frequency must hold one count per customer"),
])
def test_with_covariates_rejects_bad_calls(call, message):
    arguments = dict(model="pareto-nbd", n_customers=100, params=PARETO,
                     coefficients={"purchase": {"x": 1.0}}, T=10.0, seed=1)
    arguments.update(call)
    if arguments["T"] is None:
        del arguments["T"]
    with pytest.raises(ClvlabError, match=message):
        simulate.with_covariates(**arguments)
