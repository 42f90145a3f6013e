"""How far a check's steps may reach, and what its references may rest on.

Found by the adversarial sweep (benchmarks/adversarial.py), each test here is one instance of a
class the sweep now finds no false verdict in: a stencil that reaches as far as a kink without
crossing it, a periodic function sampled at steps of many periods, a kink of another variable
keeping a variable from the complex step, an imaginary part lost to underflow, an underflow
carried through a sum, directions along a kink computed from the rules under test, and
directions that move coordinates no kink depends on. Every expected number is a closed form or
mpmath at 60 digits; wrong rules are injected into the registry for one check at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import mpmath
import numpy as np
import pytest

from gradcli import compile_program
from gradcli.checking import FAIL, FAILING, KINK, KINK_FAIL, PASS, UNCHECKED, CheckOptions, check
from gradcli.registry import REGISTRY


@contextmanager
def wrong_rule(name: str, change: Callable[[tuple], tuple]) -> Iterator[None]:
    """The registry's `name` with its partials changed by `change`, for this block only."""
    prim = REGISTRY[name]
    REGISTRY[name] = dataclasses.replace(prim, partials=change(prim.partials))
    try:
        yield
    finally:
        REGISTRY[name] = prim


def scaled(index: int, factor: float) -> Callable[[tuple], tuple]:
    def change(partials: tuple) -> tuple:
        out = list(partials)
        right = out[index]
        out[index] = lambda ans, *xs: factor * right(ans, *xs)
        return tuple(out)

    return change


def swapped(partials: tuple) -> tuple:
    return tuple(reversed(partials))


def run(text: str, **values):
    program = compile_program(text)
    points = {k: np.array([v], dtype=float) for k, v in values.items()}
    result = check(program, points, CheckOptions())
    return {vc.name: vc for vc in result.variables}


def entry(checks, name: str, element: int = 0) -> tuple[str, float, float, float, str]:
    vc = checks[name]
    return (
        str(vc.verdict[0, element]),
        float(vc.autograd[0, element]),
        float(vc.reference[0, element]),
        float(vc.tolerance[0, element]),
        vc.messages.get((0, element), ""),
    )


# --- a stencil that reaches a kink without crossing it ------------------------------------------


@pytest.mark.parametrize("x", [8e-233, -7e-266, 4.7e-236, 1.3e-211])
def test_a_clean_side_far_longer_than_the_distance_to_the_kink_is_no_reference(x: float) -> None:
    """0.1·|x|^(3/4)·|y|^(1/4) at x = 1e-233: the right side of the kink at 0 is smooth, but it
    curves on the scale |x|; differences at steps of 1e-14 gave 2e35 ± 3e75 where the
    derivative is 7e89, and passed any rule. Now the steps go below |x|: the right rule
    passes within a tolerance of its own size, a swapped rule of mul is never passed."""
    text = "0.1 * (sqrt(abs(-x)) * sqrt(abs(sqrt(abs(x)) * sqrt(abs(y)))))"
    y = 5e131
    with mpmath.workdps(60):  # d/dx 0.1·|x|^(3/4)·|y|^(1/4)
        t = mpmath.mpf(x)
        exact = float(
            mpmath.mpf("0.075") * mpmath.sign(t) * abs(t) ** -0.25 * mpmath.mpf(y) ** 0.25
        )
    verdict, got, reference, tolerance, _ = entry(run(text, x=x, y=y), "x")
    assert verdict == PASS
    assert got == pytest.approx(exact, rel=1e-12)
    assert abs(reference - exact) <= tolerance <= 1e-6 * abs(exact)
    with wrong_rule("mul", swapped):
        verdict, got, _, tolerance, _ = entry(run(text, x=x, y=y), "x")
    assert verdict != PASS or abs(got - exact) <= tolerance


def test_hypot_is_a_cone_at_the_origin() -> None:
    """hypot(x, y) at (0, 0): not differentiable, with the one-sided slopes -1 and 1, and 0 a
    subgradient; at (1e-66, 1e-66), far inside any first step, hypot(x, x)'s derivative √2 is
    found (a symmetric stencil over the cone gave 0, and passed a rule that gave 0)."""
    checks = run("hypot(x, y)", x=0.0, y=0.0)
    for name in "xy":
        vc = checks[name]
        assert vc.verdict[0, 0] == KINK
        assert (vc.left[0, 0], vc.right[0, 0]) == pytest.approx((-1.0, 1.0), abs=1e-9)
    verdict, got, reference, tolerance, _ = entry(run("hypot(x, x)", x=1.6e-66), "x")
    assert verdict == PASS and got == pytest.approx(np.sqrt(2), rel=1e-15)
    assert abs(reference - np.sqrt(2)) <= tolerance
    with wrong_rule("hypot", scaled(1, -1.0)):  # ∂hypot/∂y negated: the derivative reads 0
        verdict, got, _, _, _ = entry(run("hypot(x, x)", x=1.6e-66), "x")
    assert got == 0.0 and verdict != PASS


# --- periodic functions -------------------------------------------------------------------------


@pytest.mark.parametrize("x", [2.606952518353107e286, 7.70071275151731e232, -6.77e37])
def test_tangent_far_from_zero_is_judged_by_its_period(x: float) -> None:
    """tan(x) + x at x = 2.6e286: steps of 1.9e283 alias with tan's period (the samples look
    smooth), and differences said 1.0 with an error of 5e-12. The reference is the complex
    step, equal to mpmath's 1 + sec²(x); a rule 1.001·(1 + tan²) fails."""
    with mpmath.workdps(60 + int(np.log10(abs(x)))):
        exact = float(mpmath.sec(mpmath.mpf(x)) ** 2 + 1)
    text = "tan(x) + x + relu(y)"  # y = 0 sits on relu's kink, which x does not move
    verdict, got, reference, tolerance, _ = entry(run(text, x=x, y=0.0), "x")
    assert verdict == PASS and got == pytest.approx(exact, rel=1e-12)
    assert abs(reference - exact) <= tolerance
    with wrong_rule("tan", scaled(0, 1.001)):
        verdict, *_ = entry(run(text, x=x, y=0.0), "x")
    assert verdict == FAIL


def test_sine_of_a_huge_argument_on_a_kink_is_unchecked_not_failed() -> None:
    """relu(sin(x) - s) where s = sin(x), at x = 2e223: on the kink the complex step takes one
    piece's derivative, and every difference moves sin's argument by many periods; no step can
    tell, so no verdict is given (the checker once failed right gradients of such functions
    against references of 0)."""
    x = 2.054697612115075e223
    checks = run("relu(sin(x) - s) + 2 * sin(x)", x=x, s=float(np.sin(x)))
    verdict, *_ = entry(checks, "x")
    assert verdict == UNCHECKED


# --- the complex step ---------------------------------------------------------------------------


def test_a_derivative_lost_to_underflow_is_not_passed_by_a_blind_complex_step() -> None:
    """atan2(u, abs(y))·3v at y = -4e297: the local derivative of atan2 is 1.7e-453, so the
    gradient comes out 0 where it is -7.6e-252, and the complex step's imaginary part
    underflows the same way: its 0 ± 0 passed the 0. The complex step now claims only what it
    can see (η·Σ|∂f/∂v|/h), and the lost digits are named."""
    text = "atan2(u, abs(y)) * (3 * v)"
    u, y, v = -2.8e142, -4.069701705826397e297, 1.5e201
    with mpmath.workdps(60):  # ∂atan2(u, X)/∂X = -u/(u² + X²), X = |y|
        uu, yy, vv = mpmath.mpf(u), mpmath.mpf(y), mpmath.mpf(v)
        exact = float(-uu / (uu**2 + yy**2) * mpmath.sign(yy) * 3 * vv)
    verdict, got, _, tolerance, message = entry(run(text, u=u, y=y, v=v), "y")
    assert got == 0.0 and exact < -1e-252
    assert verdict != PASS or abs(got - exact) <= tolerance
    assert "underflows" in message
    with mpmath.workdps(60):
        exact_x = float(-uu / (uu**2 + 1) * 3 * vv)  # the same with X = 1: nothing underflows
    verdict, got, reference, tolerance, _ = entry(run(text, u=u, y=1.0, v=v), "y")
    assert verdict == PASS and abs(reference - exact_x) <= tolerance


# --- underflow ----------------------------------------------------------------------------------


def test_an_adjoint_underflowing_inside_a_sum_is_diagnosed() -> None:
    """h = (z + y)·z; expm1(z - h) + h/y·(z + z) at z = -1e-229, y = -2e261: the adjoint of h,
    2z/y = 1e-490, underflows and is added to 0 before it meets ∂h/∂z = 2e261. Reverse mode
    gives half the derivative (mpmath's 4z); that is a diagnosed underflow, not a wrong rule."""
    z, y = -1.0887460858325978e-229, -2.26098749022901e261
    verdict, got, _, _, message = entry(
        run("h = (z + y) * z; expm1(z - h) + h / y * (z + z)", z=z, y=y), "z"
    )
    assert got == pytest.approx(2 * z, rel=1e-12)  # half of the exact 4z: digits lost
    assert verdict not in FAILING
    assert "underflow" in message and "inconsistent" not in message


# --- the gradient as a whole at a kink ----------------------------------------------------------


def test_directions_along_a_kink_do_not_come_from_the_rules_under_test() -> None:
    """max(hypot(0.1·w, m), softplus(b)) at a tie, with ∂hypot/∂y off by 1e-3: the
    gradient of the switch by forward mode carried the same error, and the direction along the
    kink hid it. By differences of the switch, the gradient is no subgradient."""
    text = "max(hypot(0.1 * w, (a + w) / 2), softplus(b))"
    a, w = 1.522097635846492 - 2.1378711225644222, 2.1378711225644222
    b = float(np.log(np.expm1(np.hypot(0.1 * w, (a + w) / 2))))  # the tie
    values = {"a": a, "w": w, "b": b}
    assert run(text, **values)["a"].verdict[0, 0] in (KINK, PASS)
    with wrong_rule("hypot", scaled(1, 1.001)):
        checks = run(text, **values)
    assert any(vc.verdict[0, 0] in (KINK_FAIL, FAIL) for vc in checks.values())


def test_a_coordinate_no_kink_depends_on_does_not_move_the_directions() -> None:
    """softplus(min(softplus(v[1]), min(x, y, y), dot(u, asin(sin(u))))) at softplus(v[1]) = x,
    with u[1] = 1e206: every direction moved u[1] by 1e206 inside a sine, no step was clean,
    and a rule of softplus 1e-3 off passed as a whole. Directions now move only v[1] and x."""
    text = "softplus(min(softplus(v[-1]), min(x, y, y), dot(u, asin(sin(u)))))"
    program = compile_program(text)
    points = {
        "v": np.array([[-4.941308421335567e-93, 0.0]]),
        "x": np.array([np.log(2.0)]),
        "y": np.array([101838285921655.42]),
        "u": np.array([[1.4103323836892174e-104, 1.1352925584729407e206, 0.0]]),
    }
    right = check(program, points, CheckOptions())
    verdicts = {vc.name: vc.verdict[0] for vc in right.variables}
    assert verdicts["v"][1] == KINK and verdicts["x"][0] == KINK
    with wrong_rule("softplus", scaled(0, 1.001)):
        wrong = check(program, points, CheckOptions())
    verdicts = {vc.name: vc.verdict[0] for vc in wrong.variables}
    assert KINK_FAIL in (verdicts["v"][1], verdicts["x"][0])
