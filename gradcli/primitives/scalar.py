"""Registrations, one per primitive, and nothing else.

Each derivative rule is a formula over graph nodes: `ans` is the node of the primitive's own
result, the other arguments are its input nodes. Forwards of analytic primitives accept complex
arrays, so the complex-step check can run through them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import reduce
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import REGISTRY, Domain, Operator, Primitive, Shape, as_shape, register


def _op(name: str) -> Callable[..., Node]:
    """A function that builds the graph node `name(*args)` in the graph of its node arguments."""

    def build(*args: Node | float) -> Node:
        graph = next(a for a in args if isinstance(a, Node)).graph
        return graph.apply(name, *args)

    build.__name__ = name
    return build


sin, cos, exp, log, sqrt, sinh, cosh, tanh, sech = map(
    _op, ["sin", "cos", "exp", "log", "sqrt", "sinh", "cosh", "tanh", "sech"]
)
sign, heaviside, sigmoid, hypot, xlogy, equal = map(
    _op, ["sign", "heaviside", "sigmoid", "hypot", "xlogy", "equal"]
)


def _complex(*xs: object) -> bool:
    return any(np.iscomplexobj(x) for x in xs)


def _real_or_complex(real: Callable[..., Any], complex_: Callable[..., Any]) -> Callable[..., Any]:
    """A forward that keeps `real` for real input, bit for bit, and takes `complex_` for the
    complex step."""

    def forward(*args: Any) -> Any:
        return complex_(*args) if _complex(*args) else real(*args)

    forward.__name__ = real.__name__
    return forward


# --- Helpers of the complex forwards ----------------------------------------------------------
# The complex step puts a tiny imaginary part on a real point: 2^-1022 next to 1e30, say. Each
# part of the result must still be accurate to a few ulps, so these keep the parts apart and
# never let a partial result of one part underflow while the whole part does not.


def _pack(re: Any, im: Any) -> np.ndarray:
    """re + i·im, without the nan that re + 1j*im makes of an infinite im (1j*inf = nan + inf·i)."""
    re, im = np.asarray(re), np.asarray(im)
    out = np.empty(np.broadcast_shapes(re.shape, im.shape), np.result_type(re, im, np.complex64))
    out.real, out.imag = re, im
    return out


def _scaled(*factors: Any, over: tuple[Any, ...] = ()) -> Any:
    """The product of `factors` divided by those in `over`, with mantissas and binary exponents
    kept apart until the end, so that no partial product overflows or underflows: a·d/(c·t) for
    1e300·2^-1022/(1e30·1e30) is 2.2e-68, though a·d/c alone rounds d/c to 0."""
    m, e = 1.0, 0
    for f in factors:
        fm, fe = np.frexp(f)
        m, e = m * fm, e + fe
    for g in over:
        gm, ge = np.frexp(g)
        m, e = m / gm, e - ge
    return np.ldexp(m, e)


def _divide(n: Any, d: Any) -> np.ndarray:
    """n/d, each part to a few ulps. numpy's complex division (Smith's) first rounds
    Im d/Re d, to 0 for 2^-1022/1e30, and with it the imaginary part of the quotient."""
    a, b, c, e = np.real(n), np.imag(n), np.real(d), np.imag(d)
    # (a + ib)/(c + ie) = (b - ia)/(e - ic): divide by the larger part.
    swap = np.abs(e) > np.abs(c)
    a, b = np.where(swap, b, a), np.where(swap, -a, b)
    c, e = np.where(swap, e, c), np.where(swap, -c, e)
    r = e / c
    t = c * (1 + r * r)  # |d|²/c
    return _pack(a / t + _scaled(b, e, over=(c, t)), b / t - _scaled(a, e, over=(c, t)))


def _div(a, b):
    return _divide(a, b) if _complex(a, b) else np.divide(a, b)


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


def _sin_cos_pi(t: Any) -> tuple[Any, Any]:
    """sin(πt) and cos(πt), exact at the multiples of 1/2 (cos(π/2) would be 6e-17, not 0)."""
    n = np.round(2 * t)
    f = t - n / 2  # exact, in [-1/4, 1/4]
    s, c = np.sin(np.pi * f), np.cos(np.pi * f)
    quarter = np.mod(n, 4)
    first = [quarter == 0, quarter == 1, quarter == 2]
    return np.select(first, [s, c, -s], -c), np.select(first, [c, -s, -c], s)


def _pow(a, b):
    if not _complex(a, b):
        return np.power(a, b)
    # numpy's complex power is exp(b·log a): |b·log a| ulps off in its modulus (1400 at
    # 1e300^-2), nan where an intermediate overflows, and n·θ leaves the sine of its rounding
    # for a negative base. Here a = e^(iπt)·c, turned by a multiple of π/2 so that c lies in
    # the cone |Im c| ≤ Re c, and with c = ρe^(iθ):
    #   a^b = ρ^br·e^(-bi·(θ + πt)) · e^(i(br·θ + bi·log ρ)) · e^(iπt·br),
    # where ρ^br = (Re c)^br·(1 + q²)^(br/2) with q = Im c/Re c: the real pow carries the size.
    ar, ai, br, bi = np.real(a), np.imag(a), np.real(b), np.imag(b)
    k = np.where(np.abs(ai) > np.abs(ar), np.where(ai > 0, 1, 3), np.where(ar < 0, 2, 0))
    cases = [k == 0, k == 1, k == 2]
    cr, ci = np.select(cases, [ar, ai, -ar], -ai), np.select(cases, [ai, -ar, -ai], ar)
    t = np.select(cases, [0.0, 0.5, np.where(np.signbit(ai), -1.0, 1.0)], -0.5)  # principal
    t = t.astype(np.result_type(ar, br))
    q = ci / np.where(cr > 0, cr, 1.0)
    half, theta = 0.5 * np.log1p(q * q), np.arctan(q)  # log(ρ/Re c) and θ
    log_rho = np.log(cr) + half
    power, rest = np.power(cr, br), br * half - bi * (theta + np.pi * t)
    # Where (Re c)^br alone overflows or underflows, the rest may bring it back.
    lost = ((power == 0) | np.isinf(power)) & (rest != 0)
    size = np.where(lost, np.exp(br * np.log(cr) + rest), power * np.exp(rest))
    turn = br * theta + bi * log_rho
    # Im c^b = size·sin(turn) = (size·br·θ + size·bi·log ρ)·sin(turn)/turn, with θ formed as
    # q·(atan(q)/q): θ itself underflows (2^-1022/1e30) where size·br·θ does not.
    g = np.where(q == 0, 1.0, theta / np.where(q == 0, 1.0, q))
    sinc = np.where(turn == 0, 1.0, np.sin(turn) / np.where(turn == 0, 1.0, turn))
    re = size * np.cos(turn)
    im = _scaled(size, br, ci, g, over=(np.where(cr > 0, cr, 1.0),)) + _scaled(size, bi, log_rho)
    im = im * sinc
    sin, cos = _sin_cos_pi(t * br)
    # sin is 0 when no turn is needed (and an infinite part stays inf rather than inf·0 = nan)
    out = _pack(np.where(sin == 0, re * cos, re * cos - im * sin), re * sin + im * cos)
    # 0^b = 0 for Re b > 0 (and the real 0^br otherwise).
    return np.where((ar == 0) & (ai == 0), np.power(0.0, br) + 0j, out)


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


def _heaviside(x, h0):
    step = np.heaviside(np.real(x), np.real(h0))
    if not np.iscomplexobj(h0):
        return step
    # At x = 0 the value is h0 itself, analytic in h0.
    return _pack(step, np.where(np.real(x) == 0, np.imag(h0), 0.0))


def _sum_to(x, shape):
    """Sum `x` down to `shape`: the reverse of numpy broadcasting."""
    x = np.asarray(x)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    x = x.sum(axis=tuple(range(lead)))
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    return x.sum(axis=kept, keepdims=True) if kept else x


# The table below is laid out by hand, one entry per primitive, so the formatter leaves it alone.
# fmt: off
positive = Domain("x > 0", lambda x: x > 0)
unit = Domain("-1 ≤ x ≤ 1", lambda x: (x >= -1) & (x <= 1))

# Arithmetic. The operators are written infix; lowering maps symbols to these names.
register(Primitive(
    "add", 2, np.add, "x + y",
    partials=(lambda ans, a, b: 1.0, lambda ans, a, b: 1.0),
    analytic=True, operator=Operator("+", 1, "left"), public=False, passes_nonfinite=(0, 1),
))
register(Primitive(
    "sub", 2, np.subtract, "x - y",
    partials=(lambda ans, a, b: 1.0, lambda ans, a, b: -1.0),
    analytic=True, operator=Operator("-", 1, "left"), public=False, passes_nonfinite=(0, 1),
))
register(Primitive(
    "mul", 2, np.multiply, "x * y",
    partials=(lambda ans, a, b: b, lambda ans, a, b: a),
    analytic=True, operator=Operator("*", 2, "left"), public=False, passes_nonfinite=(0, 1),
))
register(Primitive(
    "div", 2, _div, "x / y",
    partials=(lambda ans, a, b: 1 / b, lambda ans, a, b: -ans / b),
    analytic=True, operator=Operator("/", 2, "left"), public=False, passes_nonfinite=(0,),
    domain=Domain("y ≠ 0", lambda a, b: b != 0, fault="division by zero"),
    singular=lambda a, b: b,
))
register(Primitive(
    "neg", 1, np.negative, "-x",
    partials=(lambda ans, a: -1.0,),
    analytic=True, operator=Operator("-", 3, "prefix"), public=False, passes_nonfinite=(0,),
))
register(Primitive(
    "pow", 2, _pow, "x raised to the power y (also written x^y or x**y)",
    # xlogy: 0 where x^y is 0, so that d/dy 0^y = 0 for y > 0 rather than 0 * log 0 = nan.
    partials=(lambda ans, a, b: b * a ** (b - 1), lambda ans, a, b: xlogy(ans, a)),
    analytic=True, operator=Operator("^", 4, "right"), params=("x", "y"),
    domain=Domain(
        "x > 0, or x = 0 with y > 0, or y an integer",
        lambda a, b: (a > 0) | ((a == 0) & (b > 0)) | ((a != 0) & (b == np.round(b))),
    ),
))

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

# Non-smooth functions: each names its kink, where the derivative shown is a subgradient.
# Off their kinks they are analytic, each piece chosen by the real parts as the real function
# chooses it, so the complex step can check a program through them away from the kinks (sin of
# 1e6 inside relu, where differences cannot resolve it); on a kink, differences take over.
register(Primitive(
    "abs", 1, _real_or_complex(np.abs, lambda x: np.where(np.real(x) >= 0, x, -x)),
    "absolute value (derivative 0 at 0)",
    partials=(lambda ans, x: sign(x),), kink=lambda x: x, analytic=True,
    latex=r"\left|@0\right|",
))
register(Primitive(
    "relu", 1,
    _real_or_complex(lambda x: np.maximum(x, 0.0), lambda x: np.where(np.real(x) > 0, x, 0)),
    "max(x, 0) (derivative 0 at 0)",
    partials=(lambda ans, x: heaviside(x, 0.0),), kink=lambda x: x, analytic=True,
    python="np.maximum(@0, 0.0)",
))
def _fold_or_reduce(name: str) -> Callable[..., Node]:
    """max(a, b, …) is elementwise, folded from the left; max(x) and max(x, axis=k) reduce x."""

    def lower(call) -> Node:
        if len(call.args) == 1:
            return call.apply(REGISTRY[f"a{name}"], call.args)
        if call.keywords:
            span = next(iter(call.keyword_spans.values()))
            raise call.error(f"axis is for {name} over one array, as in {name}(x, axis=0)", span)
        if not call.args:
            raise call.error(f"{name} takes one array, or two or more values")
        graph = call.graph
        return reduce(lambda a, b: graph.apply(name, a, b, span=call.call.span), call.args)

    return lower


register(Primitive(
    "min", 2,
    _real_or_complex(np.minimum, lambda a, b: np.where(np.real(a) <= np.real(b), a, b)),
    "the smaller argument (derivative split evenly on a tie)",
    partials=(lambda ans, a, b: heaviside(b - a, 0.5), lambda ans, a, b: heaviside(a - b, 0.5)),
    kink=lambda a, b: a - b, variadic=True, lower=_fold_or_reduce("min"), analytic=True,
    latex=r"\min\left(@0, @1\right)", python="np.minimum(@0, @1)",
))
register(Primitive(
    "max", 2,
    _real_or_complex(np.maximum, lambda a, b: np.where(np.real(a) >= np.real(b), a, b)),
    "the larger argument (derivative split evenly on a tie)",
    partials=(lambda ans, a, b: heaviside(a - b, 0.5), lambda ans, a, b: heaviside(b - a, 0.5)),
    kink=lambda a, b: a - b, variadic=True, lower=_fold_or_reduce("max"), analytic=True,
    latex=r"\max\left(@0, @1\right)", python="np.maximum(@0, @1)",
))
# The step functions are constant on each side of their jump, so they are analytic there (on
# the real part of a complex step): derivatives of derivatives can still use the complex step.
register(Primitive(
    "sign", 1, lambda x: np.sign(np.real(x)), "-1, 0 or 1 (derivative 0 away from the jump at 0)",
    partials=(lambda ans, x: None,), kink=lambda x: x, analytic=True, jump=True,
    latex=r"\operatorname{sgn}\left(@0\right)",
))
register(Primitive(
    "heaviside", 2, _heaviside,
    "step function: 0 for x < 0, 1 for x > 0, h0 at x = 0",
    partials=(
        lambda ans, x, h0: None,
        lambda ans, x, h0: heaviside(x, 1.0) - heaviside(x, 0.0),  # 1 exactly where x = 0
    ),
    kink=lambda x, h0: x, params=("x", "h0"), analytic=True, jump=True,
))

# Shape plumbing for broadcasting, made by the differentiator, not callable by name.
def _to_shape_of(op: str) -> Callable[..., tuple[Node]]:
    """The vjp of sum_to is a broadcast back to the input's shape, and the other way round."""
    return lambda node, g, shape_of: (g.graph.apply(op, g, attrs=(shape_of(node.inputs[0]),)),)


def _sum_to_shape(x: Shape, shape: Shape) -> Shape:
    if np.broadcast_shapes(x, shape) != x:
        raise ValueError(f"cannot sum shape {x} down to {shape}: {shape} does not broadcast to it")
    return shape


def _broadcast_to_shape(x: Shape, shape: Shape) -> Shape:
    if np.broadcast_shapes(x, shape) != shape:
        raise ValueError(f"cannot broadcast shape {x} to {shape}")
    return shape


def _sum_to_batched(args, flags, items, out, shape):
    shape = as_shape(shape)
    (x,), (item,) = args, items
    x = np.asarray(x)
    lead = len(item) - len(shape)
    x = x.sum(axis=tuple(range(1, 1 + lead))) if lead else x
    kept = tuple(1 + i for i, n in enumerate(shape) if n == 1 and x.shape[1 + i] != 1)
    return x.sum(axis=kept, keepdims=True) if kept else x


def _broadcast_to_batched(args, flags, items, out, shape):
    shape = as_shape(shape)
    (x,), (item,) = args, items
    x = np.asarray(x)
    aligned = x.reshape(x.shape[:1] + (1,) * (len(shape) - len(item)) + tuple(item))
    return np.broadcast_to(aligned, x.shape[:1] + tuple(shape))


def _same_on_tangent(name: str) -> Callable[..., Node]:
    return lambda node, ts, shape_of: node.graph.apply(name, ts[0], attrs=node.attrs)


register(Primitive(
    "sum_to", 1, lambda x, shape: _sum_to(x, as_shape(shape)),
    "sum down to a shape, the reverse of broadcasting: sum_to(x, shape=[3])",
    vjp=_to_shape_of("broadcast_to"), batch=_sum_to_batched, jvp=_same_on_tangent("sum_to"),
    shape=lambda x, shape: _sum_to_shape(x, as_shape(shape)), analytic=True, foldable=False,
    attr_params=(("shape", ()),), passes_nonfinite=(0,),
    python="_sum_to(@0, @shape)", python_uses=(_sum_to,),
))
register(Primitive(
    "broadcast_to", 1, lambda x, shape: np.broadcast_to(x, as_shape(shape)),
    "broadcast to a shape: broadcast_to(x, shape=[2, 3])",
    vjp=_to_shape_of("sum_to"), batch=_broadcast_to_batched,
    jvp=_same_on_tangent("broadcast_to"),
    shape=lambda x, shape: _broadcast_to_shape(x, as_shape(shape)), analytic=True, foldable=False,
    attr_params=(("shape", ()),), passes_nonfinite=(0,),
))
# fmt: on
