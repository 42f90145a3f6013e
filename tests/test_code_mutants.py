"""Tests that kill code mutants which survived the rest of the suite.

Mutation testing changed single expressions in gradcli and the whole suite still passed. Each test
here holds real values to an independent reference (a closed form, evaluated with numpy or math,
never gradcli's output compared with itself), chosen so that the mutant changes them. Each mutant
was applied by hand to a scratch copy of the package and the test below was seen to fail on it.

1. autodiff.py `_ones`, `one.value == 1.0` -> `== 2.0` (a seed of 2 spread over an array is taken
   for a seed of 1: `2*sum(3*x)` gives 3 instead of 6):
   killed by `test_reverse_mode_with_a_spread_seed_matches_the_closed_form` (2*sum(3*x),
   2*mean(3*x), ...), `test_reverse_mode_with_a_spread_seed_and_a_broadcast_scalar`
   (2*sum(x*y)), `test_hessian_of_a_program_with_a_spread_seed` (both modes) and
   `test_directional_of_a_program_with_a_spread_seed` (its reverse-mode vᵀ∇f).
2. forward.py `jvps`, the broadcast of a tangent that does not fill its node:
   - `t is not None and shapes[i] != shapes[node]` -> `t is None and ...` and `!=` -> `==`:
     killed by `test_directional_when_only_the_smaller_operand_moves` (x + y with scalar x moving
     alone gives a scalar instead of [1, 1, 1]), `test_directional_with_mixed_shapes` ((2, 3) +
     (3,) along y alone) and `test_checker_forward_mode_with_a_broadcast[wrt1]` (forward mode
     sees Σf move by 1, not 3, and the check fails a correct gradient). The Hessian test beside
     them does not see these two: a gradient graph spreads its scalars with broadcast_to nodes
     of its own, whose tangent rule broadcasts anyway.
   - `if total is not None and smaller` -> `or`: killed by
     `test_directional_of_a_zero_derivative_broadcast` (heaviside(x, y) with scalar x moving:
     every partial is None, and the mutant broadcasts None, a TypeError).
   - `t is not None and shapes[i] ...` -> `t is not None or shapes[i] ...`: EQUIVALENT. The loop
     skips a node whose tangents are all None, so some t is not None and the mutant's `smaller`
     is always True: the mutant broadcasts every elementwise tangent to its node's shape. Where
     the original does not broadcast, every moving input has the node's shape, so each term
     t·∂ has the node's shape (a partial never has a larger shape than its node) and the
     broadcast is the identity on values. The mutant only adds broadcast_to nodes (and makes some
     results read-only views): no value can tell them apart.
3. finite_diff.py `one_sided`, `... + rounding` -> `... - rounding` in the left (and, the same
   mutant on the other side, the right) error estimate: killed by
   `test_one_sided_error_estimates_bound_the_error_of_noisy_samples` and
   `test_one_sided_error_estimates_bound_the_error_of_rounded_values`: with rounding dominant the
   mutant's estimate is negative, below the actual error against the closed-form one-sided
   derivatives.
4. checking.py `_second_order`, `faults += [...]` -> `faults = [...]`: killed by
   `test_second_order_keeps_the_faults_of_earlier_rows` (sqrt(x) + y^2 at x = 0: the fault
   arises in the row of x, the first variable, and the mutant keeps only the row of y's) and
   `test_second_order_keeps_the_faults_of_the_value` (log(0) in the value itself).
5. checking.py `_trusted`, `(error <= 0.1·|reference|) | (error <= 4·rounding)`:
   - 4 -> 1: killed by
     `test_a_rule_ten_times_off_is_never_passed_where_a_first_reference_resolves_it` (relu(1e9 +
     sin(x)) with a rule 10·cos: the mutant distrusts the first, rounding-limited reference and
     passes the rule against a noisier one at about half of the points).
   - 0.1 -> 0.01: killed by
     `test_a_rule_off_by_a_thousandth_is_caught_where_references_of_a_few_percent_converge`.
   - 4 -> 16 and 0.1 -> 1 (believing more): no verdict they change is a false one, on these grids
     or in benchmarks/adversarial.py; they turn passes of a rule 1e-3 off into failures at points
     where this code's smaller steps cannot confirm them. Since a failure needs two references
     that each rule the autograd value out (`_settle`), believing a reference cannot by itself
     fail a right rule; the factors are kept where every failure they allow was measured.
6. tests/test_properties.py: the mpmath property no longer discards non-finite gradcli results
   (see that test; the examples it finds under other seeds are listed there as known bugs).

At the end, checker bugs found on the way, now fixed, each held to its closed form.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from gradcli import compile_program
from gradcli.api import directional, evaluate, hessian
from gradcli.checking.engine import FAIL, NONFINITE, PASS, CheckOptions, CheckResult, check
from gradcli.checking.finite_diff import one_sided
from gradcli.primitives import REGISTRY
from gradcli.primitives._common import cos

EPS = float(np.finfo(np.float64).eps)
SHAPES = [(1,), (3,), (2, 3), (2, 1, 4)]


def _array(shape: tuple[int, ...], lo: float = -1.3, hi: float = 2.1) -> np.ndarray:
    """Distinct, non-round values: a seed error cannot hide behind a symmetric point."""
    return np.linspace(lo, hi, math.prod(shape)).reshape(shape)


# --- 1. reverse mode: the seed spread over an array (autodiff._ones) ---------------------------

# (program in x, the closed-form gradient of its value in x, given x and n = x.size)
SPREAD: list[tuple[str, Callable[[np.ndarray, int], np.ndarray]]] = [
    ("sum(3*x)", lambda x, n: np.full_like(x, 3.0)),
    ("2*sum(3*x)", lambda x, n: np.full_like(x, 6.0)),
    ("sum(3*x)*2", lambda x, n: np.full_like(x, 6.0)),
    ("0.5*sum(3*x)", lambda x, n: np.full_like(x, 1.5)),
    ("-2*sum(x*x)", lambda x, n: -4 * x),
    ("2*sum(sin(x))", lambda x, n: 2 * np.cos(x)),
    ("2*sum(exp(x)) + sum(x)", lambda x, n: 2 * np.exp(x) + 1),
    ("mean(3*x)", lambda x, n: np.full_like(x, 3.0 / n)),
    ("2*mean(3*x)", lambda x, n: np.full_like(x, 6.0 / n)),
    ("2*mean(x^2)", lambda x, n: 4 * x / n),
    ("2*(3*x)", lambda x, n: np.full_like(x, 6.0)),  # an array value: the gradient of its sum
    ("2*sin(x)", lambda x, n: 2 * np.cos(x)),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("text", "expected"), SPREAD, ids=[t for t, _ in SPREAD])
def test_reverse_mode_with_a_spread_seed_matches_the_closed_form(
    text: str, expected: Callable[[np.ndarray, int], np.ndarray], shape: tuple[int, ...]
) -> None:
    """sum and mean send their adjoint to every element as broadcast_to(c): c must be kept."""
    x = _array(shape)
    got = evaluate(text, {"x": x}).gradient["x"]
    np.testing.assert_allclose(got, expected(x, x.size), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_reverse_mode_with_a_spread_seed_and_a_broadcast_scalar(shape: tuple[int, ...]) -> None:
    """A scalar broadcast against an array receives the sum of the spread seed."""
    x, y = _array(shape), 0.75
    grad = evaluate("2*sum(x*y)", {"x": x, "y": y}).gradient
    np.testing.assert_allclose(grad["x"], np.full(shape, 2 * y), rtol=1e-15)
    np.testing.assert_allclose(grad["y"], 2 * x.sum(), rtol=1e-14)
    grad = evaluate("3*sum(x + y)", {"x": x, "y": y}).gradient
    np.testing.assert_allclose(grad["x"], np.full(shape, 3.0), rtol=1e-15)
    np.testing.assert_allclose(grad["y"], 3.0 * x.size, rtol=1e-15)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("shape", [(1,), (3,), (2, 2)], ids=str)
def test_hessian_of_a_program_with_a_spread_seed(shape: tuple[int, ...], mode: str) -> None:
    """Both Hessian modes start from the reverse gradient: 2*sum(x^3) has H = diag(12 x)."""
    x = _array(shape)
    h = hessian("2*sum(x^3)", {"x": x}, mode=mode)
    np.testing.assert_allclose(h.matrix, np.diag(12 * x.ravel()), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(h.gradient, 6 * x.ravel() ** 2, rtol=1e-14)
    h = hessian("2*mean(x^2)", {"x": x}, mode=mode)
    np.testing.assert_allclose(h.matrix, np.eye(x.size) * 4 / x.size, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_directional_of_a_program_with_a_spread_seed(shape: tuple[int, ...]) -> None:
    """Forward mode and the reverse vᵀ∇f beside it: both 6·Σv for 2*sum(3*x)."""
    x = _array(shape)
    v = _array(shape, 0.5, -1.25)
    result = directional("2*sum(3*x)", {"x": x}, {"x": v})
    assert result.derivative.shape == ()
    assert float(result.derivative) == pytest.approx(6 * v.sum(), rel=1e-14, abs=1e-14)
    assert result.reverse == pytest.approx(6 * v.sum(), rel=1e-14, abs=1e-14)
    result = directional("2*sum(sin(x))", {"x": x}, {"x": v})
    assert result.reverse == pytest.approx(2 * float(np.sum(np.cos(x) * v)), rel=1e-13, abs=1e-14)


# --- 2. forward mode: broadcasting a tangent (forward.jvps) ------------------------------------


def test_directional_when_only_the_smaller_operand_moves() -> None:
    """x + y with scalar x and y of shape (3,): a tangent in x alone must fill the output."""
    at = {"x": 1.0, "y": [1.0, 2.0, 3.0]}
    cases = [
        ({"y": [1.0, 1.0, 1.0]}, [1.0, 1.0, 1.0]),  # tangent only in y
        ({"x": 1.0}, [1.0, 1.0, 1.0]),  # tangent only in x: broadcast
        ({"x": 2.0, "y": [1.0, 0.0, -1.0]}, [3.0, 2.0, 1.0]),
    ]
    for direction, expected in cases:
        d = directional("x + y", at, direction).derivative
        assert d.shape == (3,), (direction, d)
        np.testing.assert_array_equal(d, expected)
    # x*y along x alone: ∂/∂x = y, spread over y's shape
    d = directional("x * y", {"x": 2.0, "y": [1.0, 2.0, 3.0]}, {"x": 1.0}).derivative
    assert d.shape == (3,)
    np.testing.assert_array_equal(d, [1.0, 2.0, 3.0])


def test_directional_with_mixed_shapes() -> None:
    """(2, 3) * (3,): the tangent of each operand alone, and of both, in closed form."""
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = np.array([0.5, -1.0, 2.0])
    vx = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    vy = np.array([1.0, -2.0, 0.25])
    at = {"x": x, "y": y}
    for text, direction, expected in [
        ("x * y", {"y": vy}, x * vy),
        ("x * y", {"x": vx}, vx * y),
        ("x * y", {"x": vx, "y": vy}, vx * y + x * vy),
        ("x + y", {"y": vy}, np.broadcast_to(vy, (2, 3))),
        ("x + y", {"x": vx}, vx),
        ("sin(x) * exp(y)", {"y": vy}, np.sin(x) * np.exp(y) * vy),
    ]:
        d = directional(text, at, direction).derivative
        assert d.shape == (2, 3), (text, direction, d)
        np.testing.assert_allclose(d, expected, rtol=1e-14, err_msg=f"{text} along {direction}")


def test_directional_of_a_zero_derivative_broadcast() -> None:
    """Partials that are all zero (None) leave no tangent to broadcast: the result is zeros of
    the output's shape, and a jump's h0 argument still has its own derivative."""
    d = directional("sign(x)", {"x": [1.0, 2.0]}, {"x": [1.0, 1.0]}).derivative
    assert d.shape == (2,)
    np.testing.assert_array_equal(d, [0.0, 0.0])
    d = directional("heaviside(x, y)", {"x": 1.0, "y": [0.25, 0.75]}, {"x": 1.0}).derivative
    assert d.shape == (2,)
    np.testing.assert_array_equal(d, [0.0, 0.0])
    d = directional("sign(x) * y", {"x": 2.0, "y": [0.5, 1.5]}, {"x": 1.0}).derivative
    assert d.shape == (2,)
    np.testing.assert_array_equal(d, [0.0, 0.0])
    # at x = 0, heaviside(x, h0) = h0: its derivative along h0 is the direction itself
    d = directional("heaviside(x, y)", {"x": 0.0, "y": [0.25, 0.75]}, {"y": [1.0, 2.0]})
    np.testing.assert_array_equal(d.derivative, [1.0, 2.0])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_forward_over_reverse_hessian_with_a_broadcast(mode: str) -> None:
    """sum(x*y) with scalar x, y of shape (3,): H[x, y_j] = H[y_j, x] = 1, all else 0; and
    sum(x^2*y) has H[x, x] = 2Σy, H[x, y_j] = 2x; sum((x + y)^2) has H[x, x] = 2n, H[x, y_j] = 2,
    H[y, y] = 2I. In x alone, only the scalar's tangent moves, and x + y must spread it."""
    y = np.array([1.0, 2.0, 3.0])
    h = hessian("sum(x*y)", {"x": 2.0, "y": y}, mode=mode).matrix
    expected = np.zeros((4, 4))
    expected[0, 1:] = expected[1:, 0] = 1.0
    np.testing.assert_array_equal(h, expected)
    h = hessian("sum(x^2*y)", {"x": 2.0, "y": y}, mode=mode).matrix
    expected = np.zeros((4, 4))
    expected[0, 0] = 2 * y.sum()
    expected[0, 1:] = expected[1:, 0] = 2 * 2.0
    np.testing.assert_allclose(h, expected, rtol=1e-15)
    # sum((x + y)^2): its gradient in x is sum(2(x + y)), whose tangent along x is 2n
    h = hessian("sum((x + y)^2)", {"x": 2.0, "y": y}, mode=mode).matrix
    expected = 2 * np.eye(4)
    expected[0, 0] = 2 * y.size
    expected[0, 1:] = expected[1:, 0] = 2.0
    np.testing.assert_array_equal(h, expected)
    h = hessian("sum((x + y)^2)", {"x": 2.0, "y": y}, wrt=["x"], mode=mode).matrix
    np.testing.assert_array_equal(h, [[2.0 * y.size]])


@pytest.mark.parametrize("wrt", [None, ("x",), ("y",)])
def test_checker_forward_mode_with_a_broadcast(wrt: tuple[str, ...] | None) -> None:
    """The checker compares forward with reverse mode: forward must see Σf move by n per unit
    of a scalar broadcast over n elements (alone, or with the other variable's tangent)."""
    program = compile_program("x + y")
    points = {"x": np.array([1.0]), "y": np.array([[1.0, 2.0, 3.0]])}
    result = check(program, points, CheckOptions(wrt=wrt))
    assert result.passed
    expected = {"x": [[3.0]], "y": [[1.0, 1.0, 1.0]]}
    for vc in result.variables:
        np.testing.assert_array_equal(vc.forward, expected[vc.name], err_msg=vc.name)
        assert vc.verdict.tolist() == [[PASS] * len(expected[vc.name][0])]


# --- 3. one-sided differences: the rounding term of each side's estimate ----------------------


def test_one_sided_error_estimates_bound_the_error_of_noisy_samples() -> None:
    """φ(t) = a·t for t < 0 and b·t for t > 0 (a kink at 0, one-sided derivatives a and b), each
    sample off by at most `noise` in every sign pattern: linear pieces have no truncation error,
    so rounding is all there is, and each side's estimate must cover its actual error."""
    a, b, c = -1.5, 2.5, 0.25
    rows = [
        (h, delta, signs)
        for h in (2.0**-10, 2.0**-20, 2.0**-30)
        for delta in (1e-12, 1e-9, 1e-6)
        for signs in itertools.product((-1.0, 0.0, 1.0), repeat=5)
    ]
    h = np.array([r[0] for r in rows])
    delta = np.array([r[1] for r in rows])
    signs = np.array([r[2] for r in rows])
    clean = np.stack([c - 2 * a * h, c - a * h, c + b * h, c + 2 * b * h], axis=-1)
    f = clean + signs[:, [0, 1, 3, 4]] * delta[:, None]
    f0 = c + signs[:, 2] * delta
    left, left_error, right, right_error = one_sided(f, f0, h, EPS, delta)
    assert np.all(np.abs(left - a) <= left_error)
    assert np.all(np.abs(right - b) <= right_error)
    # the noise is visible: the estimates are not met by accident
    assert np.max(np.abs(left - a) * h / delta) > 1


def test_one_sided_error_estimates_bound_the_error_of_rounded_values() -> None:
    """φ(t) = M + a·t on the left and M + b·t on the right, computed in float64: each value is
    rounded to the grid of M, far coarser than the change over a step, and no noise is passed, so
    the estimate's rounding term comes from the values' magnitude alone."""
    a, b = -1.5, 2.5
    for m, h in itertools.product((1e3, 3.7e3, 1e5, 1e8), (2.0**-40, 2.0**-36, 2.0**-30)):
        t = np.array([-2.0, -1.0, 1.0, 2.0]) * h
        f = np.where(t < 0, m + a * t, m + b * t)[None]
        left, left_error, right, right_error = one_sided(f, np.array([m]), np.array([h]), EPS)
        assert abs(left[0] - a) <= left_error[0], (m, h)
        assert abs(right[0] - b) <= right_error[0], (m, h)


# --- 4. second order: faults of every row of the Hessian ---------------------------------------


def _order2(text: str, **values: float) -> CheckResult:
    points = {k: np.array([v]) for k, v in values.items()}
    return check(compile_program(text), points, CheckOptions(order=2))


def test_second_order_keeps_the_faults_of_earlier_rows() -> None:
    """sqrt(x) + y^2 at x = 0: ∂f/∂x = 1/(2√x) is inf there, so the row of x (the first variable)
    faults and the row of y (the last: ∂f/∂y = 2y) does not. The fault must be reported."""
    result = _order2("sqrt(x) + y^2", x=0.0, y=1.0)
    messages = [f.message for f in result.faults]
    assert any("derivative of sqrt(x)" in m and "inf" in m for m in messages), messages
    rows = {(vc.of, vc.name): vc for vc in result.variables}
    assert rows["x", "x"].verdict[0, 0] == NONFINITE
    assert rows["x", "x"].autograd[0, 0] == -np.inf  # ∂²/∂x² √x = -1/(4 x^1.5) -> -inf
    assert rows["y", "y"].verdict[0, 0] == PASS
    assert rows["y", "y"].autograd[0, 0] == 2.0
    assert rows["y", "x"].autograd[0, 0] == 0.0


def test_second_order_keeps_the_faults_of_the_value() -> None:
    """x*log(x) + y^2 at x = 0: log(0) = -inf in the value itself, and 1/x in the row of x."""
    result = _order2("x*log(x) + y^2", x=0.0, y=1.0)
    messages = [f.message for f in result.faults]
    assert any(m.startswith("log(x) is -inf") for m in messages), messages
    assert any("derivative of log(x)" in m for m in messages), messages


# --- 5. `_trusted`: which references may confirm a failure -------------------------------------
#
# The programs are relu(M + sin(x)) with M ≫ 1: relu(u) = u here (u > 0 far from its kink), so
# the derivative is cos(x) in closed form, and relu keeps the path non-analytic, so the checker
# decides with finite differences (no complex-step second opinion). Each value of M + sin(x) is
# rounded to the grid of M: rounding and truncation are both visible, and which references the
# checker believes decides the verdict. The central difference at step h is, in closed form,
# cos(x)·sin(h)/h, plus the rounding of two values of at most ulp(M)/(2h).


@contextmanager
def _sin_rule(factor: float) -> Iterator[None]:
    """The registry's sin with the derivative rule factor·cos(x), for this block only."""
    prim = REGISTRY["sin"]
    REGISTRY["sin"] = dataclasses.replace(prim, partials=(lambda ans, x: factor * cos(x),))
    try:
        yield
    finally:
        REGISTRY["sin"] = prim


def _verdicts(m: float, xs: np.ndarray, factor: float, method: str = "central") -> np.ndarray:
    program = compile_program(f"relu({m!r} + sin(x))")
    with _sin_rule(factor):
        result = check(program, {"x": xs}, CheckOptions(method=method))
    (vc,) = result.variables
    return vc.verdict[:, 0].astype(str)


def _grid(scale: float, seed: int = 0) -> np.ndarray:
    return np.round(np.random.default_rng(seed).uniform(0.5, 2.0, 40) * scale, 3)


def _first_step(x: float, method: str) -> float:
    """The checker's first step, c·max(1, |x|) rounded down to a power of two."""
    c = EPS ** (1 / 3) if method == "central" else EPS ** (1 / 5)
    return 2.0 ** math.floor(math.log2(c * max(1.0, abs(x))))


@pytest.mark.parametrize("method", ["central", "richardson"])
def test_a_rule_ten_times_off_is_never_passed_where_a_first_reference_resolves_it(
    method: str,
) -> None:
    """relu(1e9 + sin(x)) near x = 1 with the rule 10·cos(x), off by 9|cos x|. Values lie on a
    grid of ulp(1e9) = 1.2e-7, so the first difference (h = 2^-18 central, 2^-11 Richardson)
    is within ulp/h + h² of cos(x), and where the rule is off by more than 64 times that, a
    pass would only come from a noisier step believed instead: unchecked or a failure, never a
    pass. Trusting an estimate only up to once its rounding term (1 instead of 2 in `_trusted`)
    distrusts the first reference and passes the rule at about half of the points."""
    xs = _grid(1.0)
    resolved = np.array(
        [9 * abs(math.cos(x)) > 64 * (math.ulp(1e9) / (h := _first_step(x, method)) + h * h)
         for x in xs]
    )  # fmt: skip
    assert resolved.sum() >= 30
    verdicts = _verdicts(1e9, xs[resolved], 10.0, method)
    assert PASS not in set(verdicts), dict(zip(xs[resolved], verdicts, strict=True))


@pytest.mark.parametrize("method", ["central", "richardson"])
def test_a_correct_rule_never_fails_on_references_from_steps_far_too_large(method: str) -> None:
    """relu(1e14 + sin(x)) with the correct rule, at x ≈ 1e5 to 1e6: the first steps are 4 and
    512 radians, where a difference of sin is no derivative (cos(x)·sin(4)/4 has the wrong sign),
    and every smaller step is rounding noise. Trusting an estimate up to 8 times its rounding
    makes two such references agree, and the correct rule fails."""
    for scale in (1e5, 1e6):
        xs = _grid(scale, seed=1)
        verdicts = _verdicts(1e14, xs, 1.0, method)
        assert FAIL not in set(verdicts), dict(zip(xs, verdicts, strict=True))


def test_a_rule_off_by_a_thousandth_is_caught_where_references_of_a_few_percent_converge() -> None:
    """relu(1e11 + sin(x)) at x ≈ 1e5 to 1e6 by Richardson, with the rule 1.001·cos(x): the
    first steps (c·|x| ≈ 100) are far too large for sin, and the smaller ones carry rounding of
    ulp(1e11)/h; the references that settle the rule are truncation-limited to a few percent of
    their size. Believing only estimates below 1% (0.01 instead of 0.1 in `_trusted`) leaves
    nothing to confirm a failure with, and the wrong rule passes at every point."""
    verdicts = np.concatenate(
        [_verdicts(1e11, _grid(scale, seed=3), 1.001, "richardson") for scale in (1e5, 1e6)]
    )
    assert FAIL in set(verdicts)


def test_a_correct_rule_passes_where_references_of_a_few_percent_are_believed() -> None:
    """abs(sin(1e6·x)) at x ≈ 1e5 by forward differences: the references' truncation errors are
    a few percent of the derivative, 1e6·cos(1e6·x)·sign(sin(1e6·x)), and they agree with the
    right rule; distrusting every estimate above 1% (0.01 instead of 0.1 in `_trusted`) leaves
    half of the points unchecked. No point may fail, most pass, and every pass is within its
    tolerance of the closed form."""
    program = compile_program("abs(sin(1e6*x))")
    xs = _grid(1e5, seed=2)
    result = check(program, {"x": xs}, CheckOptions(method="forward"))
    (vc,) = result.variables
    verdicts = vc.verdict[:, 0].astype(str)
    exact = 1e6 * np.cos(1e6 * xs) * np.sign(np.sin(1e6 * xs))
    assert FAIL not in set(verdicts)
    passed = verdicts == PASS
    assert passed.sum() >= 30, dict(zip(xs, verdicts, strict=True))
    error = np.abs(vc.autograd[passed, 0] - exact[passed])
    assert np.all(error <= vc.tolerance[passed, 0])


# Points that were false failures of a correct rule, each contradicting a closed form: (1) the
# refinement at a kink took "both sides clean" from the signs at x ± h, x ± 2h alone, while
# |sin| has kinks between them (h = 32 at x ≈ 3.5e5), and refined entries were not confirmed on
# the ladder; (2), (3) a reference at a step far too large (4 radians, 256) was believed, and a
# second one whose error was larger than the discrepancy "seconded" it: a failure now needs two
# references that each rule the autograd value out.
FALSE_FAILURES = [
    ("abs(sin(x)) + 2", 346173.9134567284, "auto"),
    ("relu(1e15 + sin(x))", 667336.6834170853, "central"),
    ("relu(1e14 + sin(x))", 351256.2814070352, "auto"),
]


@pytest.mark.parametrize(("text", "x", "method"), FALSE_FAILURES)
def test_former_false_failures_of_a_correct_rule(text: str, x: float, method: str) -> None:
    result = check(compile_program(text), {"x": np.array([x])}, CheckOptions(method=method))
    assert FAIL not in {str(v) for v in result.variables[0].verdict.flat}


def test_a_wrong_rule_fails_where_the_derivative_is_zero() -> None:
    """relu(1e4 + sin(x) - x) at x = 0.001: the derivative is cos(x) - 1 = -5e-7, the rule 10·cos
    gives 9. The first forward difference (h = 2^-26) is within ulp(1e4)/h + h/2 = 1.2e-4 of the
    truth: the rule is off by 70,000 times that."""
    x = 0.001
    h = 2.0**-26
    assert abs(9 * math.cos(x)) > 7e4 * (math.ulp(1e4) / h + h / 2)
    program = compile_program("relu(1e4 + sin(x) - x)")
    with _sin_rule(10.0):
        result = check(program, {"x": np.array([x])}, CheckOptions(method="forward"))
    assert result.variables[0].verdict[0, 0] == FAIL
