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
    <model settings>

    dropout_form : {"a_and_b", "b"}, default "a_and_b"
        How dropout covariates move the Beta distribution of the dropout probability p (see
        ``covariate_links``): "a_and_b" multiplies both a and b by exp(x'g) (Fader & Hardie
        2007); "b" divides b alone by it, so that the mean dropout probability moves.

    Attributes
    ----------
    <fitted attributes>
    """

    _first_chance = 1
