"""Linear algebra: matmul (a @ b, vectors promoted as numpy promotes them) and dot, a call
lowered to sum(a*b, axis=-1). Further linear algebra belongs here.

Unlike the elementwise primitives, each of these states its output shape, its vector-Jacobian
product (written with graph operations, with the static shapes of its inputs at hand) and its batch
rule (the same operation with a leading batch axis, which shifts every axis it names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Operator, Primitive, Shape, register
from ._common import ShapeOf, _apply

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


def _swap_last(x: Node, ndim: int) -> Node:
    return _apply("transpose", x, attrs=((*range(ndim - 2), ndim - 1, ndim - 2),))


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
