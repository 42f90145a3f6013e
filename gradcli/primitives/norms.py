"""numpy's norm(x, ord, axis): how a call is lowered to the primitives that compute it.

The vector norms (an int axis) and the matrix norms (a pair of axes, or ord 'fro' and 'nuc')
are written with norm (the 2-norm, without overflow), abs, sum, amax, amin and svdvals, so
their derivatives and kinks are those primitives'. numpy picks a vector or a matrix norm by the
number of dimensions of x, which is known only once values are: here the axis says which, and
an ord that means one thing for vectors and another for matrices (2, 1, inf) needs its axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.nodes import Node
from ._common import _axis_argument

_USAGE = "norm is called as norm(x, ord=2, axis=…), with ord and axis by name"
_MATRIX_ORDERS = "'fro', 'nuc', 2, -2, 1, -1, inf, -inf"


def norm_call(call: Any) -> Node:
    """norm(x), norm(x, ord=…, axis=…): a vector norm along an int axis, a matrix norm over a
    pair of axes (ord 'fro' and 'nuc' over the last two by default). A second positional
    argument is refused: numpy reads it as ord, where gradcli once read axis."""
    if not call.args or len(call.args) > 1 or set(call.keywords) - {"axis", "ord"}:
        raise call.error(
            _USAGE,
            hint="numpy's norm(x, 1) is norm(x, ord=1, axis=-1) here; norm(x, axis=1) is the "
            "2-norm along axis 1",
        )
    pair = _axis_pair(call)
    order = _order(call)
    if pair is None and order in ("fro", "nuc"):
        pair = (-2, -1)
    if pair is not None:
        return _matrix_norm(call, order, pair)
    axis = _axis_argument(call, 1, None, "x", frozenset({"ord"}))
    return _vector_norm(call, order, axis)


def _order(call: Any) -> float | str | None:
    """ord as written: None, a number (inf and -inf included), or 'fro' or 'nuc'."""
    if "ord" not in call.keywords:
        return None
    node, where = call.keywords["ord"]
    if not isinstance(node, Node):  # a string
        if node.value not in ("fro", "nuc"):
            raise call.error(f"norm's ord is a number, 'fro' or 'nuc', not '{node.value}'", where)
        return node.value
    sign = 1.0
    if node.op == "neg":  # -inf is not folded: constants fold only to finite numbers
        node, sign = node.inputs[0], -1.0
    if node.op != "const" or np.ndim(node.value) or np.isnan(node.value):
        raise call.error(
            "ord is written in the program: a number (1, 2, inf, -inf, 0, p), 'fro' or 'nuc'",
            where,
        )
    return sign * float(node.value)


def _axis_pair(call: Any) -> tuple[int, int] | None:
    """axis=[-2, -1], the axes of the matrices, or None for an int axis (or none given)."""
    if "axis" not in call.keywords:
        return None
    node, span = call.keywords["axis"]
    value = node.value if node.op == "const" else None
    if value is None or np.ndim(value) != 1:
        return None  # one axis, or a mistake that the vector path reports
    whole = len(value) == 2 and np.all(np.mod(value, 1) == 0)
    if not whole or value[0] == value[1] or (value[0] < 0) != (value[1] < 0):
        raise call.error(
            "norm's axis is one axis, or two different ones counted alike, both from the end "
            "or both from the start: axis=[-2, -1]",
            span,
        )
    return int(value[0]), int(value[1])


def _vector_norm(call: Any, order: float | str | None, axis: int | None) -> Node:
    x, graph, span = call.args[0], call.graph, call.call.span
    if order is None:
        return graph.apply("norm", x, attrs=(axis,), span=span)
    if axis is None:
        raise call.error(
            f"norm with ord={order:g} needs its axis: numpy's norm with an ord is a vector norm "
            "of a vector and a matrix norm of a matrix",
            call.keyword_spans["ord"],
            hint=f"write norm(x, ord={order:g}, axis=-1) for vectors, or axis=[-2, -1] for "
            "matrices",
        )
    if order == 2:
        return graph.apply("norm", x, attrs=(axis,), span=span)
    size = graph.apply("abs", x, span=span)
    if order == np.inf or order == -np.inf:
        return graph.apply("amax" if order > 0 else "amin", size, attrs=(axis,), span=span)
    if order == 0:
        count = graph.apply("not_equal", x, 0.0, span=span)
        return graph.apply("sum", count, attrs=(axis,), span=span)
    if order == 1:
        return graph.apply("sum", size, attrs=(axis,), span=span)
    powers = graph.apply("pow", size, order, span=span)
    return graph.apply("pow", graph.apply("sum", powers, attrs=(axis,), span=span), 1 / order)


def _after(removed: int, axis: int) -> int:
    """`axis` once `removed` is reduced away (both counted alike, from the end or the start)."""
    if axis < 0:
        return axis + 1 if axis < removed else axis
    return axis - 1 if axis > removed else axis


def _matrix_norm(call: Any, order: float | str | None, pair: tuple[int, int]) -> Node:
    """numpy's matrix norms over the axes (rows, columns) of `pair`."""
    x, graph, span = call.args[0], call.graph, call.call.span
    rows, columns = pair
    if order in (None, "fro"):  # the 2-norm of the 2-norms of the rows: no overflow
        inner = graph.apply("norm", x, attrs=(columns,), span=span)
        return graph.apply("norm", inner, attrs=(_after(columns, rows),), span=span)
    if order in (1, -1, np.inf, -np.inf):
        # 1: the largest sum of |x| down a column; inf: along a row (−1, −inf: the smallest).
        summed, kept = (rows, columns) if abs(order) == 1 else (columns, rows)
        sums = graph.apply("sum", graph.apply("abs", x, span=span), attrs=(summed,), span=span)
        extreme = "amax" if order > 0 else "amin"
        return graph.apply(extreme, sums, attrs=(_after(summed, kept),), span=span)
    if order not in (2, -2, "nuc"):
        raise call.error(
            f"numpy has no matrix norm of ord={order:g}: the matrix norms are {_MATRIX_ORDERS}",
            call.keyword_spans["ord"],
        )
    if set(pair) != {-2, -1}:
        raise call.error(
            "the singular values are those of the matrices of the last two axes: write "
            "axis=[-2, -1] (or move the axes there with transpose)",
            call.keyword_spans["axis"],
        )
    values = graph.apply("svdvals", x, span=span)
    if order == "nuc":
        return graph.apply("sum", values, attrs=(-1,), span=span)
    return graph.apply("amax" if order == 2 else "amin", values, attrs=(-1,), span=span)
