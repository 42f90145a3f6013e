"""The arithmetic operators, and the broadcasting their adjoints undo.

add, sub, mul, div, neg and pow are written infix (lowering maps the symbols + - * / ^ and unary
minus to these names). sum_to and broadcast_to are the shape plumbing of broadcasting: the
differentiator sums an adjoint down to the shape of an input that was broadcast, and the adjoint
of each is the other.

Each derivative rule is a formula over graph nodes: `ans` is the node of the primitive's own
result, the other arguments are its input nodes. Forwards of analytic primitives accept complex
arrays, so the complex-step check can run through them; complex division and powers keep each
part of the result to a few ulps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Domain, Operator, Primitive, Shape, as_shape, register
from ._common import _complex, _divide, _pack, _scaled, equal, xlogy


def _div(a, b):
    return _divide(a, b) if _complex(a, b) else np.divide(a, b)


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


def _sum_to(x, shape):
    """Sum `x` down to `shape`: the reverse of numpy broadcasting."""
    x = np.asarray(x)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    x = x.sum(axis=tuple(range(lead)))
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    return x.sum(axis=kept, keepdims=True) if kept else x


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


# The table below is laid out by hand, one entry per primitive, so the formatter leaves it alone.
# fmt: off

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
def _pow_dx(ans: Node, a: Node, b: Node) -> Node:
    """∂(x^y)/∂x = y·x^(y−1), and 0 at x = y = 0: x^0 is 1 for every x, so its derivative at
    x = 0 is 0, not 0·0^−1 = nan. The mask is that one point only, so that the derivative of
    this rule in y stays right wherever x ≠ 0; a nonzero constant y (x^2) needs none."""
    rate = b * a ** (b - 1)
    if b.op == "const" and np.all(np.asarray(b.value) != 0):
        return rate
    graph = b.graph
    origin = graph.apply("logical_and", equal(a, 0.0), equal(b, 0.0))
    return graph.apply("where", origin, 0.0, rate)


register(Primitive(
    "pow", 2, _pow, "x raised to the power y (also written x^y or x**y)",
    # xlogy: 0 where x^y is 0, so that d/dy 0^y = 0 for y > 0 rather than 0 * log 0 = nan.
    partials=(_pow_dx, lambda ans, a, b: xlogy(ans, a)),
    analytic=True, operator=Operator("^", 4, "right"), params=("x", "y"),
    domain=Domain(
        "x > 0, or x = 0 with y ≥ 0, or y an integer",
        lambda a, b: (a > 0) | ((a == 0) & (b >= 0)) | ((a != 0) & (b == np.round(b))),
    ),
))

# Shape plumbing for broadcasting, made by the differentiator (and callable by name).
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
