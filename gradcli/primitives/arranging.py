"""Arrays rearranged, masked and accumulated: flip, roll, tril, triu, cumsum and diff, with
numpy's names and arguments; and sorted: sort and argsort.

Each is linear, so its forward rule is itself applied to the tangent, and its reverse rule is
another of them: flip and roll undo themselves (roll by −shift), tril and triu keep the same
triangle of the adjoint, and cumsum's adjoint is the reversed cumulative sum of the reversed
adjoint. An axis of None means the flattened array, as in numpy, for roll and cumsum, and every
axis for flip. sort is a permutation: its adjoint goes back through the inverse permutation,
the ranks; argsort's positions have no derivative.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, register
from ._common import (
    ShapeOf,
    _apply,
    _axis,
    _reversed_cumsum,
    _running_shape,
    _same_on_tangent,
)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """flip's axes: every one for None, else one or several, checked and made non-negative."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = tuple(_axis(a, ndim) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"flip got the same axis twice: {list(axes)}")
    return out


def _flip_shape(s: Shape, axis: Any) -> Shape:
    _axes(axis, len(s))  # only to check it
    return s


register(Primitive(
    "flip", 1, lambda x, axis: np.flip(x, _axes(axis, np.ndim(x))),
    "the order of the elements reversed along axis (every axis for None)",
    vjp=lambda node, g, shape_of: (_apply("flip", g, attrs=node.attrs),),
    jvp=_same_on_tangent("flip"), shape=_flip_shape, analytic=True, passes_nonfinite=(0,),
    attr_params=(("axis", None),),
    batch=lambda args, flags, items, out, axis: np.flip(
        args[0], tuple(1 + a for a in _axes(axis, len(items[0])))
    ),
    python="np.flip(@0, @axis)",
))  # fmt: skip


def _shifts(shift: Any, axis: Any, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """roll's shifts and axes as tuples of one length (axis None: the flattened array)."""
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    if axis is None:
        if len(shifts) != 1:
            raise ValueError("roll with axis=None takes one shift, for the flattened array")
        return shifts, None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(shifts) != len(axes):
        raise ValueError(f"roll takes one shift per axis, not {list(shifts)} for {list(axes)}")
    return shifts, tuple(_axis(a, ndim) for a in axes)


def _roll(x: Any, shift: Any, axis: Any, batched: bool = False) -> Any:
    x = np.asarray(x)
    lead = 1 if batched else 0
    shifts, axes = _shifts(shift, axis, x.ndim - lead)
    if axes is None:  # the flattened array (each item's, in a batch)
        flat = x.reshape((*x.shape[:lead], -1))
        return np.roll(flat, shifts[0], axis=lead).reshape(x.shape)
    return np.roll(x, shifts, tuple(lead + a for a in axes))


def _roll_shape(s: Shape, shift: Any, axis: Any) -> Shape:
    _shifts(shift, axis, len(s))  # only to check them
    return s


def _roll_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    shift, axis = node.attrs
    back = -shift if isinstance(shift, int) else tuple(-s for s in shift)
    return (_apply("roll", g, attrs=(back, axis)),)


register(Primitive(
    "roll", 1, _roll, "the elements shifted along axis by shift, those past the end coming "
    "round to the start (the flattened array for axis=None)",
    vjp=_roll_vjp, jvp=_same_on_tangent("roll"), shape=_roll_shape, analytic=True,
    passes_nonfinite=(0,), attr_params=(("shift", 0), ("axis", None)),
    batch=lambda args, flags, items, out, shift, axis: _roll(args[0], shift, axis, True),
    python="np.roll(@0, @shift, @axis)",
))  # fmt: skip


def _triangle(name: str, keep: Any, doc: str) -> None:
    """tril or triu: the elements on and below (above) diagonal k of the last two axes."""

    def shape(s: Shape, k: Any) -> Shape:
        if len(s) < 2:
            raise ValueError(f"{name} takes a matrix (or a stack of them), not shape {s}")
        if not isinstance(k, int):
            raise ValueError(f"{name}'s k is one whole number, not {k}")
        return s

    def forward(x: Any, k: Any) -> Any:
        shape(np.shape(x), k)  # folding a constant calls this before shapes are inferred
        return keep(x, k)

    register(Primitive(
        name, 1, forward, doc,
        vjp=lambda node, g, shape_of: (_apply(name, g, attrs=node.attrs),),
        jvp=_same_on_tangent(name), shape=shape, analytic=True, passes_nonfinite=(0,),
        attr_params=(("k", 0),),
        batch=lambda args, flags, items, out, k: keep(args[0], k),  # the last two axes
        python=f"np.{name}(@0, @k)",
    ))  # fmt: skip


_triangle("tril", np.tril, "the lower triangle: elements above diagonal k set to 0")
_triangle("triu", np.triu, "the upper triangle: elements below diagonal k set to 0")


def _cumsum(x: Any, axis: Any, batched: bool = False) -> Any:
    x = np.asarray(x)
    lead = 1 if batched else 0
    if axis is None:  # numpy's: the flattened array
        return np.cumsum(x.reshape((*x.shape[:lead], -1)), axis=lead)
    return np.cumsum(x, axis=lead + _axis(axis, x.ndim - lead))


def _cumsum_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """Each element reaches every later sum: its adjoint is the sum of g from it on, the
    reversed cumulative sum of the reversed g."""
    (axis,) = node.attrs
    along = 0 if axis is None else axis
    back = _reversed_cumsum(g, along)
    if axis is None:
        back = _apply("reshape", back, attrs=(shape_of(node.inputs[0]),))
    return (back,)


register(Primitive(
    "cumsum", 1, _cumsum, "the running sums along axis (of the flattened array for None)",
    vjp=_cumsum_vjp, jvp=_same_on_tangent("cumsum"), shape=_running_shape, analytic=True,
    attr_params=(("axis", None),), passes_nonfinite=(0,),
    batch=lambda args, flags, items, out, axis: _cumsum(args[0], axis, True),
    python="np.cumsum(@0, @axis)",
))  # fmt: skip


def _diff_shape(s: Shape, n: Any, axis: Any) -> Shape:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"diff's n is a whole number ≥ 0, not {n}")
    if not s:
        raise ValueError("diff takes an array with at least one axis, not a number")
    a = _axis(axis, len(s))
    return (*s[:a], max(s[a] - n, 0), *s[a + 1 :])


def _diff_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """y = x[1:] − x[:−1] along the axis, n times: each time the adjoint is ȳ placed at 1: less
    ȳ placed at :−1, in zeros one longer (unindex), back to the shape of x."""
    n, axis = node.attrs
    shape = list(shape_of(node))
    a = _axis(axis, len(shape))
    for _ in range(n):
        shape[a] += 1
        whole = [(0, m, 1) for m in shape]
        later, earlier = list(whole), list(whole)
        later[a], earlier[a] = (1, shape[a], 1), (0, shape[a] - 1, 1)
        placed = [
            _apply("unindex", g, attrs=(tuple(shape), *zip(*ranges, strict=True)))
            for ranges in (later, earlier)
        ]
        g = placed[0] - placed[1]
    return (g,)


def _diff(x: Any, n: Any, axis: Any) -> Any:
    _diff_shape(np.shape(x), n, axis)  # folding a constant calls this before shapes are inferred
    return np.diff(x, n, axis)


register(Primitive(
    "diff", 1, _diff,
    "the differences of neighbours along axis, n times: x[1:] − x[:−1] for n = 1",
    vjp=_diff_vjp, jvp=_same_on_tangent("diff"), shape=_diff_shape, analytic=True,
    attr_params=(("n", 1), ("axis", -1)), passes_nonfinite=(0,),
    batch=lambda args, flags, items, out, n, axis: np.diff(
        args[0], n, 1 + _axis(axis, len(items[0]))
    ),
    python="np.diff(@0, @n, @axis)",
))  # fmt: skip


# --- sort and argsort ---------------------------------------------------------------------------


def _order(x: Any, axis: int) -> np.ndarray:
    """The stable order of x along the axis, by real part (the complex step keeps the real
    function's order, so sort is analytic off the ties)."""
    return np.argsort(np.real(x), axis=axis, kind="stable")


def _sort(x: Any, axis: Any, batched: bool = False) -> Any:
    x = np.asarray(x)
    a = (1 if batched else 0) + _axis(axis, x.ndim - (1 if batched else 0))
    return np.take_along_axis(x, _order(x, a), axis=a)


def _argsort(x: Any, axis: Any, batched: bool = False) -> Any:
    x = np.asarray(x)
    a = (1 if batched else 0) + _axis(axis, x.ndim - (1 if batched else 0))
    return _order(x, a).astype(np.float64)


def _sorted_shape(s: Shape, axis: Any) -> Shape:
    if not s:
        raise ValueError("sort takes an array with at least one axis, not a number")
    _axis(axis, len(s))
    return s


register(Primitive(
    "argsort", 1, _argsort,
    "the positions that sort x along axis (stable: ties keep their order); no derivative",
    vjp=lambda node, g, shape_of: (None,), jvp=lambda node, ts, shape_of: None,
    shape=_sorted_shape, attr_params=(("axis", -1),),
    batch=lambda args, flags, items, out, axis: _argsort(args[0], axis, True),
    python="np.argsort(@0, axis=@axis, kind='stable').astype(float)",
))  # fmt: skip


def _sort_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """Each sorted element's adjoint goes back to where it came from: g at the ranks of x."""
    (x,), (axis,) = node.inputs, node.attrs
    ranks = _apply("argsort", _apply("argsort", x, attrs=(axis,)), attrs=(axis,))
    return (_apply("take_along_axis", g, ranks, attrs=(axis,)),)


register(Primitive(
    "sort", 1, _sort, "x sorted along axis (the last, by default); a kink where two elements tie",
    vjp=_sort_vjp, analytic=True, shape=_sorted_shape, attr_params=(("axis", -1),),
    jvp=lambda node, ts, shape_of: _apply(
        "take_along_axis", ts[0], _apply("argsort", node.inputs[0], attrs=node.attrs),
        attrs=node.attrs,
    ),
    # Sorted neighbours that meet: where two elements tie, the order (and the slope) switches.
    kink=lambda x, axis: _apply("diff", _apply("sort", x, attrs=(axis,)), attrs=(1, axis)),
    passes_nonfinite=(0,),
    batch=lambda args, flags, items, out, axis: _sort(args[0], axis, True),
    python="np.sort(@0, axis=@axis)",
))  # fmt: skip
