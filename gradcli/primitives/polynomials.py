"""Polynomials: polyval(p, x), with numpy's order of coefficients (highest power first).

Its derivative in x is the polynomial of the derivative's coefficients, p[:-1]·(n − 1, …, 1);
in the coefficients, the powers of x, made by repeated products (no pow, whose derivative at
x = 0 would be 0·0⁻¹). The coefficients may be a variable: a polynomial being fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, register
from ._common import ShapeOf, _abs, _apply


def _degree(p: Shape) -> int:
    """The number of coefficients, checked: one vector of at least one."""
    if len(p) != 1 or p[0] < 1:
        raise ValueError(f"polyval takes a vector of coefficients, not shape {p}")
    return p[0]


def _polyval(p: Any, x: Any) -> Any:
    _degree(np.shape(p))  # folding calls this before shapes are inferred
    return np.polyval(p, x)


def _polyval_batched(args, flags, items, out):
    """Horner's rule with a leading batch axis on the coefficients, the points or both."""
    (p, x), (p_batched, _) = args, flags
    p = np.asarray(p)
    total = np.zeros((), dtype=np.result_type(p, x))
    for k in range(p.shape[-1]):
        c = p[..., k]
        if p_batched:  # one coefficient per item, against the item's points
            c = c.reshape(c.shape + (1,) * len(out))
        total = total * x + c
    return total


def _slope(p: Node, x: Node, shape_of: ShapeOf, size=lambda v: v) -> Node | None:
    """p′(x): the coefficients p[:-1]·(n − 1, …, 1) at x (None for a constant polynomial)."""
    n = shape_of(p)[0]
    if n == 1:
        return None
    scales = p.graph.const(np.arange(n - 1, 0, -1, dtype=np.float64))
    coefficients = _apply("index", p, attrs=((("slice", None, -1, None),),)) * scales
    return _apply("polyval", size(coefficients), size(x))


def _powers(p: Node, x: Node, shape_of: ShapeOf) -> Node:
    """[xⁿ⁻¹, …, x, 1], along a new first axis: ∂polyval/∂p."""
    n = shape_of(p)[0]
    powers: list[Node | float] = [1.0]
    for _ in range(n - 1):
        powers.append(x if len(powers) == 1 else powers[-1] * x)
    one = x.graph.apply("broadcast_to", x.graph.const(1.0), attrs=(shape_of(x),))
    rows = [one if isinstance(v, float) else v for v in reversed(powers)]
    return x.graph.apply("stack", *rows)


def _polyval_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    p, x = node.inputs
    slope = _slope(p, x, shape_of, size)
    to_x = None if slope is None else g * slope
    n = shape_of(p)[0]
    spread = _apply("reshape", g * size(_powers(p, x, shape_of)), attrs=((n, -1),))
    return (_apply("sum", spread, attrs=(1,)), to_x)


def _polyval_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node | None:
    (p, x), (tp, tx) = node.inputs, ts
    total = None
    if tx is not None:
        slope = _slope(p, x, shape_of, size)
        total = None if slope is None else slope * tx
    if tp is not None:
        moved = _apply("polyval", tp, size(x))
        total = moved if total is None else total + moved
    return total


register(Primitive(
    "polyval", 2, _polyval,
    "the polynomial with coefficients p (highest power first) at x, as numpy's polyval",
    vjp=_polyval_vjp, jvp=_polyval_jvp, analytic=True, batch=_polyval_batched,
    magnitude_vjp=lambda node, g, shape_of: _polyval_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _polyval_jvp(node, es, shape_of, _abs),
    shape=lambda p, x: (_degree(p), x)[1], params=("p", "x"),
    python="np.polyval(@0, @1)",
))  # fmt: skip
