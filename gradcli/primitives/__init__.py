"""The primitives: registrations only, one module per family.

Importing this package fills the table of `gradcli.graph.registry` with every primitive, and
re-exports the table's names; every layer above the graph takes them from here, so that the
table it reads is always full. This `__init__` is the one loader: it imports every family module,
and nothing else does (the graph and the registry never import this package). The families, as
jax/_src/lax has lax.py, special.py, linalg.py and slicing.py:

- arithmetic: the operators + - * / ^ and unary minus, and broadcasting's sum_to, broadcast_to;
- elementwise: exponentials and logarithms, trigonometric and hyperbolic functions, activations;
- piecewise: kinks (abs, relu, min, max), steps (sign, heaviside) and equal;
- conditionals: comparisons, and, or, not, where, clip, and the steps floor, ceil, round, mod;
- reductions: sum, mean, max and min over an array, norm, logsumexp, softmax;
- norms: numpy's vector and matrix norms, lowered to norm, abs, sum, amax, amin and svdvals;
- statistics: var and std (with ddof);
- products: prod and its derivatives, prod_except and prod_pairs, and cumprod;
- shaping: transpose, reshape, squeeze, indexing and its adjoint unindex, and arrays of sizes
  written in the program (eye, ones, zeros, full);
- joining: the literal [a, b], concatenate, stack, tile and repeat;
- gathering: elements picked by arrays of indices (x[idx], take, take_along_axis, one_hot) and
  scatter_add, their adjoint;
- polynomials: polyval;
- arranging: flip, roll, tril, triu, cumsum, diff (linear rearrangements and running sums),
  sort and argsort;
- linalg: matmul, dot, tensordot, inner, kron and cross;
- einsum: numpy's einsum, whose derivatives are einsums;
- matrices: trace, diag, outer, inv, solve, det, logdet;
- decompositions: cholesky, solve_triangular (lowered to solve of a triangle), eigvalsh and
  eigh_vectors;
- singular: svdvals and the singular vectors (svd_left, svd_right), pinv;
- special: erf, erfc, erfinv, erfcx, the normal distribution (ndtr, log_ndtr, ndtri), the gamma
  and beta functions, digamma, polygamma, Bessel's i0, i1, i0e, i1e, from scipy.special
  (imported lazily);
- _common: what they share (nodes built by name, the parts of complex values, axes).

A new function goes in its family's module: special functions in special,
arrays joined in joining, matrix functions in matrices;
a new module is loaded by importing it here. Every listing of the table sorts its names, so the
order in which the families register shows nowhere. This package imports only the graph (its
modules build their rules with the graph's operations) and, if need be, the floor below it
(spans, errors, limits).
"""

from ..graph.registry import (
    REGISTRY,
    Domain,
    Operator,
    Primitive,
    Shape,
    as_shape,
    public_names,
    register,
)
from . import (  # noqa: F401  (each registers its family)
    arithmetic,
    arranging,
    conditionals,
    decompositions,
    einsum,
    elementwise,
    gathering,
    joining,
    linalg,
    matrices,
    norms,
    piecewise,
    polynomials,
    products,
    reductions,
    shaping,
    singular,
    special,
    statistics,
)

__all__ = [
    "REGISTRY",
    "Domain",
    "Operator",
    "Primitive",
    "Shape",
    "as_shape",
    "public_names",
    "register",
]
