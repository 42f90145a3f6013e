"""Statistics of an array along an optional axis: var and std, with numpy's ddof.

var's gradient is 2(x − mean)/(n − ddof); std is its own primitive, not sqrt(var): where every
element is equal it is the tip of a cone (a norm of x − mean), and like norm it gives the
subgradient 0 there, where JAX and PyTorch give nan. Both are analytic: their complex forwards
square x − mean without numpy's absolute value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, register
from ._common import ShapeOf, _abs, _apply, _axis, _expand, _in_batch, _reduced

# --- var and std ------------------------------------------------------------------------------


def _count(shape: Shape, axis: int | None, ddof: Any) -> int:
    """n − ddof, the divisor of the variance, checked to be positive: numpy gives nan or inf."""
    if not isinstance(ddof, int) or ddof < 0:
        raise ValueError(f"var's ddof is a whole number ≥ 0, not {ddof}")
    axis = _axis(axis, len(shape))
    n = math.prod(shape) if axis is None else shape[axis]
    if n - ddof <= 0:
        where = "" if axis is None else f" along axis {axis}"
        raise ValueError(f"var with ddof={ddof} needs more than {ddof} elements{where}, not {n}")
    return n - ddof


def _var(x: Any, axis: Any, ddof: Any, divisor: int | None = None) -> Any:
    """numpy's variance; for the complex step Σ(x − mean)²/(n − ddof), analytic, where numpy
    would take |x − mean|². A batch passes the axes of its items and their divisor."""
    x = np.asarray(x)
    if divisor is None:
        divisor = _count(x.shape, axis, ddof)
    if not np.iscomplexobj(x):
        return np.var(x, axis=axis, ddof=ddof)
    d = x - np.mean(x, axis=axis, keepdims=True)
    return np.sum(d * d, axis=axis) / divisor


def _deviation(node: Node, shape_of: ShapeOf) -> tuple[Node, float]:
    """x − mean(x) along the axis, and 2/(n − ddof): the gradient of var is their product."""
    (x,), (axis, ddof) = node.inputs, node.attrs
    shape = shape_of(x)
    d = x - _expand(_apply("mean", x, attrs=(axis,)), shape, axis)
    return d, 2.0 / _count(shape, axis, ddof)


def _var_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    d, factor = _deviation(node, shape_of)
    return (size(d) * _expand(g * factor, shape_of(node.inputs[0]), node.attrs[0]),)


def _var_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node:
    d, factor = _deviation(node, shape_of)
    return _apply("sum", size(d) * ts[0], attrs=(node.attrs[0],)) * factor


def _std(x: Any, axis: Any, ddof: Any, divisor: int | None = None) -> Any:
    x = np.asarray(x)
    if divisor is None:
        divisor = _count(x.shape, axis, ddof)
    if not np.iscomplexobj(x):
        return np.std(x, axis=axis, ddof=ddof)
    return np.sqrt(_var(x, axis, ddof, divisor))


def _std_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """g·(x − mean)/((n − ddof)·std), and 0 where std = 0: every element equal is a kink, the
    tip of a cone (std is a norm of x − mean), and 0 is a subgradient there, as for norm."""
    d, factor = _deviation(node, shape_of)
    safe = node + _apply("equal", node, 0.0)
    shape, axis = shape_of(node.inputs[0]), node.attrs[0]
    return (size(d) * _expand(g * (factor / 2) / safe, shape, axis),)


def _std_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node:
    d, factor = _deviation(node, shape_of)
    safe = node + _apply("equal", node, 0.0)
    return _apply("sum", size(d) * ts[0], attrs=(node.attrs[0],)) * (factor / 2) / safe


def _statistic(name: str, forward: Any, doc: str, vjp: Any, jvp: Any, **extra: Any) -> None:
    """var or std: a reduction along an optional axis with ddof, its divisor n − ddof checked
    by the shape rule, its rules also giving |J| (with abs) for the rounding bounds."""
    register(Primitive(
        name, 1, lambda x, axis, ddof: forward(x, _axis(axis, np.ndim(x)), ddof), doc,
        vjp=vjp, jvp=jvp, analytic=True,
        magnitude_vjp=lambda node, g, shape_of: vjp(node, g, shape_of, _abs),
        error_jvp=lambda node, es, shape_of: jvp(node, es, shape_of, _abs),
        shape=lambda s, axis, ddof: (_count(s, axis, ddof), _reduced(s, axis))[1],
        batch=lambda args, flags, items, out, axis, ddof: forward(
            args[0], _in_batch(axis, len(items[0])), ddof, _count(items[0], axis, ddof)
        ),
        attr_params=(("axis", None), ("ddof", 0)),
        python=f"np.{name}(@0, axis=@axis, ddof=@ddof)",
        **extra,
    ))  # fmt: skip


_statistic(
    "var", _var, "the variance Σ(x − mean)²/(n − ddof) along axis (of every element for None)",
    _var_vjp, _var_jvp,
)  # fmt: skip
_statistic(
    "std", _std,
    "the standard deviation sqrt(var(x, axis, ddof)) (derivative 0 where every element is equal)",
    _std_vjp, _std_jvp, kink=lambda x, axis, ddof: _apply("std", x, attrs=(axis, ddof)),
)  # fmt: skip
