"""Matrix functions (trace, diag, outer, inv, solve, det, logdet) and the array builders (eye,
ones, zeros, full), against independent references: numpy's own values, and the closed forms of
the Matrix Cookbook (Petersen and Pedersen) and of Giles (2008) for the gradients, computed here
with numpy, never with gradcli. The checker's verdict (which compares reverse mode, forward mode
and finite differences) must pass at each point; every rule is also under the rule-mutation test.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcli import api, evaluate

RNG = np.random.default_rng(14)


def well_conditioned(n: int, *lead: int) -> np.ndarray:
    """A matrix (or a stack) far from singular, with a positive determinant."""
    return RNG.standard_normal((*lead, n, n)) * 0.3 + 2 * np.eye(n)


def spd(n: int) -> np.ndarray:
    q = RNG.standard_normal((n, n))
    return q @ q.T + n * np.eye(n)


A3, B3, S3 = well_conditioned(3), RNG.standard_normal((3, 3)), spd(3)
W3, b3, w3, v3 = (
    RNG.standard_normal((3, 3)),
    RNG.standard_normal(3),
    RNG.standard_normal(3),
    RNG.standard_normal(3),
)
STACK = well_conditioned(3, 2)
inv, T = np.linalg.inv, np.transpose


def _mT(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


# (id, expression, values, numpy value, closed-form gradient of the value's sum)
CASES = [
    ("trace", "trace(A)", {"A": A3}, lambda A: np.trace(A), lambda A: {"A": np.eye(3)}),
    ("trace-product", "trace(A @ B)", {"A": A3, "B": B3},
     lambda A, B: np.trace(A @ B), lambda A, B: {"A": B.T, "B": A.T}),
    ("trace-stack", "sum(trace(A) * [1, -2])", {"A": STACK},
     lambda A: np.trace(A, axis1=-2, axis2=-1) @ [1, -2],
     lambda A: {"A": np.array([1.0, -2.0])[:, None, None] * np.eye(3)}),
    ("diag-of-vector", "sum(diag(v) * W)", {"v": v3, "W": W3},
     lambda v, W: np.sum(np.diag(v) * W), lambda v, W: {"v": np.diag(W), "W": np.diag(v)}),
    ("diag-of-matrix", "diag(A) @ w", {"A": RNG.standard_normal((3, 4)), "w": w3},
     lambda A, w: np.diag(A) @ w,
     lambda A, w: {"A": np.pad(np.diag(w), ((0, 0), (0, 1))), "w": np.diag(A)}),
    ("outer", "sum(outer(a, b) * W)", {"a": v3, "b": w3, "W": W3},
     lambda a, b, W: np.sum(np.outer(a, b) * W),
     lambda a, b, W: {"a": W @ b, "b": W.T @ a, "W": np.outer(a, b)}),
    ("quadratic-form", "x @ A @ x", {"x": v3, "A": A3},
     lambda x, A: x @ A @ x, lambda x, A: {"x": (A + A.T) @ x, "A": np.outer(x, x)}),
    ("inv", "sum(inv(A) * W)", {"A": A3, "W": W3},
     lambda A, W: np.sum(inv(A) * W),
     lambda A, W: {"A": -inv(A).T @ W @ inv(A).T, "W": inv(A)}),
    ("trace-inv-product", "trace(inv(A) @ B)", {"A": A3, "B": B3},
     lambda A, B: np.trace(inv(A) @ B),
     lambda A, B: {"A": -(inv(A) @ B @ inv(A)).T, "B": inv(A).T}),
    ("inv-stack", "sum(inv(A))", {"A": STACK},
     lambda A: np.sum(inv(A)),
     lambda A: {"A": -_mT(inv(A)) @ np.ones((2, 3, 3)) @ _mT(inv(A))}),
    ("solve-vector", "solve(A, b) @ w", {"A": A3, "b": b3, "w": w3},
     lambda A, b, w: np.linalg.solve(A, b) @ w,
     lambda A, b, w: {
         "A": -np.outer(inv(A).T @ w, np.linalg.solve(A, b)),
         "b": inv(A).T @ w,
         "w": np.linalg.solve(A, b),
     }),
    ("solve-matrix", "sum(solve(A, B) * W)", {"A": A3, "B": B3, "W": W3},
     lambda A, B, W: np.sum(np.linalg.solve(A, B) * W),
     lambda A, B, W: {
         "A": -(inv(A).T @ W) @ np.linalg.solve(A, B).T,
         "B": inv(A).T @ W,
         "W": np.linalg.solve(A, B),
     }),
    ("solve-stack-vector", "sum(solve(A, b))", {"A": STACK, "b": b3},
     lambda A, b: np.sum(np.linalg.solve(A, b[:, None])),
     lambda A, b: {
         "A": -np.einsum("ki,kj->kij", np.einsum("kji,j->ki", inv(A), np.ones(3)),
                         np.linalg.solve(A, b[:, None])[..., 0]),
         "b": np.einsum("kji,j->i", inv(A), np.ones(3)),
     }),
    ("det", "det(A)", {"A": A3}, lambda A: np.linalg.det(A),
     lambda A: {"A": np.linalg.det(A) * inv(A).T}),
    ("det-stack", "sum(det(A))", {"A": STACK}, lambda A: np.sum(np.linalg.det(A)),
     lambda A: {"A": np.linalg.det(A)[:, None, None] * _mT(inv(A))}),
    ("logdet", "logdet(A)", {"A": A3}, lambda A: np.linalg.slogdet(A)[1],
     lambda A: {"A": inv(A).T}),
    ("gaussian-log-likelihood",
     "d = x - m; -0.5*(logdet(S) + d @ solve(S, d) + 3*log(2*pi))",
     {"x": v3, "m": w3, "S": S3},
     lambda x, m, S: -0.5 * (np.linalg.slogdet(S)[1] + (x - m) @ np.linalg.solve(S, x - m)
                             + 3 * np.log(2 * np.pi)),
     lambda x, m, S: {
         "x": -inv(S) @ (x - m),
         "m": inv(S) @ (x - m),
         "S": -0.5 * (inv(S).T - inv(S).T @ np.outer(x - m, x - m) @ inv(S).T),
     }),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expr", "env", "value", "closed"), CASES, ids=[c[0] for c in CASES]
)
def test_values_and_gradients_match_closed_forms(name, expr, env, value, closed) -> None:
    r = evaluate(expr, env)
    assert not r.faults, [f.message for f in r.faults]
    np.testing.assert_allclose(r.value, value(**env), rtol=1e-13, atol=1e-15)
    for var, want in closed(**env).items():
        np.testing.assert_allclose(r.gradient[var], want, rtol=1e-12, atol=1e-13, err_msg=var)


@pytest.mark.parametrize(
    ("name", "expr", "env", "value", "closed"), CASES, ids=[c[0] for c in CASES]
)
def test_the_checker_passes_them(name, expr, env, value, closed) -> None:
    """Reverse mode, forward mode and finite differences agree at every entry."""
    assert api.check(expr, env).passed


def test_builders_make_what_numpy_makes() -> None:
    r = evaluate("sum(eye(3)*A) + sum(ones([2, 3])) + sum(zeros(4)) + sum(full([2, 2], x))",
                 {"A": A3, "x": 1.5})  # fmt: skip
    assert float(r.value) == pytest.approx(np.trace(A3) + 6 + 0 + 6.0)
    np.testing.assert_array_equal(r.gradient["A"], np.eye(3))
    assert float(r.gradient["x"]) == 4.0
    r = evaluate("sum(eye(2, 3) * A)", {"A": RNG.standard_normal((2, 3))})
    np.testing.assert_array_equal(r.gradient["A"], np.eye(2, 3))


@pytest.mark.parametrize(
    ("expr", "env", "words"),
    [
        ("sum(inv(A))", {"A": np.array([[1.0, 2.0], [2.0, 4.0]])}, "the matrix is singular"),
        ("sum(solve(A, b))", {"A": np.zeros((2, 2)), "b": np.ones(2)}, "the matrix is singular"),
        ("logdet(A)", {"A": np.array([[0.0, 1.0], [1.0, 0.0]])}, "the determinant is not positive"),
        (
            "sum(cholesky(A))",
            {"A": np.array([[1.0, 2.0], [2.0, 1.0]])},
            "the matrix is not positive definite",
        ),
        (
            "sum(solve_triangular(A, b, lower=True))",
            {"A": np.array([[0.0, 5.0], [1.0, 2.0]]), "b": np.ones(2)},
            "the matrix is singular",  # its lower triangle has a 0 on the diagonal
        ),
    ],
)
def test_a_singular_matrix_is_a_located_fault(expr, env, words) -> None:
    r = evaluate(expr, env)
    assert any(words in f.message for f in r.faults), [f.message for f in r.faults]


def test_one_singular_matrix_of_a_stack_is_nan_alone() -> None:
    stack = np.stack([np.eye(2), np.array([[1.0, 2.0], [2.0, 4.0]]), 2 * np.eye(2)])
    r = evaluate("inv(A)", {"A": stack})
    value = np.asarray(r.value)
    np.testing.assert_array_equal(value[0], np.eye(2))
    assert np.isnan(value[1]).all()
    np.testing.assert_array_equal(value[2], 0.5 * np.eye(2))


@pytest.mark.parametrize(
    ("expr", "env", "words"),
    [
        ("sum(inv(A))", {"A": np.ones((2, 3))}, "inv needs a square matrix"),
        ("det(v)", {"v": np.ones(3)}, "det needs a square matrix"),
        ("sum(cholesky(A))", {"A": np.ones((2, 3))}, "cholesky needs a square matrix"),
        (
            "sum(solve(A, b))",
            {"A": np.eye(3), "b": np.ones(2)},
            r"solve\(A, b\) needs b of length 3",
        ),
        ("trace(v)", {"v": np.ones(3)}, "trace needs a matrix"),
    ],
)
def test_shape_mismatches_name_the_function_and_shapes(expr, env, words) -> None:
    from gradcli.language.source import GradcliError

    with pytest.raises(GradcliError, match=words):
        evaluate(expr, env)


NEW_AXES = [
    ("v[:, None]", lambda v, A: v[:, None]),
    ("v[None]", lambda v, A: v[None]),
    ("v[None, :, None]", lambda v, A: v[None, :, None]),
    ("A[0, None]", lambda v, A: A[0, None]),
    ("A[:, None, 1:]", lambda v, A: A[:, None, 1:]),
    ("A[None, ::-1, 0]", lambda v, A: A[None, ::-1, 0]),
    ("A[1, newaxis, newaxis]", lambda v, A: A[1, np.newaxis, np.newaxis]),
    ("expand_dims(A, axis=[0, 3])", lambda v, A: np.expand_dims(A, (0, 3))),
    ("expand_dims(v, axis=-1)", lambda v, A: np.expand_dims(v, -1)),
]


@pytest.mark.parametrize(("text", "numpy"), NEW_AXES, ids=[t for t, _ in NEW_AXES])
def test_new_axes_are_where_numpy_puts_them(text, numpy) -> None:
    v, A = RNG.standard_normal(3), RNG.standard_normal((2, 3))
    weights = RNG.standard_normal(np.shape(numpy(v, A)))
    env = {"v": v, "A": A}
    names = [n for n in env if n in text.replace("newaxis", "")]
    r = evaluate(f"sum(({text}) * W)", {**{n: env[n] for n in names}, "W": weights})
    assert float(r.value) == pytest.approx(float(np.sum(numpy(v, A) * weights)))
    # The gradient is the weights gathered back by the same index: numpy's own, by a probe.
    (name,) = names
    probe = np.zeros_like(env[name])
    for idx in np.ndindex(probe.shape):
        moved = {**env, name: env[name].copy()}
        moved[name][idx] += 1.0
        probe[idx] = np.sum((numpy(moved["v"], moved["A"]) - numpy(v, A)) * weights)
    np.testing.assert_allclose(r.gradient[name], probe, rtol=1e-12, atol=1e-14)


def test_a_nan_off_the_diagonal_is_not_hidden_by_trace() -> None:
    r = evaluate("trace(log(A))", {"A": np.array([[1.0, -1.0], [-1.0, 2.0]])})
    assert any("log(A) is nan" in f.message for f in r.faults), [f.message for f in r.faults]


def test_det_of_empty_matrices_is_one() -> None:
    assert float(evaluate("det(A)", {"A": np.zeros((0, 0))}).value) == 1.0
    np.testing.assert_array_equal(evaluate("det(A)", {"A": np.zeros((2, 0, 0))}).value, [1.0, 1.0])


def test_cholesky_factors_the_symmetric_part_and_solve_triangular_reads_one_triangle() -> None:
    """As JAX's cholesky (symmetrize_input) and scipy's solve_triangular: an asymmetric A is
    factored as (A + Aᵀ)/2, with a symmetric gradient; the other triangle is never read."""
    import scipy.linalg

    a = np.array([[4.0, 1.5], [0.5, 3.0]])
    r = evaluate("sum(cholesky(A) * [[1, 0], [2, 3]])", {"A": a})
    np.testing.assert_allclose(
        r.value, np.sum(np.linalg.cholesky((a + a.T) / 2) * [[1, 0], [2, 3]])
    )
    np.testing.assert_allclose(r.gradient["A"], r.gradient["A"].T, rtol=1e-15)
    t = np.array([[2.0, 9.0], [1.0, 4.0]])
    for lower in (True, False):
        r = evaluate(f"solve_triangular(T, b, lower={lower})", {"T": t, "b": np.array([1.0, 2.0])})
        want = scipy.linalg.solve_triangular(t, [1.0, 2.0], lower=lower)
        np.testing.assert_allclose(r.value, want, rtol=1e-15)
