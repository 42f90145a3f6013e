"""Arrays joined and repeated: concatenate and stack (of a list written in the program), tile
and repeat, with numpy's names, arguments and shapes.

Each is linear. concatenate's adjoint is the adjoint cut back into the pieces it joined;
tile's and repeat's sum the copies of each element. stack([a, b], axis) is concatenate of the
arrays with a new axis at `axis`, so, as in numpy and unlike the literal [a, b] (which broadcasts
its elements together), its arrays have one shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, as_shape, register
from ._common import ShapeOf, _apply, _axis, _axis_argument, _same_on_tangent

# --- the literal [a, b, c] -------------------------------------------------------------------


def _stack_shape(*shapes: Shape) -> Shape:
    return (len(shapes), *np.broadcast_shapes(*shapes))


def _stack_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    out = []
    for i, x in enumerate(node.inputs):
        part = _apply("index", g, attrs=((i,),))
        if shape_of(x) != shape_of(node)[1:]:
            part = _apply("sum_to", part, attrs=(shape_of(x),))
        out.append(part)
    return tuple(out)


def _stack_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    """Stack the tangents, each spread to the shape of an element (zeros for constants)."""
    item = shape_of(node)[1:]
    parts = [
        node.graph.apply("broadcast_to", node.graph.const(0.0) if t is None else t, attrs=(item,))
        for t in ts
    ]
    return node.graph.apply("stack", *parts)


def _stack_batched(args, flags, items, out):
    size = max(np.shape(a)[0] for a, batched in zip(args, flags, strict=True) if batched)
    item = tuple(out[1:])
    parts = []
    for a, batched, shape in zip(args, flags, items, strict=True):
        a = np.asarray(a)
        if batched:
            a = a.reshape(a.shape[:1] + (1,) * (len(item) - len(shape)) + tuple(shape))
        parts.append(np.broadcast_to(a, (size, *item)))
    return np.stack(parts, axis=1)


# --- concatenate and stack ----------------------------------------------------------------------


def _joined_axis(shapes: tuple[Shape, ...], axis: Any) -> int | None:
    """The axis joined along, checked against every shape (None: the arrays flattened)."""
    if axis is None:
        return None
    if any(len(s) == 0 for s in shapes):
        raise ValueError("concatenate joins arrays, not numbers: write [a, b] to make a vector")
    if len({len(s) for s in shapes}) > 1:
        raise ValueError(
            f"concatenate needs arrays with one number of axes, not {_listing(shapes)}"
        )
    a = _axis(axis, len(shapes[0]))
    rest = {s[:a] + s[a + 1 :] for s in shapes}
    if len(rest) > 1:
        raise ValueError(
            f"concatenate needs arrays of one shape but along axis {axis}, not {_listing(shapes)}"
        )
    return a


def _concatenate_shape(*shapes_and_axis: Any) -> Shape:
    *shapes, axis = shapes_and_axis
    a = _joined_axis(tuple(shapes), axis)
    if a is None:
        return (sum(math.prod(s) for s in shapes),)
    first = shapes[0]
    return (*first[:a], sum(s[a] for s in shapes), *first[a + 1 :])


def _concatenate(*xs_and_axis: Any) -> np.ndarray:
    *xs, axis = xs_and_axis
    _joined_axis(tuple(np.shape(x) for x in xs), axis)  # folding calls this before shapes
    return np.concatenate([np.asarray(x) for x in xs], axis=axis)


def _concatenate_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """Each input's adjoint is its own stretch of g along the axis."""
    (axis,) = node.attrs
    shapes = [shape_of(x) for x in node.inputs]
    a = _joined_axis(tuple(shapes), axis)
    whole = ("slice", None, None, None)
    out, start = [], 0
    for shape in shapes:
        length = math.prod(shape) if a is None else shape[a]
        key = (*(whole,) * (a or 0), ("slice", start, start + length, None))
        part = _apply("index", g, attrs=(key,))
        if a is None:
            part = _apply("reshape", part, attrs=(shape,))
        out.append(part)
        start += length
    return tuple(out)


def _joined_tangents(name: str):
    """The jvp of concatenate or stack: the tangents joined, zeros of its shape for an input
    that does not move."""

    def jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
        graph = node.graph
        parts = [
            graph.apply("broadcast_to", graph.const(0.0), attrs=(shape_of(x),)) if t is None else t
            for x, t in zip(node.inputs, ts, strict=True)
        ]
        return graph.apply(name, *parts, attrs=node.attrs)

    return jvp


def _batch_of(args, flags, items) -> tuple[int, list[np.ndarray]]:
    """The batch size and every input with a batch axis of that size: a batched input may
    have one of length 1 (shared by every item), an unbatched one has none."""
    size = max(np.shape(a)[0] for a, batched in zip(args, flags, strict=True) if batched)
    return size, [np.broadcast_to(a, (size, *shape)) for a, shape in zip(args, items, strict=True)]


def _concatenate_batched(args, flags, items, out, axis):
    size, parts = _batch_of(args, flags, items)
    if axis is None:
        return np.concatenate([p.reshape(size, -1) for p in parts], axis=1)
    return np.concatenate(parts, axis=1 + _axis(axis, len(items[0])))


def _elements(call: Any, what: str) -> list[Node]:
    """The arrays of the list that is the first argument: the elements of a literal, or the
    rows of a constant (numpy's reading of an array as a list)."""
    if not call.args:
        raise call.error(f"{call.name} takes a list of arrays, as in {what}")
    node = call.args[0]
    parts = None
    if node.op == "stack":
        parts = list(node.inputs)
    elif node.op == "const" and np.ndim(node.value) > 0:
        parts = [call.graph.const(row, call.arg_spans[0]) for row in node.value]
    if parts == []:
        raise call.error(f"{call.name} needs at least one array", call.arg_spans[0])
    if parts is not None:
        return parts
    raise call.error(
        f"{call.name} takes a list of arrays written in the program, as in {what}",
        call.arg_spans[0],
    )


def _concatenate_call(call: Any) -> Node:
    parts = _elements(call, "concatenate([a, b], axis=0)")
    axis = _axis_argument(call, 1, 0, "a list of arrays")
    return call.graph.apply("concatenate", *parts, attrs=(axis,), span=call.call.span)


def _stack_call(call: Any) -> Node:
    """stack([a, b], axis): arrays of one shape joined along a new axis."""
    parts = _elements(call, "stack([a, b], axis=0)")
    axis = _axis_argument(call, 1, 0, "a list of arrays")
    return call.graph.apply("stacked", *parts, attrs=(axis,), span=call.call.span)


def _stacked_axis(shapes: tuple[Shape, ...], axis: Any) -> int:
    if len(set(shapes)) > 1:
        raise ValueError(f"stack needs arrays of one shape, not {_listing(shapes)}")
    return _axis(axis, len(shapes[0]) + 1)


def _stacked_shape(*shapes_and_axis: Any) -> Shape:
    *shapes, axis = shapes_and_axis
    a = _stacked_axis(tuple(shapes), axis)
    return (*shapes[0][:a], len(shapes), *shapes[0][a:])


def _stacked(*xs_and_axis: Any) -> np.ndarray:
    *xs, axis = xs_and_axis
    _stacked_axis(tuple(np.shape(x) for x in xs), axis)  # folding calls this before shapes
    return np.stack(xs, axis=axis)


def _stacked_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """Each input's adjoint is its slice of g at its position along the new axis."""
    a = _stacked_axis(tuple(shape_of(x) for x in node.inputs), node.attrs[0])
    whole = ("slice", None, None, None)
    return tuple(_apply("index", g, attrs=((*(whole,) * a, i),)) for i in range(len(node.inputs)))


def _stacked_batched(args, flags, items, out, axis):
    _, parts = _batch_of(args, flags, items)
    return np.stack(parts, axis=1 + _stacked_axis(tuple(items), axis))


def _listing(shapes: tuple[Shape, ...]) -> str:
    return ", ".join(str(s) for s in shapes[:-1]) + f" and {shapes[-1]}"


register(Primitive(
    "stacked", 1, _stacked, "the arrays of a list, of one shape, joined along a new axis",
    vjp=_stacked_vjp, jvp=_joined_tangents("stacked"), shape=_stacked_shape,
    batch=_stacked_batched, analytic=True, variadic=True, listed=True, public=False,
    written_as="stack", attr_params=(("axis", 0),),
    python="np.stack([@inputs], axis=@axis)",
))  # fmt: skip


register(Primitive(
    "concatenate", 1, _concatenate,
    "the arrays of a list joined along an existing axis (flattened first for axis=None)",
    vjp=_concatenate_vjp, jvp=_joined_tangents("concatenate"), shape=_concatenate_shape,
    batch=_concatenate_batched, analytic=True, variadic=True, listed=True,
    lower=_concatenate_call, params=("arrays",), attr_params=(("axis", 0),),
    python="np.concatenate([@inputs], axis=@axis)",
))  # fmt: skip

# The node of a literal, and numpy's stack by name: stack([a, b], axis), strict on shapes.
register(Primitive(
    "stack", 1, lambda *xs: np.stack(np.broadcast_arrays(*xs)),
    "the arrays of a list, of one shape, joined along a new axis: stack([a, b], axis=0) (the "
    "literal [a, b] broadcasts its elements together)",
    vjp=_stack_vjp, jvp=_stack_jvp, shape=_stack_shape, batch=_stack_batched, analytic=True,
    variadic=True, lower=_stack_call, params=("arrays",),
))  # fmt: skip


# --- tile and repeat -----------------------------------------------------------------------------


def _tiling(shape: Shape, reps: Any) -> tuple[Shape, Shape]:
    """The shape and the repetitions, both padded with leading 1s to one length, as numpy's
    tile pads the shorter."""
    reps = as_shape(reps)
    if any(r < 0 for r in reps):
        raise ValueError(f"tile's repetitions are whole numbers ≥ 0, not {list(reps)}")
    n = max(len(shape), len(reps))
    return (1,) * (n - len(shape)) + tuple(shape), (1,) * (n - len(reps)) + reps


def _tile_shape(s: Shape, reps: Any) -> Shape:
    padded, reps = _tiling(s, reps)
    return tuple(a * r for a, r in zip(padded, reps, strict=True))


def _tile_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """The copies of each element summed: g seen as (r0, s0, r1, s1, …), summed over each r."""
    shape = shape_of(node.inputs[0])
    padded, reps = _tiling(shape, node.attrs[0])
    g = _apply(
        "reshape", g, attrs=(tuple(n for pair in zip(reps, padded, strict=True) for n in pair),)
    )
    for axis in range(len(reps)):  # the r axes are 0, 2, 4, …; each sum removes one
        g = _apply("sum", g, attrs=(axis,))
    return (_apply("reshape", g, attrs=(shape,)),)


def _tile_batched(args, flags, items, out, reps):
    padded, reps = _tiling(items[0], reps)
    x = np.reshape(args[0], (np.shape(args[0])[0], *padded))
    return np.tile(x, (1, *reps))


register(Primitive(
    "tile", 1, lambda x, reps: np.tile(x, as_shape(reps)),
    "x repeated as a whole, reps[i] times along axis i: tile([1, 2], 2) is [1, 2, 1, 2]",
    vjp=_tile_vjp, jvp=_same_on_tangent("tile"), shape=_tile_shape, batch=_tile_batched,
    analytic=True, passes_nonfinite=(0,), attr_params=(("reps", 1),),
    python="np.tile(@0, @reps)",
))  # fmt: skip


def _repeat_shape(s: Shape, repeats: Any, axis: Any) -> Shape:
    if not isinstance(repeats, int) or repeats < 0:
        raise ValueError(f"repeat's repeats is one whole number ≥ 0, not {repeats}")
    if axis is None:
        return (math.prod(s) * repeats,)
    a = _axis(axis, len(s))
    return (*s[:a], s[a] * repeats, *s[a + 1 :])


def _repeat_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """The copies of each element summed: g with the axis seen as (n, repeats), summed."""
    shape = shape_of(node.inputs[0])
    repeats, axis = node.attrs
    seen = list(shape if axis is not None else (math.prod(shape),))
    a = 0 if axis is None else _axis(axis, len(shape))
    seen.insert(a + 1, repeats)
    g = _apply("sum", _apply("reshape", g, attrs=(tuple(seen),)), attrs=(a + 1,))
    return (_apply("reshape", g, attrs=(shape,)),)


def _repeat(x: Any, repeats: Any, axis: Any) -> Any:
    _repeat_shape(np.shape(x), repeats, axis)  # folding calls this before shapes are inferred
    return np.repeat(x, repeats, axis)


def _repeat_batched(args, flags, items, out, repeats, axis):
    x = np.asarray(args[0])
    if axis is None:
        return np.repeat(x.reshape(x.shape[0], -1), repeats, axis=1)
    return np.repeat(x, repeats, axis=1 + _axis(axis, len(items[0])))


register(Primitive(
    "repeat", 1, _repeat,
    "each element repeated along axis (of the flattened array for None): repeat([1, 2], 2) is "
    "[1, 1, 2, 2]",
    vjp=_repeat_vjp, jvp=_same_on_tangent("repeat"), shape=_repeat_shape, batch=_repeat_batched,
    analytic=True, passes_nonfinite=(0,), attr_params=(("repeats", 1), ("axis", None)),
    python="np.repeat(@0, @repeats, @axis)",
))  # fmt: skip
