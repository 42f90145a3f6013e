"""Matrix decompositions: cholesky, and solve_triangular, the solve its factor is used with;
eigvalsh, and eigh_vectors, the eigenvectors its derivatives are written with; batched over
leading axes as numpy.linalg batches them.

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
from ..graph.registry import Domain, Primitive, register
from ._common import (
    ShapeOf,
    _abs,
    _apply,
    _inverse_gaps,
    _lapack,
    _nan_where_singular,
    _square,
    _swap_last,
)


def _symmetric(a: Any) -> np.ndarray:
    a = _lapack(a)
    return (a + np.swapaxes(a, -1, -2)) / 2


def _cholesky(a: Any) -> np.ndarray:
    return _nan_where_singular(np.linalg.cholesky, _symmetric(a))


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
    lt = _swap_last(node, n)
    p = _phi(_apply("matmul", size(lt), g))
    s = _swap_last(_left(lt, _swap_last(_left(lt, p, size), n), size), n)  # L⁻ᵀ·P·L⁻¹
    return ((s + _swap_last(s, n)) * 0.5,)


def _cholesky_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node:
    n = len(shape_of(node))
    da = (ts[0] + _swap_last(ts[0], n)) * 0.5
    inner = _swap_last(_left(node, _swap_last(_left(node, da, size), n), size), n)  # L⁻¹·dA·L⁻ᵀ
    return _apply("matmul", size(node), _phi(inner))


register(Primitive(
    "cholesky", 1, _cholesky,
    "the lower-triangular L with L @ Lᵀ = A, of the symmetric part of A (or of each in a stack)",
    vjp=_cholesky_vjp, jvp=_cholesky_jvp, params=("A",),
    shape=lambda s: (_square("cholesky", s), s)[1],
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


# --- eigvalsh and its eigenvectors --------------------------------------------------------------


def _eigh(a: Any) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the symmetric part, each vector's largest
    component made positive, so that nearby matrices get the same signs."""
    w, v = np.linalg.eigh(_symmetric(a))
    top = np.take_along_axis(v, np.abs(v).argmax(axis=-2)[..., None, :], axis=-2)
    return w, v * np.where(top < 0, -1.0, 1.0)


def _vectors(node: Node) -> Node:
    return _apply("eigh_vectors", node.inputs[0])


def _eigvalsh_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """Ā = V·diag(w̄)·Vᵀ: each eigenvalue moves by vᵢᵀ·dA·vᵢ."""
    v = size(_vectors(node))
    n = len(shape_of(node.inputs[0]))
    weighted = v * _apply("expand_dims", g, attrs=(-2,))
    return (_apply("matmul", weighted, _swap_last(v, n)),)


def _eigvalsh_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node:
    v = size(_vectors(node))
    n = len(shape_of(node.inputs[0]))
    da = (ts[0] + _swap_last(ts[0], n)) * 0.5
    return _apply("sum", v * _apply("matmul", size(da), v), attrs=(-2,))


register(Primitive(
    "eigvalsh", 1, lambda a: np.linalg.eigvalsh(_symmetric(a)),
    "the eigenvalues, ascending, of the symmetric part (A + Aᵀ)/2 (of each matrix of a stack)",
    vjp=_eigvalsh_vjp, jvp=_eigvalsh_jvp, params=("A",),
    magnitude_vjp=lambda node, g, shape_of: _eigvalsh_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _eigvalsh_jvp(node, es, shape_of, _abs),
    shape=lambda s: (_square("eigvalsh", s), s[:-1])[1],
    # Eigenvalues that meet: where two tie, their order (and their vectors) switch.
    kink=lambda a: _apply("diff", _apply("eigvalsh", a), attrs=(1, -1)),
    batch=lambda args, flags, items, out: np.linalg.eigvalsh(_symmetric(args[0])),
    python="np.linalg.eigvalsh((@0 + np.swapaxes(@0, -1, -2))/2)",
))  # fmt: skip


def _gaps(node: Node, shape_of: ShapeOf) -> Node:
    """F with Fᵢⱼ = 1/(wⱼ − wᵢ) off the diagonal and 0 on it (and where eigenvalues tie)."""
    return _inverse_gaps(_apply("eigvalsh", node.inputs[0]))


def _vectors_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """Ā = sym(V·(F ∘ (Vᵀ·V̄))·Vᵀ)."""
    n = len(shape_of(node))
    v = size(node)
    inner = size(_gaps(node, shape_of)) * _apply("matmul", _swap_last(v, n), g)
    s = _apply("matmul", _apply("matmul", v, inner), _swap_last(v, n))
    return ((s + _swap_last(s, n)) * 0.5,)


def _vectors_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node:
    """dV = V·(F ∘ (Vᵀ·dA·V)), dA the symmetric part of the tangent."""
    n = len(shape_of(node))
    v = size(node)
    da = (ts[0] + _swap_last(ts[0], n)) * 0.5
    moved = _apply("matmul", _apply("matmul", _swap_last(v, n), size(da)), v)
    return _apply("matmul", v, size(_gaps(node, shape_of)) * moved)


register(Primitive(
    "eigh_vectors", 1, lambda a: _eigh(a)[1],
    "the eigenvectors (columns, in eigvalsh's order, each with its largest component "
    "positive) of the symmetric part of A: what eigvalsh's derivatives are written with",
    vjp=_vectors_vjp, jvp=_vectors_jvp, params=("A",),
    magnitude_vjp=lambda node, g, shape_of: _vectors_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _vectors_jvp(node, es, shape_of, _abs),
    shape=lambda s: (_square("eigh_vectors", s), s)[1],
    kink=lambda a: _apply("diff", _apply("eigvalsh", a), attrs=(1, -1)),
    batch=lambda args, flags, items, out: _eigh(args[0])[1],
    python="_eigh(@0)[1]", python_uses=(_lapack, _symmetric, _eigh),
))  # fmt: skip
