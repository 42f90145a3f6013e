"""The smooth elementwise functions: exponentials and logarithms, square root and x·log y,
trigonometric and hyperbolic functions, and activations (sigmoid, softplus).

Each derivative rule is a formula over graph nodes: `ans` is the node of the primitive's own
result, the other arguments are its input nodes. Forwards of analytic primitives accept complex
arrays, so the complex-step check can run through them; the complex forwards here keep each part
of the result to a few ulps. Special functions (those of scipy.special) belong in a module of
their own beside this one, special.py, as jax/_src/lax keeps them apart.
"""

from __future__ import annotations

import math

import numpy as np

from ..graph.registry import Domain, Primitive, register
from ._common import (
    _apply,
    _complex,
    _divide,
    _pack,
    _polynomial,
    _real_or_complex,
    _scaled,
    cos,
    cosh,
    equal,
    exp,
    heaviside,
    hypot,
    log,
    sech,
    sigmoid,
    sin,
    sinh,
    sqrt,
    tanh,
)


def _log1p(x):
    """log(1 + z). numpy's complex log1p is log(1 + z), which rounds 1 + z and loses the real
    part for small z (x*log1p(x) at 1e-12 was 4e-5 off). Here Re = ½·log1p(x(2 + x) + y²) for
    small z, log|1 + z| otherwise (1 + x is exact near -1), and Im = atan2(y, 1 + x)."""
    if not np.iscomplexobj(x):
        return np.log1p(x)
    xr, xi = np.real(x), np.imag(x)
    small = (np.abs(xr) < 0.5) & (np.abs(xi) < 1)
    re = np.where(small, 0.5 * np.log1p(xr * (2 + xr) + xi * xi), np.log(np.hypot(1 + xr, xi)))
    return _pack(re, np.arctan2(xi, 1 + xr))


def _sigmoid(x):
    # Stable on both sides, and analytic: the branch is chosen by the real part only.
    positive = np.real(x) >= 0
    e = np.exp(np.where(positive, -x, x))
    return np.where(positive, 1 / (1 + e), e / (1 + e))


def _softplus(x):
    positive = np.real(x) > 0
    return np.where(positive, x, 0) + np.log1p(np.exp(np.where(positive, -x, x)))


def _softplus_complex(x):
    """_softplus with an accurate complex log1p (numpy's lost softplus(-25 + iy))."""
    positive = np.real(x) > 0
    return np.where(positive, x, 0) + _log1p(np.exp(np.where(positive, -x, x)))


def _sech(x):
    # 1/cosh(x) = 2e^-|x| / (1 + e^-2|x|): no overflow. Analytic: |x| uses the real part's sign.
    s = np.where(np.real(x) >= 0, 1, -1)
    e = np.exp(-s * x)
    return 2 * e / (1 + e * e)


def _sech_complex(x):
    """sech(x + iy) = (sech x·cos y - i·tanh x·sech x·sin y)/(1 - (sech x·sin y)²), from
    |cosh(x + iy)|² = cosh²x - sin²y: no overflow, and no cancellation (2e/(1 + e²) in complex
    arithmetic cancels Im to nothing near x = 0: sech(1e-30 + iy) lost its y·1e-30)."""
    xr, xi = np.real(x), np.imag(x)
    s, sin = _sech(xr), np.sin(xi)
    d = 1 - (s * sin) ** 2
    return _pack(s * np.cos(xi) / d, -np.tanh(xr) * s * sin / d)


def _xlogy(x, y):
    return np.where(x == 0, 0.0, x * np.log(y))


def _xlogy_complex(x, y):
    """x·log y with each part of x times each part of log y formed at once: for y = c + id
    near the real axis, Im log y = atan(d/c) and Re log y = log c + ½·log1p((d/c)²) underflow
    on their own (1e30 + 2^-1022 i) where their products with x do not."""
    x = np.asarray(x)
    xr, xi, yr, yi = np.real(x), np.imag(x), np.real(y), np.imag(y)
    near = (yr > 0) & (np.abs(yi) <= yr)
    q = np.where(near, yi / np.where(near, yr, 1.0), 0.0)
    g = np.where(q == 0, 1.0, np.arctan(q) / np.where(q == 0, 1.0, q))  # atan(q)/q
    h = np.where(q * q == 0, 0.5, 0.5 * np.log1p(q * q) / np.where(q == 0, 1.0, q * q))
    log_c = np.log(np.where(near, yr, 1.0))
    log_y = np.log(np.asarray(y, dtype=np.result_type(y, np.complex64)))

    def times_log(part):  # part·log y, as (real, imaginary)
        re = part * log_c + _scaled(part, yi, yi, h, over=(yr, yr))
        im = _scaled(part, yi, g, over=(yr,))
        return np.where(near, re, part * log_y.real), np.where(near, im, part * log_y.imag)

    (rr, ri), (ir, ii) = times_log(xr), times_log(xi)
    return np.where(x == 0, 0.0, _pack(rr - ii, ri + ir))


def _atan2(y, x):
    if not _complex(y, x):
        return np.arctan2(y, x)
    # For the complex step: atan(y/x), turned by ±π for x < 0, or ±π/2 - atan(x/y) where
    # |y| > |x|, with the branch chosen by the real parts as the real function chooses it.
    yr, xr = np.real(y), np.real(x)
    wide = np.abs(xr) >= np.abs(yr)
    angle = np.arctan(_divide(np.where(wide, y, x), np.where(wide, x, y)))
    turn = np.where(np.signbit(xr), np.copysign(np.pi, yr), 0.0)
    return np.where(wide, angle + turn, np.copysign(np.pi / 2, yr) - angle)


def _hypot(x, y):
    if not _complex(x, y):
        return np.hypot(x, y)
    # For the complex step: sqrt(x² + y²), scaled by a power of two near the largest part so
    # that nothing overflows; its imaginary part, 2(xr·xi + yr·yi)/(2·Re), is formed from the
    # unscaled xi and yi, which scaled would underflow (2^-1022 next to 1e30).
    xr, xi, yr, yi = np.real(x), np.imag(x), np.real(y), np.imag(y)
    top = np.maximum(np.maximum(np.abs(xr), np.abs(yr)), np.maximum(np.abs(xi), np.abs(yi)))
    s = np.ldexp(np.ones_like(top), np.frexp(np.where(top > 0, top, 1.0))[1] - 1)
    ur, ui, vr, vi = xr / s, xi / s, yr / s, yi / s
    q = 2 * (ur * xi + vr * yi)  # s·Im(u² + v²)
    root = np.sqrt(_pack((ur * ur + vr * vr) - (ui * ui + vi * vi), q / s))
    im = np.where(root.real > 0, q / (2 * np.where(root.real > 0, root.real, 1.0)), s * root.imag)
    return _pack(s * root.real, im)


# The table below is laid out by hand, one entry per primitive, so the formatter leaves it alone.
# fmt: off

positive = Domain("x > 0", lambda x: x > 0)
unit = Domain("-1 ≤ x ≤ 1", lambda x: (x >= -1) & (x <= 1))

# Exponentials and logarithms.
register(Primitive(
    "exp", 1, np.exp, "e^x", partials=(lambda ans, x: ans,), analytic=True, latex=r"e^{@0}",
))
register(Primitive(
    "log", 1, np.log, "natural logarithm",
    partials=(lambda ans, x: 1 / x,), analytic=True, domain=positive, singular=lambda x: x,
    latex=r"\ln\left(@0\right)",
))
register(Primitive(
    "log2", 1, np.log2, "base-2 logarithm",
    partials=(lambda ans, x: 1 / (x * math.log(2)),), analytic=True, domain=positive,
    singular=lambda x: x,
    latex=r"\log_{2}\left(@0\right)",
))
register(Primitive(
    "log10", 1, np.log10, "base-10 logarithm",
    partials=(lambda ans, x: 1 / (x * math.log(10)),), analytic=True, domain=positive,
    singular=lambda x: x,
    latex=r"\log_{10}\left(@0\right)",
))
register(Primitive(
    "log1p", 1, _log1p, "log(1 + x), accurate for small x",
    partials=(lambda ans, x: 1 / (1 + x),), analytic=True,
    domain=Domain("x > -1", lambda x: x > -1), singular=lambda x: 1 + x,
    latex=r"\ln\left(1 + @0\right)",
))
register(Primitive(
    "expm1", 1, np.expm1, "e^x - 1, accurate for small x",
    partials=(lambda ans, x: exp(x),), analytic=True,
    latex=r"\left(e^{@0} - 1\right)",
))
register(Primitive(
    "xlogy", 2, _real_or_complex(_xlogy, _xlogy_complex),
    "x*log(y), and 0 where x = 0 (so 0*log 0 = 0)",
    # At x = y = 0, where xlogy is 0 along y, both partials are 0, not log 0 and 0/0: so the
    # second derivatives of x^y at x = 0 (through pow's xlogy(ans, x)) are 0, not nan.
    partials=(
        lambda ans, x, y: log(y + equal(y, 0.0)),
        lambda ans, x, y: x / (y + equal(x, 0.0) * equal(y, 0.0)),
    ),
    analytic=True,
    domain=Domain("y > 0, or x = 0", lambda x, y: (y > 0) | (x == 0)),
    singular=lambda x, y: y,
    python="_xlogy(@0, @1)", python_uses=(_xlogy,),
))
register(Primitive(
    "sqrt", 1, np.sqrt, "square root",
    partials=(lambda ans, x: 0.5 / ans,), analytic=True,
    domain=Domain("x ≥ 0", lambda x: x >= 0), singular=lambda x: x,
    latex=r"\sqrt{@0}",
))

# Trigonometric and hyperbolic functions.
register(Primitive(
    "sin", 1, np.sin, "sine", partials=(lambda ans, x: cos(x),), analytic=True, period=2 * np.pi,
))
register(Primitive(
    "cos", 1, np.cos, "cosine", partials=(lambda ans, x: -sin(x),), analytic=True,
    period=2 * np.pi,
))
register(Primitive(
    "tan", 1, np.tan, "tangent",
    partials=(lambda ans, x: 1 + ans**2,), analytic=True,
    domain=Domain("cos x ≠ 0", lambda x: np.cos(x) != 0), period=np.pi,
))
register(Primitive(
    "asin", 1, np.arcsin, "inverse sine",
    # (1 - x)(1 + x) rather than 1 - x^2, which cancels near x = ±1.
    partials=(lambda ans, x: 1 / sqrt((1 - x) * (1 + x)),), analytic=True, domain=unit,
    latex=r"\arcsin\left(@0\right)", python="np.arcsin(@0)",
))
register(Primitive(
    "acos", 1, np.arccos, "inverse cosine",
    partials=(lambda ans, x: -1 / sqrt((1 - x) * (1 + x)),), analytic=True, domain=unit,
    latex=r"\arccos\left(@0\right)", python="np.arccos(@0)",
))
register(Primitive(
    "atan", 1, np.arctan, "inverse tangent",
    # (1/hypot(1, x))^2 is 1/(1 + x^2) without overflowing x^2 for large x.
    partials=(lambda ans, x: (1 / hypot(1.0, x)) ** 2,), analytic=True,
    latex=r"\arctan\left(@0\right)", python="np.arctan(@0)",
))
register(Primitive(
    "atan2", 2, _atan2, "angle of the point (x, y), in (-π, π]",
    # x/(x^2 + y^2), with each factor divided by the norm so that nothing overflows or underflows.
    partials=(
        lambda ans, y, x: x / hypot(x, y) / hypot(x, y),
        lambda ans, y, x: -y / hypot(x, y) / hypot(x, y),
    ),
    analytic=True, params=("y", "x"),
    # The angle jumps by 2π across the negative x axis (the switch is y there), and turns
    # through π around the origin (elsewhere it is hypot, 0 only there, so that a step far above
    # the distance to the origin reads as crossing: atan2(u, 2e-18) at u = 0). Neither is a
    # product, which would underflow to a false 0 (y·hypot at y = 5e-238, x = -1e-232).
    kink=lambda y, x: y * heaviside(-x, 0.0) + hypot(x, y) * heaviside(x, 1.0), jump=True,
    python="np.arctan2(@0, @1)",
))
register(Primitive(
    "hypot", 2, _hypot, "sqrt(x^2 + y^2) without overflow",
    # x/hypot, and 0 at the origin (a valid subgradient, as abs'(0) = 0) instead of 0/0
    partials=(
        lambda ans, x, y: x / (ans + equal(ans, 0.0)),
        lambda ans, x, y: y / (ans + equal(ans, 0.0)),
    ),
    analytic=True,
    kink=lambda x, y: hypot(x, y),  # a cone at the origin, as norm's
    python="np.hypot(@0, @1)",
))
register(Primitive(
    "sinh", 1, np.sinh, "hyperbolic sine", partials=(lambda ans, x: cosh(x),), analytic=True,
))
register(Primitive(
    "cosh", 1, np.cosh, "hyperbolic cosine", partials=(lambda ans, x: sinh(x),), analytic=True,
))
register(Primitive(
    # sech(x)^2 = 1 - tanh(x)^2, without the cancellation that loses it for large |x|.
    "tanh", 1, np.tanh, "hyperbolic tangent",
    partials=(lambda ans, x: sech(x) ** 2,), analytic=True,
))
register(Primitive(
    "sech", 1, _real_or_complex(_sech, _sech_complex),
    "hyperbolic secant 1/cosh(x), without overflow",
    partials=(lambda ans, x: -ans * tanh(x),), analytic=True,
    python="_sech(@0)", python_uses=(_sech,),
))

# Activation functions.
register(Primitive(
    "sigmoid", 1, _sigmoid, "logistic function 1/(1 + e^-x)",
    # σ(x)σ(-x) = σ(x)(1 - σ(x)), without the cancellation in 1 - σ(x) for large x.
    partials=(lambda ans, x: ans * sigmoid(-x),), analytic=True,
    latex=r"\sigma\left(@0\right)", python="_sigmoid(@0)", python_uses=(_sigmoid,),
))
register(Primitive(
    "softplus", 1, _real_or_complex(_softplus, _softplus_complex),
    "log(1 + e^x), without overflow",
    partials=(lambda ans, x: sigmoid(x),), analytic=True,
    python="_softplus(@0)", python_uses=(_softplus,),
))
# fmt: on

# Inverse hyperbolic functions and logaddexp. Their derivatives avoid the forms that overflow
# or cancel: 1/hypot(x, 1) rather than 1/√(x² + 1), √(x − 1)·√(x + 1) rather than √(x² − 1),
# (1 − x)(1 + x) rather than 1 − x². Not marked analytic: numpy's complex forwards of these are
# not held to a few ulps in a tiny imaginary part here, so the checker takes differences.
# fmt: off
register(Primitive(
    "asinh", 1, np.arcsinh, "inverse hyperbolic sine",
    partials=(lambda ans, x: 1 / hypot(x, 1.0),), analytic=True,
    latex=r"\operatorname{arsinh}\left(@0\right)", python="np.arcsinh(@0)",
))
register(Primitive(
    "acosh", 1, np.arccosh, "inverse hyperbolic cosine, for x ≥ 1",
    partials=(lambda ans, x: 1 / (sqrt(x - 1) * sqrt(x + 1)),), analytic=True,
    domain=Domain("x ≥ 1", lambda x: x >= 1), singular=lambda x: x - 1,
    latex=r"\operatorname{arcosh}\left(@0\right)", python="np.arccosh(@0)",
))
register(Primitive(
    "atanh", 1, np.arctanh, "inverse hyperbolic tangent, for |x| < 1",
    partials=(lambda ans, x: 1 / ((1 - x) * (1 + x)),), analytic=True,
    domain=Domain("-1 < x < 1", lambda x: (x > -1) & (x < 1)),
    singular=lambda x: (1 - x) * (1 + x),
    latex=r"\operatorname{artanh}\left(@0\right)", python="np.arctanh(@0)",
))
register(Primitive(
    "logaddexp", 2, lambda a, b: np.logaddexp(np.real(a), np.real(b)),
    "log(e^a + e^b), without overflow (numpy's logaddexp)",
    partials=(lambda ans, a, b: sigmoid(a - b), lambda ans, a, b: sigmoid(b - a)),
    params=("a", "b"), python="np.logaddexp(@0, @1)",
))
# fmt: on


# Powers, roots, logistic forms and sinc. Each derivative is in a form accurate to a few ulps
# over the whole float64 range: 1/(3·cbrt(x)²) (no x^(-2/3), which underflows to a false 0 for
# huge x), σ(−x) for log σ, 1/(x(1 − x)) for logit, and for sinc a series near 0 where
# (cos πx − sinc x)/x cancels.
def _cbrt(x):
    return np.cbrt(np.real(x))


def _log_sigmoid(x):
    return -_softplus(-x)


def _log_sigmoid_complex(x):
    return -_softplus_complex(-x)


def _logit(x):
    """log(x/(1 − x)); near 1/2 as log1p((2x − 1)/(1 − x)), where 2x − 1 and 1 − x are exact
    and log x − log1p(−x) would cancel."""
    x = np.real(np.asarray(x, dtype=np.result_type(x, np.float32)))
    middle = (x > 0.25) & (x < 0.75)
    with np.errstate(divide="ignore", invalid="ignore"):
        near = np.log1p((2 * x - 1) / (1 - x))
        far = np.log(x) - np.log1p(-x)
    return np.where(middle, near, far)


def _sinc(x):
    """sin(πx)/(πx), numpy's normalized sinc, with sin(πx) taken after reducing x exactly to
    s in [−1/2, 1/2] (numpy's sinc rounds πx first: 1e-4 relative at 3 + 2^-40)."""
    x = np.real(np.asarray(x, dtype=np.result_type(x, np.float32)))
    r = x - 2 * np.round(x / 2)  # exact: x less an even integer, in [−1, 1]
    s = np.where(r > 0.5, 1 - r, np.where(r < -0.5, -1 - r, r))  # sin(πr) = sin(πs)
    tiny = np.abs(x) < 2.0**-30  # 1 − (πx)²/6 rounds to 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(tiny, 1.0, np.sin(np.pi * s) / (np.pi * np.where(tiny, 1.0, x)))


# sinc′(x) = x·Σ aₖ x^(2k−2), aₖ = (−1)ᵏ 2k π^(2k)/(2k + 1)!: for |x| < 0.1 eight terms reach
# 1e-20 of the first, where (cos πx − sinc x)/x would lose |x|⁻² ulps.
_SINC_SERIES = tuple(
    (-1) ** k * 2 * k * math.pi ** (2 * k) / math.factorial(2 * k + 1) for k in range(1, 9)
)


def _cos_pi(x):
    """cos(πx) as a node, accurate where it is small: sin(πw) = sinc(w)·πw with w = 1/2 −
    mod(x, 2), which is exact, so no multiple of π is rounded (cos(π·1e6) was 1e-10 off)."""
    w = 0.5 - _apply("mod", x, 2.0)
    return _apply("sinc", w) * (math.pi * w)


def _sinc_partial(ans, x):
    series = _polynomial(x * x, _SINC_SERIES)
    near = _apply("less", _apply("abs", x), 0.1)
    return _apply("where", near, x * series, (_cos_pi(x) - ans) / x)


def _exp2_complex(x):
    """2^(a + ib) = 2^a·(cos(b log 2) + i·sin(b log 2)), with 2^a from the real exp2: numpy's
    complex exp2 rounds (a + ib)·log 2 first, 265 ulps off at a = 709."""
    a, b = np.real(x), np.imag(x)
    scale, turn = np.exp2(a), b * math.log(2)
    return _pack(scale * np.cos(turn), scale * np.sin(turn))


def _xlog1py(x, y):
    x, y = np.real(x), np.real(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log1p(y))


# fmt: off
register(Primitive(
    "cbrt", 1, _cbrt, "cube root, real for x < 0",
    partials=(lambda ans, x: 1 / (3 * (ans * ans)),), singular=lambda x: x,
    latex=r"\sqrt[3]{@0}", python="np.cbrt(@0)",
))
register(Primitive(
    "square", 1, np.square, "x², numpy's square",
    partials=(lambda ans, x: 2 * x,), analytic=True, latex=r"\left(@0\right)^{2}",
    python="np.square(@0)",
))
register(Primitive(
    "exp2", 1, _real_or_complex(np.exp2, _exp2_complex), "2^x",
    partials=(lambda ans, x: ans * math.log(2),), analytic=True, latex=r"2^{@0}",
    python="np.exp2(@0)",
))
register(Primitive(
    "log_sigmoid", 1, _real_or_complex(_log_sigmoid, _log_sigmoid_complex),
    "log σ(x) = −softplus(−x), without overflow or cancellation",
    partials=(lambda ans, x: sigmoid(-x),), analytic=True,
    latex=r"\log\sigma\left(@0\right)", python="_log_sigmoid(@0)",
    python_uses=(_log_sigmoid, _softplus),
))
register(Primitive(
    "logit", 1, _logit, "log(x/(1 − x)), the inverse of sigmoid, for 0 < x < 1",
    partials=(lambda ans, x: 1 / (x * (1 - x)),),
    domain=Domain("0 < x < 1", lambda x: (x > 0) & (x < 1)), singular=lambda x: x * (1 - x),
    latex=r"\operatorname{logit}\left(@0\right)", python="_logit(@0)", python_uses=(_logit,),
))
register(Primitive(
    "sinc", 1, _sinc, "sin(πx)/(πx), and 1 at 0 (numpy's normalized sinc)",
    partials=(_sinc_partial,),
    period=2.0,  # beyond 2^52 every float64 is a whole number, where sinc is 0
    latex=r"\operatorname{sinc}\left(@0\right)", python="_sinc(@0)", python_uses=(_sinc,),
))
register(Primitive(
    "xlog1py", 2, _xlog1py, "x·log(1 + y), and 0 where x = 0 (scipy's xlog1py)",
    partials=(
        lambda ans, x, y: _apply("log1p", y + equal(y, -1.0)),
        lambda ans, x, y: x / (1 + y + equal(x, 0.0) * equal(y, -1.0)),
    ),
    domain=Domain("y > −1, or x = 0", lambda x, y: (y > -1) | (x == 0)),
    singular=lambda x, y: 1 + y,
    python="_xlog1py(@0, @1)", python_uses=(_xlog1py,),
))
# fmt: on
