"""Elements picked by position: x[idx] and x[:, i, j] with arrays of indices, take,
take_along_axis and one_hot, and scatter_add, the adjoint that adds each picked element's
gradient back at its position (twice, for an index given twice).

Indices are values: written in the program (x[[0, 2]]) or given (--k 0,2,1), holding whole
numbers; one that is not, or is out of range, is an error that names it. They have no
derivative (a position is not a quantity), so a variable used only as an index is not
differentiated (see `positions_from` in the registry).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, as_shape, register
from ._common import ShapeOf, _apply, _axis, _axis_argument, _fills


def _positions(indices: Any, size: int, axis: int) -> np.ndarray:
    """The indices as whole numbers, checked: each a whole number in [−size, size)."""
    idx = np.real(np.asarray(indices))
    whole = np.isfinite(idx) & (idx == np.round(idx))
    if not whole.all():
        raise ValueError(f"an index must be a whole number, not {idx[~whole].flat[0]:g}")
    out = idx.astype(np.int64)
    outside = (out < -size) | (out >= size)
    if outside.any():
        raise ValueError(
            f"index {out[outside].flat[0]} is out of range for axis {axis} of length {size}"
        )
    return out


def _region(shape: Shape, index_shapes: tuple[Shape, ...], axis: int) -> tuple[int, Shape]:
    """The axis the indices start at, made non-negative, and the shape they pick: the axes
    before it, the indices' shapes broadcast together, the axes after them."""
    if not index_shapes:
        raise ValueError("gather needs at least one array of indices")
    a = _axis(axis, len(shape))
    if a + len(index_shapes) > len(shape):
        raise ValueError(
            f"{len(index_shapes)} arrays of indices from axis {a} are too many for shape {shape}"
        )
    try:
        picked = np.broadcast_shapes(*index_shapes)
    except ValueError:
        listed = " and ".join(str(s) for s in index_shapes)
        raise ValueError(f"the arrays of indices {listed} cannot be broadcast together") from None
    return a, (*shape[:a], *picked, *shape[a + len(index_shapes) :])


def _key(shape: Shape, indices: tuple[Any, ...], axis: int) -> tuple:
    a = _axis(axis, len(shape))
    checked = (_positions(i, shape[a + k], a + k) for k, i in enumerate(indices))
    return (*(slice(None),) * a, *checked)


def _gather(x: Any, *indices: Any, axis: int = 0) -> np.ndarray:
    """x[:, …, i, j] with the arrays of indices i, j from `axis` on."""
    x = np.asarray(x)
    _region(x.shape, tuple(np.shape(i) for i in indices), axis)
    return x[_key(x.shape, indices, axis)]


def _scatter_add(g: Any, *indices: Any, shape: Any = (), axis: int = 0) -> np.ndarray:
    """Zeros of the shape, with g added at the positions gather would pick."""
    shape = as_shape(shape)
    g = np.asarray(g)
    out = np.zeros(shape, dtype=np.result_type(g, np.float64))
    np.add.at(out, _key(shape, indices, axis), g)
    return out


def _gather_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    x, *indices = node.inputs
    placed = _apply("scatter_add", g, *indices, attrs=(shape_of(x), node.attrs[0]))
    return (placed, *(None for _ in indices))


def _gather_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node | None:
    if ts[0] is None:
        return None
    return _apply("gather", ts[0], *node.inputs[1:], attrs=node.attrs)


register(Primitive(
    "gather", 2, lambda x, *rest: _gather(x, *rest[:-1], axis=rest[-1]),
    "x[:, i, j]: the elements at the positions the arrays of indices give, from axis on",
    vjp=_gather_vjp, jvp=_gather_jvp, analytic=True, variadic=True, public=False,
    shape=lambda s, *rest: _region(s, tuple(rest[:-1]), rest[-1])[1],
    attr_params=(("axis", 0),), positions_from=1, passes_nonfinite=(0,),
    python="_gather(@inputs, axis=@axis)", python_uses=(_axis, _positions, _region, _key, _gather),
))  # fmt: skip


def _scatter_shape(g: Shape, *rest: Any) -> Shape:
    *index_shapes, shape, axis = rest
    shape = as_shape(shape)
    _, region = _region(shape, tuple(index_shapes), axis)
    if not _fills(g, region):
        raise ValueError(f"scatter_add cannot add g of shape {g} at positions of shape {region}")
    return shape


def _scatter_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    given, *indices = node.inputs
    axis = node.attrs[1]
    part = _apply("gather", g, *indices, attrs=(axis,))
    _, region = _region(shape_of(node), tuple(shape_of(i) for i in indices), axis)
    if region != shape_of(given):  # g was broadcast over its positions
        part = _apply("sum_to", part, attrs=(shape_of(given),))
    return (part, *(None for _ in indices))


def _scatter_call(call: Any) -> Node:
    """scatter_add(g, i, j, shape=[3, 4], axis=0): every argument but the attributes is an
    input (g and the arrays of indices)."""
    return call.apply(_SCATTER, call.args)


_SCATTER = register(Primitive(
    "scatter_add", 2, lambda g, *rest: _scatter_add(g, *rest[:-2], shape=rest[-2], axis=rest[-1]),
    "zeros of the shape with g added at the positions x[:, i, j] picks (from axis on): the "
    "reverse of picking by indices",
    vjp=_scatter_vjp, analytic=True, variadic=True, shape=_scatter_shape,
    jvp=lambda node, ts, shape_of: None if ts[0] is None else _apply(
        "scatter_add", ts[0], *node.inputs[1:], attrs=node.attrs
    ),
    params=("g", "indices"), attr_params=(("shape", ()), ("axis", 0)), positions_from=1,
    lower=_scatter_call,
    python="_scatter_add(@inputs, shape=@shape, axis=@axis)",
    python_uses=(as_shape, _axis, _positions, _key, _scatter_add),
))  # fmt: skip


# --- take and take_along_axis --------------------------------------------------------------


def _take(call: Any) -> Node:
    """take(x, indices, axis=None), as numpy's: x[:, …, indices] along the axis, or of the
    flattened x for None."""
    if len(call.args) < 2:
        raise call.error("take takes an array and indices, as in take(x, [0, 2], axis=0)")
    x, indices = call.args[:2]
    axis = _axis_argument(call, 2, None, "an array, indices")
    graph, span = call.graph, call.call.span
    if axis is None:
        x = graph.apply("reshape", x, attrs=((-1,),), span=span)
        axis = 0
    return graph.apply("gather", x, indices, attrs=(axis,), span=span)


register(Primitive(
    "take", 2, None, "the elements at the positions indices gives along axis (of the flattened "
    "array for None)",
    lower=_take, params=("x", "indices"), attr_params=(("axis", None),),
))  # fmt: skip


def _along(x_shape: Shape, idx_shape: Shape, axis: Any) -> tuple[int | None, Shape]:
    if axis is None:
        if len(idx_shape) != 1:
            raise ValueError(f"take_along_axis with axis=None takes 1-d indices, not {idx_shape}")
        return None, idx_shape
    if len(x_shape) != len(idx_shape):
        raise ValueError(
            f"take_along_axis needs indices with as many axes as x: {idx_shape} for {x_shape}"
        )
    a = _axis(axis, len(x_shape))
    rest = [(n, m) for k, (n, m) in enumerate(zip(x_shape, idx_shape, strict=True)) if k != a]
    try:
        np.broadcast_shapes(*((n,) for n, _ in rest), *((m,) for _, m in rest))
        out = [np.broadcast_shapes((n,), (m,))[0] for n, m in rest]
    except ValueError:
        raise ValueError(
            f"take_along_axis cannot broadcast {idx_shape} against {x_shape}"
        ) from None
    out.insert(a, idx_shape[a])
    return a, tuple(out)


def _take_along(x: Any, indices: Any, axis: Any) -> np.ndarray:
    x = np.asarray(x)
    a, _ = _along(x.shape, np.shape(indices), axis)
    if a is None:
        return x.reshape(-1)[_positions(indices, x.size, 0)]
    return np.take_along_axis(x, _positions(indices, x.shape[a], a), axis=a)


def _take_along_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """The gradient added back where each element was taken: scatter_add with the positions
    of the other axes written out as aranges that broadcast against the indices."""
    (x, indices), (axis,) = node.inputs, node.attrs
    shape = shape_of(x)
    a, _ = _along(shape, shape_of(indices), axis)
    graph = node.graph
    if a is None:
        flat = _apply("scatter_add", g, indices, attrs=((math.prod(shape),), 0))
        return (_apply("reshape", flat, attrs=(shape,)), None)
    positions = [
        indices if k == a else graph.const(np.arange(n).reshape([-1 if j == k else 1
                                                                  for j in range(len(shape))]))
        for k, n in enumerate(shape)
    ]  # fmt: skip
    return (_apply("scatter_add", g, *positions, attrs=(shape, 0)), None)


register(Primitive(
    "take_along_axis", 2, _take_along,
    "the elements of x at the positions indices gives along axis, one per position of the other "
    "axes (indices from argsort, or a label per row)",
    vjp=_take_along_vjp, analytic=True, positions_from=1, passes_nonfinite=(0,),
    jvp=lambda node, ts, shape_of: None if ts[0] is None else _apply(
        "take_along_axis", ts[0], node.inputs[1], attrs=node.attrs
    ),
    shape=lambda x, i, axis: _along(x, i, axis)[1],
    params=("x", "indices"), attr_params=(("axis", None),),
    python="_take_along(@0, @1, @axis)", python_uses=(_axis, _positions, _along, _take_along),
))  # fmt: skip


# --- one_hot ------------------------------------------------------------------------------------


def _one_hot_shape(s: Shape, n: Any) -> Shape:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"one_hot's n is a whole number ≥ 1, not {n}")
    return (*s, n)


def _one_hot(k: Any, n: Any) -> np.ndarray:
    _one_hot_shape(np.shape(k), n)  # folding calls this before shapes are inferred
    return (_positions(k, n, 0)[..., None] % n == np.arange(n)).astype(np.float64)


register(Primitive(
    "one_hot", 1, _one_hot,
    "1 at position k (of n) along a new last axis, 0 elsewhere: one_hot([2, 0], 3) is "
    "[[0, 0, 1], [1, 0, 0]]",
    vjp=lambda node, g, shape_of: (None,), jvp=lambda node, ts, shape_of: None,
    shape=_one_hot_shape, positions_from=0,
    params=("k",), attr_params=(("n", 1),),
    python="_one_hot(@0, @n)", python_uses=(_positions, _one_hot_shape, _one_hot),
))  # fmt: skip
