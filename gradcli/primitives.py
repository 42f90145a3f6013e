"""Registrations, one per primitive, and nothing else.

Each derivative rule is a formula over graph nodes: `ans` is the node of the primitive's own
result, the other arguments are its input nodes. Forwards of analytic primitives accept complex
arrays, so the complex-step check can run through them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import reduce

import numpy as np

from .graph import Node
from .registry import REGISTRY, Domain, Operator, Primitive, Shape, as_shape, register


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


def _sigmoid(x):
    # Stable on both sides, and analytic: the branch is chosen by the real part only.
    positive = np.real(x) >= 0
    e = np.exp(np.where(positive, -x, x))
    return np.where(positive, 1 / (1 + e), e / (1 + e))


def _softplus(x):
    positive = np.real(x) > 0
    return np.where(positive, x, 0) + np.log1p(np.exp(np.where(positive, -x, x)))


def _sech(x):
    # 1/cosh(x) = 2e^-|x| / (1 + e^-2|x|): no overflow. Analytic: |x| uses the real part's sign.
    s = np.where(np.real(x) >= 0, 1, -1)
    e = np.exp(-s * x)
    return 2 * e / (1 + e * e)


def _xlogy(x, y):
    return np.where(x == 0, 0.0, x * np.log(y))


def _atan2(y, x):
    if not _complex(y, x):
        return np.arctan2(y, x)
    # For the complex step: the real angle, plus the imaginary part of a continuation that differs
    # from it by a constant (atan(y/x), or -atan(x/y) where |y| > |x|, away from their poles).
    yr, xr = np.real(y), np.real(x)
    continued = np.where(np.abs(xr) >= np.abs(yr), np.arctan(y / x), -np.arctan(x / y))
    return np.arctan2(yr, xr) + 1j * np.imag(continued)


def _hypot(x, y):
    if not _complex(x, y):
        return np.hypot(x, y)
    # For the complex step: the real hypot, plus the first-order imaginary part (x·x' + y·y')/r.
    # Squaring the complex arguments would underflow (x ≈ 1e-180) and lose it.
    xr, yr = np.real(x), np.real(y)
    r = np.hypot(xr, yr)
    return r + 1j * ((xr / r) * np.imag(x) + (yr / r) * np.imag(y))


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
    "div", 2, np.divide, "x / y",
    partials=(lambda ans, a, b: 1 / b, lambda ans, a, b: -ans / b),
    analytic=True, operator=Operator("/", 2, "left"), public=False, passes_nonfinite=(0,),
    domain=Domain("y ≠ 0", lambda a, b: b != 0, fault="division by zero"),
))
register(Primitive(
    "neg", 1, np.negative, "-x",
    partials=(lambda ans, a: -1.0,),
    analytic=True, operator=Operator("-", 3, "prefix"), public=False, passes_nonfinite=(0,),
))
register(Primitive(
    "pow", 2, np.power, "x raised to the power y (also written x^y or x**y)",
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
    partials=(lambda ans, x: 1 / x,), analytic=True, domain=positive,
    latex=r"\ln\left(@0\right)",
))
register(Primitive(
    "log2", 1, np.log2, "base-2 logarithm",
    partials=(lambda ans, x: 1 / (x * math.log(2)),), analytic=True, domain=positive,
    latex=r"\log_{2}\left(@0\right)",
))
register(Primitive(
    "log10", 1, np.log10, "base-10 logarithm",
    partials=(lambda ans, x: 1 / (x * math.log(10)),), analytic=True, domain=positive,
    latex=r"\log_{10}\left(@0\right)",
))
register(Primitive(
    "log1p", 1, np.log1p, "log(1 + x), accurate for small x",
    partials=(lambda ans, x: 1 / (1 + x),), analytic=True,
    domain=Domain("x > -1", lambda x: x > -1),
    latex=r"\ln\left(1 + @0\right)",
))
register(Primitive(
    "expm1", 1, np.expm1, "e^x - 1, accurate for small x",
    partials=(lambda ans, x: exp(x),), analytic=True,
    latex=r"\left(e^{@0} - 1\right)",
))
register(Primitive(
    "xlogy", 2, _xlogy, "x*log(y), and 0 where x = 0 (so 0*log 0 = 0)",
    partials=(lambda ans, x, y: log(y), lambda ans, x, y: x / y), analytic=True,
    domain=Domain("y > 0, or x = 0", lambda x, y: (y > 0) | (x == 0)),
    python="_xlogy(@0, @1)", python_uses=(_xlogy,),
))
register(Primitive(
    "sqrt", 1, np.sqrt, "square root",
    partials=(lambda ans, x: 0.5 / ans,), analytic=True,
    domain=Domain("x ≥ 0", lambda x: x >= 0),
    latex=r"\sqrt{@0}",
))

# Trigonometric and hyperbolic functions.
register(Primitive("sin", 1, np.sin, "sine", partials=(lambda ans, x: cos(x),), analytic=True))
register(Primitive("cos", 1, np.cos, "cosine", partials=(lambda ans, x: -sin(x),), analytic=True))
register(Primitive(
    "tan", 1, np.tan, "tangent",
    partials=(lambda ans, x: 1 + ans**2,), analytic=True,
    domain=Domain("cos x ≠ 0", lambda x: np.cos(x) != 0),
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
    # The angle jumps by 2π across the negative x axis.
    kink=lambda y, x: y * heaviside(-x, 0.0) + heaviside(x, 1.0),  # y where x < 0, else 1
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
    "sech", 1, _sech, "hyperbolic secant 1/cosh(x), without overflow",
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
    "softplus", 1, _softplus, "log(1 + e^x), without overflow",
    partials=(lambda ans, x: sigmoid(x),), analytic=True,
    python="_softplus(@0)", python_uses=(_softplus,),
))

# Non-smooth functions: each names its kink, where the derivative shown is a subgradient.
register(Primitive(
    "abs", 1, np.abs, "absolute value (derivative 0 at 0)",
    partials=(lambda ans, x: sign(x),), kink=lambda x: x,
    latex=r"\left|@0\right|",
))
register(Primitive(
    "relu", 1, lambda x: np.maximum(x, 0.0), "max(x, 0) (derivative 0 at 0)",
    partials=(lambda ans, x: heaviside(x, 0.0),), kink=lambda x: x,
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
    "min", 2, np.minimum, "the smaller argument (derivative split evenly on a tie)",
    partials=(lambda ans, a, b: heaviside(b - a, 0.5), lambda ans, a, b: heaviside(a - b, 0.5)),
    kink=lambda a, b: a - b, variadic=True, lower=_fold_or_reduce("min"),
    latex=r"\min\left(@0, @1\right)", python="np.minimum(@0, @1)",
))
register(Primitive(
    "max", 2, np.maximum, "the larger argument (derivative split evenly on a tie)",
    partials=(lambda ans, a, b: heaviside(a - b, 0.5), lambda ans, a, b: heaviside(b - a, 0.5)),
    kink=lambda a, b: a - b, variadic=True, lower=_fold_or_reduce("max"),
    latex=r"\max\left(@0, @1\right)", python="np.maximum(@0, @1)",
))
# The step functions are constant on each side of their jump, so they are analytic there (on
# the real part of a complex step): derivatives of derivatives can still use the complex step.
register(Primitive(
    "sign", 1, lambda x: np.sign(np.real(x)), "-1, 0 or 1 (derivative 0 away from the jump at 0)",
    partials=(lambda ans, x: None,), kink=lambda x: x, analytic=True,
    latex=r"\operatorname{sgn}\left(@0\right)",
))
register(Primitive(
    "heaviside", 2, lambda x, h0: np.heaviside(np.real(x), np.real(h0)),
    "step function: 0 for x < 0, 1 for x > 0, h0 at x = 0",
    partials=(
        lambda ans, x, h0: None,
        lambda ans, x, h0: heaviside(x, 1.0) - heaviside(x, 0.0),  # 1 exactly where x = 0
    ),
    kink=lambda x, h0: x, params=("x", "h0"), analytic=True,
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
