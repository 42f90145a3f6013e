"""Shapes and indexing: transpose, reshape, index (x[i], x[1:3], x[0, :]) and unindex, its
adjoint. Functions that build arrays of sizes written in the program belong here too.

Unlike the elementwise primitives, each of these states its output shape, its vector-Jacobian
product (written with graph operations, with the static shapes of its inputs at hand) and its batch
rule (the same operation with a leading batch axis, which shifts every axis it names).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, as_shape, register
from ..language.limits import check_elements
from ._common import ShapeOf, _apply, _axis, _fills, _same_on_tangent

# --- shapes: transpose, reshape, broadcast, index --------------------------------------------


def _permutation(axes: Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(reversed(range(ndim)))
    if isinstance(axes, int):
        raise ValueError(f"axes is a list of {ndim} whole numbers, as in axes=[1, 0]")
    perm = tuple(_axis(a, ndim) for a in axes)
    if sorted(perm) != list(range(ndim)):
        raise ValueError(f"axes {tuple(axes)} are not a permutation of {ndim} axes")
    return perm


def _transpose_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    perm = _permutation(node.attrs[0], len(shape_of(node.inputs[0])))
    inverse = tuple(int(i) for i in np.argsort(perm))
    return (_apply("transpose", g, attrs=(inverse,)),)


register(Primitive(
    "transpose", 1, lambda x, axes: np.transpose(x, _permutation(axes, np.ndim(x))),
    "the axes reversed (or permuted as axes says)",
    vjp=_transpose_vjp, jvp=_same_on_tangent("transpose"), analytic=True,
    attr_params=(("axes", None),), passes_nonfinite=(0,),
    shape=lambda s, axes: tuple(s[i] for i in _permutation(axes, len(s))),
    batch=lambda args, flags, items, out, axes: np.transpose(
        args[0], (0, *(1 + i for i in _permutation(axes, len(items[0]))))
    ),
))  # fmt: skip


def _reshape_shape(s: Shape, shape: Shape | int) -> Shape:
    """The new shape, with a -1 (at most one) standing for the length the others leave."""
    shape = as_shape(shape)
    if shape.count(-1) > 1 or any(n < -1 for n in shape):
        raise ValueError(f"reshape takes sizes ≥ 0 and at most one -1, not {list(shape)}")
    if -1 in shape:
        rest = math.prod(n for n in shape if n != -1)
        if rest == 0 or math.prod(s) % rest:
            raise ValueError(f"cannot reshape {s} into {shape}")
        shape = tuple(math.prod(s) // rest if n == -1 else n for n in shape)
    if math.prod(s) != math.prod(shape):
        raise ValueError(f"cannot reshape {s} into {shape}")
    return shape


def _reshape(x: Any, shape: Shape | int) -> Any:
    return np.reshape(x, _reshape_shape(np.shape(x), shape))


register(Primitive(
    "reshape", 1, _reshape,
    "the same elements in another shape: reshape(x, shape=[2, 3]), or [-1, 3] to have the -1 "
    "worked out",
    vjp=lambda node, g, shape_of: (_apply("reshape", g, attrs=(shape_of(node.inputs[0]),)),),
    jvp=_same_on_tangent("reshape"), shape=_reshape_shape, analytic=True, passes_nonfinite=(0,),
    batch=lambda args, flags, items, out, shape: np.reshape(args[0], np.shape(args[0])[:1] + out),
    attr_params=(("shape", ()),),
    python="np.reshape(@0, @shape)",
))  # fmt: skip


def _squeezed(s: Shape, axis: Any) -> Shape:
    """The shape without its axes of length 1 (only those of `axis`, which must be 1)."""
    if axis is None:
        return tuple(n for n in s if n != 1)
    axes = {_axis(a, len(s)) for a in ((axis,) if isinstance(axis, int) else axis)}
    for a in sorted(axes):
        if s[a] != 1:
            raise ValueError(f"squeeze can only remove an axis of length 1, not axis {a} of {s}")
    return tuple(n for i, n in enumerate(s) if i not in axes)


register(Primitive(
    "squeeze", 1, lambda x, axis: np.reshape(x, _squeezed(np.shape(x), axis)),
    "x without its axes of length 1 (only those of axis, if given)",
    vjp=lambda node, g, shape_of: (_apply("reshape", g, attrs=(shape_of(node.inputs[0]),)),),
    jvp=_same_on_tangent("squeeze"), shape=_squeezed, analytic=True, passes_nonfinite=(0,),
    batch=lambda args, flags, items, out, axis: np.reshape(args[0], np.shape(args[0])[:1] + out),
    attr_params=(("axis", None),),
    python="np.squeeze(@0, @axis)",
))  # fmt: skip


def _key(key: tuple) -> tuple:
    """An index as numpy takes it: slices are stored as ("slice", start, stop, step) tuples,
    which, unlike slice objects, can be hashed."""
    return tuple(slice(*k[1:]) if isinstance(k, tuple) else k for k in key)


def _index_shape(s: Shape, key: tuple) -> Shape:
    try:
        return np.broadcast_to(0.0, s)[_key(key)].shape
    except IndexError as exc:
        raise ValueError(f"the index is out of range for shape {s}: {exc}") from None


def _unindex(g: Any, shape: Shape, start, stop, step, batched: bool = False) -> np.ndarray:
    g = np.asarray(g)
    lead = g.shape[:1] if batched else ()
    out = np.zeros(lead + as_shape(shape), dtype=np.result_type(g, np.float64))
    out[((slice(None),) if batched else ()) + _ranges_key(start, stop, step)] = g
    return out


def _ranges(key: tuple, shape: Shape) -> tuple[Shape, Shape, Shape]:
    """An index as three whole-number lists a program can write, one entry per axis: start,
    stop and step of a slice (normalized, so -1 and None are gone), step 0 for a single index."""
    start, stop, step = [], [], []
    for axis, n in enumerate(shape):
        part = key[axis] if axis < len(key) else ("slice", None, None, None)
        if isinstance(part, tuple):
            a, b, c = slice(*part[1:]).indices(n)
        else:
            a, b, c = part % n, part % n + 1, 0
        start.append(a), stop.append(b), step.append(c)
    return tuple(start), tuple(stop), tuple(step)


def _ranges_key(start, stop, step) -> tuple:
    """The numpy index of `_ranges`: a slice whose normalized stop is -1 runs through 0."""
    start, stop, step = as_shape(start), as_shape(stop), as_shape(step)
    return tuple(
        a if c == 0 else slice(a, None if b < 0 else b, c)
        for a, b, c in zip(start, stop, step, strict=True)
    )


def _unindex_shape(g: Shape, shape, start, stop, step) -> Shape:
    """The shape attribute, once g is known to fit (or broadcast) into start:stop:step of it."""
    shape, start, stop, step = (as_shape(a) for a in (shape, start, stop, step))
    if not len(start) == len(stop) == len(step) <= len(shape):
        raise ValueError(
            f"unindex needs start, stop and step of the same length, at most one per axis of "
            f"shape {list(shape)}, not {list(start)}, {list(stop)} and {list(step)}"
        )
    try:
        region = np.broadcast_to(0.0, shape)[_ranges_key(start, stop, step)].shape
    except (ValueError, IndexError) as exc:
        raise ValueError(f"unindex cannot place g in shape {list(shape)}: {exc}") from None
    if not _fills(g, region):
        raise ValueError(f"unindex cannot place g of shape {g} in a region of shape {region}")
    return shape


def _unindex_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    part = _apply("index", g, attrs=(_written_key(*node.attrs[1:]),))
    (x,) = node.inputs
    region = np.broadcast_to(0.0, shape_of(node))[_ranges_key(*node.attrs[1:])].shape
    if region != shape_of(x):  # g was broadcast into its region
        part = _apply("sum_to", part, attrs=(shape_of(x),))
    return (part,)


def _written_key(start, stop, step) -> tuple:
    """`_ranges_key` in the form index nodes store (slices as hashable tuples)."""
    return tuple(
        k if isinstance(k, int) else ("slice", k.start, k.stop, k.step)
        for k in _ranges_key(start, stop, step)
    )


register(Primitive(
    "index", 1, lambda x, key: np.asarray(x)[_key(key)], "x[i], x[1:3], x[0, :]",
    vjp=lambda node, g, shape_of: (
        _apply(
            "unindex", g,
            attrs=(shape_of(node.inputs[0]), *_ranges(node.attrs[0], shape_of(node.inputs[0]))),
        ),
    ),
    shape=_index_shape, analytic=True, public=False, jvp=_same_on_tangent("index"),
    batch=lambda args, flags, items, out, key: np.asarray(args[0])[(slice(None), *_key(key))],
))  # fmt: skip

register(Primitive(
    "unindex", 1, _unindex,
    "zeros of the shape, with g at the elements start:stop:step of each axis (a step of 0: the "
    "single element start, an axis g does not have); the reverse of indexing",
    vjp=_unindex_vjp, shape=_unindex_shape, analytic=True,
    jvp=_same_on_tangent("unindex"), params=("g",),
    batch=lambda args, flags, items, out, *attrs: _unindex(args[0], *attrs, batched=True),
    attr_params=(("shape", ()), ("start", ()), ("stop", ()), ("step", ())),
    python="_unindex(@0, @shape, @start, @stop, @step)",
    python_uses=(as_shape, _ranges_key, _unindex),
))  # fmt: skip


# --- arrays built from sizes written in the program ------------------------------------------


def _positional(call: Any, counts: tuple[int, ...], usage: str) -> None:
    if call.keywords:
        name = next(iter(call.keywords))
        raise call.error(f"{call.name} takes no argument named {name}", call.keyword_spans[name])
    if len(call.args) not in counts:
        raise call.error(f"{call.name} is called as {usage}")


def _fits(shape: Shape, what: str, span: Any) -> None:
    """Within the limit on elements, each axis too: numpy refuses an axis of 10^308 even
    beside an axis of 0."""
    for n in shape:
        check_elements((n,), what, span)
    check_elements(shape, what, span)


def _eye(call: Any) -> Node:
    """eye(n) or eye(n, m): the identity matrix, a constant."""
    _positional(call, (1, 2), "eye(n) or eye(n, m)")
    sizes = [call.written(i, ("n", "m")[i]) for i in range(len(call.args))]
    if any(np.ndim(n) or n < 0 for n in sizes):
        raise call.error("eye takes sizes that are whole numbers ≥ 0, as in eye(3) or eye(2, 3)")
    _fits((sizes[0], sizes[-1]), "eye's matrix", call.call.span)
    return call.graph.const(np.eye(*sizes), call.call.span)


def _shape_of_call(call: Any) -> Shape:
    shape = as_shape(call.written(0, "shape"))
    if any(n < 0 for n in shape):
        raise call.error(f"{call.name} needs sizes ≥ 0, not {list(shape)}", call.arg_spans[0])
    if len(shape) > 32:
        raise call.error(f"{call.name} takes at most 32 axes, not {len(shape)}", call.arg_spans[0])
    _fits(shape, f"the array of {call.name}", call.arg_spans[0])
    return shape


def _filled(value: float) -> Any:
    def lower(call: Any) -> Node:
        _positional(call, (1,), f"{call.name}(shape), as in {call.name}([2, 3])")
        return call.graph.const(np.full(_shape_of_call(call), value), call.call.span)

    return lower


def _full(call: Any) -> Node:
    """full(shape, value): the value, which may be a variable, spread over the shape."""
    _positional(call, (2,), "full(shape, value), as in full([2, 3], x)")
    shape = _shape_of_call(call)
    return call.graph.apply("broadcast_to", call.args[1], attrs=(shape,), span=call.call.span)


def _number(call: Any, position: int, what: str) -> float:
    """A number written in the program (folded from constants): a bound of arange."""
    node = call.args[position]
    if node.op != "const" or np.ndim(node.value) or not np.isfinite(node.value):
        raise call.error(
            f"{call.name}'s {what} is a number written in the program: the length of the "
            "array depends on it",
            call.arg_spans[position],
        )
    return float(node.value)


def _arange(call: Any) -> Node:
    """arange(stop), arange(start, stop) or arange(start, stop, step): numpy's, a constant."""
    _positional(call, (1, 2, 3), "arange(stop), arange(start, stop) or arange(start, stop, step)")
    names = (("stop",), ("start", "stop"), ("start", "stop", "step"))[len(call.args) - 1]
    given = dict(zip(names, (_number(call, i, n) for i, n in enumerate(names)), strict=True))
    start, stop, step = given.get("start", 0.0), given["stop"], given.get("step", 1.0)
    if step == 0:
        raise call.error("arange's step cannot be 0", call.arg_spans[2])
    _fits((max(0, math.ceil((stop - start) / step)),), "the array of arange", call.call.span)
    return call.graph.const(np.arange(start, stop, step), call.call.span)


def _linspace(call: Any) -> Node:
    """linspace(start, stop, num=50), numpy's: start + k·(stop − start)/(num − 1), the last
    exactly stop. start and stop may be variables, and are differentiated."""
    if not 2 <= len(call.args) <= 3 or set(call.keywords) - {"num"}:
        raise call.error(
            "linspace is called as linspace(start, stop, num), as in linspace(0, 1, 5)"
        )
    if "num" in call.keywords and len(call.args) == 3:
        raise call.error("num is given twice", call.keyword_spans["num"])
    node, span = call.keywords.get("num") or (
        (call.args[2], call.arg_spans[2]) if len(call.args) == 3 else (None, None)
    )
    num = 50
    if node is not None:
        value = node.value if node.op == "const" else None
        whole = value is not None and np.ndim(value) == 0 and np.isfinite(value) and value % 1 == 0
        if not whole or value < 0:
            raise call.error("linspace's num is a whole number ≥ 0 written in the program", span)
        num = int(value)
    start, stop = call.args[:2]
    graph, span = call.graph, call.call.span
    _fits((num,), "the array of linspace", span)
    if num < 2:
        return graph.apply("broadcast_to", start, attrs=((num,),), span=span)
    step = graph.apply("div", graph.apply("sub", stop, start, span=span), float(num - 1), span=span)
    k = graph.const(np.arange(num - 1, dtype=np.float64))
    inner = graph.apply("add", graph.apply("mul", k, step, span=span), start, span=span)
    last = graph.apply("expand_dims", stop, attrs=(0,), span=span)
    return graph.apply("concatenate", inner, last, attrs=(0,), span=span)


for _name, _doc, _lower in (
    (
        "arange",
        "evenly spaced numbers from start to stop (not included), as numpy's arange",
        _arange,
    ),
    ("linspace", "num evenly spaced numbers from start to stop: linspace(0, 1, 5)", _linspace),
    ("eye", "the identity matrix: eye(3), or eye(2, 3) with ones on the diagonal", _eye),
    ("ones", "an array of ones of a shape written in the program: ones([2, 3])", _filled(1.0)),
    ("zeros", "an array of zeros of a shape written in the program: zeros(3)", _filled(0.0)),
    ("full", "an array of a shape, filled with a value: full([2, 3], x)", _full),
):
    register(Primitive(_name, 1, None, _doc, lower=_lower, params=("shape",)))


# --- new axes: expand_dims and x[:, None] ------------------------------------------------------


def _new_axes(axis: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """The positions of the new axes in the result, made non-negative and checked."""
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out_ndim = ndim + len(axes)
    normalized = tuple(sorted(_axis(a, out_ndim) for a in axes))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"expand_dims got the same axis twice: {list(axes)}")
    return normalized


def _expand_dims_shape(s: Shape, axis: Any) -> Shape:
    out = list(s)
    for a in _new_axes(axis, len(s)):
        out.insert(a, 1)
    return tuple(out)


register(Primitive(
    "expand_dims", 1, lambda x, axis: np.expand_dims(x, _new_axes(axis, np.ndim(x))),
    "x with new axes of length 1 at the positions axis (what x[:, None] means)",
    vjp=lambda node, g, shape_of: (_apply("reshape", g, attrs=(shape_of(node.inputs[0]),)),),
    jvp=_same_on_tangent("expand_dims"), shape=_expand_dims_shape, analytic=True,
    passes_nonfinite=(0,), attr_params=(("axis", 0),),
    batch=lambda args, flags, items, out, axis: np.expand_dims(
        args[0], tuple(1 + a for a in _new_axes(axis, len(items[0])))
    ),
    python="np.expand_dims(@0, @axis)",
))  # fmt: skip
