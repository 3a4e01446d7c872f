"""Simulated customer bases and transaction logs from the BG/NBD and Pareto/NBD processes.

Everything is vectorised over customers, so a million customers take seconds. Two levels:

- :func:`bg_nbd` and :func:`pareto_nbd` draw RFM summaries (with holdout counts and the latent
  rates) directly from the process, without materialising transactions. Recency is drawn from
  the exact distribution of the last event time, so these are exact draws of what
  ``rfm_summary`` would report for continuous-time purchases.
- :func:`mbg_nbd` (MBG/NBD), :func:`bg_bb` (discrete purchase opportunities) and
  :func:`shifted_beta_geometric` (contract durations) do the same for the other models.
- Every parameter of these may be one value per customer instead of one for all;
  :func:`with_covariates` uses that to draw customers whose parameters depend on covariates
  through known coefficients (the forms in ``COVARIATE_LINKS``), for recovery tests.
- :func:`transaction_log` draws a timestamped log, with Gamma-Gamma spend, for testing the data
  layer, backtests and benchmarks at any scale.

Parameterisation (as in the papers and in clvlab's models): purchase rate lambda ~ Gamma(r, rate
alpha); BG/NBD dropout probability after each repeat purchase p ~ Beta(a, b); Pareto/NBD dropout
rate mu ~ Gamma(s, rate beta); Gamma-Gamma spend per transaction ~ Gamma(p, rate nu) with
nu ~ Gamma(q, rate v), so the mean spend of a customer is p / nu.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import unit_seconds
from clvlab.data.tables import accepts_tables

#: a model parameter: one value for every customer, or a 1-D array of one value per customer
Parameter = ArrayLike

__all__ = ["LOG_MODEL_EXAMPLES", "bg_nbd", "mbg_nbd", "pareto_nbd", "bg_bb", "shifted_beta_geometric",
           "gamma_gamma_spend", "COVARIATE_LINKS", "BG_DROPOUT_FORMS", "covariate_links",
           "with_covariates", "transaction_log", "segmented_transaction_log"]

#: the processes ``transaction_log`` draws from, each with CDNOW-like example parameters (the
#: command line's defaults); these names are the model registry's names for the same models.
LOG_MODEL_EXAMPLES = {"pareto-nbd": {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7},
                      "bg-nbd": {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.43}}


def bg_nbd(n_customers: int, *, r: Parameter, alpha: Parameter, a: Parameter, b: Parameter,
           T: Any, T_holdout: float | None = None, seed: Any = None) -> pd.DataFrame:
    """Draw an RFM table from the BG/NBD process.

    ``T`` is the age of each customer at the calibration end (a scalar or one value per
    customer); ``T_holdout`` the length of a holdout period (adds ``frequency_holdout`` and
    ``duration_holdout``). Latent columns: ``lambda_`` (purchase rate), ``p_`` (dropout
    probability), ``alive`` (at the calibration end) and, with a holdout, ``alive_end``.

    Parameters
    ----------
    n_customers : int
        Customers to draw.
    r, alpha : float or array-like
        The purchase rate's Gamma(r, rate alpha): one value (> 0) for every customer, or one per
        customer.
    a, b : float or array-like
        The dropout probability's Beta(a, b): one value (> 0) for every customer, or one per
        customer.
    T : float or array-like
        Each customer's age at the calibration end, in time units (> 0): a scalar or one per
        customer.
    T_holdout : float, optional
        The length of a holdout period (None: no holdout columns).
    seed : int, numpy.random.Generator or None, optional
        Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.

    Returns
    -------
    pandas.DataFrame
        ``frequency``, ``recency``, ``T``, the latent columns and, with a holdout,
        ``frequency_holdout`` and ``duration_holdout``.

    Raises
    ------
    ClvlabError
        Where a parameter is not finite and > 0 or has the wrong shape, or ``T`` is not finite
        and > 0.
    """
    return _beta_geometric_nbd(n_customers, r, alpha, a, b, T, T_holdout, seed, first_chance=0)


def mbg_nbd(n_customers: int, *, r: Parameter, alpha: Parameter, a: Parameter, b: Parameter,
            T: Any, T_holdout: float | None = None, seed: Any = None) -> pd.DataFrame:
    """Draw an RFM table from the MBG/NBD process: as ``bg_nbd``, but a customer may also drop
    out right after the first purchase (with the same probability p).

    Parameters
    ----------
    n_customers : int
        Customers to draw.
    r, alpha : float or array-like
        The purchase rate's Gamma(r, rate alpha): one value (> 0) for every customer, or one per
        customer.
    a, b : float or array-like
        The dropout probability's Beta(a, b): one value (> 0) for every customer, or one per
        customer.
    T : float or array-like
        Each customer's age at the calibration end, in time units (> 0): a scalar or one per
        customer.
    T_holdout : float, optional
        The length of a holdout period (None: no holdout columns).
    seed : int, numpy.random.Generator or None, optional
        Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`bg_nbd`.

    Raises
    ------
    ClvlabError
        Where a parameter is not finite and > 0 or has the wrong shape, or ``T`` is not finite
        and > 0.
    """
    return _beta_geometric_nbd(n_customers, r, alpha, a, b, T, T_holdout, seed, first_chance=1)


def _beta_geometric_nbd(n_customers, r, alpha, a, b, T, T_holdout, seed, first_chance: int):
    r, alpha, a, b = _parameters((n_customers,), r=r, alpha=alpha, a=a, b=b).values()
    rng = np.random.default_rng(seed)
    T = _ages(T, n_customers)
    lam = rng.gamma(r, 1.0 / alpha, n_customers)
    p = rng.beta(a, b, n_customers)
    # A customer drops out right after the D-th repeat purchase, D ~ Geometric(p) on {1, 2, ...}
    # (BG/NBD), or on {0, 1, ...} when the first purchase also carries a chance (MBG/NBD).
    dropout_after = rng.geometric(np.clip(p, 1e-300, 1.0)) - first_chance
    events = rng.poisson(lam * T)
    frequency = np.minimum(events, dropout_after)
    frame = _rfm_frame(frequency, _last_of_uniform_events(rng, frequency, events, T), T)
    frame["lambda_"], frame["p_"], frame["alive"] = lam, p, events < dropout_after
    if T_holdout is not None:
        events_holdout = rng.poisson(lam * T_holdout)
        remaining = np.where(frame["alive"], dropout_after - frequency, 0)
        frame["frequency_holdout"] = np.minimum(events_holdout, remaining)
        frame["duration_holdout"] = float(T_holdout)
        frame["alive_end"] = events + events_holdout < dropout_after
    return frame


def pareto_nbd(n_customers: int, *, r: Parameter, alpha: Parameter, s: Parameter,
               beta: Parameter, T: Any, T_holdout: float | None = None,
               seed: Any = None) -> pd.DataFrame:
    """Draw an RFM table from the Pareto/NBD process.

    Arguments as in :func:`bg_nbd`. Latent columns: ``lambda_``, ``mu_`` (dropout rate),
    ``lifetime_`` (time of dropout after acquisition), ``alive`` and, with a holdout,
    ``alive_end``.

    Parameters
    ----------
    n_customers : int
        Customers to draw.
    r, alpha : float or array-like
        The purchase rate's Gamma(r, rate alpha): one value (> 0) for every customer, or one per
        customer.
    s, beta : float or array-like
        The dropout rate's Gamma(s, rate beta): one value (> 0) for every customer, or one per
        customer.
    T : float or array-like
        Each customer's age at the calibration end, in time units (> 0): a scalar or one per
        customer.
    T_holdout : float, optional
        The length of a holdout period (None: no holdout columns).
    seed : int, numpy.random.Generator or None, optional
        Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.

    Returns
    -------
    pandas.DataFrame
        ``frequency``, ``recency``, ``T``, the latent columns and, with a holdout,
        ``frequency_holdout`` and ``duration_holdout``.

    Raises
    ------
    ClvlabError
        Where a parameter is not finite and > 0 or has the wrong shape, or ``T`` is not finite
        and > 0.
    """
    r, alpha, s, beta = _parameters((n_customers,), r=r, alpha=alpha, s=s, beta=beta).values()
    rng = np.random.default_rng(seed)
    T = _ages(T, n_customers)
    lam = rng.gamma(r, 1.0 / alpha, n_customers)
    mu = rng.gamma(s, 1.0 / beta, n_customers)
    lifetime = rng.exponential(1.0 / np.maximum(mu, 1e-300))
    active = np.minimum(lifetime, T)
    frequency = rng.poisson(lam * active)
    # The last of x uniform event times on [0, active] is active * Beta(x, 1).
    recency = np.where(frequency > 0, active * rng.beta(np.maximum(frequency, 1), 1.0), 0.0)
    frame = _rfm_frame(frequency, recency, T)
    frame["lambda_"], frame["mu_"], frame["lifetime_"] = lam, mu, lifetime
    frame["alive"] = lifetime > T
    if T_holdout is not None:
        active_holdout = np.clip(lifetime - T, 0.0, T_holdout)
        frame["frequency_holdout"] = rng.poisson(lam * active_holdout)
        frame["duration_holdout"] = float(T_holdout)
        frame["alive_end"] = lifetime > T + T_holdout
    return frame


def bg_bb(n_customers: int, *, alpha: Parameter, beta: Parameter, gamma: Parameter,
          delta: Parameter, periods: Any, periods_holdout: int | None = None,
          seed: Any = None) -> pd.DataFrame:
    """Draw a discrete-time summary from the BG/BB process (Fader, Hardie & Shang 2010).

    After the first purchase (opportunity 0) a customer has ``periods`` purchase opportunities
    (a scalar or one whole number per customer). Before each one an alive customer dies with
    probability theta ~ Beta(gamma, delta); at each one an alive customer buys with probability
    p ~ Beta(alpha, beta). Returns ``frequency`` (opportunities with a purchase), ``recency``
    (the last of them, 0 without any), ``periods``; latent ``p_``, ``theta_``, ``alive`` (at
    the last opportunity); with ``periods_holdout`` also ``frequency_holdout``.

    Parameters
    ----------
    n_customers : int
        Customers to draw.
    alpha, beta : float or array-like
        The purchase probability's Beta(alpha, beta): one value (> 0) for every customer, or one
        per customer.
    gamma, delta : float or array-like
        The dropout probability's Beta(gamma, delta): one value (> 0) for every customer, or one
        per customer.
    periods : int or array-like of int
        Opportunities after the first purchase (whole numbers >= 1).
    periods_holdout : int, optional
        Opportunities in a holdout after them (None: no holdout column).
    seed : int, numpy.random.Generator or None, optional
        Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.

    Returns
    -------
    pandas.DataFrame
        The columns above.

    Raises
    ------
    ClvlabError
        Where a parameter is not finite and > 0, or ``periods`` are not whole numbers >= 1.
    """
    alpha, beta, gamma, delta = _parameters((n_customers,), alpha=alpha, beta=beta, gamma=gamma,
                                            delta=delta).values()
    n = np.broadcast_to(np.asarray(periods), (n_customers,)).astype(np.int64)
    if np.any(n < 1) or not np.array_equal(n, np.broadcast_to(np.asarray(periods), n.shape)):
        raise ClvlabError("periods must be whole numbers >= 1")
    rng = np.random.default_rng(seed)
    p = rng.beta(alpha, beta, n_customers)
    theta = rng.beta(gamma, delta, n_customers)
    # opportunities survived: L ~ Geometric(theta) - 1, so P(L >= k) = (1 - theta)^k
    survived = rng.geometric(np.clip(theta, 1e-300, 1.0)) - 1
    frequency = np.zeros(n_customers, dtype=np.int64)
    recency = np.zeros(n_customers, dtype=np.int64)
    for t in range(1, int(n.max()) + 1):  # one pass per opportunity, vectorised over customers
        buys = (t <= survived) & (t <= n) & (rng.random(n_customers) < p)
        frequency += buys
        recency = np.where(buys, t, recency)
    frame = pd.DataFrame({"frequency": frequency, "recency": recency, "periods": n})
    frame.index.name = "customer_id"
    frame["p_"], frame["theta_"], frame["alive"] = p, theta, survived >= n
    if periods_holdout is not None:
        alive_in_holdout = np.clip(survived - n, 0, int(periods_holdout))
        frame["frequency_holdout"] = rng.binomial(alive_in_holdout, p)
        frame["periods_holdout"] = int(periods_holdout)
    return frame


def shifted_beta_geometric(n_customers: int, *, alpha: Parameter, beta: Parameter, periods: Any,
                           seed: Any = None) -> pd.DataFrame:
    """Draw contract lifetimes from the shifted-beta-geometric model (Fader & Hardie 2007).

    Each customer churns at the end of period k with probability theta ~ Beta(alpha, beta)
    (given they reached it); observation stops after ``periods`` (a scalar or one per
    customer). Returns ``duration`` (the period of churn, or ``periods`` when still active) and
    ``churned``, with the latent ``theta_`` and ``lifetime_`` (the period of churn, uncensored).

    Parameters
    ----------
    n_customers : int
        Customers to draw.
    alpha, beta : float or array-like
        The churn probability's Beta(alpha, beta): one value (> 0) for every customer, or one
        per customer.
    periods : int or array-like of int
        Periods observed (whole numbers >= 1).
    seed : int, numpy.random.Generator or None, optional
        Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.

    Returns
    -------
    pandas.DataFrame
        ``duration``, ``churned``, ``theta_``, ``lifetime_``.

    Raises
    ------
    ClvlabError
        Where a parameter is not finite and > 0, or ``periods`` are not whole numbers >= 1.
    """
    alpha, beta = _parameters((n_customers,), alpha=alpha, beta=beta).values()
    n = np.broadcast_to(np.asarray(periods), (n_customers,)).astype(np.int64)
    if np.any(n < 1):
        raise ClvlabError("periods must be whole numbers >= 1")
    rng = np.random.default_rng(seed)
    theta = rng.beta(alpha, beta, n_customers)
    lifetime = rng.geometric(np.clip(theta, 1e-300, 1.0))
    frame = pd.DataFrame({"duration": np.minimum(lifetime, n), "churned": lifetime <= n})
    frame.index.name = "customer_id"
    frame["theta_"], frame["lifetime_"] = theta, lifetime
    return frame


def gamma_gamma_spend(frequency: Any, *, p: Parameter, q: Parameter, v: Parameter,
                      seed: Any = None) -> pd.DataFrame:
    """Draw each customer's mean spend over ``frequency`` transactions from the Gamma-Gamma model.

    Returns ``monetary_value`` (0 where frequency is 0) and the latent mean spend ``mean_spend_``
    (p / nu). The mean of x Gamma(p, nu) values is Gamma(p x, x nu).

    Parameters
    ----------
    frequency : array-like of int
        Each customer's number of transactions.
    p, q, v : float or array-like
        Spend per transaction ~ Gamma(p, rate nu), nu ~ Gamma(q, rate v): one value (> 0) for
        every customer, or one per customer.
    seed : int, numpy.random.Generator or None, optional
        Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.

    Returns
    -------
    pandas.DataFrame
        ``monetary_value`` and ``mean_spend_``, one row per customer.

    Raises
    ------
    ClvlabError
        Where a parameter is not finite and > 0.
    """
    x = np.asarray(frequency, dtype=np.int64)
    p, q, v = _parameters(x.shape, p=p, q=q, v=v).values()
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1.0 / v, x.shape)
    safe_x = np.maximum(x, 1)
    zbar = rng.gamma(p * safe_x, 1.0 / (safe_x * nu))
    return pd.DataFrame({"monetary_value": np.where(x > 0, zbar, 0.0), "mean_spend_": p / nu})


# How covariates move each model's parameters (issue 22); the one place the forms are written.
# {parameter: (process, sign)} means parameter_i = parameter * exp(sign * x_i' g), g being the
# coefficients of that process. The signs make a positive purchase coefficient mean more
# purchasing, a positive dropout coefficient faster dropout, a positive spend coefficient more
# spend: alpha, beta (Pareto/NBD, sBG, BG/BB) and delta divide their means, so they get -1; the
# Gamma-Gamma scale v multiplies the mean spend p v / (q - 1), so it gets +1.

#: BG/NBD's and MBG/NBD's two dropout forms, {form: {parameter: (process, sign)}}.
BG_DROPOUT_FORMS = {
    # CLVTools' form: a and b scale together, which keeps the mean a/(a+b) and changes the spread
    "a_and_b": {"a": ("dropout", +1), "b": ("dropout", +1)},
    # b alone: the mean dropout probability a/(a+b_i) rises with a positive coefficient
    "b": {"b": ("dropout", -1)},
}
#: {model (registry name): {parameter: (process, sign)}}; BG/NBD and MBG/NBD in their default
#: dropout form ("a_and_b"), see :func:`covariate_links` for the other.
COVARIATE_LINKS = {
    "pareto-nbd": {"alpha": ("purchase", -1), "beta": ("dropout", -1)},  # CLVTools' form
    "bg-nbd": {"alpha": ("purchase", -1), **BG_DROPOUT_FORMS["a_and_b"]},
    "mbg-nbd": {"alpha": ("purchase", -1), **BG_DROPOUT_FORMS["a_and_b"]},
    "gamma-gamma": {"v": ("spend", +1)},
    "sbg": {"beta": ("dropout", -1)},
    "bg-bb": {"beta": ("purchase", -1), "delta": ("dropout", -1)},
}
#: each model's simulator and parameters, in the simulator's order
_SIMULATORS = {"pareto-nbd": (pareto_nbd, ("r", "alpha", "s", "beta")),
               "bg-nbd": (bg_nbd, ("r", "alpha", "a", "b")),
               "mbg-nbd": (mbg_nbd, ("r", "alpha", "a", "b")),
               "gamma-gamma": (gamma_gamma_spend, ("p", "q", "v")),
               "sbg": (shifted_beta_geometric, ("alpha", "beta")),
               "bg-bb": (bg_bb, ("alpha", "beta", "gamma", "delta"))}


def covariate_links(model: str, dropout_form: str = "a_and_b") -> dict[str, tuple[str, int]]:
    """``{parameter: (process, sign)}`` of ``model`` (a registry name): its ``COVARIATE_LINKS``,
    with BG/NBD's and MBG/NBD's dropout part in ``dropout_form`` ("a_and_b" or "b").

    Parameters
    ----------
    model : str
        A registry name (``"pareto-nbd"``, ``"bg-nbd"``, ``"mbg-nbd"``, ``"gamma-gamma"``,
        ``"sbg"``, ``"bg-bb"``).
    dropout_form : {"a_and_b", "b"}, default "a_and_b"
        BG/NBD's and MBG/NBD's form of the dropout covariates.

    Returns
    -------
    dict of str to tuple of (str, int)
        Parameter -> (process, sign).

    Raises
    ------
    ClvlabError
        Where the model is unknown, or ``dropout_form`` is unknown or given for another model.
    """
    if model not in COVARIATE_LINKS:
        raise ClvlabError(f"unknown model {model!r}; use one of {list(COVARIATE_LINKS)}")
    if dropout_form not in BG_DROPOUT_FORMS:
        raise ClvlabError(f"dropout_form must be one of {list(BG_DROPOUT_FORMS)}, got {dropout_form!r}")
    links = COVARIATE_LINKS[model]
    if model in ("bg-nbd", "mbg-nbd"):
        return {"alpha": links["alpha"], **BG_DROPOUT_FORMS[dropout_form]}
    if dropout_form != "a_and_b":
        raise ClvlabError(f"dropout_form is a setting of bg-nbd and mbg-nbd only, not of {model!r}")
    return dict(links)


@accepts_tables("attributes")
def with_covariates(model: str, n_customers: int, *, params: dict[str, float],
                    coefficients: dict[str, dict[str, float]], attributes: pd.DataFrame | None = None,
                    seed: Any = None, dropout_form: str = "a_and_b", **options: Any) -> pd.DataFrame:
    """Draw a customer base whose parameters depend on covariates through known coefficients.

    ``model`` is a registry name ("pareto-nbd", "bg-nbd", "mbg-nbd", "gamma-gamma", "sbg",
    "bg-bb"); ``params`` its population parameters (those of a customer whose covariates are
    all 0); ``coefficients`` maps a process to {covariate: coefficient}, e.g. ``{"purchase":
    {"gender": 0.5}, "dropout": {"channel": 0.4}}`` ("spend" for gamma-gamma). Each customer's
    parameters follow ``covariate_links(model, dropout_form)``. ``attributes`` holds the
    covariates, numeric columns with one row per customer; by default every named covariate
    is drawn as an independent 0/1 column with probability 0.5. ``options`` go to the model's
    simulator (``T``, ``T_holdout``; ``periods``, ``periods_holdout``; for gamma-gamma the
    required ``frequency``, one count per customer).

    Returns the simulator's table (with ``frequency`` for gamma-gamma) and the attribute
    columns beside it, on the attributes' index. ``seed`` makes the attributes and the draws
    reproducible.

    Parameters
    ----------
    model : str
        A registry name (above).
    n_customers : int
        Customers to draw.
    params : dict of str to float
        The population parameters.
    coefficients : dict of str to dict of str to float
        Process -> {covariate: coefficient}.
    attributes : pandas or polars DataFrame or pyarrow Table, optional
        The covariates, one numeric row per customer (None: drawn as 0/1 columns): a pandas or
        polars DataFrame or a pyarrow Table (:mod:`clvlab.data.tables`).
    seed : int, numpy.random.Generator or None, optional
        Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.
    dropout_form : {"a_and_b", "b"}, default "a_and_b"
        BG/NBD's and MBG/NBD's form of the dropout covariates.
    **options
        The model simulator's further arguments (above).

    Returns
    -------
    pandas.DataFrame
        The simulator's table and the attribute columns (a pandas DataFrame whatever the
        kind of ``attributes``).

    Raises
    ------
    ClvlabError
        Where ``params`` are not the model's, a process takes no covariates, a coefficient is not
        finite, ``attributes`` lack a covariate or hold one that is not numeric and finite, or
        gamma-gamma comes without ``frequency``.
    """
    links = covariate_links(model, dropout_form)
    simulator, names = _SIMULATORS[model]
    if set(params) != set(names):
        raise ClvlabError(f"params of {model} must be exactly {list(names)}, got {sorted(params)}")
    processes = {process for process, _ in links.values()}
    unknown = set(coefficients) - processes
    if unknown:
        raise ClvlabError(f"{model} has covariates on {sorted(processes)}, not on {sorted(unknown)}")
    covariates = list(dict.fromkeys(name for effects in coefficients.values() for name in effects))
    if not all(np.isfinite(g) for effects in coefficients.values() for g in effects.values()):
        raise ClvlabError(f"coefficients must be finite, got {coefficients}")
    rng = np.random.default_rng(seed)
    if attributes is None:
        attributes = pd.DataFrame({name: rng.binomial(1, 0.5, n_customers) for name in covariates},
                                  index=pd.RangeIndex(n_customers, name="customer_id"))
    _check_attributes(attributes, covariates, n_customers)
    per_customer: dict[str, Any] = dict(params)
    for parameter, (process, sign) in links.items():
        score = np.zeros(n_customers)  # x_i' g of the parameter's process
        for name, coefficient in coefficients.get(process, {}).items():
            score += coefficient * attributes[name].to_numpy(dtype=np.float64)
        per_customer[parameter] = params[parameter] * np.exp(sign * score)
    if model == "gamma-gamma":
        if "frequency" not in options:
            raise ClvlabError("gamma-gamma needs frequency=, one transaction count per customer")
        frequency = np.asarray(options.pop("frequency"))
        if frequency.shape != (n_customers,):
            raise ClvlabError(f"frequency must hold one count per customer ({n_customers}), "
                              f"got shape {frequency.shape}")
        table = simulator(frequency, seed=rng, **per_customer, **options)
        table.insert(0, "frequency", frequency)
    else:
        table = simulator(n_customers, seed=rng, **per_customer, **options)
    clash = set(table.columns) & set(attributes.columns)
    if clash:
        raise ClvlabError(f"attribute columns {sorted(clash)} clash with the simulated columns")
    table.index = attributes.index
    for name in attributes.columns:
        table[name] = attributes[name].to_numpy()
    return table


def _check_attributes(attributes: pd.DataFrame, covariates: list[str], n_customers: int) -> None:
    if not isinstance(attributes, pd.DataFrame) or len(attributes) != n_customers:
        raise ClvlabError(f"attributes must be a DataFrame with one row per customer ({n_customers})")
    missing = [name for name in covariates if name not in attributes.columns]
    if missing:
        raise ClvlabError(f"covariates {missing} have coefficients but no column in attributes")
    for name in covariates:
        column = attributes[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            raise ClvlabError(f"covariate {name!r} must be numeric (encode categories first)")
        if not np.all(np.isfinite(column.to_numpy(dtype=np.float64))):
            raise ClvlabError(f"covariate {name!r} must be finite for every customer")


def transaction_log(n_customers: int, *, model: str = "pareto-nbd", params: dict[str, float],
                    spend: dict[str, float] | None = None, start: Any = "2024-01-01",
                    acquisition_period: float = 13.0, observation_period: float = 52.0,
                    time_unit: str = "W", seed: Any = None) -> pd.DataFrame:
    """Draw a timestamped transaction log.

    Customers are acquired uniformly over the first ``acquisition_period`` time units after
    ``start`` (their first purchase) and observed until ``start + observation_period``. Repeat
    purchases follow ``model`` ("bg-nbd" or "pareto-nbd") with ``params``; with ``spend``
    (Gamma-Gamma ``p``, ``q``, ``v``) every transaction gets an ``amount`` rounded to cents.
    Returns ``customer_id`` (int64), ``date`` (datetime64[s]) and maybe ``amount``, sorted by
    date. Several purchases may fall on one day; ``rfm_summary`` merges them.

    Parameters
    ----------
    n_customers : int
        Customers to draw.
    model : {"pareto-nbd", "bg-nbd"}, default "pareto-nbd"
        The purchase process.
    params : dict of str to float
        Its parameters (e.g. ``LOG_MODEL_EXAMPLES[model]``).
    spend : dict of str to float, optional
        Gamma-Gamma's ``p``, ``q``, ``v`` (None: no ``amount`` column).
    start : str or datetime, default "2024-01-01"
        The first acquisition date.
    acquisition_period : float, default 13.0
        Time units over which customers are acquired.
    observation_period : float, default 52.0
        Time units from ``start`` to the end of the log (longer than ``acquisition_period``).
    time_unit : str, default "W"
        The unit of the two periods.
    seed : int, numpy.random.Generator or None, optional
        Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.

    Returns
    -------
    pandas.DataFrame
        The log, sorted by date.

    Raises
    ------
    ClvlabError
        Where the model is not supported, a parameter is invalid, or the observation period is
        not longer than the acquisition period.
    """
    if observation_period <= acquisition_period:
        raise ClvlabError("observation_period must be longer than acquisition_period")
    rng = np.random.default_rng(seed)
    acquired = rng.uniform(0.0, acquisition_period, n_customers)
    window = observation_period - acquired
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n_customers)
    events = rng.poisson(lam * window)
    owner = np.repeat(np.arange(n_customers), events)
    times = rng.uniform(0.0, 1.0, owner.size) * window[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    if model == "bg-nbd":
        p = rng.beta(params["a"], params["b"], n_customers)
        dropout_after = rng.geometric(np.clip(p, 1e-300, 1.0))
        first_index = np.cumsum(events) - events
        rank = np.arange(owner.size) - first_index[owner]
        keep = rank < dropout_after[owner]
    elif model == "pareto-nbd":
        mu = rng.gamma(params["s"], 1.0 / params["beta"], n_customers)
        lifetime = rng.exponential(1.0 / np.maximum(mu, 1e-300))
        keep = times < lifetime[owner]
    else:
        raise ClvlabError(f"model {model!r} is not supported; use 'bg-nbd' or 'pareto-nbd'")
    owner = np.concatenate([np.arange(n_customers), owner[keep]])
    offsets = acquired[owner] + np.concatenate([np.zeros(n_customers), times[keep]])
    seconds = np.round(offsets * unit_seconds(time_unit)).astype("timedelta64[s]")
    log = pd.DataFrame({"customer_id": owner.astype(np.int64),
                        "date": np.datetime64(pd.Timestamp(start).to_datetime64(), "s") + seconds})
    if spend is not None:
        nu = rng.gamma(spend["q"], 1.0 / spend["v"], n_customers)
        log["amount"] = np.round(rng.gamma(spend["p"], 1.0 / nu[owner]), 2)
    return log.sort_values(["date", "customer_id"], kind="stable", ignore_index=True)


def segmented_transaction_log(segments: dict[Any, tuple[int, dict[str, float]]], *,
                              model: str = "pareto-nbd", seed: Any = None,
                              **options: Any) -> tuple[pd.DataFrame, pd.Series]:
    """A log whose customers come from segments with different parameters, and each
    customer's segment: ``segments`` maps a label to (customers, params). The customer ids
    are unique across segments; ``options`` go to :func:`transaction_log` (spend, start,
    acquisition_period...). Returns the log and a Series of segment labels by customer id.

    Parameters
    ----------
    segments : dict
        Label -> (customers, params).
    model : {"pareto-nbd", "bg-nbd"}, default "pareto-nbd"
        The purchase process.
    seed : int, numpy.random.Generator or None, optional
        Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.
    **options
        :func:`transaction_log`'s further arguments.

    Returns
    -------
    log : pandas.DataFrame
        The log of every segment.
    segment : pandas.Series
        Each customer's segment label, by customer id.

    Raises
    ------
    ClvlabError
        As :func:`transaction_log`.
    """
    rng = np.random.default_rng(seed)
    logs, labels, offset = [], [], 0
    for label, (n_customers, params) in segments.items():
        log = transaction_log(n_customers, model=model, params=params,
                              seed=int(rng.integers(2**63)), **options)
        log["customer_id"] += offset
        logs.append(log)
        labels.append(pd.Series(label, index=pd.RangeIndex(offset, offset + n_customers)))
        offset += n_customers
    log = pd.concat(logs).sort_values(["date", "customer_id"], kind="stable", ignore_index=True)
    segment = pd.concat(labels).rename("segment").rename_axis("customer_id")
    return log, segment


def _ages(T: Any, n_customers: int) -> np.ndarray:
    ages = np.broadcast_to(np.asarray(T, dtype=np.float64), (n_customers,)).copy()
    if not np.all(np.isfinite(ages)) or np.any(ages <= 0):
        raise ClvlabError("T must be finite and > 0 for every simulated customer")
    return ages


def _parameters(shape: tuple[int, ...], **params: Any) -> dict[str, Any]:
    """Each parameter checked: a scalar is returned as given (so that scalar draws stay exactly
    what they were), anything else as a float array of ``shape`` (one value per customer)."""
    checked = {}
    for name, value in params.items():
        if np.ndim(value) == 0:
            if not (np.isfinite(value) and value > 0):
                raise ClvlabError(f"parameter {name} must be finite and > 0, got {value!r}")
            checked[name] = value
            continue
        try:
            values = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ClvlabError(f"parameter {name} must be numbers: {error}") from None
        if values.shape != shape:
            raise ClvlabError(f"parameter {name} must be a scalar or one value per customer "
                              f"(shape {shape}), got shape {values.shape}")
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if bad.size:
            raise ClvlabError(f"parameter {name} must be finite and > 0 for every customer; "
                              f"{bad.size} are not, the first at position {bad[0]}: {values[bad[0]]!r}")
        checked[name] = values
    return checked


def _last_of_uniform_events(rng: np.random.Generator, kept: np.ndarray, events: np.ndarray,
                            T: np.ndarray) -> np.ndarray:
    """Time of the kept-th of ``events`` uniform event times on [0, T] (0 where kept is 0).

    The k-th smallest of n uniforms is Beta(k, n - k + 1).
    """
    k = np.maximum(kept, 1)
    draw = rng.beta(k, np.maximum(events - k + 1, 1))
    return np.where(kept > 0, T * draw, 0.0)


def _rfm_frame(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"frequency": frequency.astype(np.int64), "recency": recency, "T": T})
    frame.index.name = "customer_id"
    return frame
