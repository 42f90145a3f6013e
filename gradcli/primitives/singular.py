"""Singular values: svdvals, the vectors its derivatives are written with (svd_left and
svd_right), and pinv; batched over leading axes as numpy.linalg batches them. The matrix norms
of numpy's norm (ord 2, −2 and 'nuc') are written with svdvals (see reductions.py).

For A = U·S·Vᵀ, the thin SVD (U m×k, V n×k, k = min(m, n)), with F the matrix of
Fᵢⱼ = 1/(sⱼ² − sᵢ²) off the diagonal (Townsend, "Differentiating the singular value
decomposition", 2016; Giles, 2008):

- dS = diag(Uᵀ·dA·V), so Ā = U·diag(S̄)·Vᵀ;
- dU = U·(F ∘ (dP·S + S·dPᵀ)) + (I − UUᵀ)·dA·V·S⁻¹, dP = Uᵀ·dA·V, and dV alike with Aᵀ.

Singular values that meet, and a singular value at 0 (|x| of a 1×1 matrix), are kinks. Each
singular vector pair has its sign fixed by the largest component of v, so that nearby matrices
get the same signs. pinv (Golub and Pereyra, 1973: the derivative where the rank is constant)
jumps where the rank changes, where its smallest singular value is 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, register
from ._common import (
    ShapeOf,
    _abs,
    _apply,
    _inverse_gaps,
    _lapack,
    _reciprocal_or_zero,
    _swap_last,
)


def _svd(a: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """U, s (descending) and V of the thin SVD, each pair's sign set by v's largest component."""
    u, s, vh = np.linalg.svd(_lapack(a), full_matrices=False)
    v = np.swapaxes(vh, -1, -2)
    top = np.take_along_axis(v, np.abs(v).argmax(axis=-2)[..., None, :], axis=-2)
    sign = np.where(top < 0, -1.0, 1.0)
    return u * sign, s, v * sign


def _matrix(name: str, s: Shape) -> int:
    if len(s) < 2:
        raise ValueError(f"{name} needs a matrix (or a stack of them), not shape {s}")
    return min(s[-2:])


def _svdvals(a: Any) -> np.ndarray:
    return np.linalg.svd(_lapack(a), compute_uv=False)


def _factors(a: Node) -> tuple[Node, Node, Node]:
    return _apply("svd_left", a), _apply("svdvals", a), _apply("svd_right", a)


def _rows(s: Node) -> Node:
    """s as a row, to scale the columns of a matrix: X·S is X * _rows(s)."""
    return _apply("expand_dims", s, attrs=(-2,))


def _columns(s: Node) -> Node:
    """s as a column, to scale the rows of a matrix: S·X is _columns(s) * X."""
    return _apply("expand_dims", s, attrs=(-1,))


def _svdvals_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """Ā = U·diag(ḡ)·Vᵀ: each singular value moves by uᵢᵀ·dA·vᵢ."""
    u, _, v = _factors(node.inputs[0])
    n = len(shape_of(node.inputs[0]))
    return (_apply("matmul", size(u) * _rows(g), _swap_last(size(v), n)),)


def _svdvals_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node:
    u, _, v = _factors(node.inputs[0])
    return _apply("sum", size(u) * _apply("matmul", size(ts[0]), size(v)), attrs=(-2,))


def _svd_kinks(a: Node) -> Node:
    """0 where two singular values meet, or where the smallest is 0."""
    s = _apply("svdvals", a)
    smallest = _apply("expand_dims", _apply("amin", s, attrs=(-1,)), attrs=(-1,))
    return _apply("concatenate", _apply("diff", s, attrs=(1, -1)), smallest, attrs=(-1,))


register(Primitive(
    "svdvals", 1, _svdvals,
    "the singular values, descending, of a matrix (of each matrix of a stack), as numpy's "
    "linalg.svdvals",
    vjp=_svdvals_vjp, jvp=_svdvals_jvp, params=("A",),
    magnitude_vjp=lambda node, g, shape_of: _svdvals_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _svdvals_jvp(node, es, shape_of, _abs),
    shape=lambda s: (*s[:-2], _matrix("svdvals", s)),
    kink=_svd_kinks,
    batch=lambda args, flags, items, out: _svdvals(args[0]),
    python="np.linalg.svd(@0, compute_uv=False)",
))  # fmt: skip


# --- the singular vectors, for second derivatives -----------------------------------------------


def _gaps(s: Node) -> Node:
    """F with Fᵢⱼ = 1/(sⱼ² − sᵢ²) off the diagonal and 0 on it (and where values tie)."""
    return _inverse_gaps(s * s)


def _inverse(s: Node) -> Node:
    """1/s, and 0 where a singular value is 0: there the vectors jump (a kink, as at a tie)."""
    return _reciprocal_or_zero(s)


def _outside(x: Node, q: Node, n: int, size) -> Node:
    """(I − Q·Qᵀ)·X: the part of X outside the columns of Q."""
    inside = _apply("matmul", size(q), _apply("matmul", _swap_last(size(q), n), size(x)))
    return size(x) + inside if size is _abs else x - inside


def _vectors_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v, right=False):
    """Ū gives Ā = U·(F ∘ (UᵀŪ − ŪᵀU))·S·Vᵀ + (I − UUᵀ)·Ū·S⁻¹·Vᵀ; V̄ gives the same for Aᵀ."""
    a = node.inputs[0]
    n = len(shape_of(a))
    u, s, v = _factors(a)
    if right:
        u, v = v, u
    mixed = _apply("matmul", _swap_last(size(u), n), g)
    skew = size(_gaps(s)) * (mixed + _swap_last(mixed, n) if size is _abs else
                             mixed - _swap_last(mixed, n))  # fmt: skip
    inner = _apply("matmul", size(u), skew * _rows(size(s)))
    inner = _apply("matmul", inner, _swap_last(size(v), n))
    outer = _apply("matmul", _outside(g, u, n, size) * _rows(_inverse(s)), _swap_last(size(v), n))
    total = inner + outer
    return (_swap_last(total, n) if right else total,)


def _vectors_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v, right=False):
    """dU = U·(F ∘ (dP·S + S·dPᵀ)) + (I − UUᵀ)·dA·V·S⁻¹, dP = Uᵀ·dA·V; dV the same for Aᵀ."""
    a, da = node.inputs[0], size(ts[0])
    n = len(shape_of(a))
    u, s, v = _factors(a)
    if right:
        u, v, da = v, u, _swap_last(da, n)
    dp = _apply("matmul", _apply("matmul", _swap_last(size(u), n), da), size(v))
    mixed = dp * _rows(size(s)) + _columns(size(s)) * _swap_last(dp, n)
    inner = _apply("matmul", size(u), size(_gaps(s)) * mixed)
    outer = _outside(_apply("matmul", da, size(v)), u, n, size) * _rows(_inverse(s))
    return inner + outer


def _vectors_shape(name: str, s: Shape, right: bool) -> Shape:
    """(…, m, k) for U, (…, n, k) for V: k = min(m, n) vectors, as columns."""
    k = _matrix(name, s)
    return (*s[:-2], s[-1] if right else s[-2], k)


def _vectors(name: str, which: int, right: bool) -> None:
    register(Primitive(
        name, 1, lambda a: _svd(a)[which],
        f"the {'right' if right else 'left'} singular vectors (columns, in svdvals' order, "
        "each pair with v's largest component positive): what svdvals' derivatives are written "
        "with",
        vjp=lambda node, g, shape_of: _vectors_vjp(node, g, shape_of, right=right),
        jvp=lambda node, ts, shape_of: _vectors_jvp(node, ts, shape_of, right=right),
        magnitude_vjp=lambda node, g, shape_of: _vectors_vjp(node, g, shape_of, _abs, right),
        error_jvp=lambda node, es, shape_of: _vectors_jvp(node, es, shape_of, _abs, right),
        shape=lambda s: _vectors_shape(name, s, right),
        kink=_svd_kinks, params=("A",),
        batch=lambda args, flags, items, out: _svd(args[0])[which],
        python=f"_svd(@0)[{which}]", python_uses=(_lapack, _svd),
    ))  # fmt: skip


_vectors("svd_left", 0, right=False)
_vectors("svd_right", 2, right=True)


# --- pinv ---------------------------------------------------------------------------------------


def _pinv_parts(node: Node, shape_of: ShapeOf, size) -> tuple[Node, Node, Node, int]:
    """X = A⁺, and the projections I − A·X and I − X·A, off the range of A and of Aᵀ."""
    a, x = node.inputs[0], node
    rows, columns = shape_of(a)[-2:]
    off_range = _apply("sub", x.graph.const(np.eye(rows)), _apply("matmul", a, x))
    off_rows = _apply("sub", x.graph.const(np.eye(columns)), _apply("matmul", x, a))
    return size(x), size(off_range), size(off_rows), len(shape_of(a))


def _pinv_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """Ā = −Xᵀ·Ḡ·Xᵀ + (I − AX)·Ḡᵀ·X·Xᵀ + Xᵀ·X·Ḡᵀ·(I − XA), X = A⁺."""
    x, p, q, n = _pinv_parts(node, shape_of, size)
    xt, gt = _swap_last(x, n), _swap_last(g, n)
    first = _apply("matmul", _apply("matmul", xt, g), xt)
    second = _apply("matmul", _apply("matmul", p, gt), _apply("matmul", x, xt))
    third = _apply("matmul", _apply("matmul", xt, x), _apply("matmul", gt, q))
    return ((first if size is _abs else -first) + second + third,)


def _pinv_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node:
    """dX = −X·dA·X + X·Xᵀ·dAᵀ·(I − AX) + (I − XA)·dAᵀ·Xᵀ·X."""
    x, p, q, n = _pinv_parts(node, shape_of, size)
    da = size(ts[0])
    xt, dat = _swap_last(x, n), _swap_last(da, n)
    first = _apply("matmul", _apply("matmul", x, da), x)
    second = _apply("matmul", _apply("matmul", x, xt), _apply("matmul", dat, p))
    third = _apply("matmul", _apply("matmul", q, dat), _apply("matmul", xt, x))
    return (first if size is _abs else -first) + second + third


def _pinv(a: Any) -> np.ndarray:
    return np.linalg.pinv(_lapack(a))


register(Primitive(
    "pinv", 1, _pinv,
    "the Moore-Penrose pseudo-inverse (of each matrix of a stack), as numpy's linalg.pinv",
    vjp=_pinv_vjp, jvp=_pinv_jvp, params=("A",),
    magnitude_vjp=lambda node, g, shape_of: _pinv_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _pinv_jvp(node, es, shape_of, _abs),
    shape=lambda s: (_matrix("pinv", s), (*s[:-2], s[-1], s[-2]))[1],
    # Where the rank drops, the smallest singular value is 0 and pinv jumps.
    kink=lambda a: _apply("amin", _apply("svdvals", a), attrs=(-1,)), jump=True,
    batch=lambda args, flags, items, out: _pinv(args[0]),
    python="np.linalg.pinv(@0)",
))  # fmt: skip
