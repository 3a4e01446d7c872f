"""Predictions of a model fitted along covariate paths, given each customer's future path.

Every per-customer prediction method (those wrapped by ``customer_params.by_covariate_group``)
takes ``covariate_paths=``: the paths of the customers to predict, reaching at least the horizon
past the calibration end (``clvlab.covariate_paths(..., horizon=...)``). A model fitted with
time-varying covariates refuses to predict without them, and a horizon its paths do not cover.

- BG/NBD: the model is the plain BG/NBD in the purchase clock A(t) (``tv_bgnbd``), so every
  prediction of the plain model holds at the customer's clock times: recency -> A(t_x),
  T -> A(T), a horizon t -> A(T + t) - A(T), each customer at their own (r, alpha, a_i, b_i).
  That includes the whole predictive distribution (PMF, quantiles, intervals, moments, draws).
- Pareto/NBD: P(alive), expected purchases, the PMF and DECT along the path
  (``tv_pareto_predict``); the quantiles, CDF and intervals follow from the PMF.

Parameter draws (``parameter_draws=``) are not taken along paths yet: an error says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, shown
from clvlab.models.customer_params import distinct_rows, row_model
from clvlab.models.table_units import checked

__all__ = ["predict_along_paths", "PathPredictor"]

_PARETO_METHODS = ("p_alive", "expected_purchases", "expected_purchases_by_horizon", "scores",
                   "probability_of_purchase", "purchase_probability", "purchase_pmf",
                   "purchase_cdf", "purchase_quantiles", "prediction_interval")


class PathPredictor:
    """One model's customers along their paths: own parameters, clocks, segments."""

    def __init__(self, model, rfm: pd.DataFrame, paths):
        from clvlab.models.time_varying import path_likelihood, segments_for

        _require_paths(model, paths, "its predictions need each customer's covariate path "
                       "over the horizon, covariate_paths=clvlab.covariate_paths(panel, rfm, "
                       "horizon=...)")
        self.model, self.rfm, self.paths = model, rfm, paths
        self.name = type(model).__name__
        segments = segments_for(model, rfm, paths, calibration_only=False)
        design = model.covariates_
        k = len(model.param_names)
        params = model.params_.to_numpy(np.float64)
        self.likelihood = path_likelihood(model, design, rfm, segments, np.ones(len(rfm)),
                                          design.scales())
        # the fitted coefficients are on the user's scale; the likelihood's covariates are
        # divided by their scales, so its coefficients are multiplied by them
        internal = params[k:] * design.scales()
        self.eta = self.likelihood._etas(internal)
        own, _ = self.likelihood._own(params[:k], internal)
        self.own = np.ascontiguousarray(own)
        self.segments = segments
        self.x, self.t_x, self.T = self.likelihood.x, self.likelihood.t_x, self.likelihood.T

    def check_reach(self, horizon) -> np.ndarray:
        """The horizon per customer, after checking every path reaches T + horizon."""
        horizon = np.broadcast_to(np.asarray(horizon, np.float64), self.x.shape).copy()
        reach = self.segments.seg_end[self.segments.offsets[1:] - 1]
        need = self.T + horizon
        short = reach < need * (1 - 1e-9) - 1e-9
        if short.any():
            i = int(np.flatnonzero(short)[0])
            raise ClvlabError(
                f"{self.name}: the covariate path of customer {shown(self.rfm.index[i])} reaches "
                f"{reach[i] - self.T[i]:g} time units past the calibration end, but the horizon "
                f"is {horizon[i]:g}: the future path must cover the horizon (build the paths "
                f"with horizon >= {float(np.max(horizon)):g}: a panel or calendar that reaches "
                f"that far, e.g. clvlab.seasonal_covariates for calendar covariates)")
        return horizon

    def _segment_args(self):
        s = self.segments
        return (s.offsets, s.seg_end, self.eta["purchase"], self.eta["dropout"])

    # --- Pareto/NBD ---------------------------------------------------------------------
    def pnbd(self, function: str, *extra):
        from clvlab.models import tv_pareto_predict

        r, alpha, s, beta = (np.ascontiguousarray(self.own[:, j]) for j in range(4))
        return getattr(tv_pareto_predict, function)(r, alpha, s, beta, self.x, self.t_x, self.T,
                                                   *extra, *self._segment_args())

    def pnbd_pmf(self, horizon, max_n: int | None, tail: float) -> np.ndarray:
        """P(X = n), n = 0..N, N as far as ``tail`` needs (or max_n)."""
        if max_n is not None:
            return self.pnbd("pnbd_tv_purchase_pmf", horizon, int(max_n))
        n_max = 16
        while True:
            values = self.pnbd("pnbd_tv_purchase_pmf", horizon, n_max)
            beyond = 1.0 - values.sum(axis=1)
            if beyond.max(initial=0.0) <= tail or n_max >= 20_000:
                break
            n_max *= 2
        last = np.flatnonzero((1.0 - np.cumsum(values, axis=1)).max(axis=0) > tail)
        width = int(last[-1]) + 2 if len(last) else 1
        return values[:, :min(width, values.shape[1])]

    # --- BG/NBD: the plain model in the purchase clock -----------------------------------
    def clock_model(self, horizon=None):
        """(row model at each customer's own parameters, the table in clock times, the
        horizon in clock units)."""
        from clvlab.models import tv_bgnbd

        h = np.zeros_like(self.x) if horizon is None else horizon
        s = self.segments
        a_tx, a_T, a_h = tv_bgnbd.bgnbd_tv_times(s.offsets, s.seg_end, self.eta["purchase"],
                                                 self.t_x, self.T, h)
        table = pd.DataFrame({"frequency": self.x, "recency": a_tx, "T": a_T},
                             index=self.rfm.index)
        plain = self.model.plain_at(self.model.params_.to_numpy()[:len(self.model.param_names)])
        plain.__dict__.pop("covariates_", None)
        return row_model(plain, self.own), table, a_h


def _require_paths(model, paths, need: str) -> None:
    if paths is None:
        raise ClvlabError(f"{type(model).__name__} was fitted with time-varying covariates "
                          f"{list(model.covariates_.time_varying)}: {need}")


def predict_along_paths(model, method, signature, table_name: str, args, kwargs, paths):
    """A prediction method of a model fitted along paths (see the module)."""
    bound = signature.bind(model, *args, **kwargs)
    bound.apply_defaults()
    name = method.__name__
    arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
    table = arguments.get(table_name)
    if table is None:
        raise ClvlabError(f"{type(model).__name__}.{name} without a table is a new customer's "
                          "prediction, which depends on when the customer arrives under "
                          "time-varying covariates: predict a table of customers with their paths")
    if arguments.get("parameter_draws") is not None:
        raise ClvlabError(f"{type(model).__name__}.{name}: parameter_draws are not available "
                          "along covariate paths yet; predict at the estimate")
    if name == "_log_likelihood_rows":
        from clvlab.models.time_varying import path_log_likelihood

        _require_paths(model, paths, "its log-likelihood needs each customer's covariate path "
                       "with the purchases in it, covariate_paths=clvlab.covariate_paths(panel, "
                       "rfm, transactions=log)")
        return pd.Series(path_log_likelihood(model, table, paths), index=table.index,
                         name="log_likelihood")
    predictor = PathPredictor(model, table, paths)
    if type(model).__name__ == "BetaGeo":
        horizon = None
        for key in ("t", "horizons"):
            if key in arguments and arguments[key] is not None:
                horizon = arguments[key]
        if name == "expected_purchases_by_horizon":
            return _bgnbd_by_horizon(predictor, arguments["horizons"])
        if name == "scores":
            return _bgnbd_scores(predictor, arguments["t"])
        h = None if horizon is None else predictor.check_reach(horizon)
        rows, clock_table, a_h = predictor.clock_model(h)
        arguments[table_name] = clock_table
        if h is not None:
            arguments["t"] = np.maximum(a_h, 1e-300)
        with distinct_rows(), checked():
            out = getattr(rows, name)(**arguments)
        return _relabel(out, table)
    if name not in _PARETO_METHODS:
        raise ClvlabError(f"{type(model).__name__}.{name} is not available along covariate paths "
                          f"yet; available: {', '.join(_PARETO_METHODS)}")
    return _pareto(predictor, name, arguments, table)


def _relabel(out, table: pd.DataFrame):
    if isinstance(out, (pd.Series, pd.DataFrame)):
        out.index = table.index
    return out


def _horizon(value) -> Any:
    from clvlab.models.transaction import check_horizon

    return check_horizon(value)


def _bgnbd_by_horizon(predictor: PathPredictor, horizons) -> pd.DataFrame:
    horizons = np.atleast_1d(_horizon(horizons)).astype(np.float64)
    predictor.check_reach(horizons.max())
    columns = []
    for h in horizons:
        rows, table, a_h = predictor.clock_model(np.full_like(predictor.x, h))
        columns.append(_rows_call(rows, "expected_purchases", table, np.maximum(a_h, 1e-300)))
    return pd.DataFrame(np.column_stack(columns), index=predictor.rfm.index, columns=list(horizons))


def _rows_call(rows, name, table, t):
    with distinct_rows(), checked():
        return getattr(rows, name)(table, t).to_numpy()


def _bgnbd_scores(predictor: PathPredictor, t) -> pd.DataFrame:
    t = _horizon(t)
    h = predictor.check_reach(t)
    rows, table, a_h = predictor.clock_model(h)
    a_h = np.maximum(a_h, 1e-300)
    with distinct_rows(), checked():
        alive = rows.p_alive(table).to_numpy()
        expected = rows.expected_purchases(table, a_h).to_numpy()
        none = rows.purchase_pmf(table, a_h, max_n=0, tail=0.0)[0].to_numpy()
    return pd.DataFrame({"p_alive": alive, "expected_purchases": expected,
                         "probability_of_purchase": 1.0 - none}, index=predictor.rfm.index)


def _pareto(predictor: PathPredictor, name: str, arguments: dict, table: pd.DataFrame):
    index = table.index
    if name == "p_alive":
        return pd.Series(predictor.pnbd("pnbd_tv_p_alive"), index=index, name="p_alive")
    if name == "expected_purchases":
        h = predictor.check_reach(_horizon(arguments["t"]))
        return pd.Series(predictor.pnbd("pnbd_tv_expected_purchases", h), index=index,
                         name="expected_purchases")
    if name == "expected_purchases_by_horizon":
        horizons = np.atleast_1d(_horizon(arguments["horizons"])).astype(np.float64)
        predictor.check_reach(horizons.max())
        values = predictor.pnbd("pnbd_tv_expected_purchases_by_horizon", horizons)
        return pd.DataFrame(values, index=index, columns=list(horizons))
    t = predictor.check_reach(_horizon(arguments["t"]))
    if name == "scores":
        pmf0 = predictor.pnbd("pnbd_tv_purchase_pmf", t, 0)[:, 0]
        return pd.DataFrame({"p_alive": predictor.pnbd("pnbd_tv_p_alive"),
                             "expected_purchases": predictor.pnbd("pnbd_tv_expected_purchases", t),
                             "probability_of_purchase": 1.0 - pmf0}, index=index)
    if name == "probability_of_purchase":
        pmf0 = predictor.pnbd("pnbd_tv_purchase_pmf", t, 0)[:, 0]
        return pd.Series(1.0 - pmf0, index=index, name="probability_of_purchase")
    if name == "purchase_probability":
        n = int(arguments["n"])
        values = predictor.pnbd("pnbd_tv_purchase_pmf", t, n)[:, n]
        return pd.Series(values, index=index, name=f"P(X={n})")
    if name == "purchase_pmf":
        values = predictor.pnbd_pmf(t, arguments.get("max_n"), float(arguments.get("tail", 1e-8)))
        frame = pd.DataFrame(values, index=index,
                             columns=pd.RangeIndex(values.shape[1], name="purchases"))
        frame.attrs["tail_mass"] = float(np.clip(1.0 - values.sum(axis=1), 0, 1).max(initial=0.0))
        return frame
    values = predictor.pnbd_pmf(t, None, 1e-10)
    cdf = np.cumsum(values, axis=1)
    if name == "purchase_cdf":
        n = np.broadcast_to(np.asarray(arguments["n"], np.int64), (len(index),))
        out = cdf[np.arange(len(index)), np.minimum(n, cdf.shape[1] - 1)]
        return pd.Series(np.where(n < 0, 0.0, out), index=index, name="purchase_cdf")
    levels = (np.asarray(arguments.get("q", (0.05, 0.5, 0.95)), np.float64)
              if name == "purchase_quantiles" else
              np.array([(1 - arguments["level"]) / 2, (1 + arguments["level"]) / 2]))
    found = np.stack([(cdf >= q - 1e-12).argmax(axis=1) for q in levels], axis=1)
    if name == "purchase_quantiles":
        return pd.DataFrame(found, index=index, columns=[f"purchases_q{v:g}" for v in levels])
    return pd.DataFrame({"lower": found[:, 0], "upper": found[:, 1],
                         "expected_purchases": predictor.pnbd("pnbd_tv_expected_purchases", t)},
                        index=index)
