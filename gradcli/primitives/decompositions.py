"""Matrix decompositions: cholesky, and solve_triangular, the solve its factor is used with;
batched over leading axes as numpy.linalg batches them.

cholesky(A) factors the symmetric part of A, (A + Aᵀ)/2, as JAX's cholesky does by default
(numpy reads the lower triangle only): its gradient is symmetric, and a rounding-level asymmetry
of A changes nothing. Its rules (Murray, "Differentiation of the Cholesky decomposition", 2016),
for A = L·Lᵀ, with Φ(X) the lower triangle of X with its diagonal halved:

- dL = L·Φ(L⁻¹·dA·L⁻ᵀ), dA the symmetric part of the tangent;
- Ā = sym(L⁻ᵀ·Φ(Lᵀ·L̄)·L⁻¹), sym(S) = (S + Sᵀ)/2.

A matrix that is not positive definite is a fault at the call, as a singular one is for inv.
solve_triangular(A, b, lower) is solve of the triangle of A (scipy's reads only that triangle),
lowered so, so that its rules, faults and shapes are solve's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Domain, Primitive, Shape, register
from ._common import ShapeOf, _abs, _apply, _lapack, _nan_where_singular


def _symmetric(a: Any) -> np.ndarray:
    a = _lapack(a)
    return (a + np.swapaxes(a, -1, -2)) / 2


def _cholesky(a: Any) -> np.ndarray:
    return _nan_where_singular(np.linalg.cholesky, _symmetric(a))


def _cholesky_shape(s: Shape) -> Shape:
    if len(s) < 2 or s[-1] != s[-2]:
        raise ValueError(f"cholesky needs a square matrix (or a stack of them), not shape {s}")
    return s


def _t(x: Node, ndim: int) -> Node:
    """Each matrix of a stack transposed."""
    return _apply("transpose", x, attrs=((*range(ndim - 2), ndim - 1, ndim - 2),))


def _phi(x: Node) -> Node:
    """The lower triangle with the diagonal halved: (tril(X) + tril(X, −1))/2."""
    return (_apply("tril", x, attrs=(0,)) + _apply("tril", x, attrs=(-1,))) * 0.5


def _left(lt: Node, x: Node, size) -> Node:
    """L⁻ᵀ·X, or |L⁻ᵀ|·X for the error scale."""
    if size is _abs:
        return _apply("matmul", _abs(_apply("inv", lt)), x)
    return _apply("solve", lt, x)


def _cholesky_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    n = len(shape_of(node))
    lt = _t(node, n)
    p = _phi(_apply("matmul", size(lt), g))
    s = _t(_left(lt, _t(_left(lt, p, size), n), size), n)  # L⁻ᵀ·P·L⁻¹
    return ((s + _t(s, n)) * 0.5,)


def _cholesky_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node:
    n = len(shape_of(node))
    da = (ts[0] + _t(ts[0], n)) * 0.5
    inner = _t(_left(node, _t(_left(node, da, size), n), size), n)  # L⁻¹·dA·L⁻ᵀ
    return _apply("matmul", size(node), _phi(inner))


register(Primitive(
    "cholesky", 1, _cholesky,
    "the lower-triangular L with L @ Lᵀ = A, of the symmetric part of A (or of each in a stack)",
    vjp=_cholesky_vjp, jvp=_cholesky_jvp, params=("A",), shape=_cholesky_shape,
    magnitude_vjp=lambda node, g, shape_of: _cholesky_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _cholesky_jvp(node, es, shape_of, _abs),
    batch=lambda args, flags, items, out: _cholesky(args[0]),
    domain=Domain(
        "A positive definite",
        lambda a: np.all(np.isfinite(_cholesky(a)), axis=(-2, -1)),
        fault="the matrix is not positive definite",
    ),
    python="np.linalg.cholesky((@0 + np.swapaxes(@0, -1, -2))/2)",
))  # fmt: skip


def _solve_triangular(call: Any) -> Node:
    """solve_triangular(A, b, lower=False): solve with the lower (or upper) triangle of A."""
    if len(call.args) != 2 or set(call.keywords) - {"lower"}:
        raise call.error(
            "solve_triangular is called as solve_triangular(A, b, lower=True), as scipy's"
        )
    lower = 0
    if "lower" in call.keywords:
        node, span = call.keywords["lower"]
        if node.op != "const" or np.ndim(node.value) or node.value not in (0.0, 1.0):
            raise call.error("lower is True or False", span)
        lower = int(node.value)
    a, b = call.args
    graph, span = call.graph, call.call.span
    triangle = graph.apply("tril" if lower else "triu", a, attrs=(0,), span=span)
    return graph.apply("solve", triangle, b, span=span)


register(Primitive(
    "solve_triangular", 2, None,
    "x with T @ x = b, T the lower (lower=True) or upper triangle of A, as scipy's",
    lower=_solve_triangular, params=("A", "b"), attr_params=(("lower", 0),),
))  # fmt: skip
