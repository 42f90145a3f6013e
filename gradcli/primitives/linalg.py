"""Linear algebra: matmul (a @ b, vectors promoted as numpy promotes them) and dot, a call
lowered to sum(a*b, axis=-1); tensordot (and inner, the sum over the last axes), kron, and
cross, lowered to products of the vectors' components. Further linear algebra belongs here.

Unlike the elementwise primitives, each of these states its output shape, its vector-Jacobian
product (written with graph operations, with the static shapes of its inputs at hand) and its batch
rule (the same operation with a leading batch axis, which shifts every axis it names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Operator, Primitive, Shape, register
from ._common import ShapeOf, _abs, _apply, _axis, _swap_last

# --- matrix products ----------------------------------------------------------------------


def _promoted(sa: Shape, sb: Shape) -> tuple[Shape, Shape]:
    """Vectors as matrices: a row vector on the left, a column vector on the right."""
    return ((1, *sa) if len(sa) == 1 else sa), ((*sb, 1) if len(sb) == 1 else sb)


def _matmul_shape(sa: Shape, sb: Shape) -> Shape:
    if not sa or not sb:
        raise ValueError("@ needs arrays on both sides; scale by a number with *")
    pa, pb = _promoted(sa, sb)
    if pa[-1] != pb[-2]:
        raise ValueError(f"@ needs matching inner dimensions, not {sa} @ {sb}")
    out = (*np.broadcast_shapes(pa[:-2], pb[:-2]), pa[-2], pb[-1])
    if len(sa) == 1:  # a promoted vector loses its row axis again, b's its column axis
        out = out[:-2] + out[-1:]
    return out[:-1] if len(sb) == 1 else out


def _matmul_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    a, b = (size(v) for v in node.inputs)
    sa, sb = (shape_of(v) for v in node.inputs)
    pa, pb = _promoted(sa, sb)
    out = (*np.broadcast_shapes(pa[:-2], pb[:-2]), pa[-2], pb[-1])
    big_a, big_b = _apply("reshape", a, attrs=(pa,)), _apply("reshape", b, attrs=(pb,))
    big_g = _apply("reshape", g, attrs=(out,))
    da = _apply("matmul", big_g, _swap_last(big_b, len(pb)))
    db = _apply("matmul", _swap_last(big_a, len(pa)), big_g)
    da = _apply("reshape", _apply("sum_to", da, attrs=(pa,)), attrs=(sa,))
    db = _apply("reshape", _apply("sum_to", db, attrs=(pb,)), attrs=(sb,))
    return da, db


def _matmul_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    """d(a @ b) = da @ b + a @ db."""
    (a, b), (ta, tb) = node.inputs, ts
    terms = []
    if ta is not None:
        terms.append(_apply("matmul", ta, b))
    if tb is not None:
        terms.append(_apply("matmul", a, tb))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _matmul_batched(args, flags, items, out):
    (sa, sb) = items
    pa, pb = _promoted(sa, sb)
    rank = 1 + max(len(pa), len(pb))
    operands = []
    for x, batched, promoted in zip(args, flags, (pa, pb), strict=True):
        x = np.asarray(x)
        lead = x.shape[:1] if batched else ()
        operands.append(x.reshape(lead + (1,) * (rank - len(lead) - len(promoted)) + promoted))
    result = np.matmul(*operands)
    if len(sa) == 1:
        result = result[..., 0, :]
    return result[..., 0] if len(sb) == 1 else result


register(Primitive(
    "matmul", 2, np.matmul, "matrix product (also written a @ b)",
    vjp=_matmul_vjp, jvp=_matmul_jvp, shape=_matmul_shape, batch=_matmul_batched, analytic=True,
    magnitude_vjp=lambda node, g, shape_of: _matmul_vjp(
        node, g, shape_of, lambda v: _apply("abs", v)
    ),
    operator=Operator("@", 2, "left"), params=("a", "b"), public=False,
))  # fmt: skip


def _dot(call: Any) -> Node:
    """dot(a, b): the sum of a*b along the last axis (the dot product of vectors)."""
    a, b = call.positional(2)
    span = call.call.span
    product = call.graph.apply("mul", a, b, span=span)
    return call.graph.apply("sum", product, attrs=(-1,), span=span)


register(Primitive(
    "dot", 2, None, "dot product along the last axis: sum(a*b, axis=-1)",
    lower=_dot, params=("a", "b"),
))  # fmt: skip


# --- tensordot and inner ------------------------------------------------------------------------


def _contracted(sa: Shape, sb: Shape, axes_a: Any, axes_b: Any) -> tuple[tuple, tuple]:
    """The axes summed over, made non-negative and checked to pair equal lengths."""
    if len(axes_a) != len(axes_b):
        raise ValueError(f"tensordot sums pairs of axes, not {list(axes_a)} with {list(axes_b)}")
    ia = tuple(_axis(k, len(sa)) for k in axes_a)
    ib = tuple(_axis(k, len(sb)) for k in axes_b)
    if len(set(ia)) != len(ia) or len(set(ib)) != len(ib):
        raise ValueError("tensordot got the same axis twice")
    for i, j in zip(ia, ib, strict=True):
        if sa[i] != sb[j]:
            raise ValueError(
                f"tensordot sums axis {i} of {sa} with axis {j} of {sb}: lengths {sa[i]} and "
                f"{sb[j]} differ"
            )
    return ia, ib


def _tensordot_shape(sa: Shape, sb: Shape, axes_a: Any, axes_b: Any) -> Shape:
    ia, ib = _contracted(sa, sb, axes_a, axes_b)
    return (
        *(n for k, n in enumerate(sa) if k not in ia),
        *(n for k, n in enumerate(sb) if k not in ib),
    )


def _tensordot(a: Any, b: Any, axes_a: Any, axes_b: Any) -> Any:
    ia, ib = _contracted(np.shape(a), np.shape(b), axes_a, axes_b)
    return np.tensordot(a, b, axes=(ia, ib))


def _tensordot_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """ā = g·b over b's free axes, b̄ = a·g over a's, each permuted back to its input's axes."""
    (a, b), (axes_a, axes_b) = node.inputs, node.attrs
    sa, sb = shape_of(a), shape_of(b)
    ia, ib = _contracted(sa, sb, axes_a, axes_b)
    free_a = [k for k in range(len(sa)) if k not in ia]
    free_b = [k for k in range(len(sb)) if k not in ib]
    g_b = tuple(range(len(free_a), len(free_a) + len(free_b)))  # b's free axes, in g
    da = _apply("tensordot", g, size(b), attrs=(g_b, tuple(free_b)))
    # da's axes: a's free ones, then a's summed ones in the order b's partners come in b
    order_a = free_a + [ia[ib.index(k)] for k in sorted(ib)]
    db = _apply("tensordot", size(a), g, attrs=(tuple(free_a), tuple(range(len(free_a)))))
    order_b = [ib[ia.index(k)] for k in sorted(ia)] + free_b
    return (
        _apply("transpose", da, attrs=(tuple(int(k) for k in np.argsort(order_a)),)),
        _apply("transpose", db, attrs=(tuple(int(k) for k in np.argsort(order_b)),)),
    )


def _tensordot_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    (a, b), (ta, tb) = node.inputs, ts
    terms = [_apply("tensordot", ta, b, attrs=node.attrs)] if ta is not None else []
    if tb is not None:
        terms.append(_apply("tensordot", a, tb, attrs=node.attrs))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _whole_numbers(call: Any, given: tuple[Node, Any], what: str) -> Any:
    """A whole number or a (nested) list of them, written in the program."""
    node, span = given
    value = node.value if node.op == "const" else None
    whole = value is not None and np.all(np.isfinite(value)) and np.all(np.mod(value, 1) == 0)
    if not whole or np.any(np.abs(value) > 64):  # more axes than numpy has
        raise call.error(f"{what} is a whole number, or two lists of axes, in the program", span)
    return np.asarray(value).astype(int)


def _tensordot_call(call: Any) -> Node:
    """tensordot(a, b, axes=2) (the last 2 axes of a with the first 2 of b), or
    axes=[[1, 0], [0, 2]]: the pairs of axes summed over."""
    if len(call.args) not in (2, 3) or set(call.keywords) - {"axes"}:
        raise call.error("tensordot is called as tensordot(a, b, axes=2) or axes=[[1], [0]]")
    a, b = call.args[:2]
    given = call.keywords.get("axes") or (
        (call.args[2], call.arg_spans[2]) if len(call.args) == 3 else None
    )
    axes = 2 if given is None else _whole_numbers(call, given, "axes")
    if np.ndim(axes) == 0:
        if axes < 0:
            raise call.error("tensordot's axes is a whole number ≥ 0")
        # The last `axes` axes of a with the first of b: counted from the end in a, as its rank
        # is known only once shapes are.
        pairs = (tuple(range(-int(axes), 0)), tuple(range(int(axes))))
    elif np.ndim(axes) == 2 and len(axes) == 2:
        pairs = (tuple(int(k) for k in axes[0]), tuple(int(k) for k in axes[1]))
    else:
        raise call.error("axes is a whole number, or two lists of axes: [[1], [0]]", given[1])
    return call.graph.apply("tensordot", a, b, attrs=pairs, span=call.call.span)


register(Primitive(
    "tensordot", 2, _tensordot,
    "the sum over pairs of axes of a and b of their products, as numpy's tensordot",
    vjp=_tensordot_vjp, jvp=_tensordot_jvp, shape=_tensordot_shape, analytic=True,
    magnitude_vjp=lambda node, g, shape_of: _tensordot_vjp(node, g, shape_of, _abs),
    lower=_tensordot_call, params=("a", "b"), attr_params=(("axes_a", ()), ("axes_b", ())),
    python="np.tensordot(@0, @1, axes=(@axes_a, @axes_b))",
))  # fmt: skip


def _inner(call: Any) -> Node:
    """inner(a, b), numpy's: the sum over the last axes of a and b."""
    a, b = call.positional(2)
    return call.graph.apply("tensordot", a, b, attrs=((-1,), (-1,)), span=call.call.span)


register(Primitive(
    "inner", 2, None, "the sum over the last axes of a and b (their dot product, for vectors)",
    lower=_inner, params=("a", "b"),
))  # fmt: skip


def _cross(call: Any) -> Node:
    """cross(a, b) of 3-vectors along the last axis: written with their components, so that
    its derivatives are those of products and differences."""
    a, b = call.positional(2)
    graph, span = call.graph, call.call.span

    def part(v: Node, k: int) -> Node:
        return graph.apply("gather", v, graph.const(float(k)), attrs=(-1,), span=span)

    rows = [part(a, i) * part(b, j) - part(a, j) * part(b, i) for i, j in ((1, 2), (2, 0), (0, 1))]
    return graph.apply("stacked", *rows, attrs=(-1,), span=span)


register(Primitive(
    "cross", 2, None, "the cross product of 3-vectors (along the last axis of each)",
    lower=_cross, params=("a", "b"),
))  # fmt: skip


# --- kron ---------------------------------------------------------------------------------------


def _kron_axes(sa: Shape, sb: Shape) -> tuple[Shape, Shape]:
    """Both shapes with leading 1s to one length, as numpy's kron pads them."""
    n = max(len(sa), len(sb))
    return (1,) * (n - len(sa)) + tuple(sa), (1,) * (n - len(sb)) + tuple(sb)


def _kron_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """g seen as (a₀, b₀, a₁, b₁, …): ā sums g·b over the b axes, b̄ sums g·a over the a axes."""
    (a, b), (sa, sb) = node.inputs, (shape_of(v) for v in node.inputs)
    pa, pb = _kron_axes(sa, sb)
    n = len(pa)
    woven = _apply(
        "reshape", g, attrs=(tuple(k for pair in zip(pa, pb, strict=True) for k in pair),)
    )
    spread_a = tuple(k for m in pa for k in (m, 1))
    spread_b = tuple(k for m in pb for k in (1, m))
    da = woven * _apply("reshape", size(b), attrs=(spread_b,))
    db = woven * _apply("reshape", size(a), attrs=(spread_a,))
    for axis in reversed(range(n)):  # the b axes are 1, 3, 5, …; the a axes 0, 2, 4, …
        da = _apply("sum", da, attrs=(2 * axis + 1,))
        db = _apply("sum", db, attrs=(2 * axis,))
    return _apply("reshape", da, attrs=(sa,)), _apply("reshape", db, attrs=(sb,))


def _kron_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    (a, b), (ta, tb) = node.inputs, ts
    terms = [_apply("kron", ta, b)] if ta is not None else []
    if tb is not None:
        terms.append(_apply("kron", a, tb))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


register(Primitive(
    "kron", 2, np.kron, "the Kronecker product: each element of a times the whole of b",
    vjp=_kron_vjp, jvp=_kron_jvp, analytic=True, params=("a", "b"),
    magnitude_vjp=lambda node, g, shape_of: _kron_vjp(node, g, shape_of, _abs),
    shape=lambda sa, sb: tuple(m * k for m, k in zip(*_kron_axes(sa, sb), strict=True)),
    latex=r"@0 \otimes @1", python="np.kron(@0, @1)",
))  # fmt: skip
