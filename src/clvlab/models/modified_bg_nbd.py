"""MBG/NBD (Batislam, Denizel & Filiztekin 2007; Wagner & Hoppe 2008): BG/NBD in which the
first purchase, too, is followed by a chance to drop out, so a customer without repeat purchases
need not be alive.

The likelihood is BG/NBD's with one more dropout chance (field-notes.md):
L = B(a, b+x+1)/B(a, b) G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
  + B(a+1, b+x)/B(a, b) G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)),
and every prediction follows from BG/NBD's with p | alive ~ Beta(a, b + x + 1). So the model is
BG/NBD with ``_first_chance = 1``: the likelihood kernel, gradient, predictions and Bayesian fit
are the same code.
"""

from __future__ import annotations

from clvlab.models.bg_nbd import BetaGeo

__all__ = ["ModifiedBetaGeo"]


class ModifiedBetaGeo(BetaGeo):
    """The MBG/NBD model: BG/NBD where a customer may also drop out right after the first
    purchase (so P(alive) < 1 without repeat purchases).

    Parameters
    ----------
    penalty : float, default 0.0
        L2 penalty on the parameters (0 = plain maximum likelihood).
    max_restarts : int, default 4
        Restarts of the optimiser from perturbed starting points when it fails.
    method : {"mle", "nuts", "advi", "map"}, default "mle"
        Maximum likelihood, or Bayesian through PyMC: "nuts" (sampling), "advi" (variational)
        or "map" (posterior mode). The Bayesian methods use the same likelihood; see
        ``clvlab.bayes`` for the default priors.
    draws, tune, chains : int, default 1000, 1000, 4
        Sampler settings (Bayesian methods).
    priors : dict, optional
        {parameter: callable(name) -> PyMC random variable} to replace default priors.
    random_seed : int, optional
        Seed of the sampler and of the optimiser's restarts.
    progressbar : bool, default True
        Show the sampler's progress bar.
    nuts_sampler : {"pymc", "nutpie"}, optional
        None takes ``bayes.default_nuts_sampler()``.
    target_accept : float, optional
        NUTS's target acceptance rate; None takes the model's default
        (``default_target_accept``: higher where the posterior has long tails).
    purchase_covariates, dropout_covariates, spend_covariates : list of str, optional
        Columns of the fit's table (static customer attributes) that move the model's
        purchase, dropout or spend process; the model's ``covariate_links`` say which
        parameter each moves. Every prediction then reads them from its table too. See
        ``clvlab.models.covariates``.
    shared_covariates : list of str, optional
        Columns among both purchase and dropout covariates whose two coefficients are
        constrained to be one (an equality constraint).
    covariate_penalty : float, default 0.0
        L2 penalty ``covariate_penalty * sum(g**2)`` on the coefficients only, on the
        log-likelihood's scale.
    start_params : dict, optional
        Starting values {name: value} for the optimiser (base parameters or coefficients, by
        their ``params_`` names).

    dropout_form : {"a_and_b", "b"}, default "a_and_b"
        How dropout covariates move the Beta distribution of the dropout probability p (see
        ``covariate_links``): "a_and_b" multiplies both a and b by exp(x'g) (Fader & Hardie
        2007); "b" divides b alone by it, so that the mean dropout probability moves.

    Attributes
    ----------
    params_ : pandas.Series
        The estimates (the posterior mean for a Bayesian fit), by parameter name (and
        coefficient, with covariates).
    standard_errors_ : pandas.Series
        Their standard errors (NaN where the Hessian is not negative definite).
    covariance_ : pandas.DataFrame
        Their covariance.
    log_likelihood_, aic_, bic_ : float
        The fit's log-likelihood and information criteria (AIC and BIC NaN for a Bayesian fit).
    n_customers_, n_distinct_rows_ : int
        The customers the fit stood for and the distinct rows it evaluated.
    convergence_ : dict
        The optimiser's or sampler's diagnostics.
    time_unit_ : str or None
        The time unit of the fit's durations.
    idata_ : arviz.InferenceData
        The posterior (Bayesian methods only).
    covariates_ : object
        The covariate design (models with covariates only).
    """

    _first_chance = 1
