"""Comparing fitted models: the likelihood-ratio test between nested maximum-likelihood fits."""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats

from clvlab.core.errors import ClvlabError

__all__ = ["lr_test", "LikelihoodRatioTest"]


def lr_test(smaller, larger) -> "LikelihoodRatioTest":
    """The likelihood-ratio test of ``smaller`` against ``larger``, a model that nests it.

    Both must be maximum-likelihood fits without penalties of the same model class on the same
    customers, and ``larger``'s estimated parameters must include every one of ``smaller``'s
    (e.g. ``ParetoNBD()`` in ``ParetoNBD(purchase_covariates=["channel"])``, or a coefficient
    shared by purchase and dropout in the fit with one of each). The statistic
    2 (LL_larger - LL_smaller) is compared with a chi-squared distribution whose degrees of
    freedom are the number of extra parameters (Wilks). Returns a
    :class:`LikelihoodRatioTest` (``statistic``, ``df``, ``p_value``, both log-likelihoods and
    the extra parameters' names).

    Parameters
    ----------
    smaller : BaseModel
        The nested fit (maximum likelihood, no penalty, converged).
    larger : BaseModel
        The fit that nests it, of the same class, on the same customers.

    Returns
    -------
    LikelihoodRatioTest
        ``statistic``, ``df``, ``p_value``, both log-likelihoods and the extra parameters'
        names.

    Raises
    ------
    ClvlabError
        Where a model is not fitted, not a maximum-likelihood fit, penalised or unconverged,
        the two are of different classes, dropout forms or customers, ``larger`` does not nest
        ``smaller``, or its log-likelihood is below ``smaller``'s.
    """
    for name, model in (("smaller", smaller), ("larger", larger)):
        if not hasattr(model, "log_likelihood_"):
            raise ClvlabError(f"lr_test: the {name} model is not fitted (from_params has no "
                              "log-likelihood of a fit)")
        if getattr(model, "method", "mle") != "mle":
            raise ClvlabError(f"lr_test: the {name} model was fitted by {model.method!r}; the "
                              "test compares maximum-likelihood fits (compare Bayesian fits "
                              "with LOO)")
        if model.penalty or getattr(model, "covariate_penalty", 0.0):
            raise ClvlabError(f"lr_test: the {name} model was fitted with a penalty, so its "
                              "log-likelihood is not at its maximum and the statistic has no "
                              "chi-squared distribution; refit without penalties")
        if not model.convergence_.get("converged", False):
            raise ClvlabError(f"lr_test: the {name} model did not converge")
    if type(smaller) is not type(larger):
        raise ClvlabError(f"lr_test compares fits of one model: got {type(smaller).__name__} and "
                          f"{type(larger).__name__}")
    # the form says how dropout covariates move the dropout distribution: a smaller fit
    # without dropout covariates is the same model in either form (all coefficients 0)
    if (getattr(smaller, "dropout_form", None) != getattr(larger, "dropout_form", None)
            and getattr(smaller, "dropout_covariates", None)):
        raise ClvlabError(
            f"lr_test: the two fits move dropout by their covariates in different forms "
            f"(dropout_form={smaller.dropout_form!r} and {larger.dropout_form!r}), so neither "
            f"nests the other; fit the smaller model with dropout_form={larger.dropout_form!r}")
    if smaller.n_customers_ != larger.n_customers_:
        raise ClvlabError(f"lr_test: the fits saw different customers ({smaller.n_customers_:,.0f} "
                          f"and {larger.n_customers_:,.0f}); fit both on the same table")
    extra, missing = _extra_parameters(list(smaller.params_.index), list(larger.params_.index))
    if missing or not extra:
        raise ClvlabError(f"lr_test: {type(larger).__name__} with {list(larger.params_.index)} "
                          f"does not nest the smaller model's {list(smaller.params_.index)}")
    statistic = 2.0 * (larger.log_likelihood_ - smaller.log_likelihood_)
    if statistic < -1e-6 * max(1.0, abs(larger.log_likelihood_)):
        raise ClvlabError(f"lr_test: the larger model's log-likelihood ({larger.log_likelihood_:.4f}) "
                          f"is below the smaller one's ({smaller.log_likelihood_:.4f}), so one fit "
                          "stopped short of its maximum; refit it (more restarts, start_params)")
    statistic = max(statistic, 0.0)
    df = len(extra)
    return LikelihoodRatioTest(statistic=statistic, df=df,
                               p_value=float(stats.chi2.sf(statistic, df)),
                               log_likelihood_smaller=float(smaller.log_likelihood_),
                               log_likelihood_larger=float(larger.log_likelihood_),
                               extra_parameters=tuple(extra))


def _extra_parameters(smaller: list[str], larger: list[str]) -> tuple[list[str], list[str]]:
    """(the larger model's parameters beyond the smaller's, the smaller's it lacks). A shared
    coefficient ``shared.x`` is nested in ``purchase.x`` and ``dropout.x`` (the constraint that
    they are equal), which then count as one extra parameter."""
    extra = [name for name in larger if name not in smaller]
    missing = []
    for name in smaller:
        if name in larger:
            continue
        column = name.split(".", 1)[1] if name.startswith("shared.") else None
        pair = [f"purchase.{column}", f"dropout.{column}"]
        if column is not None and all(p in extra for p in pair):
            # two free coefficients in place of one: one more parameter, the difference
            extra = [e for e in extra if e not in pair] + [f"{pair[0]} != {pair[1]}"]
        else:
            missing.append(name)
    return extra, missing


@dataclass(frozen=True)
class LikelihoodRatioTest:
    """The result of :func:`lr_test`."""

    statistic: float
    df: int
    p_value: float
    log_likelihood_smaller: float
    log_likelihood_larger: float
    extra_parameters: tuple[str, ...]

    def __repr__(self) -> str:
        return (f"<LikelihoodRatioTest: statistic {self.statistic:.4f} on {self.df} df, p-value "
                f"{self.p_value:.4g}; log-likelihoods {self.log_likelihood_smaller:.4f} -> "
                f"{self.log_likelihood_larger:.4f}; extra parameters "
                f"{', '.join(self.extra_parameters)}>")
