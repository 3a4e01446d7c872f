"""Independent high-precision references (mpmath) for the likelihoods.

Pareto/NBD: the integral form (field-notes.md), with the integral evaluated exactly through its
hypergeometric antiderivative at 80 and 160 digits (independent of clvlab's Euler-transformed
series), and by direct quadrature where mpmath.quad converges. BG/NBD and Gamma-Gamma: their
closed forms in mpmath arithmetic.
"""

from __future__ import annotations

import mpmath

DPS = 30


def pareto_nbd_loglik(r, alpha, s, beta, x, t_x, T, integral=None, min_dps: int = 40) -> float:
    """The integral form: L = G(r+x) a^r b^s / G(r) [(a+T)^-(r+x) (b+T)^-s + s I]."""
    if integral is None:
        def integral(*args):
            return pareto_integral_closed_form(*args, min_dps=min_dps)
    with mpmath.workdps(DPS):
        r, alpha, s, beta, x, t_x, T = (mpmath.mpf(v) for v in (r, alpha, s, beta, x, t_x, T))
        bracket = (alpha + T) ** -(r + x) * (beta + T) ** -s + s * integral(r + x, s, alpha, beta, t_x, T)
        value = (mpmath.loggamma(r + x) - mpmath.loggamma(r) + r * mpmath.log(alpha)
                 + s * mpmath.log(beta) + mpmath.log(bracket))
        return float(value)


def pareto_integral_closed_form(m, s, alpha, beta, t_x, T, min_dps: int = 40):
    """I = int_{t_x}^{T} (alpha+u)^-m (beta+u)^-(s+1) du through its antiderivative.

    With c = m + s, an antiderivative is -F(u) where
    F(u) = 2F1(c, s+1; c+1; (alpha-beta)/(alpha+u)) / (c (alpha+u)^c) for alpha >= beta, and the
    same with alpha, beta and m, s+1 exchanged otherwise. I = F(t_x) - F(T) cancels badly in
    double precision (field-notes.md), so the working precision doubles from ``min_dps`` digits
    until two evaluations agree to 20 digits. Rarely both low-precision evaluations are wrong in
    the same way (mpmath's hyp2f1 near z = 1 with parameters in the hundreds); callers that see a
    disagreement recompute with a high ``min_dps`` before believing it.
    """
    if T == t_x:
        return mpmath.mpf(0)

    def at(dps):
        with mpmath.workdps(dps):
            a, b, t0, t1 = (mpmath.mpf(v) for v in (alpha, beta, t_x, T))
            c = m + s
            if a >= b:
                F = lambda u: mpmath.hyp2f1(c, s + 1, c + 1, (a - b) / (a + u)) / (c * (a + u) ** c)  # noqa: E731
            else:
                F = lambda u: mpmath.hyp2f1(c, m, c + 1, (b - a) / (b + u)) / (c * (b + u) ** c)  # noqa: E731
            return F(t0) - F(t1)

    previous = at(min_dps)
    for dps in (2 * min_dps, 4 * min_dps, 8 * min_dps, 16 * min_dps, 32 * min_dps):
        current = at(dps)
        if abs(previous - current) <= abs(current) * mpmath.mpf(10) ** -20:
            return current
        previous = current
    raise AssertionError(f"reference antiderivative unstable even at {dps} digits: {current}")


def pareto_integral_quadrature(m, s, alpha, beta, t_x, T):
    """The same integral by direct quadrature (mpmath.quad), or None where quad's own error
    estimate says it did not converge (sharply peaked integrands)."""
    if T == t_x:
        return mpmath.mpf(0)
    f = lambda u: (alpha + u) ** -m * (beta + u) ** -(s + 1)  # noqa: E731
    scale = (min(alpha, beta) + t_x) / (m + s + 1)
    points = [t_x] + [t_x + scale * 2 ** j for j in range(-4, 200) if t_x + scale * 2 ** j < T] + [T]
    value, error = mpmath.quad(f, points, error=True)
    return value if error <= abs(value) * mpmath.mpf(10) ** -15 else None


def bg_nbd_loglik(r, alpha, a, b, x, t_x, T) -> float:
    with mpmath.workdps(DPS):
        r, alpha, a, b, x, t_x, T = (mpmath.mpf(v) for v in (r, alpha, a, b, x, t_x, T))
        beta_ab = mpmath.beta(a, b)
        term = mpmath.beta(a, b + x) / beta_ab * (alpha + T) ** -(r + x)
        if x > 0:
            term += mpmath.beta(a + 1, b + x - 1) / beta_ab * (alpha + t_x) ** -(r + x)
        value = mpmath.loggamma(r + x) - mpmath.loggamma(r) + r * mpmath.log(alpha) + mpmath.log(term)
        return float(value)


def gamma_gamma_loglik(p, q, v, x, z) -> float:
    with mpmath.workdps(DPS):
        p, q, v, x, z = (mpmath.mpf(val) for val in (p, q, v, x, z))
        value = (mpmath.loggamma(p * x + q) - mpmath.loggamma(p * x) - mpmath.loggamma(q)
                 + q * mpmath.log(v) + (p * x - 1) * mpmath.log(z) + p * x * mpmath.log(x)
                 - (p * x + q) * mpmath.log(v + x * z))
        return float(value)


def mbg_nbd_loglik(r, alpha, a, b, x, t_x, T) -> float:
    """MBG/NBD (Batislam et al. 2007 with the Wagner & Hoppe 2008 erratum), at DPS digits."""
    with mpmath.workdps(DPS):
        r, alpha, a, b, x, t_x, T = (mpmath.mpf(v) for v in (r, alpha, a, b, x, t_x, T))
        beta_ab = mpmath.beta(a, b)
        term = (mpmath.beta(a, b + x + 1) / beta_ab * (alpha + T) ** -(r + x)
                + mpmath.beta(a + 1, b + x) / beta_ab * (alpha + t_x) ** -(r + x))
        value = mpmath.loggamma(r + x) - mpmath.loggamma(r) + r * mpmath.log(alpha) + mpmath.log(term)
        return float(value)


def bg_bb_loglik(alpha, beta, gamma, delta, x, t_x, n) -> float:
    """BG/BB (Fader, Hardie & Shang 2010, eq. 5), summed term by term at DPS digits."""
    with mpmath.workdps(DPS):
        al, be, ga, de = (mpmath.mpf(v) for v in (alpha, beta, gamma, delta))
        x, t_x, n = int(x), int(t_x), int(n)
        b_ab, b_gd = mpmath.beta(al, be), mpmath.beta(ga, de)
        total = mpmath.beta(al + x, be + n - x) / b_ab * mpmath.beta(ga, de + n) / b_gd
        for i in range(n - t_x):
            total += (mpmath.beta(al + x, be + t_x - x + i) / b_ab
                      * mpmath.beta(ga + 1, de + t_x + i) / b_gd)
        return float(mpmath.log(total))


def sbg_loglik(alpha, beta, duration, churned) -> float:
    """Shifted-beta-geometric: P(T = t) for a churned customer, S(t) = P(T > t) otherwise,
    each as the sum/product of per-period probabilities (not the closed form)."""
    with mpmath.workdps(DPS):
        al, be = mpmath.mpf(alpha), mpmath.mpf(beta)
        t = int(duration)
        # survival as a product of retention rates (beta + k - 1) / (alpha + beta + k - 1)
        survive = mpmath.fprod([(be + k - 1) / (al + be + k - 1) for k in range(1, t + 1)])
        if churned:
            survive = survive / ((be + t - 1) / (al + be + t - 1)) * (al / (al + be + t - 1))
        return float(mpmath.log(survive))
