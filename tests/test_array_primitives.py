"""The array primitives, held to references that share no code with gradcli.

Every case is an expression with its inputs (drawn from a seeded numpy Generator, or chosen to sit
on an edge: zeros in a product, ties in a max, norms of 1e±200, logsumexp at ±800) and three
references, all written here:

- the value, computed with plain numpy (or the standard library: `math.hypot` for norms);
- the gradient of the sum of the value in closed form (d sum = 1, d mean = 1/n, d logsumexp =
  softmax, d norm = x/‖x‖, matmul dA = G Bᵀ, ...), also in numpy;
- the same function written with mpmath at 50 digits, on object arrays of `mpf`, differentiated
  by central differences (its value is checked too). Points are float64, which mpmath converts
  exactly; the step is 2^-60 of the element, so the oracle's own error is ~1e-30. At a tie of
  three or more elements a central difference is not the documented subgradient (it gives 1/2,
  gradcli splits evenly), so those cases are held to the closed form only.

Tolerance (`assert_close`): |got - want| <= RTOL * max(|want|, max |want| over the array).

On top of that: batched evaluation (the checker's engine) against evaluation item by item, with
shared variables; second derivatives (Hessians against closed forms and mpmath second
differences); shape errors and user-function errors as located `GradcliError`s; and a coverage
test that fails when an array primitive or a written form has no case here.

The bugs these tests found are fixed and the tests hold them fixed: an overflow inside a reduction
or a matrix product crashed fault reporting; `dot` errors carried no span; `transpose(x, axes)`
could not be called; `prod` of an empty array raised IndexError; a redefined function that
reaches its earlier version was called recursive.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import pytest
from mpmath import mp

from gradcli import GradcliError, compile_program, evaluate
from gradcli.evaluation.interpreter import evaluate as run
from gradcli.graph.nodes import Node, toposort
from gradcli.primitives import REGISTRY, public_names
from gradcli.transforms.forward import jvps
from gradcli.transforms.reverse import grad

SEED = 20240611
DPS = 50
RTOL = 1e-12
BATCH = 5
RNG = np.random.default_rng(SEED)  # drawn from in a fixed order as the tables are built


# --- comparisons --------------------------------------------------------------------------


def assert_close(got: Any, want: Any, rtol: float = RTOL, what: str = "") -> None:
    """|got - want| <= rtol * max(|want|, max |want|): relative to the array's own scale."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = np.max(np.abs(want), initial=0.0)
    bound = rtol * np.maximum(np.abs(want), scale)
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities are `got == want`
        same = (got == want) | (np.abs(got - want) <= bound) | (np.isnan(got) & np.isnan(want))
    assert np.all(same), f"{what}:\n got  {got!r}\n want {want!r}"


def span_text(err: GradcliError, source: Any = None) -> str | None:
    source = source or err.source
    return None if err.span is None else source.snippet(err.span)


# --- the mpmath oracle ------------------------------------------------------------------------

MEXP = np.frompyfunc(mp.exp, 1, 1)
MLOG = np.frompyfunc(mp.log, 1, 1)
MSQRT = np.frompyfunc(mp.sqrt, 1, 1)


def to_mp(value: Any) -> Any:
    """A float64 array as an object array of mpf (exactly), a 0-d one as an mpf."""
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        return mp.mpf(float(a))
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        out[idx] = mp.mpf(float(a[idx]))
    return out


def mp_total(value: Any) -> Any:
    """The sum of the elements of an mp result (what gradcli differentiates)."""
    if isinstance(value, np.ndarray):
        return mpmath.fsum(value.ravel())
    return value


def mp_float(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return np.vectorize(float, otypes=[float])(value) if value.size else value.astype(float)
    return np.asarray(float(value))


def _step(x: Any, bits: int) -> Any:
    return mpmath.ldexp(abs(x), -bits) if x else mpmath.ldexp(1, -bits)


def _moved(env: dict[str, Any], moves: Sequence[tuple[str, tuple, Any]]) -> dict[str, Any]:
    """`env` with env[name][idx] += delta for each move."""
    out = dict(env)
    for name, idx, delta in moves:
        if isinstance(out[name], np.ndarray):
            arr = out[name].copy()
            arr[idx] = arr[idx] + delta
            out[name] = arr
        else:
            out[name] = out[name] + delta
    return out


def _elements(env: dict[str, Any], name: str) -> list[tuple]:
    return list(np.ndindex(np.shape(env[name])))


def mp_gradient(f: Callable[..., Any], env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """∂ sum(f) / ∂ each element, by central differences at 50 digits."""
    with mp.workdps(DPS):
        menv = {n: to_mp(v) for n, v in env.items()}
        out = {}
        for name in env:
            g = np.empty(np.shape(env[name]))
            for idx in _elements(env, name):
                x = menv[name][idx] if idx else menv[name]
                h = _step(x, 60)
                up = mp_total(f(**_moved(menv, [(name, idx, h)])))
                down = mp_total(f(**_moved(menv, [(name, idx, -h)])))
                g[idx] = float((up - down) / (2 * h))
            out[name] = g
        return out


def mp_hessian(f: Callable[..., Any], env: dict[str, np.ndarray], wrt: str) -> np.ndarray:
    """The Hessian of sum(f) in `wrt` (flattened), by second central differences at 50 digits."""
    with mp.workdps(DPS):
        menv = {n: to_mp(v) for n, v in env.items()}
        idxs = _elements(env, wrt)
        steps = [_step(menv[wrt][i] if i else menv[wrt], 40) for i in idxs]
        h = np.empty((len(idxs), len(idxs)))
        for a, (i, hi) in enumerate(zip(idxs, steps, strict=True)):
            for b, (j, hj) in enumerate(zip(idxs, steps, strict=True)):
                total = 0
                for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                    moved = _moved(menv, [(wrt, i, si * hi), (wrt, j, sj * hj)])
                    total += si * sj * mp_total(f(**moved))
                h[a, b] = float(total / (4 * hi * hj))
        return h


def mp_value(f: Callable[..., Any], env: dict[str, np.ndarray]) -> np.ndarray:
    with mp.workdps(DPS):
        return mp_float(f(**{n: to_mp(v) for n, v in env.items()}))


# --- numpy references -----------------------------------------------------------------------


def keep(x: np.ndarray, axis: int | None) -> tuple:
    """The shape of a reduction of x along axis with that axis kept as 1 (every axis: None)."""
    return tuple(1 if axis is None or i == axis % x.ndim else n for i, n in enumerate(x.shape))


def np_logsumexp(x: np.ndarray, axis: int | None) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def np_softmax(x: np.ndarray, axis: int | None) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def np_norm(x: np.ndarray, axis: int | None) -> Any:
    """math.hypot over the reduced elements: exact enough, and it neither overflows nor
    underflows."""
    if axis is None:
        return math.hypot(*np.ravel(x))
    return np.apply_along_axis(lambda v: math.hypot(*v), axis, x)


def others_product(x: np.ndarray, axis: int | None) -> np.ndarray:
    """d prod: for each element, the product of the others along axis (one at a time: zeros
    are fine)."""
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        y = x.copy()
        y[idx] = 1.0
        p = np.prod(y, axis=axis)
        out[idx] = p if axis is None else p[idx[: axis % x.ndim] + idx[axis % x.ndim + 1 :]]
    return out


def tie_split(x: np.ndarray, axis: int | None, extreme: Callable) -> np.ndarray:
    """d max: 1 at the extreme element, split evenly between tied ones."""
    hit = (x == extreme(x, axis=axis, keepdims=True)).astype(float)
    return hit / np.sum(hit, axis=axis, keepdims=True)


def norm_grad(x: np.ndarray, axis: int | None) -> np.ndarray:
    r = np.reshape(np_norm(x, axis), keep(x, axis))
    return np.where(r > 0, x / np.where(r > 0, r, 1.0), 0.0)


def count(x: np.ndarray, axis: int | None) -> int:
    return x.size if axis is None else x.shape[axis]


# op: (numpy value, closed-form gradient of the sum, mpmath value)
REDUCTIONS: dict[str, tuple[Callable, Callable, Callable]] = {
    "sum": (
        lambda x, a: np.sum(x, axis=a),
        lambda x, a: np.ones_like(x),
        lambda x, a: np.sum(x, axis=a),
    ),
    "mean": (
        lambda x, a: np.mean(x, axis=a),
        lambda x, a: np.full_like(x, 1.0 / count(x, a)),
        lambda x, a: np.sum(x, axis=a) / count(x, a),
    ),
    "prod": (
        lambda x, a: np.prod(x, axis=a),
        others_product,
        lambda x, a: np.prod(x, axis=a),
    ),
    "max": (
        lambda x, a: np.max(x, axis=a),
        lambda x, a: tie_split(x, a, np.max),
        lambda x, a: np.max(x, axis=a),
    ),
    "min": (
        lambda x, a: np.min(x, axis=a),
        lambda x, a: tie_split(x, a, np.min),
        lambda x, a: np.min(x, axis=a),
    ),
    "norm": (np_norm, norm_grad, lambda x, a: MSQRT(np.sum(x * x, axis=a))),
    "logsumexp": (
        np_logsumexp,
        np_softmax,
        lambda x, a: MLOG(np.sum(MEXP(x), axis=a)),
    ),
    "var": (
        lambda x, a: np.var(x, axis=a),
        lambda x, a: 2 * (x - np.mean(x, axis=a, keepdims=True)) / count(x, a),
        lambda x, a: mp_var(x, a, 0),
    ),
    "std": (
        lambda x, a: np.std(x, axis=a),
        lambda x, a: (
            (x - np.mean(x, axis=a, keepdims=True))
            / (count(x, a) * np.std(x, axis=a, keepdims=True))
        ),
        lambda x, a: MSQRT(mp_var(x, a, 0)),
    ),
}


def mp_var(x: np.ndarray, axis: int | None, ddof: int) -> Any:
    """Σ(x − mean)²/(n − ddof) on mpf object arrays, written from the definition."""
    n = count(x, axis)
    d = x - np.sum(x, axis=axis, keepdims=True) / n
    return np.sum(d * d, axis=axis) / (n - ddof)


# --- cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    expr: str
    env: dict[str, np.ndarray]
    value: Callable[..., Any]  # numpy
    grads: Callable[..., dict[str, Any]]  # closed form, gradient of the sum of the value
    mp: Callable[..., Any]  # the same function on mpf object arrays
    smooth: bool = True  # False: a tie of 3+, where central differences are not the convention

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


def normal(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def spell(op: str, axis: int | None) -> str:
    """`op(x)`, `op(x, 1)` (by position) or `op(x, axis=k)`; max and min only by name, as
    max(x, 1) is the elementwise maximum of x and 1, and norm, as numpy's norm(x, 1) is ord=1."""
    if axis is None:
        return f"{op}(x)"
    if axis == 1 and op not in ("max", "min", "norm"):
        return f"{op}(x, 1)"
    return f"{op}(x, axis={axis})"


def reduction(op: str, x: np.ndarray, axis: int | None, tag: str = "", smooth=True) -> Case:
    value, closed, mpf = REDUCTIONS[op]
    return Case(
        f"{op}-{'x'.join(map(str, x.shape))}-axis{axis}{tag}",
        spell(op, axis),
        {"x": np.asarray(x, dtype=float)},
        lambda x: value(x, axis),
        lambda x: {"x": closed(x, axis)},
        lambda x: mpf(x, axis),
        smooth,
    )


def softmax_case(x: np.ndarray, axis: int | None, tag: str = "") -> Case:
    """sum(softmax(x) * c): d/dx = s * (c - Σ s c), d/dc = s. axis None means the default, -1."""
    along = -1 if axis is None else axis
    expr = "sum(softmax(x) * c)" if axis is None else f"sum(softmax(x, axis={axis}) * c)"

    def mp_softmax(x, c):
        e = MEXP(x)
        return np.sum(e / np.sum(e, axis=along, keepdims=True) * c)

    def closed(x, c):
        s = np_softmax(x, along)
        return {"x": s * (c - np.sum(s * c, axis=along, keepdims=True)), "c": s}

    return Case(
        f"softmax-{'x'.join(map(str, x.shape))}-axis{'default' if axis is None else axis}{tag}",
        expr,
        {"x": np.asarray(x, dtype=float), "c": normal(*np.shape(x))},
        lambda x, c: np.sum(np_softmax(x, along) * c),
        closed,
        mp_softmax,
    )


SHAPES = [(5,), (3, 4), (2, 3, 4)]
AXES = [None, 0, 1, -1]

REDUCTION_CASES = [
    reduction(op, normal(*shape), axis)
    for op in REDUCTIONS
    for shape in SHAPES
    for axis in AXES
    if axis is None or axis < len(shape)
]

SOFTMAX_CASES = [
    softmax_case(normal(*shape), axis)
    for shape in SHAPES
    for axis in (None, 0, 1, -1)
    if axis is None or axis < len(shape)
]

EDGE_CASES = [
    # prod with zeros: exact, no division
    reduction("prod", np.array([2.0, 0.0, 3.0, 4.0]), None, "-one-zero"),
    reduction("prod", np.array([0.0, 2.0, 0.0, 3.0]), None, "-two-zeros"),
    reduction("prod", np.array([0.0, 0.0]), None, "-all-zeros"),
    reduction("prod", np.array([[1.0, 0.0, 3.0], [2.0, 5.0, 0.0]]), 0, "-zeros"),
    reduction("prod", np.array([[1.0, 0.0, 3.0], [0.0, 5.0, 0.0]]), 1, "-zeros"),
    reduction("prod", np.array([[1.0, 0.0, 3.0], [2.0, 5.0, -1.5]]), None, "-one-zero"),
    # max and min with ties: the adjoint split evenly between tied elements
    reduction("max", np.array([1.0, 3.0, 3.0]), None, "-tie2"),
    reduction("max", np.array([2.0, 2.0, 2.0]), None, "-tie3", smooth=False),
    reduction("min", np.array([[1.0, 3.0], [1.0, 0.0]]), 0, "-tie2"),
    reduction("max", np.array([[5.0, 5.0, 1.0], [0.0, 2.0, 1.0]]), 1, "-tie2"),
    reduction("min", np.array([[-1.0, 0.0], [2.0, -1.0]]), None, "-tie2"),
    reduction("max", np.array([[7.0, 7.0], [7.0, 1.0]]), None, "-tie3", smooth=False),
    reduction("min", np.full((2, 2, 2), -0.5), -1, "-ties"),
    # norm at 0 (gradient 0, a subgradient) and at magnitudes whose squares overflow/underflow
    reduction("norm", np.zeros(3), None, "-zero"),
    reduction("norm", np.array([[0.0, 3.0], [0.0, -4.0]]), 0, "-zero-column"),
    reduction("norm", np.array([3e200, -4e200]), None, "-1e200"),
    reduction("norm", np.array([3e-200, 4e-200]), None, "-1e-200"),
    reduction("norm", np.array([1e300, 1e300, 1e300]), None, "-1e300"),
    reduction("norm", np.array([[1e200, 1e-200], [1e-200, -1e200]]), 1, "-mixed"),
    # logsumexp and softmax far from 0, where exp overflows or underflows
    reduction("logsumexp", np.array([800.0, 801.0, 799.0]), None, "-800"),
    reduction("logsumexp", np.array([-800.0, -801.0, -799.0]), None, "-minus800"),
    reduction("logsumexp", np.array([800.0, -800.0]), None, "-pm800"),
    reduction("logsumexp", np.array([[800.0, -800.0], [799.0, 801.0]]), 0, "-pm800"),
    reduction("logsumexp", np.array([[800.0, -800.0], [799.0, 801.0]]), 1, "-pm800"),
    softmax_case(np.array([800.0, 801.0, 799.0]), None, "-800"),
    softmax_case(np.array([-800.0, -801.0, -799.0]), None, "-minus800"),
    softmax_case(np.array([[800.0, -800.0], [799.0, 801.0]]), 0, "-pm800"),
]


def einsum_matmul(spec: str, a_shape: tuple, b_shape: tuple) -> Case:
    """sum((A @ B) * C), with C shaped like the product: dA = C Bᵀ, dB = Aᵀ C, dC = A @ B,
    each written as an einsum (which sums over a broadcast batch axis by itself)."""
    ia, rest = spec.split(",")
    ib, io = rest.split("->")
    a, b = normal(*a_shape), normal(*b_shape)
    c = normal(*np.einsum(spec, a, b).shape)
    return Case(
        f"matmul-{'x'.join(map(str, a_shape))}@{'x'.join(map(str, b_shape))}",
        "sum((A @ B) * C)",
        {"A": a, "B": b, "C": c},
        lambda A, B, C: np.sum(np.einsum(spec, A, B) * C),
        lambda A, B, C: {
            "A": np.einsum(f"{io},{ib}->{ia}", C, B),
            "B": np.einsum(f"{ia},{io}->{ib}", A, C),
            "C": np.einsum(spec, A, B),
        },
        lambda A, B, C: np.sum(np.einsum(spec, A, B) * C),
    )


MATMUL_CASES = [
    einsum_matmul("i,i->", (4,), (4,)),
    einsum_matmul("i,ij->j", (4,), (4, 3)),
    einsum_matmul("ij,j->i", (3, 4), (4,)),
    einsum_matmul("ij,jk->ik", (3, 4), (4, 2)),
    einsum_matmul("bij,jk->bik", (2, 3, 4), (4, 2)),
    einsum_matmul("ij,bjk->bik", (3, 4), (2, 4, 2)),
    einsum_matmul("bij,bjk->bik", (2, 3, 4), (2, 4, 2)),
]


def case(id: str, expr: str, env: dict, value, grads, mpf, smooth: bool = True) -> Case:
    env = {n: np.asarray(v, dtype=float) for n, v in env.items()}
    return Case(id, expr, env, value, grads, mpf, smooth)


A34, B34, v4, w4 = normal(3, 4), normal(3, 4), normal(4), normal(4)
X23 = normal(2, 3)
T234 = normal(2, 3, 4)

PRODUCT_CASES = [
    case(
        "matmul-plain-value",
        "A @ v",
        {"A": A34, "v": v4},
        lambda A, v: A @ v,
        lambda A, v: {"A": np.outer(np.ones(3), v), "v": A.sum(axis=0)},
        lambda A, v: np.dot(A, v),
    ),
    case(
        "matmul-chain",
        "u @ A @ v",
        {"u": normal(3), "A": A34, "v": v4},
        lambda u, A, v: u @ A @ v,
        lambda u, A, v: {"u": A @ v, "A": np.outer(u, v), "v": u @ A},
        lambda u, A, v: np.dot(np.dot(u, A), v),
    ),
    case(
        "dot-vectors",
        "dot(a, b)",
        {"a": v4, "b": w4},
        lambda a, b: np.inner(a, b),
        lambda a, b: {"a": b, "b": a},
        lambda a, b: np.sum(a * b),
    ),
    case(
        "dot-matrices",
        "dot(A, B)",
        {"A": A34, "B": B34},
        lambda A, B: np.einsum("ij,ij->i", A, B),
        lambda A, B: {"A": B, "B": A},
        lambda A, B: np.sum(A * B, axis=1),
    ),
    case(
        "dot-matrix-vector",
        "dot(A, b)",
        {"A": A34, "b": w4},
        lambda A, b: A @ b,
        lambda A, b: {"A": np.broadcast_to(b, A.shape), "b": A.sum(axis=0)},
        lambda A, b: np.sum(A * b, axis=1),
    ),
    case(
        "transpose-2d",
        "sum(transpose(X) * C)",
        {"X": X23, "C": normal(3, 2)},
        lambda X, C: np.sum(X.T * C),
        lambda X, C: {"X": C.T, "C": X.T},
        lambda X, C: np.sum(np.transpose(X) * C),
    ),
    case(
        "transpose-3d",
        "sum(transpose(T) * C)",
        {"T": T234, "C": normal(4, 3, 2)},
        lambda T, C: np.sum(np.einsum("ijk->kji", T) * C),
        lambda T, C: {"T": np.einsum("kji->ijk", C), "C": np.einsum("ijk->kji", T)},
        lambda T, C: np.sum(np.transpose(T) * C),
    ),
    case(
        "transpose-value",
        "transpose(T)",
        {"T": T234},
        lambda T: np.einsum("ijk->kji", T),
        lambda T: {"T": np.ones_like(T)},
        lambda T: np.transpose(T),
    ),
]


def index_case(var: str, key: str) -> Case:
    """sum(x[key] * w): d/dx is w scattered back into zeros at key, d/dw is x[key]."""
    shapes = {"x": (5,), "X": (3, 4), "T": (2, 3, 4)}
    k = eval(f"np.s_{key}")  # the same index, as numpy reads it
    x = normal(*shapes[var])
    w = normal(*np.shape(x[k]))

    def closed(w, **xs):
        scattered = np.zeros(shapes[var])
        scattered[k] = w
        return {var: scattered, "w": xs[var][k]}

    return case(
        f"index-{var}{key}",
        f"sum({var}{key} * w)",
        {var: x, "w": w},
        lambda w, **xs: np.sum(xs[var][k] * w),
        closed,
        lambda w, **xs: np.sum(xs[var][k] * w),
    )


INDEX_KEYS = [
    ("x", "[2]"),
    ("x", "[-1]"),
    ("x", "[1:3]"),
    ("x", "[::2]"),
    ("x", "[::-1]"),
    ("x", "[3:0:-1]"),
    ("x", "[-2:]"),
    ("x", "[1:100]"),
    ("X", "[0, 1:]"),
    ("X", "[:, 0]"),
    ("X", "[1]"),
    ("X", "[-1, ::-2]"),
    ("X", "[1:3, 0]"),
    ("T", "[1, :, ::2]"),
    ("T", "[:, -1]"),
    ("T", "[1, 2, 3]"),
]


def overlapping_grad(x: np.ndarray) -> np.ndarray:
    g = np.zeros_like(x)
    g[0:3] += x[1:4]  # sum(x[0:3] * x[1:4])
    g[1:4] += x[0:3]
    g[1:3] += 1.0  # sum(x[1:3])
    g[-1] += x[0]  # x[-1] * x[0]
    g[0] += x[-1]
    g += 2 * x[::-1]  # sum(x[::-1] * x)
    return g


SLICE_CASES = [
    *(index_case(var, key) for var, key in INDEX_KEYS),
    case(
        "index-overlapping",
        "sum(x[0:3] * x[1:4]) + sum(x[1:3]) + x[-1] * x[0] + sum(x[::-1] * x)",
        {"x": normal(5)},
        lambda x: np.sum(x[0:3] * x[1:4]) + np.sum(x[1:3]) + x[-1] * x[0] + np.sum(x[::-1] * x),
        lambda x: {"x": overlapping_grad(x)},
        lambda x: np.sum(x[0:3] * x[1:4]) + np.sum(x[1:3]) + x[-1] * x[0] + np.sum(x[::-1] * x),
    ),
    case(
        "index-chained",
        "X[1][2] * X[0, 2] + (X @ v)[0]",
        {"X": X23, "v": normal(3)},
        lambda X, v: X[1, 2] * X[0, 2] + (X @ v)[0],
        lambda X, v: {
            "X": np.array([[v[0], v[1], v[2] + X[1, 2]], [0.0, 0.0, X[0, 2]]]),
            "v": X[0],
        },
        lambda X, v: X[1, 2] * X[0, 2] + np.dot(X, v)[0],
    ),
    case(
        "index-value",
        "x[::2]",
        {"x": normal(5)},
        lambda x: x[::2],
        lambda x: {"x": np.array([1.0, 0.0, 1.0, 0.0, 1.0])},
        lambda x: x[::2],
    ),
]


def obj(rows: list) -> np.ndarray:
    """An object array built from mpf scalars and object arrays (nested lists of them)."""
    return np.array(rows, dtype=object)


s_x, s_y = RNG.standard_normal(2)
c3, v3, v2, C23 = normal(3), normal(3), normal(2), normal(2, 3)
M, N = normal(2, 3), normal(2, 3)
C223 = normal(2, 2, 3)

LITERAL_CASES = [
    case(
        "literal-scalars",
        "sum([x, 2*y, x*y] * c)",
        {"x": s_x, "y": s_y, "c": c3},
        lambda x, y, c: c[0] * x + 2 * c[1] * y + c[2] * x * y,
        lambda x, y, c: {
            "x": c[0] + c[2] * y,
            "y": 2 * c[1] + c[2] * x,
            "c": np.array([x, 2 * y, x * y]),
        },
        lambda x, y, c: np.sum(obj([x, 2 * y, x * y]) * c),
    ),
    case(
        "literal-value",
        "[x, 2*y, x*y]",
        {"x": s_x, "y": s_y},
        lambda x, y: np.array([x, 2 * y, x * y]),
        lambda x, y: {"x": 1 + y, "y": 2 + x},
        lambda x, y: obj([x, 2 * y, x * y]),
    ),
    case(
        "literal-nested",
        "sum([[x, y], [y, x]] @ v)",
        {"x": s_x, "y": s_y, "v": v2},
        lambda x, y, v: np.sum(np.array([[x, y], [y, x]]) @ v),
        lambda x, y, v: {"x": v.sum(), "y": v.sum(), "v": np.array([x + y, x + y])},
        lambda x, y, v: np.sum(np.dot(obj([[x, y], [y, x]]), v)),
    ),
    case(
        "literal-nested-value",
        "[[x, y], [y, x]]",
        {"x": s_x, "y": s_y},
        lambda x, y: np.array([[x, y], [y, x]]),
        lambda x, y: {"x": 2.0, "y": 2.0},
        lambda x, y: obj([[x, y], [y, x]]),
    ),
    case(
        # a scalar element is broadcast against a vector element: [x, v] is [[x, x, x], v]
        "literal-broadcast",
        "sum([x, v] * C)",
        {"x": s_x, "v": v3, "C": C23},
        lambda x, v, C: x * C[0].sum() + v @ C[1],
        lambda x, v, C: {"x": C[0].sum(), "v": C[1], "C": np.array([[x, x, x], v])},
        lambda x, v, C: np.sum(obj([[x, x, x], list(v)]) * C),
    ),
    case(
        "literal-of-matrices",
        "sum([M, N * M] * C)",
        {"M": M, "N": N, "C": C223},
        lambda M, N, C: np.sum(M * C[0]) + np.sum(N * M * C[1]),
        lambda M, N, C: {"M": C[0] + N * C[1], "N": M * C[1], "C": np.array([M, N * M])},
        lambda M, N, C: np.sum(M * C[0]) + np.sum(N * M * C[1]),
    ),
    case(
        "literal-constants",
        "[1, x, 2] @ [x, 3, y]",
        {"x": s_x, "y": s_y},
        lambda x, y: x + 3 * x + 2 * y,
        lambda x, y: {"x": 4.0, "y": 2.0},
        lambda x, y: x + 3 * x + 2 * y,
    ),
]


def sq_grads(x, y):
    return {"x": 2 * x + 2 * (x - y), "y": -2 * (x - y)}


def nrm_grads(x, y):
    d, rd, rx = x - y, np.linalg.norm(x - y), np.linalg.norm(x)
    return {"x": d / rd * rx + rd * x / rx, "y": -d / rd * rx}


FUNCTION_CASES = [
    case(
        "function-sq",
        "sq(t) = sum(t^2); sq(x) + sq(x - y)",
        {"x": v4, "y": w4},
        lambda x, y: np.sum(x**2) + np.sum((x - y) ** 2),
        sq_grads,
        lambda x, y: np.sum(x * x) + np.sum((x - y) * (x - y)),
    ),
    case(
        "function-calls-function",
        "sq(t) = sum(t^2); nrm(t) = sqrt(sq(t)); nrm(x - y) * nrm(x)",
        {"x": v4, "y": w4},
        lambda x, y: np.linalg.norm(x - y) * np.linalg.norm(x),
        nrm_grads,
        lambda x, y: MSQRT(np.sum((x - y) * (x - y))) * MSQRT(np.sum(x * x)),
    ),
    case(
        "function-matmul",
        "f(M, u) = M @ u; sum(f(A, v) * f(A, w))",
        {"A": A34, "v": v4, "w": w4},
        lambda A, v, w: (A @ v) @ (A @ w),
        lambda A, v, w: {
            "A": np.outer(A @ w, v) + np.outer(A @ v, w),
            "v": A.T @ (A @ w),
            "w": A.T @ (A @ v),
        },
        lambda A, v, w: np.sum(np.dot(A, v) * np.dot(A, w)),
    ),
    case(
        "function-reduction",
        "lse(t) = logsumexp(t, axis=-1); mean(lse(X))",
        {"X": A34},
        lambda X: np.mean(np_logsumexp(X, -1)),
        lambda X: {"X": np_softmax(X, -1) / 3},
        lambda X: np.sum(MLOG(np.sum(MEXP(X), axis=-1))) / 3,
    ),
    case(
        "function-literal-index",
        "g(t) = [t, 2 * t]; sum(g(x)[1] * x)",
        {"x": v4},
        lambda x: 2 * np.sum(x * x),
        lambda x: {"x": 4 * x},
        lambda x: 2 * np.sum(x * x),
    ),
]


def brute_pairs(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Σ_{i≠j} t_i Π_{k∉{i,j}} x_k, by the definition."""
    n = len(x)
    return np.array(
        [
            sum(
                t[i] * np.prod([x[k] for k in range(n) if k not in (i, j)])
                for i in range(n)
                if i != j
            )
            for j in range(n)
        ]
    )


X4 = np.array([1.5, -0.5, 0.0, 2.0])


def mp_pairs(x, t):
    n = len(x)
    out = np.empty(n, dtype=object)
    for j in range(n):
        terms = [t[i] * np.prod([x[k] for k in range(n) if k not in (i, j)]) for i in range(n)]
        out[j] = sum(term for i, term in enumerate(terms) if i != j)
    return out


def mp_prod_except(x):
    return np.array([np.prod(np.delete(x, j)) for j in range(len(x))], dtype=object)


v5z = np.array([1.5, 0.0, -2.0, 0.5, 3.0])
c5 = normal(5)

# The functions that printed derivatives are written with (gradcli diff): callable by name.
HELPER_CASES = [
    case(
        "reshape",
        "sum(reshape(A, shape=[4, 3]) * B)",
        {"A": A34, "B": normal(4, 3)},
        lambda A, B: np.sum(A.reshape(4, 3) * B),
        lambda A, B: {"A": B.reshape(3, 4), "B": A.reshape(4, 3)},
        lambda A, B: np.sum(A.reshape(4, 3) * B),
    ),
    case(
        "reshape-to-a-vector",
        "reshape(A, shape=12) @ reshape(B, shape=[12])",
        {"A": A34, "B": B34},
        lambda A, B: A.ravel() @ B.ravel(),
        lambda A, B: {"A": B, "B": A},
        lambda A, B: np.sum(A * B),
    ),
    case(
        "sum_to",
        "sum(sum_to(A, shape=[4]) * v) + sum_to(A)",
        {"A": A34, "v": v4},
        lambda A, v: A.sum(axis=0) @ v + A.sum(),
        lambda A, v: {"A": np.broadcast_to(v + 1, (3, 4)), "v": A.sum(axis=0)},
        lambda A, v: np.sum(np.sum(A, axis=0) * v) + np.sum(A),
    ),
    case(
        "sum_to-kept-axis",
        "sum(sum_to(A, shape=[3, 1]) * c)",
        {"A": A34, "c": normal(3, 1)},
        lambda A, c: np.sum(A.sum(axis=1, keepdims=True) * c),
        lambda A, c: {"A": np.broadcast_to(c, (3, 4)), "c": A.sum(axis=1, keepdims=True)},
        lambda A, c: np.sum(np.sum(A, axis=1).reshape(3, 1) * c),
    ),
    case(
        "broadcast_to",
        "sum(broadcast_to(v, shape=[3, 4]) * A) + sum(broadcast_to(s, shape=[2]))",
        {"v": v4, "A": A34, "s": 0.7},
        lambda v, A, s: np.sum(v * A) + 2 * s,
        lambda v, A, s: {"v": A.sum(axis=0), "A": np.broadcast_to(v, (3, 4)), "s": 2.0},
        lambda v, A, s: np.sum(v * A) + 2 * s,
    ),
    case(
        "unindex",
        "sum(unindex(g, shape=[3, 4], start=[1, 0], stop=[3, 4], step=[1, 2]) * A)",
        {"g": normal(2, 2), "A": A34},
        lambda g, A: np.sum(g * A[1:3, 0:4:2]),
        lambda g, A: {"g": A[1:3, 0:4:2], "A": _scattered(g)},
        lambda g, A: np.sum(g * A[1:3, 0:4:2]),
    ),
    case(
        "unindex-single-element-and-reversed",
        "sum(unindex(g, shape=[3, 4], start=[2, 3], stop=[3, -1], step=[0, -1]) * A)",
        {"g": v4, "A": A34},
        lambda g, A: np.sum(g * A[2, ::-1]),
        lambda g, A: {"g": A[2, ::-1], "A": np.zeros((3, 4)) + _row(g[::-1], 2)},
        lambda g, A: np.sum(g * A[2, ::-1]),
    ),
    case(
        "prod_except",
        "prod_except(x) @ c",
        {"x": v5z, "c": c5},
        lambda x, c: mp_prod_except(x).astype(float) @ c,
        lambda x, c: {"x": brute_pairs(x, c), "c": mp_prod_except(x).astype(float)},
        lambda x, c: np.sum(mp_prod_except(x) * c),
    ),
    case(
        "prod_pairs",  # with x written in the program: test_third_derivatives_of_prod varies x
        "prod_pairs([1.5, -0.5, 0, 2], t) @ c",
        {"t": normal(4), "c": normal(4)},
        lambda t, c: brute_pairs(X4, t) @ c,
        lambda t, c: {"t": brute_pairs(X4, c), "c": brute_pairs(X4, t)},
        lambda t, c: np.sum(mp_pairs(X4, t) * c),
    ),
]


def _scattered(g: np.ndarray) -> np.ndarray:
    out = np.zeros((3, 4))
    out[1:3, 0:4:2] = g
    return out


def _row(values: np.ndarray, i: int) -> np.ndarray:
    out = np.zeros((3, 4))
    out[i] = values
    return out


def _mp_where(c: Any, a: Any, b: Any) -> Any:
    return np.where(np.asarray(c, dtype=bool), a, b)


x4, y4, C34 = normal(4), normal(4), normal(3, 4)
CONDITIONAL_CASES = [
    case(
        "where-of-a-comparison",
        "where(x > y, x*y, x - y)",
        {"x": x4, "y": y4},
        lambda x, y: np.where(x > y, x * y, x - y),
        lambda x, y: {"x": np.where(x > y, y, 1.0), "y": np.where(x > y, x, -1.0)},
        lambda x, y: _mp_where(x > y, x * y, x - y),
    ),
    case(
        "where-broadcast",
        "where(x > 0, A, 2*A*A) + where(x, 0, x)",
        {"x": np.array([1.5, -0.5, -2.0, 2.0]), "A": C34},
        lambda x, A: np.where(x > 0, A, 2 * A * A) + np.where(x != 0, 0, x),
        lambda x, A: {"x": np.zeros(4), "A": np.where(x > 0, 1.0, 4 * A)},
        lambda x, A: _mp_where(x > 0, A, 2 * A * A) + _mp_where(x != 0, 0, x),
    ),
    case(
        "clip",
        "clip(A, -0.5, 0.5)*A",
        {"A": C34},
        lambda A: np.clip(A, -0.5, 0.5) * A,
        lambda A: {"A": np.where(np.abs(A) < 0.5, 2 * A, np.clip(A, -0.5, 0.5))},
        lambda A: _mp_where(A > 0.5, 0.5, _mp_where(A < -0.5, -0.5, A)) * A,
    ),
    case(
        "maximum-minimum",
        "maximum(x, y) + minimum(x, 2*y)",
        {"x": x4, "y": y4},
        lambda x, y: np.maximum(x, y) + np.minimum(x, 2 * y),
        lambda x, y: {
            "x": (x > y) + (x < 2 * y) * 1.0,
            "y": (y > x) + 2.0 * (2 * y < x),
        },
        lambda x, y: _mp_where(x > y, x, y) + _mp_where(x < 2 * y, x, 2 * y),
    ),
]


def _per_matrix(function: Callable[..., Any], a: Any, *rest: Any) -> Any:
    """function of mpmath matrices, over a stack of object arrays."""
    a = np.asarray(a, dtype=object)
    if a.ndim > 2:
        return np.stack([_per_matrix(function, a[k], *rest) for k in range(a.shape[0])])
    out = function(
        mpmath.matrix(a.tolist()), *(mpmath.matrix(np.asarray(r).tolist()) for r in rest)
    )
    if isinstance(out, mpmath.matrix):
        return np.array(out.tolist(), dtype=object)
    return out


def _cholesky_grad(A: np.ndarray, lbar: np.ndarray) -> np.ndarray:
    """Ā for L̄ (Murray 2016), in numpy: sym(L⁻ᵀ·Φ(Lᵀ·L̄)·L⁻¹), Φ the lower triangle with the
    diagonal halved; checked here against mpmath's differences, not only gradcli's graph."""
    L = np.linalg.cholesky(A)
    p = np.tril(L.T @ np.tril(lbar))
    p -= np.diag(np.diag(p)) / 2
    s = np.linalg.solve(L.T, np.linalg.solve(L.T, p).T).T
    return (s + s.T) / 2


def _triangular_part(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """d/dA of bᵀ·L⁻ᵀ·b: with y = L⁻ᵀb and u = L⁻¹b, L̄ = −y·uᵀ."""
    L = np.linalg.cholesky(A)
    return _cholesky_grad(A, -np.outer(np.linalg.solve(L.T, b), np.linalg.solve(L, b)))


SQ = normal(3, 3) * 0.3 + 2 * np.eye(3)
SQ2 = normal(2, 3, 3) * 0.3 + 2 * np.eye(3)
SPD = SQ @ SQ.T + np.eye(3)  # symmetric positive definite
SPD2 = np.einsum("kij,klj->kil", SQ2, SQ2) + np.eye(3)


def _mp_logdet_and_forms(A: Any, b: Any) -> Any:
    """2·Σ log Lᵢᵢ + |L⁻¹b|² + bᵀL⁻ᵀb, with mpmath's Cholesky factor and solves."""
    m = mpmath.matrix(np.asarray(A, dtype=object).tolist())
    L = mpmath.cholesky((m + m.T) / 2)
    col = mpmath.matrix(np.asarray(b, dtype=object).tolist())
    u, y = L**-1 * col, L.T**-1 * col
    n = L.rows
    return (
        2 * sum(mpmath.log(L[i, i]) for i in range(n))
        + sum(u[i] ** 2 for i in range(n))
        + sum(y[i] * col[i] for i in range(n))
    )


def _mp_cholesky(a: Any) -> Any:
    """mpmath's Cholesky factor of the symmetric part, as gradcli factors it."""
    return _per_matrix(lambda m: mpmath.cholesky((m + m.T) / 2), a)


def _mp_eigvalsh(a: Any) -> Any:
    """mpmath's eigenvalues of the symmetric part, ascending (of each matrix of a stack)."""

    def values(m: Any) -> Any:
        e, _ = mpmath.eigsy((m + m.T) / 2)
        return np.array(sorted(e[i] for i in range(e.rows)), dtype=object)

    a = np.asarray(a, dtype=object)
    if a.ndim > 2:
        return np.stack([_mp_eigvalsh(a[k]) for k in range(a.shape[0])])
    return values(mpmath.matrix(a.tolist()))


def _eig_grad(a: np.ndarray, wbar: np.ndarray) -> np.ndarray:
    """V·diag(w̄)·Vᵀ, by numpy's eigh: Σᵢ w̄ᵢ·vᵢvᵢᵀ, the derivative of Σ w̄ᵢλᵢ."""
    _, v = np.linalg.eigh((a + np.swapaxes(a, -1, -2)) / 2)
    return (v * wbar[..., None, :]) @ np.swapaxes(v, -1, -2)


EIG_A = normal(3, 3)
EIG_W = normal(3, 3)


def _np_vectors(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """numpy's eigh of the symmetric part, each vector's largest component made positive."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return w, v * np.sign(v[np.abs(v).argmax(axis=0), range(len(w))])


def _vectors_grad(a: np.ndarray, vbar: np.ndarray) -> np.ndarray:
    """sym(V·(F ∘ (Vᵀ·V̄))·Vᵀ), Fᵢⱼ = 1/(λⱼ − λᵢ) off the diagonal: the adjoint of V."""
    w, v = _np_vectors(a)
    with np.errstate(divide="ignore"):
        f = np.where(np.eye(len(w)) > 0, 0.0, 1.0 / (w[None, :] - w[:, None]))
    s = v @ (f * (v.T @ vbar)) @ v.T
    return (s + s.T) / 2


def _mp_vectors(a: Any) -> Any:
    """mpmath's eigenvectors of the symmetric part, ascending, largest component positive."""
    m = mpmath.matrix(np.asarray(a, dtype=object).tolist())
    e, q = mpmath.eigsy((m + m.T) / 2)
    order = sorted(range(e.rows), key=lambda k: e[k])
    out = np.empty((q.rows, q.cols), dtype=object)
    for j, k in enumerate(order):
        column = [q[i, k] for i in range(q.rows)]
        top = max(column, key=abs)
        for i in range(q.rows):
            out[i, j] = column[i] if top > 0 else -column[i]
    return out


MATRIX_CASES = [
    case(
        "eigh-vectors",
        "sum(eigh_vectors(A) * W)",
        {"A": EIG_A, "W": EIG_W},
        lambda A, W: np.sum(_np_vectors(A)[1] * W),
        lambda A, W: {"A": _vectors_grad(A, W), "W": _np_vectors(A)[1]},
        lambda A, W: np.sum(_mp_vectors(A) * W),
    ),
    case(
        "eigvalsh",
        "sum(eigvalsh(A) * [1, -2, 3]) + sum(eigvalsh(B) * [[1, 2, 3], [0.5, 0, -1]])",
        {"A": EIG_A, "B": SQ2},
        lambda A, B: (
            np.linalg.eigvalsh((A + A.T) / 2) @ [1, -2, 3]
            + np.sum(
                np.linalg.eigvalsh((B + np.swapaxes(B, -1, -2)) / 2) * [[1, 2, 3], [0.5, 0, -1]]
            )
        ),
        lambda A, B: {
            "A": _eig_grad(A, np.array([1.0, -2.0, 3.0])),
            "B": _eig_grad(B, np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])),
        },
        lambda A, B: (
            np.sum(_mp_eigvalsh(A) * np.array([1, -2, 3]))
            + np.sum(_mp_eigvalsh(B) * np.array([[1, 2, 3], [0.5, 0, -1]]))
        ),
    ),
    case(
        "cholesky",
        "sum(cholesky(A) * W) + sum(cholesky(B) * [[[1]], [[-2]]])",
        {"A": SPD, "W": np.tril(normal(3, 3)), "B": SPD2},
        lambda A, W, B: (
            np.sum(np.linalg.cholesky(A) * W)
            + np.sum(np.linalg.cholesky(B) * np.array([1, -2])[:, None, None])
        ),
        lambda A, W, B: {
            "A": _cholesky_grad(A, W),
            "W": np.linalg.cholesky(A),
            "B": np.stack(
                [_cholesky_grad(B[0], np.ones((3, 3))), -2 * _cholesky_grad(B[1], np.ones((3, 3)))]
            ),
        },
        lambda A, W, B: (
            np.sum(_mp_cholesky(A) * W) + np.sum(_mp_cholesky(B) * np.array([1, -2])[:, None, None])
        ),
    ),
    case(
        # log det A = 2·Σ log Lᵢᵢ: its gradient is A⁻ᵀ (the Matrix Cookbook's (49)), and the
        # quadratic form through two triangular solves is bᵀA⁻¹b, with gradient −A⁻ᵀbbᵀA⁻ᵀ.
        "cholesky-logdet-and-quadratic-form",
        "2*sum(log(diag(cholesky(A)))) + sum(solve_triangular(cholesky(A), b, lower=True)^2)"
        " + sum(solve_triangular(transpose(cholesky(A)), b) * b)",
        {"A": SPD, "b": normal(3)},
        lambda A, b: (
            np.linalg.slogdet(A)[1]
            + b @ np.linalg.solve(A, b)
            + b @ np.linalg.solve(np.linalg.cholesky(A).T, b)
        ),
        lambda A, b: {
            "A": np.linalg.inv(A)
            - np.outer(np.linalg.solve(A, b), np.linalg.solve(A, b))
            + _triangular_part(A, b),
            "b": 2 * np.linalg.solve(A, b)
            + np.linalg.solve(np.linalg.cholesky(A).T, b)
            + np.linalg.solve(np.linalg.cholesky(A), b),
        },
        lambda A, b: _mp_logdet_and_forms(A, b),
    ),
    case(
        "trace-diag-outer",
        "trace(A) + sum(diag(v) * A) + diag(A) @ v + sum(outer(v, w) * A)",
        {"A": SQ, "v": normal(3), "w": normal(3)},
        lambda A, v, w: (
            np.trace(A) + np.sum(np.diag(v) * A) + np.diag(A) @ v + np.sum(np.outer(v, w) * A)
        ),
        lambda A, v, w: {
            "A": np.eye(3) + 2 * np.diag(v) + np.outer(v, w),
            "v": 2 * np.diag(A) + A @ w,
            "w": A.T @ v,
        },
        lambda A, v, w: (
            sum(A[i, i] * (1 + 2 * v[i]) for i in range(3))
            + sum(v[i] * w[j] * A[i, j] for i in range(3) for j in range(3))
        ),
    ),
    case(
        "inv-solve",
        "sum(inv(A) * W) + solve(A, v) @ w",
        {"A": SQ, "W": normal(3, 3), "v": normal(3), "w": normal(3)},
        lambda A, W, v, w: np.sum(np.linalg.inv(A) * W) + np.linalg.solve(A, v) @ w,
        lambda A, W, v, w: {
            "A": -np.linalg.inv(A).T @ W @ np.linalg.inv(A).T
            - np.outer(np.linalg.solve(A.T, w), np.linalg.solve(A, v)),
            "W": np.linalg.inv(A),
            "v": np.linalg.solve(A.T, w),
            "w": np.linalg.solve(A, v),
        },
        lambda A, W, v, w: (
            np.sum(_per_matrix(lambda m: m**-1, A) * W)
            + np.sum(_per_matrix(lambda m, b: m**-1 * b, A, v[:, None]).ravel() * w)
        ),
    ),
    case(
        "det-logdet-stack",
        "sum(det(A) * [1, -2]) + sum(logdet(A))",
        {"A": SQ2},
        lambda A: np.linalg.det(A) @ [1, -2] + np.sum(np.linalg.slogdet(A)[1]),
        lambda A: {
            "A": (np.linalg.det(A) * np.array([1, -2]) + 1)[:, None, None]
            * np.swapaxes(np.linalg.inv(A), -1, -2)
        },
        lambda A: (
            _per_matrix(mpmath.det, A[0])
            - 2 * _per_matrix(mpmath.det, A[1])
            + mpmath.log(_per_matrix(mpmath.det, A[0]))
            + mpmath.log(_per_matrix(mpmath.det, A[1]))
        ),
    ),
    case(
        "builders",
        "sum(eye(3) * A) + sum(ones([3, 3]) * A) + sum(zeros(3) * v) + sum(full([3], x) * v)",
        {"A": SQ, "v": normal(3), "x": np.array(0.5)},
        lambda A, v, x: np.trace(A) + np.sum(A) + x * np.sum(v),
        lambda A, v, x: {"A": np.eye(3) + 1, "v": np.full(3, float(x)), "x": np.sum(v)},
        lambda A, v, x: sum(A[i, i] for i in range(3)) + np.sum(A) + x * np.sum(v),
    ),
]

_MP_LGAMMA = np.frompyfunc(lambda v: mpmath.re(mpmath.loggamma(v)), 1, 1)
_POSITIVE4 = np.array([0.5, 2.5, 7.0, 1e-3])
SPECIAL_CASES = [
    case(
        "gammaln",
        "sum(gammaln(x) * [1, -2, 3, 0.5])",
        {"x": _POSITIVE4},
        lambda x: np.array([math.lgamma(v) for v in x]) @ [1, -2, 3, 0.5],
        lambda x: {"x": np.array([float(mpmath.digamma(v)) for v in x]) * [1, -2, 3, 0.5]},
        lambda x: np.sum(_MP_LGAMMA(x) * np.array([1, -2, 3, 0.5], dtype=object)),
    ),
]


def _np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=axis, keepdims=True))


def _mp_log_softmax_sum(x: np.ndarray, w: np.ndarray, axis: int) -> Any:
    """Σ w·log_softmax(x) along axis 1 of a 2-d object array, in mpmath."""
    total = mp.mpf(0)
    for i in range(x.shape[0]):
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in x[i]))
        total += mpmath.fsum(wv * (v - lse) for v, wv in zip(x[i], w[i], strict=True))
    return total


LS_W = np.array([[1.0, -2.0, 0.5], [2.0, 1.0, -1.0]])
AXES_CASES = [
    case(
        "log-softmax",
        "sum(log_softmax(x) * W)",
        {"x": np.array([[1.0, 2.0, -1e3], [0.5, 800.0, 3.0]]), "W": LS_W},
        lambda x, W: np.sum(_np_log_softmax(x, -1) * W),
        lambda x, W: {
            "x": W - np.exp(_np_log_softmax(x, -1)) * W.sum(axis=-1, keepdims=True),
            "W": _np_log_softmax(x, -1),
        },
        lambda x, W: _mp_log_softmax_sum(x, W, -1),
    ),
    case(
        "new-axes",
        "sum(v[:, None] * w[None, :] * A[0, None]) + sum(expand_dims(v, axis=1) * A[:, None])",
        {"v": normal(3), "w": normal(3), "A": normal(2, 3)},
        lambda v, w, A: (
            np.sum(v[:, None] * w[None, :] * A[0, None])
            + np.sum(np.expand_dims(v, axis=1) * A[:, None])
        ),
        lambda v, w, A: {
            "v": np.full(3, w @ A[0] + A.sum()),
            "w": v.sum() * A[0],
            "A": np.vstack([v.sum() * w, np.zeros(3)]) + v.sum(),
        },
        lambda v, w, A: (
            np.sum(v[:, None] * w[None, :] * A[0, None])
            + np.sum(np.expand_dims(v, axis=1) * A[:, None])
        ),
    ),
]


def _reverse_cumsum(g, axis):
    return np.flip(np.cumsum(np.flip(g, axis), axis), axis)


def _diff_adjoint(g, axis):
    """The adjoint of diff along axis: ȳ padded before, less ȳ padded after."""
    pad = [(0, 0)] * g.ndim
    before, after = list(pad), list(pad)
    before[axis], after[axis] = (1, 0), (0, 1)
    return np.pad(g, before) - np.pad(g, after)


W34 = normal(3, 4)
ARRANGING_CASES = [
    case(
        "flip-and-roll",
        "sum(flip(x, 0) * W) + sum(flip(x) * W)"
        " + sum(roll(x, 1, axis=1) * W) + sum(roll(x, -5) * W)",
        {"x": normal(3, 4), "W": W34},
        lambda x, W: (
            np.sum(np.flip(x, 0) * W)
            + np.sum(np.flip(x) * W)
            + np.sum(np.roll(x, 1, axis=1) * W)
            + np.sum(np.roll(x, -5) * W)
        ),
        lambda x, W: {
            "x": np.flip(W, 0) + np.flip(W) + np.roll(W, -1, axis=1) + np.roll(W, 5),
            "W": np.flip(x, 0) + np.flip(x) + np.roll(x, 1, axis=1) + np.roll(x, -5),
        },
        lambda x, W: (
            np.sum(np.flip(x, 0) * W)
            + np.sum(np.flip(x) * W)
            + np.sum(np.roll(x, 1, axis=1) * W)
            + np.sum(np.roll(x, -5) * W)
        ),
    ),
    case(
        "tril-and-triu",
        "sum(tril(x) * W) + sum(triu(x, 1) * W) + sum(tril(x, -1) @ v)",
        {"x": normal(3, 4), "W": W34, "v": normal(4)},
        lambda x, W, v: (
            np.sum(np.tril(x) * W) + np.sum(np.triu(x, 1) * W) + np.sum(np.tril(x, -1) @ v)
        ),
        lambda x, W, v: {
            "x": np.tril(W) + np.triu(W, 1) + np.tril(np.outer(np.ones(3), v), -1),
            "W": np.tril(x) + np.triu(x, 1),
            "v": np.tril(x, -1).sum(axis=0),
        },
        lambda x, W, v: (
            np.sum(np.tril(x) * W) + np.sum(np.triu(x, 1) * W) + np.sum(np.dot(np.tril(x, -1), v))
        ),
    ),
    case(
        "cumsum",
        "sum(cumsum(x, axis=1) * W) + sum(cumsum(x, 0) * W) + sum(cumsum(x) * w)",
        {"x": normal(3, 4), "W": W34, "w": normal(12)},
        lambda x, W, w: (
            np.sum(np.cumsum(x, axis=1) * W)
            + np.sum(np.cumsum(x, 0) * W)
            + np.sum(np.cumsum(x) * w)
        ),
        lambda x, W, w: {
            "x": _reverse_cumsum(W, 1)
            + _reverse_cumsum(W, 0)
            + _reverse_cumsum(w, 0).reshape(3, 4),
            "W": np.cumsum(x, axis=1) + np.cumsum(x, 0),
            "w": np.cumsum(x),
        },
        lambda x, W, w: (
            np.sum(np.cumsum(x, axis=1) * W)
            + np.sum(np.cumsum(x, 0) * W)
            + np.sum(np.cumsum(x) * w)
        ),
    ),
    case(
        "diff",
        "sum(diff(x) * W[:, :3]) + sum(diff(x, axis=0) * W[:2]) + sum(diff(x, 2) * W[:, :2])",
        {"x": normal(3, 4), "W": W34},
        lambda x, W: (
            np.sum(np.diff(x) * W[:, :3])
            + np.sum(np.diff(x, axis=0) * W[:2])
            + np.sum(np.diff(x, 2) * W[:, :2])
        ),
        lambda x, W: {
            "x": _diff_adjoint(W[:, :3], 1)
            + _diff_adjoint(W[:2], 0)
            + _diff_adjoint(_diff_adjoint(W[:, :2], 1), 1),
            "W": np.hstack(
                [np.diff(x) + np.hstack([np.diff(x, 2), np.zeros((3, 1))]), np.zeros((3, 1))]
            )
            + np.vstack([np.diff(x, axis=0), np.zeros((1, 4))]),
        },
        lambda x, W: (
            np.sum(np.diff(x) * W[:, :3])
            + np.sum(np.diff(x, axis=0) * W[:2])
            + np.sum(np.diff(x, 2) * W[:, :2])
        ),
    ),
]


def _kept_mean(x: Any, axis: int) -> Any:
    return np.sum(x, axis=axis, keepdims=True) / x.shape[axis]


STATISTICS_CASES = [
    case(
        "var-std-ddof",
        "sum(var(x, axis=0, ddof=1) * w) + std(x, ddof=1) + std(x, 1, 2)[0]",
        {"x": normal(4, 3), "w": normal(3)},
        lambda x, w: (
            np.sum(np.var(x, axis=0, ddof=1) * w) + np.std(x, ddof=1) + np.std(x, 1, ddof=2)[0]
        ),
        lambda x, w: {
            "x": 2 * (x - x.mean(0)) * w / 3
            + (x - x.mean()) / (11 * np.std(x, ddof=1))
            + np.vstack([(x[0] - x[0].mean()) / np.std(x[0], ddof=2), np.zeros((3, 3))]),
            "w": np.var(x, axis=0, ddof=1),
        },
        lambda x, w: (
            np.sum(mp_var(x, 0, 1) * w) + MSQRT(mp_var(x, None, 1)) + MSQRT(mp_var(x[0], None, 2))
        ),
    ),
    case(
        "keepdims-layer-norm",
        "sum((x - mean(x, axis=-1, keepdims=True)) / std(x, axis=-1, keepdims=True) * W)"
        " + sum(max(x, axis=0, keepdims=True) * w) + sum(x / sum(x, 1, keepdims=True))",
        {"x": normal(3, 4) + 3.0, "W": W34, "w": normal(1, 4)},
        lambda x, W, w: (
            np.sum((x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True) * W)
            + np.sum(x.max(0, keepdims=True) * w)
            + np.sum(x / x.sum(1, keepdims=True))
        ),
        lambda x, W, w: {
            "x": _layer_norm_grad(x, W) + (x == x.max(0)) * w + _normalized_grad(x),
            "W": (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True),
            "w": x.max(0, keepdims=True),
        },
        lambda x, W, w: (
            np.sum((x - _kept_mean(x, 1)) / MSQRT(_kept_mean((x - _kept_mean(x, 1)) ** 2, 1)) * W)
            + np.sum(np.max(x, axis=0, keepdims=True) * w)
            + np.sum(x / np.sum(x, axis=1, keepdims=True))
        ),
    ),
]


def _layer_norm_grad(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The closed form of d/dx Σ W·(x − μ)/σ along rows: (W − mean W − y·mean(W·y))/σ."""
    s = x.std(-1, keepdims=True)
    y = (x - x.mean(-1, keepdims=True)) / s
    return (W - W.mean(-1, keepdims=True) - y * (W * y).mean(-1, keepdims=True)) / s


def _normalized_grad(x: np.ndarray) -> np.ndarray:
    """d/dx Σ x/Σ_row x: each row sums to 1 whatever x is, so 0."""
    return np.zeros_like(x)


JOINING_CASES = [
    case(
        "concatenate",
        "sum(concatenate([x, y]) * w) + sum(concatenate([A, B], axis=1) * W)"
        " + sum(concatenate([A, [x]]) * C)",
        {
            "x": normal(3),
            "y": normal(2),
            "w": normal(5),
            "A": normal(2, 3),
            "B": normal(2, 2),
            "W": normal(2, 5),
            "C": normal(3, 3),
        },
        lambda x, y, w, A, B, W, C: (
            np.sum(np.concatenate([x, y]) * w)
            + np.sum(np.concatenate([A, B], axis=1) * W)
            + np.sum(np.concatenate([A, x[None]]) * C)
        ),
        lambda x, y, w, A, B, W, C: {
            "x": w[:3] + C[2],
            "y": w[3:],
            "w": np.concatenate([x, y]),
            "A": W[:, :3] + C[:2],
            "B": W[:, 3:],
            "W": np.concatenate([A, B], axis=1),
            "C": np.concatenate([A, x[None]]),
        },
        lambda x, y, w, A, B, W, C: (
            np.sum(np.concatenate([x, y]) * w)
            + np.sum(np.concatenate([A, B], axis=1) * W)
            + np.sum(np.concatenate([A, x[None]]) * C)
        ),
    ),
    case(
        "stack",
        "sum(stack([x, 2*x, z], axis=1) * S) + sum(stack([x, z]) * S[:2]) * z[0]"
        " + sum(stack([x, z], axis=-1) @ [1, -3])",
        {"x": normal(3), "z": normal(3), "S": normal(3, 3)},
        lambda x, z, S: (
            np.sum(np.stack([x, 2 * x, z], axis=1) * S)
            + np.sum(np.stack([x, z]) * S[:2]) * z[0]
            + np.sum(np.stack([x, z], axis=-1) @ [1, -3])
        ),
        lambda x, z, S: {
            "x": S[:, 0] + 2 * S[:, 1] + S[0] * z[0] + 1,
            "z": S[:, 2] + S[1] * z[0] + np.sum(np.stack([x, z]) * S[:2]) * np.eye(3)[0] - 3,
            "S": np.stack([x, 2 * x, z], axis=1) + np.vstack([np.stack([x, z]) * z[0], [0] * 3]),
        },
        lambda x, z, S: (
            np.sum(np.stack([x, 2 * x, z], axis=1) * S)
            + np.sum(np.stack([x, z]) * S[:2]) * z[0]
            + np.sum(np.stack([x, z], axis=-1) @ np.array([1, -3]))
        ),
    ),
    case(
        "tile-and-repeat",
        "sum(tile(x, [2, 2]) * T) + sum(repeat(x, 3, axis=1) * R) + sum(repeat(x, 2) * r)"
        " + sum(tile(x[0], [2, 1, 2]) * U)",
        {
            "x": normal(2, 3),
            "T": normal(4, 6),
            "R": normal(2, 9),
            "r": normal(12),
            "U": normal(2, 1, 6),
        },
        lambda x, T, R, r, U: (
            np.sum(np.tile(x, [2, 2]) * T)
            + np.sum(np.repeat(x, 3, axis=1) * R)
            + np.sum(np.repeat(x, 2) * r)
            + np.sum(np.tile(x[0], [2, 1, 2]) * U)
        ),
        lambda x, T, R, r, U: {
            "x": T.reshape(2, 2, 2, 3).sum(axis=(0, 2))
            + R.reshape(2, 3, 3).sum(axis=2)
            + r.reshape(6, 2).sum(axis=1).reshape(2, 3)
            + np.vstack([U.reshape(2, 2, 3).sum(axis=(0, 1)), np.zeros(3)]),
            "T": np.tile(x, [2, 2]),
            "R": np.repeat(x, 3, axis=1),
            "r": np.repeat(x, 2),
            "U": np.tile(x[0], [2, 1, 2]),
        },
        lambda x, T, R, r, U: (
            np.sum(np.tile(x, [2, 2]) * T)
            + np.sum(np.repeat(x, 3, axis=1) * R)
            + np.sum(np.repeat(x, 2) * r)
            + np.sum(np.tile(x[0], [2, 1, 2]) * U)
        ),
    ),
    case(
        "squeeze-and-reshape",
        "sum(reshape(x, [-1, 2]) @ p) + sum(squeeze(x[None, :, None]) * q)"
        " + sum(squeeze(reshape(x, [1, 2, 1, 2]), 2) * Q)",
        {"x": normal(4), "p": normal(2), "q": normal(4), "Q": normal(1, 2, 2)},
        lambda x, p, q, Q: np.sum(x.reshape(-1, 2) @ p) + x @ q + np.sum(x.reshape(1, 2, 2) * Q),
        lambda x, p, q, Q: {
            "x": np.tile(p, 2) + q + Q.reshape(4),
            "p": x.reshape(2, 2).sum(axis=0),
            "q": x,
            "Q": x.reshape(1, 2, 2),
        },
        lambda x, p, q, Q: np.sum(x.reshape(-1, 2) @ p) + x @ q + np.sum(x.reshape(1, 2, 2) * Q),
    ),
]


def _added_at(shape: tuple, key: Any, g: Any) -> np.ndarray:
    """Zeros with g added at x[key], repeats adding up: the adjoint of picking, by numpy."""
    out = np.zeros(shape)
    np.add.at(out, key, g)
    return out


GATHER_CASES = [
    case(
        "indices-literal",
        "sum(x[[0, 2, 2]] * w) + sum(A[:, [1, 0, 1]] * B) + sum(A[[0, 1, -1], [2, 0, 2]] * x)",
        {"x": normal(3), "w": normal(3), "A": normal(2, 3), "B": normal(2, 3)},
        lambda x, w, A, B: (
            np.sum(x[[0, 2, 2]] * w)
            + np.sum(A[:, [1, 0, 1]] * B)
            + np.sum(A[[0, 1, -1], [2, 0, 2]] * x)
        ),
        lambda x, w, A, B: {
            "x": _added_at((3,), [0, 2, 2], w) + A[[0, 1, -1], [2, 0, 2]],
            "w": x[[0, 2, 2]],
            "A": _added_at((2, 3), (slice(None), [1, 0, 1]), B)
            + _added_at((2, 3), ([0, 1, -1], [2, 0, 2]), x),
            "B": A[:, [1, 0, 1]],
        },
        lambda x, w, A, B: (
            np.sum(x[[0, 2, 2]] * w)
            + np.sum(A[:, [1, 0, 1]] * B)
            + np.sum(A[[0, 1, -1], [2, 0, 2]] * x)
        ),
    ),
    case(
        "take-and-take-along-axis",
        "sum(take(A, [2, 0], axis=1) * B) + sum(take(A, [5, 0, 5]) * w)"
        " + sum(take(A, [[1], [0]], axis=-2) * C)"
        " + sum(take_along_axis(A, [[2, 0], [1, 1]], 1) * B)",
        {"A": normal(2, 3), "B": normal(2, 2), "w": normal(3), "C": normal(2, 1, 3)},
        lambda A, B, w, C: (
            np.sum(np.take(A, [2, 0], axis=1) * B)
            + np.sum(np.take(A, [5, 0, 5]) * w)
            + np.sum(np.take(A, [[1], [0]], axis=-2) * C)
            + np.sum(np.take_along_axis(A, np.array([[2, 0], [1, 1]]), 1) * B)
        ),
        lambda A, B, w, C: {
            "A": _added_at((2, 3), (slice(None), [2, 0]), B)
            + _added_at((6,), [5, 0, 5], w).reshape(2, 3)
            + _added_at((2, 3), [[1], [0]], C)
            + _added_at((2, 3), ([[0], [1]], [[2, 0], [1, 1]]), B),
            "B": np.take(A, [2, 0], axis=1) + np.take_along_axis(A, np.array([[2, 0], [1, 1]]), 1),
            "w": np.take(A, [5, 0, 5]),
            "C": np.take(A, [[1], [0]], axis=-2),
        },
        lambda A, B, w, C: (
            np.sum(np.take(A, [2, 0], axis=1) * B)
            + np.sum(np.take(A, [5, 0, 5]) * w)
            + np.sum(np.take(A, [[1], [0]], axis=-2) * C)
            + np.sum(np.take_along_axis(A, np.array([[2, 0], [1, 1]]), 1) * B)
        ),
    ),
    case(
        "one-hot-cross-entropy",
        # labels [2, 0] made from z (argsort of [z₀₀, z₀₀ + 1]), so that one_hot is not folded
        "-sum(one_hot(2 - 2*argsort([z[0, 0], z[0, 0] + 1]), 3) * log_softmax(z))"
        " + sum(scatter_add(w, [1, 1], shape=[3]) * v)",
        {"z": normal(2, 3), "w": normal(2), "v": normal(3)},
        lambda z, w, v: (
            -np.sum(np.eye(3)[[2, 0]] * (z - np_logsumexp(z, 1)[:, None]))
            + np.sum(_added_at((3,), [1, 1], w) * v)
        ),
        lambda z, w, v: {
            "z": np_softmax(z, 1) - np.eye(3)[[2, 0]],
            "w": np.full(2, v[1]),
            "v": _added_at((3,), [1, 1], w),
        },
        lambda z, w, v: (
            -np.sum(np.eye(3)[[2, 0]] * (z - MLOG(np.sum(MEXP(z), axis=1, keepdims=True))))
            + (w[0] + w[1]) * v[1]
        ),
    ),
]


def _mp_polyval(p: Any, x: Any) -> Any:
    """Horner's rule on mpf object arrays."""
    total = 0 * x
    for c in p:
        total = total * x + c
    return total


def _linspace_weights(n: int) -> tuple[np.ndarray, np.ndarray]:
    """∂linspace(a, b, n)/∂a and ∂/∂b, element by element: 1 − k/(n − 1) and k/(n − 1)."""
    k = np.arange(n) / (n - 1)
    return 1 - k, k


BUILDING_CASES = [
    case(
        "polyval",
        "sum(polyval(p, x) * w) + polyval([1, -2, 0.5, 3], y) + sum(polyval([2], x))",
        {"p": normal(4), "x": normal(3), "w": normal(3), "y": np.array(0.7)},
        lambda p, x, w, y: (
            np.sum(np.polyval(p, x) * w)
            + np.polyval([1, -2, 0.5, 3], y)
            + np.sum(np.polyval([2.0], x))
        ),
        lambda p, x, w, y: {
            "p": np.array([np.sum(w * x ** (3 - k)) for k in range(4)]),
            "x": w * np.polyval(np.polyder(p), x),
            "w": np.polyval(p, x),
            "y": 3 * y**2 - 4 * y + 0.5,
        },
        lambda p, x, w, y: (
            np.sum(_mp_polyval(p, x) * w) + _mp_polyval([1, -2, 0.5, 3], y) + 2 * x.size
        ),
    ),
    case(
        "arange-and-linspace",
        "sum(linspace(a, b, 5) * w) + sum(arange(1, 2, 0.25) * w[:4]) * a + sum(linspace(0, 1, 3))",
        {"a": np.array(0.3), "b": np.array(2.5), "w": normal(5)},
        lambda a, b, w: (
            np.sum(np.linspace(a, b, 5) * w) + np.sum(np.arange(1, 2, 0.25) * w[:4]) * a + 1.5
        ),
        lambda a, b, w: {
            "a": w @ _linspace_weights(5)[0] + np.arange(1, 2, 0.25) @ w[:4],
            "b": w @ _linspace_weights(5)[1],
            "w": np.linspace(a, b, 5) + np.append(np.arange(1, 2, 0.25) * a, 0),
        },
        lambda a, b, w: (
            np.sum((a + (b - a) * np.arange(5) / mpmath.mpf(4)) * w)
            + np.sum(np.array([1, 1.25, 1.5, 1.75]) * w[:4]) * a
            + mpmath.mpf(1.5)
        ),
    ),
]


def _cumprod_grad(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """d/dx Σ w·cumprod(x) of a vector, term by term: Σ_{i≥j} wᵢ·Π_{k≤i, k≠j} xₖ."""
    n = len(x)
    return np.array(
        [sum(w[i] * np.prod([x[k] for k in range(i + 1) if k != j]) for i in range(j, n))
         for j in range(n)]
    )  # fmt: skip


def _mp_cumprod(x: Any) -> Any:
    out, total = [], 1
    for v in x:
        total = total * v
        out.append(total)
    return np.array(out, dtype=object)


_W4 = np.array([1.0, -2.0, 3.0, 0.5])
ORDER_CASES = [
    case(
        "cumprod",
        "sum(cumprod(x) * [1, -2, 3, 0.5]) + sum(cumprod(y, axis=0) * Y) + sum(cumprod(z) * w)",
        {
            "x": normal(4),
            "y": normal(2, 2),
            "Y": normal(2, 2),
            "z": np.array([1.5, 0.0, -2.0, 0.5]),
            "w": normal(4),
        },
        lambda x, y, Y, z, w: (
            np.sum(np.cumprod(x) * _W4)
            + np.sum(np.cumprod(y, axis=0) * Y)
            + np.sum(np.cumprod(z) * w)
        ),
        lambda x, y, Y, z, w: {
            "x": _cumprod_grad(x, _W4),
            "y": np.array([Y[0] + Y[1] * y[1], Y[1] * y[0]]),
            "Y": np.cumprod(y, axis=0),
            "z": _cumprod_grad(z, w),
            "w": np.cumprod(z),
        },
        lambda x, y, Y, z, w: (
            np.sum(_mp_cumprod(x) * _W4)
            + np.sum(np.array([y[0], y[0] * y[1]]) * Y)
            + np.sum(_mp_cumprod(z) * w)
        ),
    ),
    case(
        "sort-and-argsort",
        "sum(sort(x) * [1, -2, 3, 0.5]) + sum(sort(A, axis=0) * B) + sum(x[argsort(x)] * w)",
        {"x": normal(4), "A": normal(3, 2), "B": normal(3, 2), "w": normal(4)},
        lambda x, A, B, w: (
            np.sum(np.sort(x) * _W4) + np.sum(np.sort(A, axis=0) * B) + np.sum(np.sort(x) * w)
        ),
        lambda x, A, B, w: {
            "x": _added_at((4,), np.argsort(x), _W4 + w),
            "A": _added_at((3, 2), (np.argsort(A, axis=0), [[0, 1]] * 3), B),
            "B": np.sort(A, axis=0),
            "w": np.sort(x),
        },
        lambda x, A, B, w: (
            np.sum(np.array(sorted(x)) * _W4)
            + np.sum(np.stack([sorted(A[:, 0]), sorted(A[:, 1])], axis=1) * B)
            + np.sum(np.array(sorted(x)) * w)
        ),
    ),
]


_TA, _TB = normal(3, 2), normal(2, 2, 3)


def _mp_cross(a: Any, b: Any) -> Any:
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]],
        dtype=object,
    )


PRODUCTS_OF_ARRAYS_CASES = [
    case(
        "tensordot-and-inner",
        "sum(tensordot(A, B, axes=[[1, 0], [0, 2]]) * w) + inner(x, y)"
        " + sum(tensordot(x, y, 0) * C) + sum(tensordot(C, C) * 0.5)",
        {"A": _TA, "B": _TB, "w": normal(2), "x": normal(3), "y": normal(3), "C": normal(3, 3)},
        lambda A, B, w, x, y, C: (
            np.sum(np.tensordot(A, B, axes=([1, 0], [0, 2])) * w)
            + x @ y
            + np.sum(np.outer(x, y) * C)
            + 0.5 * np.sum(C * C)
        ),
        lambda A, B, w, x, y, C: {
            # d/dA[i, j] Σ_k w_k Σ_{i,j} A[i, j] B[j, k, i] = Σ_k w_k B[j, k, i]
            "A": np.einsum("k,jki->ij", w, B),
            "B": np.einsum("k,ij->jki", w, A),
            "w": np.tensordot(A, B, axes=([1, 0], [0, 2])),
            "x": y + C @ y,
            "y": x + C.T @ x,
            "C": np.outer(x, y) + C,
        },
        lambda A, B, w, x, y, C: (
            sum(
                w[k] * sum(A[i, j] * B[j, k, i] for i in range(3) for j in range(2))
                for k in range(2)
            )
            + np.sum(x * y)
            + np.sum(np.outer(x, y) * C)
            + np.sum(C * C) / 2
        ),
    ),
    case(
        "kron-and-cross",
        "sum(kron(A, B) * W) + sum(kron(x, y) * v) + sum(cross(x, y) * [1, -2, 3])",
        {
            "A": normal(2, 2),
            "B": normal(2, 3),
            "W": normal(4, 6),
            "x": normal(3),
            "y": normal(3),
            "v": normal(9),
        },
        lambda A, B, W, x, y, v: (
            np.sum(np.kron(A, B) * W) + np.sum(np.kron(x, y) * v) + np.cross(x, y) @ [1, -2, 3]
        ),
        lambda A, B, W, x, y, v: {
            "A": np.einsum("ikjl,kl->ij", W.reshape(2, 2, 2, 3), B),
            "B": np.einsum("ikjl,ij->kl", W.reshape(2, 2, 2, 3), A),
            "W": np.kron(A, B),
            "x": v.reshape(3, 3) @ y + np.cross(y, [1, -2, 3]),
            "y": v.reshape(3, 3).T @ x + np.cross([1, -2, 3], x),
            "v": np.kron(x, y),
        },
        lambda A, B, W, x, y, v: (
            np.sum(np.kron(A, B) * W)
            + np.sum(np.outer(x, y).ravel() * v)
            + np.sum(_mp_cross(x, y) * np.array([1, -2, 3]))
        ),
    ),
]


NORM_CASES = [
    case(
        "norm-ord",
        "norm(x, ord=1, axis=-1) + norm(x, ord=inf, axis=0) * 2 + norm(x, ord=-inf, axis=0)"
        " + norm(x, ord=3, axis=0) + norm(x, ord=0, axis=0) + sum(norm(A, ord=1, axis=1) * w)",
        {"x": np.array([1.5, -2.0, 0.25]), "A": normal(2, 3), "w": normal(2)},
        lambda x, A, w: (
            np.linalg.norm(x, 1)
            + 2 * np.linalg.norm(x, np.inf)
            + np.linalg.norm(x, -np.inf)
            + np.linalg.norm(x, 3)
            + np.linalg.norm(x, 0)
            + np.linalg.norm(A, 1, axis=1) @ w
        ),
        lambda x, A, w: {
            "x": np.sign(x)
            + 2 * np.array([0.0, -1.0, 0.0])
            + np.array([0.0, 0.0, 1.0])
            + np.sign(x) * np.abs(x) ** 2 / np.linalg.norm(x, 3) ** 2,
            "A": np.sign(A) * w[:, None],
            "w": np.linalg.norm(A, 1, axis=1),
        },
        lambda x, A, w: (
            np.sum(np.abs(x))
            + 2 * max(abs(v) for v in x)
            + min(abs(v) for v in x)
            + mpmath.cbrt(np.sum(np.abs(x) ** 3))
            + 3
            + np.sum(np.sum(np.abs(A), axis=1) * w)
        ),
    ),
]


# einsum's cases draw from their own generator: the tables above keep their numbers.
_EIN = np.random.default_rng(SEED + 14)
_EA, _EB, _EC, _ED = (_EIN.standard_normal(s) for s in ((2, 3), (3, 4), (2, 4), (3, 3)))
_ET, _EM, _EW = (_EIN.standard_normal(s) for s in ((2, 2, 3), (3, 2), (2, 2, 2)))
_ER, _EQ, _ES, _EP = (_EIN.standard_normal(s) for s in ((1, 3), (2, 3), (2, 2, 3), (2, 3)))


def _mp_trace_terms(A, B, C, D, v, x, y):
    n = range(3)
    return (
        sum(A[i, j] * B[j, k] * C[i, k] for i in range(2) for j in n for k in range(4))
        + sum(D[i, i] for i in n)
        + sum(D[i, i] * v[i] for i in n)
        + sum(x[i] * D[i, j] * y[j] for i in n for j in n)
    )


EINSUM_CASES = [
    case(
        "einsum-products-traces-diagonals",
        "sum(einsum('ij,jk->ik', A, B) * C) + einsum('ii', D) + sum(einsum('ii->i', D) * v)"
        " + einsum('i,ij,j', x, D, y)",
        {
            "A": _EA,
            "B": _EB,
            "C": _EC,
            "D": _ED,
            "v": _EIN.standard_normal(3),
            "x": _EIN.standard_normal(3),
            "y": _EIN.standard_normal(3),
        },
        lambda A, B, C, D, v, x, y: np.sum(A @ B * C) + np.trace(D) + np.diag(D) @ v + x @ D @ y,
        lambda A, B, C, D, v, x, y: {  # the Matrix Cookbook's (2.5.1), (2.5.2) and (2.4.1)
            "A": C @ B.T,
            "B": A.T @ C,
            "C": A @ B,
            "D": np.eye(3) + np.diag(v) + np.outer(x, y),
            "v": np.diag(D),
            "x": D @ y,
            "y": D.T @ x,
        },
        _mp_trace_terms,
    ),
    case(
        "einsum-ellipsis-broadcast-sums",
        "sum(einsum('...ij,...jk->...ik', T, M) * W) + sum(einsum('ij->i', Q) * u)"
        " + sum(einsum('ij,ij->ij', R, Q) * P) + sum(einsum('iij->ij', S) * P)",
        {
            "T": _ET,
            "M": _EM,
            "W": _EW,
            "Q": _EQ,
            "u": _EIN.standard_normal(2),
            "R": _ER,
            "P": _EP,
            "S": _ES,
        },
        lambda T, M, W, Q, u, R, P, S: (
            np.sum(T @ M * W) + Q.sum(1) @ u + np.sum(R * Q * P) + np.sum(S[[0, 1], [0, 1]] * P)
        ),
        lambda T, M, W, Q, u, R, P, S: {
            "T": W @ M.T,
            "M": T[0].T @ W[0] + T[1].T @ W[1],
            "W": T @ M,
            "Q": u[:, None] + R * P,
            "u": Q.sum(1),
            "R": np.sum(Q * P, axis=0, keepdims=True),  # R's row broadcast over Q's rows
            "P": R * Q + S[[0, 1], [0, 1]],
            "S": np.stack([np.stack([P[0], 0 * P[0]]), np.stack([0 * P[1], P[1]])]),
        },
        lambda T, M, W, Q, u, R, P, S: (
            sum(
                T[b, i, j] * M[j, k] * W[b, i, k]
                for b in range(2)
                for i in range(2)
                for j in range(3)
                for k in range(2)
            )
            + sum(Q[i, j] * u[i] for i in range(2) for j in range(3))
            + sum(R[0, j] * Q[i, j] * P[i, j] for i in range(2) for j in range(3))
            + sum(S[i, i, j] * P[i, j] for i in range(2) for j in range(3))
        ),
    ),
]


# The singular values' cases draw from their own generator too.
_SVG = np.random.default_rng(SEED + 15)
_SA, _SB, _SC = (_SVG.standard_normal(s) for s in ((3, 2), (2, 3), (2, 3)))
_SP, _SQ, _SR, _SS = (_SVG.standard_normal(s) for s in ((3, 2), (2, 2), (2, 3), (3, 2)))


def _np_svd(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy's thin SVD, U, s, V, each pair's sign set by v's largest component."""
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    v = vh.T
    sign = np.sign(v[np.abs(v).argmax(axis=0), range(len(s))])
    return u * sign, s, v * sign


def _mp_svd(a: Any) -> tuple[Any, Any, Any]:
    """mpmath's thin SVD, descending, with the same signs: U, s, V as object arrays."""
    u, s, vt = mpmath.svd_r(mpmath.matrix(np.asarray(a, dtype=object).tolist()),
                            full_matrices=False)  # fmt: skip
    order = sorted(range(len(s)), key=lambda k: -s[k])
    U = np.array(u.tolist(), dtype=object)[:, order]
    V = np.array(vt.T.tolist(), dtype=object)[:, order]
    for j in range(V.shape[1]):
        if max(V[:, j], key=abs) < 0:
            U[:, j], V[:, j] = -U[:, j], -V[:, j]
    return U, np.array([s[k] for k in order], dtype=object), V


def _mp_pinv(a: Any) -> Any:
    """A⁺ of a matrix of full rank: (AᵀA)⁻¹Aᵀ if tall, Aᵀ(AAᵀ)⁻¹ if wide, in mpmath."""
    m = mpmath.matrix(np.asarray(a, dtype=object).tolist())
    out = (m.T * m) ** -1 * m.T if m.rows >= m.cols else m.T * (m * m.T) ** -1
    return np.array(out.tolist(), dtype=object)


def _pinv_grad(a: np.ndarray, gbar: np.ndarray) -> np.ndarray:
    """Golub and Pereyra's adjoint: −XᵀḠXᵀ + (I − AX)ḠᵀXXᵀ + XᵀXḠᵀ(I − XA), X = A⁺."""
    x = np.linalg.pinv(a)
    m, n = a.shape
    return (-x.T @ gbar @ x.T + (np.eye(m) - a @ x) @ gbar.T @ x @ x.T
            + x.T @ x @ gbar.T @ (np.eye(n) - x @ a))  # fmt: skip


def _vectors_grads(a: np.ndarray, ubar: np.ndarray, vbar: np.ndarray) -> np.ndarray:
    """Townsend's adjoint of U and V (2016), in numpy."""
    u, s, v = _np_svd(a)
    d = s[None, :] ** 2 - s[:, None] ** 2
    f = np.divide(1.0, d, out=np.zeros_like(d), where=~np.eye(len(s), dtype=bool))
    du = u @ (f * (u.T @ ubar - ubar.T @ u)) @ np.diag(s) @ v.T
    du += (np.eye(a.shape[0]) - u @ u.T) @ ubar @ np.diag(1 / s) @ v.T
    dv = u @ np.diag(s) @ (f * (v.T @ vbar - vbar.T @ v)) @ v.T
    dv += u @ np.diag(1 / s) @ vbar.T @ (np.eye(a.shape[1]) - v @ v.T)
    return du + dv


def _np_matrix_norm_grads(B: np.ndarray) -> np.ndarray:
    """Frobenius, ord=1 (the largest column sum of |B|) and ord=-inf (the smallest row sum)."""
    column = np.zeros_like(B)
    column[:, np.abs(B).sum(0).argmax()] = 1
    row = np.zeros_like(B)
    row[np.abs(B).sum(1).argmin(), :] = 1
    return B / np.linalg.norm(B) + np.sign(B) * (column + row)


SVD_CASES = [
    case(
        "svdvals-and-matrix-norms",
        "sum(svdvals(A) * w) + norm(A, ord='nuc') + norm(A, ord=2, axis=[-2, -1])"
        " + norm(B, ord='fro') + norm(B, ord=1, axis=[0, 1]) + norm(B, ord=-inf, axis=[-2, -1])",
        {"A": _SA, "w": _SVG.standard_normal(2), "B": _SB},
        lambda A, w, B: (
            np.linalg.svd(A, compute_uv=False) @ w
            + np.linalg.norm(A, "nuc")
            + np.linalg.norm(A, 2)
            + np.linalg.norm(B, "fro")
            + np.linalg.norm(B, 1)
            + np.linalg.norm(B, -np.inf)
        ),
        lambda A, w, B: {  # ∂σᵢ/∂A = uᵢvᵢᵀ: the nuclear norm's gradient is UVᵀ
            "A": _np_svd(A)[0] @ np.diag(w + 1 + [1, 0]) @ _np_svd(A)[2].T,
            "w": np.linalg.svd(A, compute_uv=False),
            "B": _np_matrix_norm_grads(B),
        },
        lambda A, w, B: (
            np.sum(_mp_svd(A)[1] * w)
            + np.sum(_mp_svd(A)[1])
            + _mp_svd(A)[1][0]
            + mpmath.sqrt(np.sum(B * B))
            + max(np.sum(np.abs(B), axis=0))
            + min(np.sum(np.abs(B), axis=1))
        ),
    ),
    case(
        "svd-vectors-and-pinv",
        "sum(svd_left(A) * P) + sum(svd_right(A) * Q) + sum(pinv(A) * R) + sum(pinv(C) * S)",
        {"A": _SA, "P": _SP, "Q": _SQ, "R": _SR, "C": _SC, "S": _SS},
        lambda A, P, Q, R, C, S: (
            np.sum(_np_svd(A)[0] * P)
            + np.sum(_np_svd(A)[2] * Q)
            + np.sum(np.linalg.pinv(A) * R)
            + np.sum(np.linalg.pinv(C) * S)
        ),
        lambda A, P, Q, R, C, S: {
            "A": _vectors_grads(A, P, Q) + _pinv_grad(A, R),
            "P": _np_svd(A)[0],
            "Q": _np_svd(A)[2],
            "R": np.linalg.pinv(A),
            "C": _pinv_grad(C, S),
            "S": np.linalg.pinv(C),
        },
        lambda A, P, Q, R, C, S: (
            np.sum(_mp_svd(A)[0] * P)
            + np.sum(_mp_svd(A)[2] * Q)
            + np.sum(_mp_pinv(A) * R)
            + np.sum(_mp_pinv(C) * S)
        ),
    ),
]


ALL_CASES = [
    *EINSUM_CASES,
    *SVD_CASES,
    *NORM_CASES,
    *PRODUCTS_OF_ARRAYS_CASES,
    *ORDER_CASES,
    *BUILDING_CASES,
    *GATHER_CASES,
    *JOINING_CASES,
    *STATISTICS_CASES,
    *ARRANGING_CASES,
    *AXES_CASES,
    *SPECIAL_CASES,
    *MATRIX_CASES,
    *CONDITIONAL_CASES,
    *HELPER_CASES,
    *REDUCTION_CASES,
    *SOFTMAX_CASES,
    *EDGE_CASES,
    *MATMUL_CASES,
    *PRODUCT_CASES,
    *SLICE_CASES,
    *LITERAL_CASES,
    *FUNCTION_CASES,
]


# --- 1-5. values and gradients against numpy, closed forms and mpmath ------------------------


def value_and_gradient(c: Case):
    result = evaluate(c.expr, c.env)
    assert not result.faults, [str(f) for f in result.faults]
    return result


@pytest.mark.parametrize("c", [c.param() for c in ALL_CASES])
def test_value_matches_numpy_and_mpmath(c: Case) -> None:
    result = value_and_gradient(c)
    assert_close(result.value, c.value(**c.env), what="value vs numpy")
    assert_close(result.value, mp_value(c.mp, c.env), what="value vs mpmath")


@pytest.mark.parametrize("c", [c.param() for c in ALL_CASES])
def test_gradient_matches_closed_form(c: Case) -> None:
    result = value_and_gradient(c)
    want = c.grads(**c.env)
    assert set(result.gradient) == set(c.env)
    for name, g in want.items():
        g = np.broadcast_to(g, np.shape(c.env[name]))
        assert_close(result.gradient[name], g, what=f"d/d{name} vs closed form")


@pytest.mark.parametrize("c", [c.param() for c in ALL_CASES if c.smooth])
def test_gradient_matches_mpmath_central_differences(c: Case) -> None:
    result = value_and_gradient(c)
    for name, g in mp_gradient(c.mp, c.env).items():
        assert_close(result.gradient[name], g, what=f"d/d{name} vs mpmath")


def test_closed_forms_and_oracle_agree_at_a_two_way_tie() -> None:
    """At a tie of two, a central difference is the even split: the conventions meet."""
    x = np.array([1.0, 3.0, 3.0])
    (g,) = mp_gradient(lambda x: np.max(x), {"x": x}).values()
    assert_close(g, [0.0, 0.5, 0.5])
    assert_close(evaluate("max(x)", {"x": x}).gradient["x"], [0.0, 0.5, 0.5])


def test_three_way_tie_is_split_in_thirds() -> None:
    r = evaluate("max(x) + min(y, axis=0)", {"x": [2.0, 2.0, 2.0], "y": [[1.0], [1.0], [1.0]]})
    assert_close(r.gradient["x"], np.full(3, 1 / 3))
    assert_close(r.gradient["y"], np.full((3, 1), 1 / 3))


def test_overflow_free_results_are_finite() -> None:
    """The edge cases above, explicitly: no inf, no nan, no fault."""
    for expr, x, want in [
        ("norm(x)", [3e200, -4e200], 5e200),
        ("norm(x)", [3e-200, 4e-200], 5e-200),
        ("logsumexp(x)", [800.0, 800.0], 800 + math.log(2)),
        ("logsumexp(x)", [-800.0, -800.0], -800 + math.log(2)),
    ]:
        r = evaluate(expr, {"x": x})
        assert r.finite and not r.faults
        assert_close(r.value, want, what=expr)
    r = evaluate("softmax(x)", {"x": [800.0, -800.0, 800.0]})
    assert_close(r.value, [0.5, 0.0, 0.5])


def test_gradient_of_sum_of_softmax_is_zero_to_rounding() -> None:
    """Σ softmax = 1, so its gradient is 0; gradcli's s·(1 - Σ s) leaves a rounding residue."""
    x = np.random.default_rng(SEED).standard_normal((3, 4))
    g = evaluate("softmax(x)", {"x": x}).gradient["x"]
    assert np.max(np.abs(g)) <= 4 * np.finfo(float).eps


def test_softmax_default_axis_is_the_last() -> None:
    x = np.random.default_rng(SEED).standard_normal((2, 3, 4))
    assert_close(evaluate("softmax(x)", {"x": x}).value, np_softmax(x, -1))
    assert_close(evaluate("softmax(x, -1)", {"x": x}).value, np_softmax(x, -1))


# --- semantics worth pinning down ------------------------------------------------------------


def test_max_with_a_second_positional_argument_is_elementwise() -> None:
    """max(x, 1) is the elementwise maximum of x and 1, not max along axis 1 (unlike sum(x, 1));
    the axis of max and min must be given by name."""
    x = np.array([[0.5, 2.0], [3.0, -1.0]])
    assert_close(evaluate("max(x, 1)", {"x": x}).value, np.maximum(x, 1))
    assert_close(evaluate("max(x, axis=1)", {"x": x}).value, np.max(x, axis=1))
    assert_close(evaluate("min(x, 0, 1)", {"x": x}).value, np.minimum(np.minimum(x, 0), 1))


def test_axis_none_cannot_be_written() -> None:
    """Every axis is reached by leaving axis out; `None` is read as a variable name."""
    with pytest.raises(GradcliError) as info:
        evaluate("sum(x, axis=None)", {"x": [1.0, 2.0]})
    assert "axis must be a whole number" in info.value.message
    assert span_text(info.value) == "None"


def test_literal_rows_broadcast_like_numpy_arrays() -> None:
    """Literal elements are broadcast together before stacking, so a scalar row fills a row
    (numpy would call [[x, y], z] ragged)."""
    r = evaluate("[[x, y], z]", {"x": 1.0, "y": 2.0, "z": 3.0})
    assert_close(r.value, [[1.0, 2.0], [3.0, 3.0]])
    assert r.gradient["z"] == 2.0
    r = evaluate("[v, A]", {"v": [1.0, 2.0], "A": [[3.0, 4.0], [5.0, 6.0]]})
    assert r.value.shape == (2, 2, 2)
    assert_close(r.gradient["v"], [2.0, 2.0])


def test_axis_is_folded_from_constants() -> None:
    x = np.random.default_rng(SEED).standard_normal((2, 3))
    assert_close(evaluate("sum(x, axis=2 - 1)", {"x": x}).value, x.sum(axis=1))
    assert_close(evaluate("sum(x, axis=-0)", {"x": x}).value, x.sum(axis=0))


def test_reductions_of_a_scalar_are_the_scalar() -> None:
    for op in ("sum", "mean", "prod", "max", "min", "logsumexp"):
        r = evaluate(f"{op}(x)", {"x": -2.5})
        assert (float(r.value), float(r.gradient["x"])) == (-2.5, 1.0), op
    r = evaluate("norm(x)", {"x": -2.5})
    assert (float(r.value), float(r.gradient["x"])) == (2.5, -1.0)


# --- 5. user functions: errors point at the call --------------------------------------------

FUNCTION_ERRORS = [
    ("f(t) = f(t) + sum(t); f(x)", "f calls itself", "f", 7),
    ("sq(t) = sum(t^2); 1 + sq(x, y)", "sq takes 1 argument, but 2 were given", "sq(x, y)", 22),
    ("f(t, u) = sum(t * u); f(x)", "f takes 2 arguments, but 1 was given", "f(x)", 22),
    ("f(t) = sum(t); f(t=x)", "takes its arguments by position", "f(t=x)", 15),
    ("g(t) = h(t); g(x)", "unknown function 'h'", "h", 7),
    # g was defined before h, so its h is unknown; lowering reports it as recursion instead
    ("g(t) = h(t); h(t) = g(t); h(x)", "h calls itself", "h", 7),
    ("sum(t) = t; sum(x)", "'sum' is a built-in function", "sum", 0),
]


@pytest.mark.parametrize(("expr", "message", "text", "start"), FUNCTION_ERRORS)
def test_function_errors_point_at_the_call(expr: str, message: str, text: str, start: int):
    with pytest.raises(GradcliError) as info:
        evaluate(expr, {"x": [1.0, 2.0], "y": [3.0, 4.0]})
    err = info.value
    assert message in err.message
    assert span_text(err) == text
    assert err.span.start == start


def test_redefined_function_may_reach_its_earlier_version() -> None:
    expr = "h(t) = sum(t); g(t) = h(t) * 2; h(t) = g(t) + 1; h(x)"
    r = evaluate(expr, {"x": [1.0, 2.0]})
    assert float(r.value) == 7.0


def test_a_function_body_is_lowered_once_per_argument_nodes(monkeypatch) -> None:
    """f_k(t) = f_{k-1}(t) + f_{k-1}(t) has 2^k call paths and a graph of k + 2 nodes: lowering
    walks each body once for the same argument node (it walked every path, 22 levels took over
    a minute). The walk is counted, so that going back to a walk per path fails, not hangs."""
    from gradcli.language import lower as lowering

    walked = 0
    children = lowering.ast.children

    def counted(node):
        nonlocal walked
        walked += 1
        if walked > 10_000:
            raise AssertionError("lowering walks the bodies again for every call path")
        return children(node)

    monkeypatch.setattr(lowering.ast, "children", counted)
    levels = 60
    lines = ["f0(t) = sin(t)"] + [f"f{k}(t) = f{k - 1}(t) + f{k - 1}(t)" for k in range(1, 61)]
    r = evaluate("\n".join([*lines, f"f{levels}(x) + f{levels}(y)"]), {"x": 0.5, "y": 1.0})
    assert_close(r.value, 2.0**levels * (np.sin(0.5) + np.sin(1.0)))
    assert_close(r.gradient["x"], 2.0**levels * np.cos(0.5))
    assert walked < 50 * levels


# --- 6. batched evaluation equals evaluation item by item --------------------------------------


def switches(output: Node) -> list[Node]:
    """The switching functions of the kinks, as the checker builds them (they have batch rules
    too: top_gap_max, top_gap_min, norm)."""
    out = []
    for node in toposort([output]):
        prim = REGISTRY.get(node.op)
        if prim is not None and prim.kink is not None:
            with node.graph.deriving(node):
                switch = prim.kink(*node.inputs, *node.attrs)
            if isinstance(switch, Node):
                out.append(switch)
    return out


def witnesses(output: Node) -> list[Node]:
    """The values the checker watches beside the switches (the registry's `singular`: poles,
    branch points, the gaps to the next values of max and min), as it builds them."""
    out = []
    for node in toposort([output]):
        prim = REGISTRY.get(node.op)
        if prim is not None and prim.singular is not None:
            with node.graph.deriving(node):
                witness = prim.singular(*node.inputs, *node.attrs)
            if isinstance(witness, Node):
                out.append(witness)
    return out


def checker_nodes(program, shapes: dict[str, tuple]) -> list[Node]:
    """What the checker evaluates: value, gradient, |J|-weighted gradient, switches, the
    switches' normals by forward mode (along each variable's own value, as a tangent), and the
    watched values."""
    wrt = list(program.variables.values())
    kinks = switches(program.output)
    normals = jvps(kinks, {v: v for v in wrt}, shapes) if kinks else []
    return [
        program.output,
        *grad(program.output, wrt, shapes),
        *grad(program.output, wrt, shapes, magnitude=True),
        *kinks,
        *[n for n in normals if n is not None],
        *witnesses(program.output),
    ]


def batch_items(
    key: str, env: dict[str, np.ndarray], shared: Sequence[str]
) -> list[dict[str, np.ndarray]]:
    """The case's own point first (a tie, a zero, ±800...), then random points of the same shapes;
    `shared` variables keep the first item's value."""
    rng = np.random.default_rng([SEED, zlib.crc32(key.encode())])
    items = [dict(env)]
    for _ in range(BATCH - 1):
        items.append({n: rng.standard_normal(np.shape(v)) for n, v in env.items()})
    for item in items:
        item.update({n: env[n] for n in shared})
    return items


def assert_batched_matches_items(
    nodes: list[Node], items: list[dict[str, np.ndarray]], shared: Sequence[str]
) -> None:
    env = {
        n: np.asarray(items[0][n])[None] if n in shared else np.stack([it[n] for it in items])
        for n in items[0]
    }
    batched, _, _ = run(nodes, env, batched=True)
    for k, item in enumerate(items):
        alone, _, _ = run(nodes, item)
        for j, (b, a) in enumerate(zip(batched, alone, strict=True)):
            b = np.broadcast_to(b, (len(items), *np.shape(a)))[k]
            assert_close(b, a, rtol=1e-13, what=f"item {k}, output {j} ({nodes[j].op})")


SHARINGS = [
    pytest.param(c, shared, id=f"{c.id}-shared:{','.join(shared) or 'none'}")
    for c in ALL_CASES
    for shared in ([], list(c.env)[:1], list(c.env))
    if len(shared) != 1 or len(c.env) > 1  # with one variable, sharing the first shares all
]


@pytest.mark.parametrize(("c", "shared"), SHARINGS)
def test_batched_evaluation_equals_item_by_item(c: Case, shared: list[str]) -> None:
    """B = 5 items in one pass equal 5 evaluations; `shared` variables have batch length 1."""
    program = compile_program(c.expr)
    nodes = checker_nodes(program, {n: np.shape(v) for n, v in c.env.items()})
    assert_batched_matches_items(nodes, batch_items(c.id, c.env, shared), shared)


# --- 7. shape errors are located GradcliErrors ------------------------------------------------

u3, u2 = [1.0, 2.0, 3.0], [1.0, 2.0]
M23 = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]

CLEAN_SHAPE_ERRORS = [
    ("1 + sum(A @ v)", {"A": M23, "v": [1.0] * 4}, "matching inner dimensions", "A @ v"),
    ("A @ B", {"A": M23, "B": M23}, "matching inner dimensions", "A @ B"),
    ("A @ B", {"A": np.ones((2, 3, 4)), "B": np.ones((3, 4, 5))}, "broadcast", "A @ B"),
    ("2 @ x", {"x": u3}, "needs arrays on both sides", "2 @ x"),
    ("x @ y", {"x": u3, "y": 2.0}, "needs arrays on both sides", "x @ y"),
    ("sum(x, axis=2)", {"x": u3}, "axis 2 is out of range", "sum(x, axis=2)"),
    ("mean(x, 1) + 1", {"x": u3}, "axis 1 is out of range", "mean(x, 1)"),
    ("max(A, axis=-3)", {"A": M23}, "axis -3 is out of range", "max(A, axis=-3)"),
    ("softmax(x, axis=1)", {"x": u3}, "axis 1 is out of range", "softmax(x, axis=1)"),
    ("softmax(x)", {"x": 2.0}, "axis -1 is out of range", "softmax(x)"),
    ("norm(x, axis=3)", {"x": u3}, "axis 3 is out of range", "norm(x, axis=3)"),
    ("norm(x, 1)", {"x": u3}, "with ord and axis by name", "norm(x, 1)"),
    ("norm(x, ord=1)", {"x": u3}, "norm with ord=1 needs its axis", "ord"),
    ("norm(x, ord=y, axis=0)", {"x": u3, "y": 1.0}, "ord is written in the program", "y"),
    ("logsumexp(A, axis=2)", {"A": M23}, "axis 2 is out of range", "logsumexp(A, axis=2)"),
    ("prod(x, axis=1)", {"x": u3}, "axis 1 is out of range", "prod(x, axis=1)"),
    ("x[5] * 2", {"x": u3}, "out of range", "x[5]"),
    ("x[-4]", {"x": u3}, "out of range", "x[-4]"),
    ("x[0, 0]", {"x": u3}, "too many indices", "x[0, 0]"),
    ("x[0]", {"x": 2.0}, "too many indices", "x[0]"),
    ("tril(x)", {"x": u3}, "tril takes a matrix", "tril(x)"),
    ("diff(x, -1)", {"x": u3}, "diff's n is a whole number ≥ 0", "diff(x, -1)"),
    ("diff(2 + y)", {"y": 2.0}, "diff takes an array", "diff(2 + y)"),
    ("roll(x, [1, 2], axis=0)", {"x": M23}, "one shift per axis", "roll(x, [1, 2], axis=0)"),
    ("roll(x, [1, 2])", {"x": M23}, "takes one shift", "roll(x, [1, 2])"),
    ("flip(x, [0, 0])", {"x": M23}, "the same axis twice", "flip(x, [0, 0])"),
    ("cumsum(x, axis=2)", {"x": M23}, "axis 2 is out of range", "cumsum(x, axis=2)"),
    ("concatenate([A, x])", {"A": M23, "x": u3}, "(2, 3) and (3,)", "concatenate([A, x])"),
    (
        "concatenate([A, x[None]], axis=1)",
        {"A": M23, "x": u2},
        "of one shape but along axis 1, not (2, 3) and (1, 2)",
        "concatenate([A, x[None]], axis=1)",
    ),
    ("stack([x, y])", {"x": u3, "y": u2}, "one shape, not (3,) and (2,)", "stack([x, y])"),
    ("concatenate(x)", {"x": u3}, "a list of arrays written in the program", "x"),
    (
        "concatenate([x, y])",
        {"x": u3, "y": 2.0},
        "joins arrays, not numbers",
        "concatenate([x, y])",
    ),
    ("stack([x, x], axis=y)", {"x": u3, "y": 2.0}, "axis is one whole number", "y"),
    ("stack([x, x], axis=2)", {"x": u3}, "axis 2 is out of range", "stack([x, x], axis=2)"),
    ("tile(x, [2, -1])", {"x": u3}, "whole numbers ≥ 0", "tile(x, [2, -1])"),
    ("repeat(x, 2, axis=1)", {"x": u3}, "axis 1 is out of range", "repeat(x, 2, axis=1)"),
    ("repeat(x, [1, 2, 3])", {"x": u3}, "one whole number ≥ 0", "repeat(x, [1, 2, 3])"),
    ("squeeze(x, 0)", {"x": u3}, "only remove an axis of length 1", "squeeze(x, 0)"),
    ("reshape(x, [-1, 2])", {"x": u3}, "cannot reshape (3,) into (-1, 2)", "reshape(x, [-1, 2])"),
    ("reshape(x, [-1, -1])", {"x": u3}, "at most one -1", "reshape(x, [-1, -1])"),
    ("x[[0, 3]]", {"x": u3}, "index 3 is out of range for axis 0 of length 3", "x[[0, 3]]"),
    ("sum(x[[0.5]])", {"x": u3}, "an index must be a whole number, not 0.5", "x[[0.5]]"),
    ("x[1:, [0]]", {"x": M23}, "combine only with ':'", "x[1:, [0]]"),
    ("x[[0], 1, [1]]", {"x": [M23]}, "combine only with ':'", "x[[0], 1, [1]]"),
    ("A[[0, 1], [0, 1, 2]]", {"A": M23}, "cannot be broadcast together", "A[[0, 1], [0, 1, 2]]"),
    (
        "take_along_axis(A, [0, 1], 1)",
        {"A": M23},
        "as many axes as x",
        "take_along_axis(A, [0, 1], 1)",
    ),
    ("one_hot([0, 3], 3)", {}, "index 3 is out of range", "one_hot([0, 3], 3)"),
    ("one_hot(x, 0)", {"x": u3}, "one_hot's n is a whole number ≥ 1", "one_hot(x, 0)"),
    (
        "polyval([[1, 2]], x)",
        {"x": u3},
        "a vector of coefficients, not shape (1, 2)",
        "polyval([[1, 2]], x)",
    ),
    ("polyval(2, x)", {"x": u3}, "a vector of coefficients, not shape ()", "polyval(2, x)"),
    ("arange(x)", {"x": 2.0}, "arange's stop is a number written in the program", "x"),
    ("arange(0, 1, 0)", {}, "arange's step cannot be 0", "0"),
    ("linspace(0, 1, -1)", {}, "linspace's num is a whole number ≥ 0", "-1"),
    ("linspace(0, 1, 2, num=3)", {}, "num is given twice", "num"),
    ("sort(y)", {"y": 2.0}, "sort takes an array", "sort(y)"),
    ("sort(x, axis=1)", {"x": u3}, "axis 1 is out of range", "sort(x, axis=1)"),
    ("cumprod(x, axis=2)", {"x": M23}, "axis 2 is out of range", "cumprod(x, axis=2)"),
    (
        "tensordot(A, A, axes=[[0], [0, 1]])",
        {"A": M23},
        "axes is a whole number, or two lists of axes, in the program",
        "[[0], [0, 1]]",
    ),
    (
        "tensordot(A, A, axes=[[0, 0], [0, 1]])",
        {"A": M23},
        "the same axis twice",
        "tensordot(A, A, axes=[[0, 0], [0, 1]])",
    ),
    (
        "tensordot(A, A, axes=[[1], [0]])",
        {"A": M23},
        "lengths 3 and 2 differ",
        "tensordot(A, A, axes=[[1], [0]])",
    ),
    ("tensordot(A, A, axes=-1)", {"A": M23}, "a whole number ≥ 0", "tensordot(A, A, axes=-1)"),
    ("inner(x, y)", {"x": u3, "y": u2}, "lengths 3 and 2 differ", "inner(x, y)"),
    (
        "einsum('ij,jk->ik', A, A)",
        {"A": M23},
        "'j' has length 3 in operand 1 (2, 3) and 2 in operand 2 (2, 3)",
        "einsum('ij,jk->ik', A, A)",
    ),
    ("einsum('ij,j', A)", {"A": M23}, "name 2 operands, but 1 is given", "'ij,j'"),
    (
        "einsum('ijk', A)",
        {"A": M23},
        "'ijk' names 3 axes, but operand 1 has shape (2, 3)",
        "einsum('ijk', A)",
    ),
    ("einsum('ii', A)", {"A": M23}, "a diagonal over 'i' of operand 1", "einsum('ii', A)"),
    ("einsum('i1', A)", {"A": M23}, "letters and '...', not '1'", "'i1'"),
    ("einsum('ij->k', A)", {"A": M23}, "names 'k', which no operand does", "'ij->k'"),
    ("einsum('ij->ii', A)", {"A": M23}, "names 'i' twice", "'ij->ii'"),
    ("einsum('...j->j', A)", {"A": M23}, "write '...' in the output", "einsum('...j->j', A)"),
    ("einsum(A, A)", {"A": M23}, "first argument is its subscripts", "A"),
    ("einsum('ij', A, optimize=1)", {"A": M23}, "no argument named optimize", "optimize"),
    ("einsum('ij,ij', A, 'ij')", {"A": M23}, "one string", "'ij'"),
    ("sum('ij')", {}, "sum takes no string", "'ij'"),
    ("x + 'ij'", {"x": u3}, "a string is not a value", "'ij'"),
    ("cross(x, y)", {"x": u2, "y": u2}, "index 2 is out of range", "cross(x, y)"),
    ("eigvalsh(A)", {"A": M23}, "eigvalsh needs a square matrix", "eigvalsh(A)"),
    (
        "svdvals(x)",
        {"x": u3},
        "svdvals needs a matrix (or a stack of them), not shape (3,)",
        "svdvals(x)",
    ),
    ("pinv(x)", {"x": u3}, "pinv needs a matrix", "pinv(x)"),
    ("norm(A, ord='max')", {"A": M23}, "a number, 'fro' or 'nuc', not 'max'", "'max'"),
    ("norm(A, ord=2)", {"A": M23}, "norm with ord=2 needs its axis", "ord"),
    ("norm(A, ord=3, axis=[0, 1])", {"A": M23}, "no matrix norm of ord=3", "ord"),
    ("norm(A, ord='nuc', axis=[0, 1])", {"A": M23}, "write axis=[-2, -1]", "axis"),
    ("norm(A, axis=[0, -1])", {"A": M23}, "counted alike", "[0, -1]"),
    ("norm(A, axis=[1, 1])", {"A": M23}, "two different ones", "[1, 1]"),
    ("sum(A, ord='fro')", {"A": M23}, "sum takes no string", "'fro'"),
    ("var(x, ddof=3)", {"x": u3}, "needs more than 3 elements, not 3", "var(x, ddof=3)"),
    ("std(x, 1, 3)", {"x": M23}, "more than 3 elements along axis 1", "std(x, 1, 3)"),
    ("var(x, ddof=-1)", {"x": u3}, "ddof is a whole number ≥ 0", "var(x, ddof=-1)"),
    ("sum(x, keepdims=True)", {"x": M23}, "keepdims=True needs the axis", "keepdims"),
    ("max(x, 0, keepdims=True)", {"x": M23}, "keepdims=True needs the axis", "keepdims"),
    ("sin(x, keepdims=True)", {"x": M23}, "sin reduces no axis", "keepdims"),
    ("sum(x, 0, keepdims=2)", {"x": M23}, "keepdims is True or False", "keepdims"),
    ("[u, v]", {"u": u3, "v": u2}, "broadcast", "[u, v]"),
    ("x[i]", {"x": u3, "i": 0.5}, "an index must be a whole number, not 0.5", "x[i]"),
    ("x[1.5]", {"x": u3}, "an index must be a whole number", "1.5"),
    ("x[::0]", {"x": u3}, "a slice step cannot be 0", "0"),
    ("sum(x, axis=y)", {"x": u3, "y": 0.0}, "axis must be a whole number", "y"),
    ("sum(x, 0, axis=0)", {"x": u3}, "axis is given twice", "axis"),
    ("sum(x, 0, 1)", {"x": M23}, "sum takes 1 argument, but 3 were given", "sum(x, 0, 1)"),
    ("sum(x, foo=0)", {"x": u3}, "no argument named foo", "foo"),
    ("max(x, y, axis=0)", {"x": u3, "y": u3}, "axis is for max over one array", "axis"),
    ("dot(x)", {"x": u3}, "dot takes 2 arguments, but 1 was given", "dot(x)"),
    ("dot(x, y, axis=0)", {"x": u3, "y": u3}, "no argument named axis", "axis"),
]

SHAPE_ERRORS = [
    *CLEAN_SHAPE_ERRORS,
    pytest.param(
        "1 + dot(u, v)",
        {"u": u3, "v": u2},
        "(3,) and (2,)",
        "dot(u, v)",
        id="dot-mismatch",
    ),
    pytest.param(
        "dot(x, y)",
        {"x": 2.0, "y": 3.0},
        "axis -1 is out of range",
        "dot(x, y)",
        id="dot-scalars",
    ),
    pytest.param(
        "transpose(A, 0)",
        {"A": M23},
        "axes",
        "transpose(A, 0)",
        id="transpose-axes",
    ),
]


@pytest.mark.parametrize(("expr", "env", "message", "text"), SHAPE_ERRORS)
def test_shape_errors_point_at_the_operation(expr: str, env: dict, message: str, text: str):
    with pytest.raises(GradcliError) as info:
        evaluate(expr, env)
    err = info.value
    assert message in err.message
    assert span_text(err) == text
    assert "Traceback" not in str(err)


@pytest.mark.parametrize(("expr", "env", "message", "text"), CLEAN_SHAPE_ERRORS)
def test_shape_errors_are_also_clean_in_batched_evaluation(
    expr: str, env: dict, message: str, text: str
) -> None:
    """The checker evaluates batched: the same errors, not a numpy exception."""
    try:
        program = compile_program(expr)
    except GradcliError:
        return  # rejected when the program is built, before any evaluation
    batch = {n: np.asarray(v, dtype=float)[None] for n, v in env.items()}
    with pytest.raises(GradcliError) as info:
        run([program.output], batch, batched=True)
    assert message in info.value.message
    assert span_text(info.value, program.source) == text


NONFINITE = [
    ("sum(x)", {"x": [1e308, 1e308]}, False),
    ("sum(x, axis=0)", {"x": [[1e308, 1.0], [1e308, 1.0]]}, False),
    ("A @ v", {"A": [[1e308, 1.0], [1e308, 1.0]], "v": [2.0, 1.0]}, False),
    ("prod(x, axis=1)", {"x": [[1e308, 10.0], [1.0, 1.0]]}, False),
    ("mean(x, axis=0)", {"x": np.zeros((0, 3))}, False),  # nan: the mean of nothing
    ("sum(x)", {"x": [1e308, 1e308]}, True),
    ("sum(x, axis=0)", {"x": [[1e308, 1.0], [1e308, 1.0]]}, True),
    ("A @ v", {"A": [[1e308, 1.0], [1e308, 1.0]], "v": [2.0, 1.0]}, True),
]


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # numpy's, from the forward pass
@pytest.mark.parametrize(("expr", "env", "batched"), NONFINITE)
def test_overflow_in_an_array_operation_is_a_located_fault(expr: str, env: dict, batched: bool):
    if batched:
        program = compile_program(expr)
        _, faults, _ = run(
            [program.output], {n: np.asarray(v)[None] for n, v in env.items()}, batched=True
        )
        assert faults
        return
    r = evaluate(expr, env)
    assert not r.finite and r.faults
    expected = "undefined result" if np.isnan(r.value).any() else "overflow"  # mean of nothing
    assert expected in r.faults[0].message and r.faults[0].message.startswith(expr)


def test_prod_of_an_empty_array_is_one() -> None:
    r = evaluate("prod(x)", {"x": np.zeros(0)})
    assert float(r.value) == 1.0 and r.gradient["x"].shape == (0,)


def test_empty_arrays_sum_and_max() -> None:
    r = evaluate("sum(x)", {"x": np.zeros(0)})
    assert float(r.value) == 0.0 and r.gradient["x"].shape == (0,)
    with pytest.raises(GradcliError) as info:
        evaluate("max(x)", {"x": np.zeros(0)})
    assert "zero-size array" in info.value.message and span_text(info.value) == "max(x)"


# --- 8. second derivatives ------------------------------------------------------------------


def hessian_nodes(program, shapes: dict[str, tuple], wrt: str) -> list[Node]:
    """Row i of the Hessian of sum(output) in `wrt`: the gradient of sum(grad · e_i)."""
    x = program.variables[wrt]
    (g,) = grad(program.output, [x], shapes)
    size = math.prod(shapes[wrt])
    rows = []
    for i in range(size):
        e = np.zeros(size)
        e[i] = 1.0
        (row,) = grad(g * program.graph.const(e.reshape(shapes[wrt])), [x], shapes)
        rows.append(row)
    return rows


def hessian(expr: str, env: dict[str, np.ndarray], wrt: str) -> np.ndarray:
    program = compile_program(expr)
    shapes = {n: np.shape(v) for n, v in env.items()}
    rows, _, _ = run(hessian_nodes(program, shapes, wrt), env)
    return np.array([np.ravel(np.broadcast_to(r, shapes[wrt])) for r in rows])


def logsumexp_hessian(x):
    s = np_softmax(x, None)
    return np.diag(s) - np.outer(s, s)


def norm_hessian(x):
    r = np.linalg.norm(x)
    return (np.eye(len(x)) - np.outer(x / r, x / r)) / r


def mean_sum_hessian(x):
    n = len(x)
    return 2 / n * (np.sum(x) * np.eye(n) + np.add.outer(x, x))


@dataclass(frozen=True)
class Hessian:
    expr: str
    env: dict[str, np.ndarray]
    closed: Callable[..., np.ndarray] | None  # the Hessian in `wrt`, flattened; None: mpmath only
    mp: Callable[..., Any]
    wrt: str = "x"

    def param(self) -> Any:
        return pytest.param(self, id=self.expr)


hx, hA, hc, hX = normal(4), normal(3, 4), normal(4), normal(2, 3)

HESSIANS = [
    Hessian("sum(x^3)", {"x": hx}, lambda x: np.diag(6 * x), lambda x: np.sum(x * x * x)),
    # Second derivatives through einsum's rules, and through svdvals' and pinv's, which are
    # written with the singular vectors and pinv itself: mpmath's svd_r and inverses judge them.
    Hessian(
        "sum(einsum('ij,kj->ik', X, X) * W)",
        {"X": _SA, "W": _SVG.standard_normal((3, 3))},
        lambda X, W: np.kron(W + W.T, np.eye(2)),
        lambda X, W: np.sum((X @ X.T) * W),
        wrt="X",
    ),
    Hessian(
        "sum(svdvals(X) * w) + norm(X, ord='nuc')",
        {"X": _SA, "w": np.array([1.5, -2.0])},
        None,
        lambda X, w: np.sum(_mp_svd(X)[1] * (w + 1)),
        wrt="X",
    ),
    Hessian(
        "sum(pinv(X) * R)",
        {"X": _SA, "R": _SR},
        None,
        lambda X, R: np.sum(_mp_pinv(X) * R),
        wrt="X",
    ),
    Hessian("logsumexp(x)", {"x": hx}, logsumexp_hessian, lambda x: MLOG(np.sum(MEXP(x)))),
    Hessian("norm(x)", {"x": hx}, norm_hessian, lambda x: MSQRT(np.sum(x * x))),
    Hessian(
        "mean(x^2) * sum(x)",
        {"x": hx},
        mean_sum_hessian,
        lambda x: np.sum(x * x) / 4 * np.sum(x),
    ),
    Hessian(
        "sum((A @ x)^2)",
        {"A": hA, "x": hx},
        lambda A, x: 2 * A.T @ A,
        lambda A, x: np.sum(np.dot(A, x) ** 2),
    ),
    Hessian("dot(x, x)", {"x": hx}, lambda x: 2 * np.eye(4), lambda x: np.sum(x * x)),
    Hessian(
        "sum(x[1:] * x[:-1])",
        {"x": hx},
        lambda x: np.eye(4, k=1) + np.eye(4, k=-1),
        lambda x: np.sum(x[1:] * x[:-1]),
    ),
    Hessian(
        "max(x)^2",
        {"x": hx},
        lambda x: 2 * np.diag(x == x.max()).astype(float),
        lambda x: np.max(x) ** 2,
    ),
    Hessian(
        "sum(softmax(x) * c)",
        {"x": hx, "c": hc},
        None,
        lambda x, c: np.sum(MEXP(x) * c) / np.sum(MEXP(x)),
    ),
    Hessian(
        "sum(logsumexp(X, axis=1)^2)",
        {"X": hX},
        None,
        lambda X: np.sum(MLOG(np.sum(MEXP(X), axis=1)) ** 2),
        wrt="X",
    ),
    Hessian(
        "sum(transpose(X)^3 * [1, 2])",
        {"X": hX},
        None,
        lambda X: np.sum(np.transpose(X) ** 3 * obj([1, 2])),
        wrt="X",
    ),
    Hessian(
        "sum([x[0] * x[1], x[2] * x[3]]^2)",
        {"x": hx},
        None,
        lambda x: (x[0] * x[1]) ** 2 + (x[2] * x[3]) ** 2,
    ),
]


@pytest.mark.parametrize("h", [h.param() for h in HESSIANS])
def test_second_derivatives(h: Hessian) -> None:
    """grad of grad, row by row, against the closed form and mpmath second differences."""
    got = hessian(h.expr, h.env, h.wrt)
    assert_close(got, got.T, rtol=1e-13, what="symmetry")
    if h.closed is not None:
        assert_close(got, h.closed(**h.env), what="vs closed form")
    assert_close(got, mp_hessian(h.mp, h.env, h.wrt), what="vs mpmath")


@pytest.mark.parametrize("h", [h.param() for h in HESSIANS])
def test_second_derivatives_batched(h: Hessian) -> None:
    program = compile_program(h.expr)
    nodes = hessian_nodes(program, {n: np.shape(v) for n, v in h.env.items()}, h.wrt)
    shared = [n for n in h.env if n != h.wrt]
    assert_batched_matches_items(nodes, batch_items(h.expr, h.env, shared), shared)


def prod_hessian(x: np.ndarray) -> np.ndarray:
    """∂²prod/∂x_i∂x_j = Π_{k∉{i,j}} x_k off the diagonal, 0 on it: by brute force."""
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                h[i, j] = np.prod([x[k] for k in range(n) if k not in (i, j)])
    return h


def cumprod_hessian(x: np.ndarray) -> np.ndarray:
    """∂²/∂xⱼ∂xₘ Σ wᵢ·cumprod(x)ᵢ = Σ_{i≥max(j,m)} wᵢ·Π_{k≤i, k≠j,m} xₖ, for j ≠ m."""
    n = len(x)
    out = np.zeros((n, n))
    for j, m in itertools.permutations(range(n), 2):
        out[j, m] = sum(
            _W4[i] * np.prod([x[k] for k in range(i + 1) if k not in (j, m)])
            for i in range(max(j, m), n)
        )
    return out


EIGVALSH = "sum(eigvalsh(A) * [1, -2, 3])"
CUMPROD = "sum(cumprod(x) * [1, -2, 3, 0.5])"
PROD_HESSIANS = [
    Hessian(
        EIGVALSH, {"A": EIG_A}, None, lambda A: np.sum(_mp_eigvalsh(A) * np.array([1, -2, 3])), "A"
    ),
    Hessian(CUMPROD, {"x": hx}, cumprod_hessian, lambda x: np.sum(_mp_cumprod(x) * _W4)),
    Hessian(
        CUMPROD,
        {"x": np.array([1.5, 0.0, -2.0, 3.0])},
        cumprod_hessian,
        lambda x: np.sum(_mp_cumprod(x) * _W4),
    ),
    # Two zeros, and three: the adjoint after the first 0 is the adjoint of x with that 0 as 1,
    # exact at the second 0 (H[2, 0] was 0 for 30 at [0, 2, 0, 3]).
    *(
        Hessian(
            CUMPROD, {"x": np.array(x)}, cumprod_hessian, lambda x: np.sum(_mp_cumprod(x) * _W4)
        )
        for x in ([0.0, 2.0, 0.0, 3.0], [1.5, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 2.0])
    ),
    Hessian("prod(x)", {"x": hx}, prod_hessian, lambda x: np.prod(x)),
    Hessian("prod(x)", {"x": np.array([1.5, 0.0, -2.0, 3.0])}, prod_hessian, lambda x: np.prod(x)),
    Hessian("prod(x)", {"x": np.array([0.0, 2.0, 0.0, 3.0])}, prod_hessian, lambda x: np.prod(x)),
    Hessian(
        "sum(prod(X, axis=0) * c)",
        {"X": np.array([[1.0, 0.0], [2.0, 3.0], [0.5, -1.0]]), "c": np.array([2.0, -1.0])},
        None,
        lambda X, c: np.sum(np.prod(X, axis=0) * c),
        wrt="X",
    ),
]


@pytest.mark.parametrize(
    "h", [pytest.param(h, id=f"{h.expr}-{i}") for i, h in enumerate(PROD_HESSIANS)]
)
def test_second_derivatives_of_prod_with_and_without_zeros(h: Hessian) -> None:
    """The second derivative of prod is computed without division, so zeros are exact."""
    got = hessian(h.expr, h.env, h.wrt)
    assert_close(got, got.T, rtol=1e-13, what="symmetry")
    if h.closed is not None:
        assert_close(got, h.closed(**h.env), what="vs brute force")
    assert_close(got, mp_hessian(h.mp, h.env, h.wrt), what="vs mpmath")


def brute_third(x: np.ndarray) -> np.ndarray:
    """∂³prod/∂x_i∂x_j∂x_k = Π_{l∉{i,j,k}} x_l for distinct i, j, k, else 0: by the definition."""
    n = len(x)
    out = np.zeros((n, n, n))
    for i, j, k in itertools.permutations(range(n), 3):
        out[i, j, k] = np.prod([x[m] for m in range(n) if m not in (i, j, k)])
    return out


@pytest.mark.parametrize(
    "x", [[1.5, -0.5, 2.0, 0.75, 3.0], [0.0, 2.0, 0.0, 3.0, -1.0], [0.0, 0.0, 0.0, 1.0, 2.0]]
)
def test_third_derivatives_of_prod_with_zeros(x) -> None:
    """Every order of prod is exact, zeros included: the third-derivative tensor, as the
    gradient of each Hessian entry, against the definition."""
    x = np.asarray(x)
    program = compile_program("prod(x)")
    shapes = {"x": x.shape}
    var = program.variables["x"]
    graph = program.graph
    (g,) = grad(program.output, [var], shapes)
    nodes = []
    for i in range(len(x)):
        (h,) = grad(graph.apply("index", g, attrs=((i,),)), [var], shapes)
        for j in range(len(x)):
            (t,) = grad(graph.apply("index", h, attrs=((j,),)), [var], shapes)
            nodes.append(t)
    values, faults, _ = run(nodes, {"x": x})
    assert not faults
    got = np.array(values).reshape(len(x), len(x), len(x))
    assert_close(got, brute_third(x), what="third derivatives")


# --- coverage -------------------------------------------------------------------------------


# The forms that are written rather than called by name, and how to recognise them in a program.
WRITTEN_FORMS = {
    "max(x)": r"\bmax\(\w+\)",
    "min(x)": r"\bmin\(\w+\)",
    "a @ b": r" @ ",
    "x[i]": r"\w\[-?\d",
    "x[a:b]": r"\w\[[^]]*:",
    "[a, b]": r"(^|[(\s,])\[",
    "[[a, b], [c, d]]": r"\[\[",
}


def expressions_under_test() -> list[str]:
    return [
        *(c.expr for c in ALL_CASES),
        *(h.expr for h in HESSIANS),
        *(e[0] for e in FUNCTION_ERRORS),
        *(e[0] for e in CLEAN_SHAPE_ERRORS),
    ]


def test_every_array_function_and_written_form_is_tested() -> None:
    """Adding an array function (a public name without elementwise partials), or a new
    non-elementwise primitive that a program can reach, without cases here fails this test."""
    exprs = expressions_under_test()
    array_functions = [n for n in public_names() if REGISTRY[n].partials is None]
    assert {"sum", "mean", "prod", "norm", "dot", "logsumexp", "softmax", "transpose"} <= set(
        array_functions
    )
    untested = [n for n in array_functions if not any(re.search(rf"\b{n}\(", e) for e in exprs)]
    assert not untested, f"array functions without cases: {untested}"

    missing = [
        form
        for form, pattern in WRITTEN_FORMS.items()
        if not any(re.search(pattern, e) for e in exprs)
    ]
    assert not missing, f"written forms without cases: {missing}"

    ops: set[str] = set()
    for c in ALL_CASES:
        program = compile_program(c.expr)
        nodes = checker_nodes(program, {n: np.shape(v) for n, v in c.env.items()})
        ops |= {n.op for n in toposort(nodes)}
    for h in (*HESSIANS, *PROD_HESSIANS):
        program = compile_program(h.expr)
        shapes = {n: np.shape(v) for n, v in h.env.items()}
        ops |= {n.op for n in toposort(hessian_nodes(program, shapes, h.wrt))}
    reached = {"amax", "amin", "matmul", "index", "stack"}
    assert reached <= ops
    array_primitives = {n for n, p in REGISTRY.items() if p.partials is None and p.forward}
    assert not array_primitives - ops, f"primitives never built: {array_primitives - ops}"


# --- inputs broadcast into unindex and prod_pairs (found by tests/test_fuzz.py) -----------------


@pytest.mark.parametrize(
    ("expr", "env"),
    [
        ("unindex(x, shape=[4], start=[1], stop=[3], step=[1])", {"x": 2.0}),
        ("unindex(x, shape=[2, 3], start=[1], stop=[2], step=[0])", {"x": [1.0, 2.0, 3.0]}),
        ("prod_pairs(v, x)", {"v": [1.0, 2.0, 3.0], "x": 2.0}),
        ("prod_pairs(A, v)", {"A": [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], "v": [1.0, 2.0, 3.0]}),
        ("prod_pairs(v, w, w)", {"v": [[1.0], [2.0]], "w": [1.5, -1.0, 2.0]}),
    ],
)
def test_an_input_broadcast_into_unindex_or_prod_pairs_gets_a_gradient_of_its_shape(expr, env):
    """The adjoint of a broadcast input is summed back to its shape (it was left at the shape
    of the result, and evaluation failed with numpy's ValueError); checked against central
    differences of these polynomials (at most cubic in any one element: error below 1e-8)."""
    env = {k: np.asarray(v) for k, v in env.items()}
    result = evaluate(expr, env)
    for name, value in env.items():
        want = np.zeros(value.shape)
        for k in np.ndindex(value.shape):
            step = np.zeros(value.shape)
            step[k] = 1e-3
            up = evaluate(expr, {**env, name: value + step}).value.sum()
            down = evaluate(expr, {**env, name: value - step}).value.sum()
            want[k] = (up - down) / 2e-3
        assert result.gradient[name].shape == value.shape
        np.testing.assert_allclose(result.gradient[name], want, rtol=1e-7, err_msg=name)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("unindex(v, start=[-1])", "start, stop and step of the same length"),
        ("unindex(v, shape=[2], start=[0, 1], stop=[1, 2], step=[1, 1])", "one per axis"),
        ("unindex(v, shape=[4], start=[1], stop=[3], step=[1])", "cannot place g of shape (3,)"),
        ("unindex(v, shape=[4], start=[9], stop=[10], step=[0])", "out of bounds"),
        ("unindex(v, shape=[-2])", "cannot place g in shape [-2]"),
        ("unindex([0.5, 1], shape=1000000000000000)", "cannot place g of shape (2,)"),
        ("[" * 33 + "v" + "]" * 33, "32"),  # numpy's limit on the number of axes
    ],
)
def test_what_cannot_be_built_is_a_located_error(expr, message):
    """Each raised ValueError, RuntimeError or MemoryError (a traceback) before."""
    with pytest.raises(GradcliError, match=re.escape(message)) as info:
        program = compile_program(expr)
        evaluate(program, {n: np.arange(3.0) for n in program.variables})
    assert info.value.span is not None


def test_indices_given_as_values_are_positions_without_derivative() -> None:
    """Labels given as a variable pick one log-probability per row (cross-entropy): the
    gradient is softmax − one_hot in z, and the labels, positions, are not differentiated, by
    evaluate or by the checker, whose differences of them would not be whole numbers."""
    from gradcli import api

    z = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [0.0, 0.0, 1.0]])
    k = np.array([2.0, 0.0, 1.0])
    expr = "-sum(take_along_axis(log_softmax(z), k[:, None], axis=1)) + sum(z[k, [0, 1, 2]])"
    result = evaluate(expr, {"z": z, "k": k})
    labels = np.eye(3)[k.astype(int)]
    picked = _added_at((3, 3), (k.astype(int), [0, 1, 2]), 1.0)
    assert set(result.gradient) == {"z"}
    assert_close(result.gradient["z"], np_softmax(z, 1) - labels + picked)
    assert api.check(expr, {"z": z.tolist(), "k": k.tolist()}).passed
    with pytest.raises(GradcliError, match="k is used only as a position"):
        evaluate(expr, {"z": z, "k": k}, wrt=["k"])
    for bad, message in ((1.5, "not 1.5"), (3.0, "index 3 is out of range"), (-4.0, "index -4")):
        with pytest.raises(GradcliError, match=message):
            evaluate("x[i] * 2", {"x": [1.0, 2.0, 3.0], "i": bad})
