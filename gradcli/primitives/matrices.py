"""Matrix functions: trace, diag, outer, inv, solve, det and logdet, batched over leading axes as
numpy.linalg batches them (a stack of matrices is an array whose last two axes are the matrix).

The rules are the classical ones (Giles, "Collected matrix derivative results for forward and
reverse mode algorithmic differentiation", 2008), written with graph operations, so that their
derivatives are graphs again:

- C = inv(A): dC = -C·dA·C, and Ā = -Cᵀ·C̄·Cᵀ;
- x = solve(A, b): dx = solve(A, db - dA·x), and b̄ = solve(Aᵀ, x̄), Ā = -b̄·xᵀ;
- d = det(A): dd = d·tr(solve(A, dA)), and Ā = d̄·d·inv(A)ᵀ;
- l = logdet(A), the log of a positive determinant: dl = tr(solve(A, dA)), Ā = l̄·inv(A)ᵀ;
- trace, diag and outer are linear in each input: their rules are themselves.

Each also states |J|ᵀ·g and |J|·e with the absolute values of the matrices in its rule, the
scale of rounding errors (see transforms/rounding.py). A singular matrix is a fault, as a nan
is, located at the call: inv, solve and logdet give nan for it (numpy would raise for the whole
stack), and evaluation says "inv(A) is nan: the matrix is singular". det's gradient at a singular
matrix goes through inv, so it is reported the same way (JAX's is nan there too). inv, solve, det
and logdet are not marked analytic: LAPACK's complex LU is not accurate to a few ulps in an
imaginary part 1e-300 times the real one, so the checker takes differences through them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Domain, Primitive, Shape, register
from ._common import (
    ShapeOf,
    _abs,
    _apply,
    _lapack,
    _nan_where_singular,
    _square,
    _swap_last,
)

Size = Callable[[Node], Node]  # the identity, or abs: the rule itself, or its |J|


def _same(v: Node) -> Node:
    return v


def _per_matrix(g: Node, lead: Shape, m: Node) -> Node:
    """g, one number per matrix of a stack, times each matrix of m."""
    return _apply("reshape", g, attrs=((*lead, 1, 1),)) * m


def _mm(a: Node, b: Node) -> Node:
    return _apply("matmul", a, b)


# --- trace, diag, outer: linear ---------------------------------------------------------------


def _trace(x: Any) -> Any:
    return np.trace(x, axis1=-2, axis2=-1)


def _trace_shape(s: Shape) -> Shape:
    if len(s) < 2:
        raise ValueError(f"trace needs a matrix (or a stack of them), not shape {s}")
    return s[:-2]


def _trace_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    s = shape_of(node.inputs[0])
    return (_per_matrix(g, s[:-2], node.graph.const(np.eye(s[-2], s[-1]))),)


register(Primitive(
    "trace", 1, _trace,
    "the sum of the diagonal of a matrix (of the last two axes, as numpy.linalg.trace)",
    vjp=_trace_vjp, jvp=lambda node, ts, shape_of: _apply("trace", ts[0]), shape=_trace_shape,
    batch=lambda args, flags, items, out: _trace(args[0]), analytic=True,
    latex=r"\operatorname{tr}\left(@0\right)",
    python="np.trace(@0, axis1=-2, axis2=-1)",
))  # fmt: skip


def _diag_shape(s: Shape) -> Shape:
    if len(s) == 1:
        return (s[0], s[0])
    if len(s) == 2:
        return (min(s),)
    raise ValueError(f"diag takes a vector or a matrix, as numpy's diag, not shape {s}")


def _diag_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    s = shape_of(node.inputs[0])
    if len(s) == 1:  # the matrix was made from a vector: its adjoint is g's diagonal
        return (_apply("diag", g),)
    m, n = s
    line = _apply("reshape", g, attrs=((m, 1) if m <= n else (1, n),))
    return (line * node.graph.const(np.eye(m, n)),)


def _diag_batched(args, flags, items, out):
    x = np.asarray(args[0])
    if len(items[0]) == 1:
        return x[..., :, None] * np.eye(x.shape[-1])
    return np.diagonal(x, axis1=-2, axis2=-1)


register(Primitive(
    "diag", 1, np.diag,
    "the diagonal matrix of a vector, or the diagonal of a matrix, as numpy's diag",
    vjp=_diag_vjp, jvp=lambda node, ts, shape_of: _apply("diag", ts[0]), shape=_diag_shape,
    batch=_diag_batched, analytic=True,
))  # fmt: skip


def _outer_vjp(node: Node, g: Node, shape_of: ShapeOf, size: Size = _same) -> tuple:
    (a, b), (sa, sb) = node.inputs, (shape_of(v) for v in node.inputs)
    flat_a = _apply("reshape", size(a), attrs=((math.prod(sa),),))
    flat_b = _apply("reshape", size(b), attrs=((math.prod(sb),),))
    return (
        _apply("reshape", _mm(g, flat_b), attrs=(sa,)),
        _apply("reshape", _mm(flat_a, g), attrs=(sb,)),
    )


def _outer_jvp(node: Node, ts: list, shape_of: ShapeOf, size: Size = _same) -> Node:
    (a, b), (ta, tb) = node.inputs, ts
    terms = [_apply("outer", ta, size(b))] if ta is not None else []
    if tb is not None:
        terms.append(_apply("outer", size(a), tb))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _outer_batched(args, flags, items, out):
    a, b = (np.asarray(v) for v in args)
    a = a.reshape(a.shape[0] if flags[0] else 1, -1)
    b = b.reshape(b.shape[0] if flags[1] else 1, -1)
    return a[:, :, None] * b[:, None, :]


register(Primitive(
    "outer", 2, np.outer, "the outer product: each element of a times each of b, as numpy's",
    vjp=_outer_vjp, jvp=_outer_jvp, params=("a", "b"), analytic=True,
    shape=lambda sa, sb: (math.prod(sa), math.prod(sb)), batch=_outer_batched,
    magnitude_vjp=lambda node, g, shape_of: _outer_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _outer_jvp(node, es, shape_of, _abs),
    latex=r"@0 \otimes @1",
))  # fmt: skip

# --- inv, solve, det, logdet ------------------------------------------------------------------


def _det(a: Any) -> Any:
    return np.linalg.det(_lapack(a))


_INVERTIBLE = Domain(
    "A invertible",
    lambda a, *rest: np.linalg.matrix_rank(_lapack(a)) == np.shape(a)[-1],
    fault="the matrix is singular",
)


def _inv(a: Any) -> Any:
    return _nan_where_singular(np.linalg.inv, np.asarray(a))


def _inv_vjp(node: Node, g: Node, shape_of: ShapeOf, size: Size = _same) -> tuple:
    c = size(_swap_last(node, len(shape_of(node))))
    product = _mm(_mm(c, g), c)
    return (product if size is _abs else -product,)


def _inv_jvp(node: Node, ts: list, shape_of: ShapeOf, size: Size = _same) -> Node:
    c = size(node)
    product = _mm(_mm(c, ts[0]), c)
    return product if size is _abs else -product


register(Primitive(
    "inv", 1, _inv, "the inverse of a square matrix (or of each in a stack)",
    vjp=_inv_vjp, jvp=_inv_jvp, params=("A",), shape=lambda s: (_square("inv", s), s)[1],
    magnitude_vjp=lambda node, g, shape_of: _inv_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _inv_jvp(node, es, shape_of, _abs),
    batch=lambda args, flags, items, out: _inv(args[0]), domain=_INVERTIBLE,
    python="np.linalg.inv(@0)", latex=r"{@0}^{-1}",
))  # fmt: skip


def _solve_shape(sa: Shape, sb: Shape) -> Shape:
    n = _square("solve", sa)
    if len(sb) == 1:  # a vector, as numpy 2 reads a 1-d b; A may be a stack
        if sb[0] != n:
            raise ValueError(f"solve(A, b) needs b of length {n} for A of shape {sa}, not {sb}")
        return (*sa[:-2], n)
    if len(sb) < 2 or sb[-2] != n:
        raise ValueError(f"solve(A, b) needs b with {n} rows for A of shape {sa}, not {sb}")
    return (*np.broadcast_shapes(sa[:-2], sb[:-2]), n, sb[-1])


def _solve(a: Any, b: Any) -> Any:
    a, b = np.asarray(a), np.asarray(b)
    if b.ndim == 1:
        return _nan_where_singular(np.linalg.solve, a, b[:, None])[..., 0]
    return _nan_where_singular(np.linalg.solve, a, b)


def _columns(v: Node, shape: Shape, vector: bool) -> Node:
    """A stack of vectors (..., n) as columns (..., n, 1), for matrix products."""
    return _apply("reshape", v, attrs=((*shape, 1),)) if vector else v


def _solve_vjp(node: Node, g: Node, shape_of: ShapeOf, size: Size = _same) -> tuple:
    (a, b), sx = node.inputs, shape_of(node)
    sa, sb = shape_of(a), shape_of(b)
    vector = len(sb) == 1
    if size is _abs:  # |A⁻ᵀ|·g, and that times |x|ᵀ
        gb = _mm(_abs(_swap_last(_apply("inv", a), len(sa))), _columns(g, sx, vector))
    else:
        gb = _apply("solve", _swap_last(a, len(sa)), _columns(g, sx, vector))
    ga = _mm(gb, _swap_last(size(_columns(node, sx, vector)), len(sx) + vector))
    if vector:
        gb = _apply("reshape", gb, attrs=(sx,))
    ga = ga if size is _abs else -ga
    return _apply("sum_to", ga, attrs=(sa,)), _apply("sum_to", gb, attrs=(sb,))


def _solve_jvp(node: Node, ts: list, shape_of: ShapeOf, size: Size = _same) -> Node:
    (a, b), (ta, tb), sx = node.inputs, ts, shape_of(node)
    vector = len(shape_of(b)) == 1
    rhs = None if tb is None else _columns(tb, shape_of(b), vector)
    if ta is not None:
        moved = _mm(ta, size(_columns(node, sx, vector)))
        if size is not _abs:
            moved = -moved
        rhs = moved if rhs is None else rhs + moved
    # The error scale |A⁻¹|·(e_b + e_A·|x|), or the tangent solve(A, db - dA·x).
    out = _mm(_abs(_apply("inv", a)), rhs) if size is _abs else _apply("solve", a, rhs)
    return _apply("reshape", out, attrs=(sx,)) if vector else out


register(Primitive(
    "solve", 2, _solve,
    "x with A @ x = b, for a square A (b a vector, or a matrix of columns; A may be a stack)",
    vjp=_solve_vjp, jvp=_solve_jvp, params=("A", "b"), shape=_solve_shape, domain=_INVERTIBLE,
    magnitude_vjp=lambda node, g, shape_of: _solve_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _solve_jvp(node, es, shape_of, _abs),
    python="np.linalg.solve(@0, @1)", latex=r"{@0}^{-1} @1",
))  # fmt: skip


def _logdet(a: Any) -> Any:
    sign, log = np.linalg.slogdet(_lapack(a))
    return np.where(sign > 0, log, np.nan)


def _log_rate(a: Node, t: Node, size: Size) -> Node:
    """tr(A⁻¹·dA), the rate of log|det A| along dA; with abs, tr(|A⁻¹|·e), its error scale."""
    if size is _abs:
        return _apply("trace", _mm(_abs(_apply("inv", a)), t))
    return _apply("trace", _apply("solve", a, t))


def _det_vjp(node: Node, g: Node, shape_of: ShapeOf, size: Size = _same) -> tuple:
    (a,), s = node.inputs, shape_of(node.inputs[0])
    return (_per_matrix(g * size(node), s[:-2], size(_swap_last(_apply("inv", a), len(s)))),)


def _logdet_vjp(node: Node, g: Node, shape_of: ShapeOf, size: Size = _same) -> tuple:
    (a,), s = node.inputs, shape_of(node.inputs[0])
    return (_per_matrix(g, s[:-2], size(_swap_last(_apply("inv", a), len(s)))),)


register(Primitive(
    "det", 1, _det, "the determinant of a square matrix (or of each in a stack)",
    vjp=_det_vjp, params=("A",),
    jvp=lambda node, ts, shape_of: node * _log_rate(node.inputs[0], ts[0], _same),
    magnitude_vjp=lambda node, g, shape_of: _det_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _abs(node) * _log_rate(node.inputs[0], es[0], _abs),
    shape=lambda s: (_square("det", s), s[:-2])[1],
    batch=lambda args, flags, items, out: _det(args[0]),
    latex=r"\det\left(@0\right)", python="np.linalg.det(@0)",
))  # fmt: skip
register(Primitive(
    "logdet", 1, _logdet,
    "the log of a positive determinant (of each matrix of a stack), without overflow",
    vjp=_logdet_vjp, params=("A",),
    jvp=lambda node, ts, shape_of: _log_rate(node.inputs[0], ts[0], _same),
    magnitude_vjp=lambda node, g, shape_of: _logdet_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _log_rate(node.inputs[0], es[0], _abs),
    shape=lambda s: (_square("logdet", s), s[:-2])[1],
    batch=lambda args, flags, items, out: _logdet(args[0]),
    domain=Domain(
        "det A > 0", lambda a: np.linalg.slogdet(_lapack(a))[0] > 0,
        fault="the determinant is not positive",
    ),
    latex=r"\log\det\left(@0\right)", python="np.linalg.slogdet(@0)[1]",
))  # fmt: skip
