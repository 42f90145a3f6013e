"""Reductions of one array along an optional axis: sum, mean, max and min over an array (amax,
amin, with the gap between the top two elements that finds their ties, and the gaps to the next
values that the checker watches beside it), norm (with numpy's ord) and logsumexp; and
softmax, normalized along an axis. prod and its derivatives are in products.py, var and std in
statistics.py.

Unlike the elementwise primitives, each of these states its output shape, its vector-Jacobian
product (written with graph operations, with the static shapes of its inputs at hand) and its batch
rule (the same operation with a leading batch axis, which shifts every axis it names).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, register
from ._common import (
    ShapeOf,
    _abs,
    _apply,
    _axis,
    _axis_argument,
    _expand,
    _in_batch,
    _pack,
    _reduced,
    _reduction,
    _same_shape,
)
from .norms import norm_call

# --- sum and mean ---------------------------------------------------------------------------

_reduction(
    "sum",
    lambda x, axis: np.sum(x, axis=axis),
    "sum of the elements (along axis, if given)",
    lambda node, g, shape_of: (_expand(g, shape_of(node.inputs[0]), node.attrs[0]),),
    passes_nonfinite=(0,),
)


def _mean_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    shape = shape_of(node.inputs[0])
    count = math.prod(shape) // max(1, math.prod(_reduced(shape, node.attrs[0])))
    return (_expand(g / count, shape, node.attrs[0]),)


_reduction("mean", lambda x, axis: np.mean(x, axis=axis), "mean of the elements", _mean_vjp)


# --- max and min over an array ------------------------------------------------------------


def _top_gap(x: np.ndarray, axis: int | tuple[int, ...] | None, sign: float) -> np.ndarray:
    """The gap between the largest two elements (smallest two, for sign -1): 0 on a tie."""
    x = sign * np.real(np.asarray(x))
    if axis is None or isinstance(axis, tuple):
        lead = 0 if axis is None else 1
        x, axis = x.reshape((*x.shape[:lead], -1)), lead
    if x.shape[axis] < 2:
        return np.full(np.delete(np.array(x.shape), axis), np.inf)
    top = -np.partition(-x, 1, axis=axis)
    return np.take(top, 0, axis=axis) - np.take(top, 1, axis=axis)


# The gaps watched beside max's and min's switch: from the top to the 3rd, …, (2 + this)th
# value, and one more where a tie fills them all (`_next_gaps`).
_TIES_WATCHED = 14


def _next_gaps(x: np.ndarray, axis: int | tuple[int, ...] | None, sign: float) -> np.ndarray:
    """The gaps between the largest element and the third, fourth, … largest (smallest, for sign
    -1), inf where a gap is 0: min(n - 2, _TIES_WATCHED) of them along a last axis. Where k + 1
    elements tie for the top, copies of one value (a broadcast) or a true tie, the k-th of these
    is the distance to the next value, a kink that `_top_gap` (0 under every move of copies)
    hides; it stays continuous as a true tie comes apart. Where there are more elements than
    that, one more gap: the distance to the next distinct value where the tie fills all the
    others (a longer tie), inf where it does not."""
    x = sign * np.real(np.asarray(x))
    if axis is None or isinstance(axis, tuple):
        lead = 0 if axis is None else 1
        x, axis = x.reshape((*x.shape[:lead], -1)), lead
    n = x.shape[axis]
    k = max(0, min(n - 2, _TIES_WATCHED))
    if k == 0:
        return np.zeros((*np.delete(np.array(x.shape), axis), 0))
    top = np.moveaxis(-np.partition(-x, list(range(k + 2)), axis=axis), axis, -1)
    with np.errstate(invalid="ignore"):
        gaps = top[..., :1] - top[..., 2 : k + 2]
        if n > k + 2:
            below = np.max(np.where(x < np.max(x, axis=axis, keepdims=True), x, -np.inf), axis)
            filled = top[..., 0] == top[..., k + 1]
            gaps = np.concatenate([gaps, np.where(filled, top[..., 0] - below, 0.0)[..., None]], -1)
        return np.where(gaps > 0, gaps, np.inf)


def _next_gaps_shape(shape: Shape, axis: int | None) -> Shape:
    axis = _axis(axis, len(shape))
    n = math.prod(shape) if axis is None else shape[axis]
    k = max(0, min(n - 2, _TIES_WATCHED))
    return (*_reduced(shape, axis), k + (n > k + 2))


def _top_pair(x: np.ndarray, axis: int | tuple[int, ...] | None, sign: float) -> np.ndarray:
    """The gradient of `_top_gap` on the piece where the first of the top two elements (in
    index order, on a tie) leads: +sign there, -sign at the second, 0 elsewhere."""
    x = sign * np.real(np.asarray(x, dtype=complex if np.iscomplexobj(x) else float))
    shape = x.shape
    if axis is None or isinstance(axis, tuple):
        lead = 0 if axis is None else 1
        x, axis = x.reshape((*x.shape[:lead], -1)), lead
    weights = np.zeros(x.shape)
    if x.shape[axis] >= 2:
        order = np.argsort(-x, axis=axis, kind="stable")
        np.put_along_axis(weights, np.take(order, [0], axis=axis), sign, axis=axis)
        np.put_along_axis(weights, np.take(order, [1], axis=axis), -sign, axis=axis)
    return weights.reshape(shape)


for _name, _sign in (("max", 1.0), ("min", -1.0)):
    register(Primitive(
        f"top_pair_{_name}", 1,
        lambda x, axis, s=_sign: _top_pair(x, _axis(axis, np.ndim(x)), s),
        "±1 at the two elements whose gap is top_gap (its gradient, piecewise constant)",
        vjp=lambda node, g, shape_of: (None,), jvp=lambda node, ts, shape_of: None,
        shape=_same_shape, public=False,
        batch=lambda args, flags, items, out, axis, s=_sign: _top_pair(
            args[0], _in_batch(axis, len(items[0])), s
        ),
        attr_params=(("axis", None),),
    ))  # fmt: skip
    # At a tie the gap is a cone, |a_i - a_j|: its jvp, the slope on one side, is the normal of
    # the kink that the subgradient checks need and that differences cannot give.
    register(Primitive(
        f"top_gap_{_name}", 1,
        lambda x, axis, s=_sign: _top_gap(x, _axis(axis, np.ndim(x)), s),
        f"the gap between the two {'largest' if _sign > 0 else 'smallest'} elements",
        vjp=lambda node, g, shape_of: (None,),
        jvp=lambda node, ts, shape_of, n=_name: _apply(
            "sum", ts[0] * _apply(f"top_pair_{n}", node.inputs[0], attrs=node.attrs),
            attrs=node.attrs,
        ),
        shape=_reduced, public=False,
        batch=lambda args, flags, items, out, axis, s=_sign: _top_gap(
            args[0], _in_batch(axis, len(items[0])), s
        ),
        attr_params=(("axis", None),),
    ))  # fmt: skip

    # Watched beside the switch (the registry's `singular`): the distances to the next values.
    register(Primitive(
        f"next_gaps_{_name}", 1,
        lambda x, axis, s=_sign: _next_gaps(x, _axis(axis, np.ndim(x)), s),
        f"the gaps between the {'largest' if _sign > 0 else 'smallest'} element and the third, "
        "fourth, … (inf where 0)",
        vjp=lambda node, g, shape_of: (None,), jvp=lambda node, ts, shape_of: None,
        shape=_next_gaps_shape, public=False,
        batch=lambda args, flags, items, out, axis, s=_sign: _next_gaps(
            args[0], _in_batch(axis, len(items[0])), s
        ),
        attr_params=(("axis", None),),
    ))  # fmt: skip


def _extreme_weights(node: Node, shape_of: ShapeOf) -> Node:
    """1/(number of ties) at the extreme elements, 0 elsewhere."""
    (x,), axis = node.inputs, node.attrs[0]
    shape = shape_of(x)
    hit = _apply("equal", x, _expand(node, shape, axis))
    return hit / _expand(_apply("sum", hit, attrs=(axis,)), shape, axis)


def _extreme_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """The adjoint goes to the extreme element, split evenly between tied ones."""
    (x,), axis = node.inputs, node.attrs[0]
    return (_expand(g, shape_of(x), axis) * _extreme_weights(node, shape_of),)


def _extreme(x: Any, axis: int | tuple[int, ...] | None, largest: bool) -> Any:
    """max or min along `axis`; for the complex step, the element whose real part is the
    extreme one, as the real function chooses it (analytic off the ties)."""
    if not np.iscomplexobj(x):
        return np.max(x, axis=axis) if largest else np.min(x, axis=axis)
    x = np.asarray(x)
    axes = tuple(range(x.ndim)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    kept = [i for i in range(x.ndim) if i not in axes]
    flat = np.transpose(x, (*kept, *axes)).reshape(*(x.shape[i] for i in kept), -1)
    pick = (np.argmax if largest else np.argmin)(np.real(flat), axis=-1)
    return np.take_along_axis(flat, pick[..., None], axis=-1)[..., 0]


for _name, _numpy in (("max", np.max), ("min", np.min)):
    _reduction(
        f"a{_name}",
        lambda x, axis, big=_name == "max": _extreme(x, axis, big),
        f"the {'largest' if _name == 'max' else 'smallest'} element (derivative split on ties)",
        _extreme_vjp,
        analytic=True,  # off the ties (see _extreme); on them, differences take over
        kink=lambda x, axis, n=_name: _apply(f"top_gap_{n}", x, attrs=(axis,)),
        # A tie of copies (a broadcast value) is no kink, and its gap of 0 hides the next one.
        singular=lambda x, axis, n=_name: _apply(f"next_gaps_{n}", x, attrs=(axis,)),
        public=False,
        written_as=_name,
        jvp=lambda node, ts, shape_of: _apply(
            "sum", ts[0] * _extreme_weights(node, shape_of), attrs=node.attrs
        ),
        python=f"np.{_name}(@0, axis=@axis)",
        latex=rf"\{_name}\left(@0\right)",
    )


# --- norm, logsumexp, softmax ---------------------------------------------------------------


def _norm(x: np.ndarray, axis: Any) -> np.ndarray:
    """The 2-norm, scaled by the largest element so that squares cannot overflow or underflow."""
    x = np.asarray(x)
    scale = np.max(np.abs(x), axis=axis, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    return np.squeeze(safe, axis=axis) * np.sqrt(np.sum((x / safe) ** 2, axis=axis))


def _norm_complex(x: np.ndarray, axis: Any) -> np.ndarray:
    """sqrt(Σ z²) for the complex step (the first-order ‖x‖ + iΣ(x/‖x‖)·x' it replaces was off
    where the step is not tiny next to x: 2^-1000 at 1e-300). Scaled by a power of two near the
    largest part; the imaginary part, Σ xr·xi/Re, is formed from the unscaled xi, which scaled
    would underflow (2^-1022 next to 1e150)."""
    xr, xi = np.real(x), np.imag(x)
    top = np.max(np.maximum(np.abs(xr), np.abs(xi)), axis=axis, keepdims=True)
    s = np.ldexp(np.ones_like(top), np.frexp(np.where(top > 0, top, 1.0))[1] - 1)
    ur, ui = xr / s, xi / s
    q = np.sum(ur * xi, axis=axis, keepdims=True)  # s·Im(Σ u²)/2
    squares = np.sum(ur * ur, axis=axis, keepdims=True) - np.sum(ui * ui, axis=axis, keepdims=True)
    root = np.sqrt(_pack(squares, 2 * q / s))
    positive = root.real > 0
    im = np.where(positive, q / np.where(positive, root.real, 1.0), s * root.imag)
    return np.squeeze(_pack(s * root.real, im), axis=axis)


def _norm_any(x: np.ndarray, axis: Any) -> np.ndarray:
    return _norm_complex(x, axis) if np.iscomplexobj(x) else _norm(x, axis)


def _norm_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """g·x/‖x‖, and 0 (a valid subgradient) where ‖x‖ = 0, as abs'(0) = 0."""
    (x,), axis = node.inputs, node.attrs[0]
    safe = node + _apply("equal", node, 0.0)
    return (size(x) * _expand(g, shape_of(x), axis) / _expand(safe, shape_of(x), axis),)


_reduction(
    "norm",
    _norm_any,
    "Euclidean norm sqrt(sum(x^2)), without overflow (derivative 0 at 0)",
    _norm_vjp,
    kink=lambda x, axis: _apply("norm", x, attrs=(axis,)),
    lower=norm_call,
    strings=("ord",),
    magnitude_vjp=lambda node, g, shape_of: _norm_vjp(node, g, shape_of, _abs),
    jvp=lambda node, ts, shape_of: (
        _apply("sum", node.inputs[0] * ts[0], attrs=node.attrs)
        / (node + _apply("equal", node, 0.0))
    ),
    latex=r"\left\lVert @0\right\rVert",
    python="_norm(@0, @axis)",
    python_uses=(_norm,),
)


def _logsumexp(x: np.ndarray, axis: Any) -> np.ndarray:
    x = np.asarray(x)
    top = np.max(np.real(x), axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.sum(np.exp(x - top), axis=axis, keepdims=True)
    return np.squeeze(top + np.log(total), axis=axis)


_reduction(
    "logsumexp",
    _logsumexp,
    "log(sum(exp(x))), without overflow",
    # softmax, computed from x - max(x), rather than exp(x - logsumexp(x)): the latter carries
    # the rounding of a large logsumexp into every term.
    lambda node, g, shape_of: (
        _expand(g, shape_of(node.inputs[0]), node.attrs[0])
        * _softmax_of(node.inputs[0], node.attrs[0], shape_of(node.inputs[0])),
    ),
    jvp=lambda node, ts, shape_of: _apply(
        "sum",
        ts[0] * _softmax_of(node.inputs[0], node.attrs[0], shape_of(node.inputs[0])),
        attrs=node.attrs,
    ),
    python="_logsumexp(@0, @axis)",
    python_uses=(_logsumexp,),
)


def _softmax(x: np.ndarray, axis: Any) -> np.ndarray:
    x = np.asarray(x)
    top = np.max(np.real(x), axis=axis, keepdims=True)
    e = np.exp(x - np.where(np.isfinite(top), top, 0.0))
    return e / np.sum(e, axis=axis, keepdims=True)


def _softmax_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    shape, axis = shape_of(node), node.attrs[0]
    inner = _expand(_apply("sum", g * node, attrs=(axis,)), shape, axis)
    return (node * (g - inner),)


def _softmax_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    shape, axis = shape_of(node), node.attrs[0]
    return node * (ts[0] - _expand(_apply("sum", node * ts[0], attrs=(axis,)), shape, axis))


def _softmax_magnitude(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """|J|ᵀ g ≤ s·g + s·Σ g s for J = diag(s) - s sᵀ: what the vjp's cancellation costs."""
    shape, axis = shape_of(node), node.attrs[0]
    inner = _expand(_apply("sum", g * node, attrs=(axis,)), shape, axis)
    return (node * (g + inner),)


def _softmax_of(x: Node, axis: int | None, shape: Shape) -> Node:
    """softmax along `axis`, or over every element for axis None."""
    if axis is not None:
        return _apply("softmax", x, attrs=(axis,))
    flat = _apply("reshape", x, attrs=((math.prod(shape),),))
    return _apply("reshape", _apply("softmax", flat, attrs=(-1,)), attrs=(shape,))


register(Primitive(
    "softmax", 1, lambda x, axis: _softmax(x, _axis(axis, np.ndim(x))),
    "exp(x)/sum(exp(x)) along axis (the last, by default)",
    vjp=_softmax_vjp, magnitude_vjp=_softmax_magnitude, jvp=_softmax_jvp,
    shape=lambda s, axis: _same_shape(s, axis), analytic=True,
    batch=lambda args, flags, items, out, axis: _softmax(args[0], _in_batch(axis, len(items[0]))),
    attr_params=(("axis", -1),),
    python="_softmax(@0, @axis)", python_uses=(_softmax,),
))  # fmt: skip


def _log_softmax(call: Any) -> Node:
    """log_softmax(x, axis=-1) = x − logsumexp(x, axis) kept as an axis of length 1, as JAX and
    PyTorch compute it: no softmax is formed, so no log of an underflowed 0."""
    if not call.args:
        raise call.error("log_softmax takes x and an axis, as in log_softmax(x, axis=-1)")
    axis = _axis_argument(call, 1, -1, "x")
    x, graph, span = call.args[0], call.graph, call.call.span
    total = graph.apply("logsumexp", x, attrs=(axis,), span=span)
    return graph.apply("sub", x, graph.apply("expand_dims", total, attrs=(axis,)), span=span)


register(Primitive(
    "log_softmax", 1, None, "x − logsumexp(x) along axis (the last, by default): log of softmax",
    lower=_log_softmax, params=("x",), attr_params=(("axis", -1),),
))  # fmt: skip
