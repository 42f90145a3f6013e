"""mpmath references that more than one test needs: functions whose plain mpmath form overflows
or cancels at float64's extremes (erfc at 1e300, 2x·erfcx(x) − 2/√π for large x, Φ⁻¹ at 1e-300,
the scaled Bessel functions' derivatives), each taken with the digits it needs. The working
precision is the caller's (`mp.prec`)."""

from __future__ import annotations

import mpmath
from mpmath import mp, mpf


def _alternating(x: mpf, start: int) -> mpf:
    """Σ from n = start of (−1)ⁿ(2n − 1)!!·uⁿ, u = 1/(2x²), for x ≥ 30: the asymptotic series
    of √π·x·erfcx(x), whose terms fall to 2^-(prec + 20) long before they grow (at n ≈ x²)."""
    u, term, total = 1 / (2 * x * x), mpf(1), mpf(0)
    for n in range(1, 10_000):
        if n - 1 >= start:
            total += term
        term *= -(2 * n - 1) * u
        if abs(term) < mpmath.ldexp(abs(total) + u, -(mp.prec + 20)):
            return total
    raise AssertionError("the series did not converge")


def erfcx(x: mpf) -> mpf:
    """e^(x²)·erfc(x); by its asymptotic series from 30 on (mpmath's erfc overflows a float
    while estimating at 1e300)."""
    if x < 30:
        with mp.workprec(mp.prec + 64):
            return +(mpmath.exp(x * x) * mpmath.erfc(x))
    return _alternating(x, start=0) / (x * mpmath.sqrt(mpmath.pi))


def erfcx_slope(x: mpf) -> mpf:
    """erfcx′ = 2x·erfcx(x) − 2/√π, with the digits it cancels (x² of them)."""
    if x < 30:
        with mp.workprec(mp.prec + 64 + (2 * max(0, int(mpmath.mag(x))) if x else 0)):
            return +(2 * x * mpmath.exp(x * x) * mpmath.erfc(x) - 2 / mpmath.sqrt(mpmath.pi))
    return 2 / mpmath.sqrt(mpmath.pi) * _alternating(x, start=1)


def erfc(x: mpf) -> mpf:
    """erfc, also at 1e300 (as erfcx(x)·e^(−x²) from 30 on)."""
    if x < 30:
        return mpmath.erfc(x)
    return erfcx(x) * mpmath.exp(-x * x)


def ndtr(x: mpf) -> mpf:
    """Φ(x) = erfc(−x/√2)/2, as 1 − Φ(−x) for x > 0 so that the tail is erfc's."""
    half = erfc(abs(x) / mpmath.sqrt(2)) / 2
    return 1 - half if x > 0 else half


def log_ndtr(x: mpf) -> mpf:
    if x > 0:
        return mpmath.log1p(-erfc(x / mpmath.sqrt(2)) / 2)
    return mpmath.log(ndtr(x))


def ndtri(p: mpf) -> mpf:
    """Φ⁻¹(p) = √2·erfinv(2p − 1), with the 1100 extra bits that 2p − 1 needs at 1e-300."""
    with mp.workprec(mp.prec + 1100):
        return +(mpmath.sqrt(2) * mpmath.erfinv(2 * p - 1))


def sinc_slope(x: mpf) -> mpf:
    """(cos πx − sinc x)/x, and 0 at 0, with the digits the difference cancels (x² of them
    relative, for small x)."""
    if not x:
        return mpf(0)
    with mp.workprec(mp.prec + 2 * max(0, -int(mpmath.mag(x))) + 20):
        return +((mpmath.cospi(x) - mpmath.sincpi(x)) / x)


def scaled_bessel(n: int, x: mpf) -> tuple[mpf, mpf]:
    """e^(−|x|)·Iₙ(x) and its derivative e^(−|x|)·(Iₙ′(x) − sign(x)·Iₙ(x)), whose two terms
    agree to 1/(2|x|): the precision is raised by twice the digits of x."""
    digits = max(0, int(mpmath.mag(x))) if x else 0  # mag(0) is −inf
    with mp.workprec(mp.prec + 2 * digits + 20):
        scale = mpmath.exp(-abs(x))
        value = mpmath.besseli(n, x)
        slope = mpmath.besseli(1, x) if n == 0 else _i1_slope(x)
        return +(scale * value), +(scale * (slope - mpmath.sign(x) * value))


def _i1_slope(x: mpf) -> mpf:
    """I₁′(x) = I₀(x) − I₁(x)/x, ½ at 0."""
    return mpmath.besseli(0, x) - mpmath.besseli(1, x) / x if x else mpf(0.5)
