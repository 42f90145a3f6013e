"""How far a check's steps may reach, and what its references may rest on.

Found by the adversarial sweep (benchmarks/adversarial.py), each test here is one instance of a
class the sweep now finds no false verdict in: a stencil that reaches as far as a kink without
crossing it, a periodic function sampled at steps of many periods, a kink of another variable
keeping a variable from the complex step, an imaginary part lost to underflow, an underflow
carried through a sum, directions along a kink computed from the rules under test,
directions that move coordinates no kink depends on, the normal of a tie of derived elements,
a jump whose switch never moves, steps along a kink, and kinks and jumps that only an underflow
made. Every expected number is a closed form or mpmath at 60 digits; wrong rules are injected
into the registry for one check at a time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import mpmath
import numpy as np
import pytest

from gradcli import compile_program
from gradcli.checking.engine import (
    FAIL,
    FAILING,
    KINK,
    KINK_FAIL,
    PASS,
    UNCHECKED,
    CheckOptions,
    check,
)
from gradcli.primitives import REGISTRY
from gradcli.primitives._common import _expand, equal


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


def test_a_tie_of_derived_elements_is_judged_along_its_kink() -> None:
    """min([a, b, c]) with a = v[0,1]·(x·W0 + y·W1) and b = Σ(v @ W) tied at v = 0, and c
    only 1.3e-3 above them: a central difference of the gap between the two smallest saw b
    and c on one side and a and b on the other, so the kink's normal came out wrong and a rule
    of mul 1e-3 off passed as a whole. The gap is a cone at the tie: its normal is now ∇(a − b)
    by forward mode, and the wrong rule is no subgradient."""
    text = "min([v[0, 1] * ([x, y] @ W), sum(dot(v, W)), ([0.1, v[1, 1], W[0]] @ u) ^ 2])"
    x, y, w = -23.66980955109535, 166.4554479422305, [-0.09159379969708803, -13.176551217382126]
    values = {
        "x": np.array([x]),
        "y": np.array([y]),
        "v": np.zeros((1, 2, 2)),
        "W": np.array([w]),
        "u": np.array([[0.06437405340799532, 17.446007049896963, 0.4688430829887161]]),
    }
    program = compile_program(text)
    right = {vc.name: vc for vc in check(program, values, CheckOptions()).variables}
    # closed form: a's gradient in v is (0, x·W0 + y·W1, 0, 0), b's is (W0, W1, W0, W1), and
    # min takes the smaller: one-sided rates min/max of the two along each coordinate
    pieces = np.array([[0.0, x * w[0] + y * w[1], 0.0, 0.0], [w[0], w[1], w[0], w[1]]])
    v = right["v"]
    assert (v.verdict[0] == KINK).all()
    np.testing.assert_allclose(np.minimum(v.left[0], v.right[0]), pieces.min(axis=0), atol=1e-6)
    np.testing.assert_allclose(np.maximum(v.left[0], v.right[0]), pieces.max(axis=0), atol=1e-6)
    with wrong_rule("mul", scaled(0, 1.001)):
        wrong = check(program, values, CheckOptions())
    assert any((vc.verdict[0] == KINK_FAIL).any() for vc in wrong.variables)


@pytest.mark.parametrize("text", ["min(v * equal(v, v))", "min(v * equal(sign(v), sign(v)))"])
def test_a_jump_whose_switch_no_move_stirs_is_no_jump(text: str) -> None:
    """equal(a, a) is 1 everywhere: its switch a − a is 0 at every point, which kept the tie of
    min(v) at v = (3, 3) from being judged as a whole (a point on a jump is not), and a rule 1e-3
    off passed. A switch that stays 0 under every move is now no jump."""
    values = {"v": np.array([[3.0, 3.0]])}
    program = compile_program(text)
    right = check(program, values, CheckOptions()).variables[0]
    assert (right.verdict[0] == KINK).all()  # min(v0, v1): left 1, right 0 in each
    np.testing.assert_allclose(right.left[0], [1.0, 1.0], atol=1e-8)
    np.testing.assert_allclose(right.right[0], [0.0, 0.0], atol=1e-8)
    with wrong_rule("mul", scaled(0, 1.001)):
        wrong = check(program, values, CheckOptions()).variables[0]
    assert (wrong.verdict[0] == KINK_FAIL).all()


# --- a kink or jump that only an underflow made ---------------------------------------------------


def test_a_value_underflowing_into_a_jump_is_not_passed() -> None:
    """heaviside(sqrt(x·y), h) at x = y = 1e-249: float64 makes x·y = 1e-498 zero, and takes the
    middle value h, whose derivative in h is 1; the formula's value is 1 (sqrt(x·y) = 1e-249 > 0)
    and its derivative in h is 0. Differences of the float64 program agree with its gradient,
    so this passed; it is now unchecked, saying why."""
    text = "heaviside(sqrt(x * y), h)"
    checks = run(text, x=1e-249, y=1e-249, h=0.3)
    verdict, _, _, _, message = entry(checks, "h")
    assert verdict == UNCHECKED and "underflow" in message
    # mpmath: the exact switch is positive, so the value is 1 whatever h is
    assert mpmath.sqrt(mpmath.mpf("1e-249") ** 2) > 0
    # without the underflow the same program is smooth in h, with derivative 0
    verdict, autograd, _, _, _ = entry(run(text, x=1e-100, y=1e-100, h=0.3), "h")
    assert verdict == PASS and autograd == 0.0


def test_a_tie_made_by_underflow_is_not_judged_as_a_kink() -> None:
    """min([x·y, u·w]) at x = y = 1e-200, u = w = 1e-210: both products are 0 in float64, a tie
    that the formula does not have (1e-400 > 1e-420, so min is u·w). The kink verdicts are
    now unchecked; at a true tie (every factor 0) they stay kinks, with the closed-form sides."""
    text = "min([x * y, u * w])"
    checks = run(text, x=1e-200, y=1e-200, u=1e-210, w=1e-210)
    for name in "xyuw":
        verdict, _, _, _, message = entry(checks, name)
        assert verdict == UNCHECKED and "underflow" in message, (name, verdict)
    checks = run(text, x=0.0, y=2.0, u=0.0, w=-3.0)
    for name, sides in (("x", (0.0, 2.0)), ("u", (-3.0, 0.0))):
        vc = checks[name]
        assert vc.verdict[0, 0] == KINK
        lo, hi = sorted((float(vc.left[0, 0]), float(vc.right[0, 0])))
        np.testing.assert_allclose((lo, hi), sides, atol=1e-8)


@pytest.mark.parametrize(
    "text", ["(z + max(0.1 * z, y)) * (z * 10)", "(z + max(0.1 * z, y + z, max(z, y))) * (z * 10)"]
)
def test_a_direction_along_a_kink_has_clean_steps(text: str) -> None:
    """(z + max(0.1·z, y))·10z at y = 0.1·z: along the kink (z, y) ∝ (10, 1) the switch
    0.1·z − y stays within rounding of 0, its sign at each offset was noise, only coarse steps
    were clean, and their error estimate let a rule of mul 1e-3 off pass as a whole. Along a
    kink the side does not matter (both pieces have the same rate there): now judged."""
    z = -2.0128283244273866
    values = {"z": z, "y": 0.1 * z}  # the tie, as float64 computes 0.1·z
    right = run(text, **values)
    # closed form: the pieces are 11·z² (max = 0.1·z) and 10·z·(z + y) (max = y)
    pieces = {"z": sorted((22 * z, 20 * z + 10 * values["y"])), "y": sorted((0.0, 10 * z))}
    for name, (lo, hi) in pieces.items():
        vc = right[name]
        assert vc.verdict[0, 0] == KINK
        got = sorted((float(vc.left[0, 0]), float(vc.right[0, 0])))
        np.testing.assert_allclose(got, (lo, hi), rtol=1e-7, atol=1e-9)
    with wrong_rule("mul", scaled(0, 1.001)):
        wrong = run(text, **values)
    assert any(vc.verdict[0, 0] == KINK_FAIL for vc in wrong.values())


def test_an_overflow_at_one_point_does_not_hide_an_underflow_at_another() -> None:
    """(2 + sin x)^log10|x|·|x| at x = 3.8e-272, whose value is 7.5e-354: reverse mode loses
    digits to underflow inside pow's rule (23% off), and alone the check says so. In one batch
    with x = 1e300, where the same nodes overflow, the overflow's fault was recorded instead of
    the underflow, and the disagreement of the modes was a failure, "an inconsistent rule"."""
    text = "(2 + sin(x)) ^ log10(abs(x)) * abs(x)"
    x = 3.798048123664053e-272
    with mpmath.workdps(60):  # the derivative of g^L·x, g = 2 + sin x, L = log10 x
        X = mpmath.mpf(x)
        g, power = 2 + mpmath.sin(X), mpmath.log10(X)
        rate = power * mpmath.cos(X) / g + mpmath.log(g) / (X * mpmath.log(10))
        exact = float(g**power * (1 + X * rate))
    program = compile_program(text)
    for xs in ([x], [x, 1e300], [1e300, x]):
        result = check(program, {"x": np.array(xs)}, CheckOptions())
        vc, p = result.variables[0], xs.index(x)
        assert vc.verdict[p, 0] == UNCHECKED, (xs, vc.verdict)
        assert "lost its digits" in vc.messages[p, 0]
        # the autograd value really is off: the verdict is not hiding a right one
        assert abs(vc.autograd[p, 0] - exact) > 0.1 * abs(exact)
        rows = [f.rows for f in result.faults if f.cause == "underflow"]
        assert rows and all(r.tolist() == [v == x for v in xs] for r in rows)


@pytest.mark.parametrize("y", [1e-66, 1e-70, 3e-83, 1e-100])
def test_a_tangent_lost_beyond_the_range_at_every_length_is_no_wrong_rule(y: float) -> None:
    """norm([y³, y³])·c + (y·1e300)·1e-300, c = 1/y²: forward mode's x·t inside norm's jvp is
    3y⁵ (below 1e-324: 0), and no length of the tangent saves it, for a longer one overflows
    y·1e300's tangent. No rule is wrong: the check passed it as "an inconsistent derivative
    rule" until both modes were taken again in extended precision."""
    c = 10.0 ** round(-2 * np.log10(y))
    text = f"norm([y^3, y^3]) * {c!r} + (y * 1e300) * 1e-300"
    with mpmath.workdps(60):
        exact = float(3 * mpmath.sqrt(2) * mpmath.mpf(y) ** 2 * mpmath.mpf(c) + 1)
    vc = run(text, y=y)["y"]
    assert vc.verdict[0, 0] == PASS, vc.messages
    assert vc.autograd[0, 0] == pytest.approx(exact, rel=1e-12)


def test_a_wrong_forward_rule_is_caught_beside_an_underflow_elsewhere_in_the_batch() -> None:
    """sin's forward rule ×1.001 in sin(x)·(y·y·1e300), with y·y underflowing at another point
    of the batch: an underflow anywhere excused every disagreement of the modes, so the wrong
    rule went unreported (reverse mode is right, and passes the reference). In extended
    precision the modes still differ: the wrong rule is named at the points it shows at."""
    prim = REGISTRY["sin"]
    wrong = dataclasses.replace(
        prim, jvp=lambda node, ts, shape_of: ts[0] * (1.001 * prim.partials[0](node, *node.inputs))
    )
    program = compile_program("sin(x) * (y * y * 1e300)")
    points = {"x": np.array([0.5, 1.0, 2.0]), "y": np.array([1.0, 1e-200, 3.0])}
    REGISTRY["sin"] = wrong
    try:
        result = check(program, points, CheckOptions())
    finally:
        REGISTRY["sin"] = prim
    assert any(f.cause == "underflow" for f in result.faults)
    vc = next(v for v in result.variables if v.name == "x")
    clean = [0, 2]  # at y = 1e-200 the float64 program is 0 in x: both modes give 0
    assert vc.verdict[clean, 0].tolist() == [FAIL] * 2, vc.messages
    assert all("inconsistent derivative rule" in vc.messages[p, 0] for p in clean)
    exact = np.cos([0.5, 2.0]) * np.array([1.0, 9.0]) * 1e300
    assert vc.autograd[clean, 0] == pytest.approx(exact, rel=1e-15)


@pytest.mark.parametrize("text", ["heaviside(10, z) * relu(x)", "max(x, 0) + heaviside(-0.5, z)"])
def test_a_kink_whose_switch_is_a_constant_beside_one_on_its_kink(text: str) -> None:
    """heaviside(10, z) is a jump primitive whose switch, 10, never moves; beside relu(x) at
    x = 0, the search for kinks made by underflow looked the constant up among the nodes that
    move, and the check ended in a KeyError (the sweep found it at both seeds)."""
    program = compile_program(text)
    result = check(program, {"x": np.array([0.0, 1.0]), "z": np.array([1.0, 2.0])}, CheckOptions())
    by = {vc.name: vc for vc in result.variables}
    assert by["x"].verdict[:, 0].tolist() == [KINK, PASS]
    assert by["x"].autograd[1, 0] == 1.0
    assert by["z"].verdict[:, 0].tolist() == [PASS, PASS]


# Found by the sweep (seed 0): reverse mode's sums cancel (values near 1e209 give a derivative
# of 1/3), so it is off by 1e192 within its honest tolerance of 1e195, and forward mode is not.
_CANCELLING = (
    "((('b', ('binary', '+', ('call', 'softplus', (('name', 'v'),), ()), ('binary', '*', ('na"
    "me', 'v'), ('call', 'softmax', (('array', (('index', ('name', 'v'), (-1,)), ('index', ('"
    "name', 'v'), (-1,)), ('index', ('name', 'v'), (-1,)))),), ())))),), ('call', 'dot', (('a"
    "rray', (('call', 'softplus', (('index', ('name', 'v'), (0,)),), ()), ('call', 'mean', (("
    "'name', 'v'),), ()), ('binary', '*', ('call', 'sqrt', (('call', 'abs', (('index', ('name"
    "', 'v'), (-3,)),), ()),), ()), ('call', 'sqrt', (('call', 'abs', (('index', ('name', 'v'"
    "), (-2,)),), ()),), ())))), ('binary', '^', ('call', 'exp', (('call', 'tanh', (('call', "
    "'pow', (('binary', '+', ('num', '1'), ('binary', '^', ('call', 'atan2', (('name', 'v'), "
    "('name', 'b')), ()), ('num', '2'))), ('num', '2')), ()),), ()),), ()), ('call', 'softmax"
    "', (('name', 'b'),), ()))), ()), {'v': (3,)}, 'scale-free')"
)


def test_modes_that_differ_by_rounding_are_no_inconsistent_rule() -> None:
    """In extended precision the two modes' difference shrank 2048 times (the unit roundoff's
    ratio): rounding, which the reference's tolerance covers, not a wrong rule, which differs
    alike in every precision. It was failed as "an inconsistent derivative rule"."""
    import adversarial

    program = adversarial.Program.from_spec(_CANCELLING)
    v = [1.3698565767296082e209, -8.221354207798342e187, -8.221354207798342e187]
    exact = adversarial.reference(program, {"v": np.array(v)}, ["v"]).elements[("v", 2)]
    assert exact.status == "smooth" and abs(exact.derivative - mpmath.mpf(1) / 3) < 1e-15
    vc = run(program.text, v=np.array(v))["v"]
    # The rounding leaves -2.3e192 for 1/3, inside a tolerance of 1.2e195 that holds 0 as well:
    # no failure, and no pass either, as a wrong value of that size would pass too.
    assert vc.verdict[0, 2] == UNCHECKED, vc.messages
    assert "cannot resolve" in vc.messages[0, 2]
    assert abs(vc.autograd[0, 2] - float(exact.derivative)) <= vc.tolerance[0, 2]


@pytest.mark.parametrize(
    "text", ["sum(-(sqrt(abs(u)) * sqrt(abs(u))))", "-sqrt(abs(u))^2 @ [1, 1]"]
)
def test_a_reference_with_an_infinite_error_estimate_passes_nothing(text: str) -> None:
    """At u = [-1.2e-288, 5e273] the differences in u[0] (steps of 1e-291) are lost in a
    value of -5e273: the reference is 0, its error estimate inf, and an infinite tolerance
    passed any autograd value (found by the sweep of one point per batch, seed 0)."""
    u = np.array([[-1.2091886057706819e-288, 4.996224852535243e273]])
    result = check(compile_program(text), {"u": u}, CheckOptions())
    vc = result.variables[0]
    assert vc.autograd[0] == pytest.approx([1.0, -1.0], rel=1e-15)  # d(-|u|)/du: closed form
    assert vc.verdict[0, 0] == UNCHECKED, (vc.verdict, vc.tolerance)
    assert vc.verdict[0, 1] == PASS


@pytest.mark.parametrize("u", [[1.0, 1.8e108, 1.0, 2.0], [1.0, 3.0, 5e273, 2.0]])
def test_a_smaller_complex_step_does_not_pass_what_the_usual_one_failed(u: list) -> None:
    """mul's partial negated makes the gradient of sum(-(√|u|·√|u|)) 0 where it is -1 (the
    closed form). The usual complex step fails it, trusted; the step kept clear of underflow in
    the final derivative (2^-900 over its size) underflowed h/(2√u) inside, gave a reference of
    0, and passed the wrong rule (found by the sweep of one point per batch, seed 0)."""
    import adversarial

    program = compile_program("sum(-(sqrt(abs(u)) * sqrt(abs(u))))")
    with adversarial.injected("mul", "flip", 0):
        vc = check(program, {"u": np.array([u])}, CheckOptions()).variables[0]
    assert vc.autograd[0].tolist() == [0.0] * 4  # the wrong rule's
    assert vc.verdict[0].tolist() == [FAIL] * 4, (vc.verdict, vc.reference, vc.how)
    assert vc.reference[0] == pytest.approx([-1.0] * 4, rel=1e-9)
    right = check(program, {"u": np.array([u])}, CheckOptions()).variables[0]
    assert right.verdict[0].tolist() == [PASS] * 4


def test_directions_among_tiny_coordinates_are_resolved_in_their_own_units() -> None:
    """At a tie of min(x, v01) with both at -1.3e-182, the directions were moved in units of
    max(1, |x|) = 1, so no step of the ladder (down to 64ε) stayed on one side of the kinks at
    0: every direction was unresolved and abs's rule ×1.001 passed as a whole. The pieces'
    gradients in (x, v01) are (-5√2, 0) and (-5√2/2, -5√2/2) (closed form: f = 10√(|x|/2)·√|m|
    near 0, m = min(x, v01)); the right gradient lies in their hull, the wrong one not."""
    import adversarial

    text = "10 * (sqrt(abs(0.5 * x * (1 + tanh(0.75 * x)))) * sqrt(abs(min(x, v[1]))))"
    x = -1.3330361679103021e-182
    points = {"x": np.array([x]), "v": np.array([[4.0e-182, x]])}
    program = compile_program(text)
    right = {vc.name: vc for vc in check(program, points, CheckOptions()).variables}
    assert right["x"].verdict[0, 0] == KINK and right["v"].verdict[0, 1] == KINK
    assert right["x"].left[0, 0] == pytest.approx(-5 * np.sqrt(2), rel=1e-6)
    assert right["x"].right[0, 0] == pytest.approx(-5 * np.sqrt(2) / 2, rel=1e-6)
    with adversarial.injected("abs", "scale", 0):
        wrong = {vc.name: vc for vc in check(program, points, CheckOptions()).variables}
    assert wrong["x"].verdict[0, 0] == KINK_FAIL, wrong["x"].messages


_BLIND_USUAL_STEP = (
    "((('a', ('unary', '-', ('call', 'pow', (('call', 'sigmoid', (('index', ('name', 'W'), (-"
    "3,)),), ()), ('index', ('name', 'W'), (0,))), ()))),), ('call', 'logsumexp', (('call', '"
    "abs', (('binary', '*', ('array', (('array', (('name', 'a'), ('name', 'a'))), ('array', ("
    "('num', '0.5'), ('name', 'a'))))), ('array', (('index', ('name', 'W'), (('slice', None, "
    "-1, None),)), ('name', 'u')))),), ()),), ()), {'v': (2,), 'u': (2,), 'W': (3,)}, 'array'"
    ")"
)


def test_a_smaller_complex_step_that_sees_more_than_the_usual_one_stands() -> None:
    """The other side of the test above: at W0 = 1.5e-125 the usual complex step loses the
    derivative inside pow (5e144 where mpmath says -9.8e180) and fails a right rule; the
    smaller step sees it. A smaller step's pass is refused only where it sees less."""
    import adversarial

    text = "a = -pow(sigmoid(W[-3]), W[0]); logsumexp(abs([[a, a], [0.5, a]] * [W[:-1], u]))"
    W = np.array([1.4602815920385056e-125, -3.9412574199997726e99, -5e-324])
    u = np.array([-1.4206663482313693e181, -1.4206663482313693e181])
    program = adversarial.Program.from_spec(_BLIND_USUAL_STEP)
    assert program.text.replace(" ", "") == text.replace(" ", "")
    v = np.array([-6.276453922132761e-98, 5.978551657544564e175])  # in scope, unused
    exact = adversarial.reference(program, {"W": W, "u": u, "v": v}, ["W"]).elements[("W", 0)]
    vc = run(text, W=W, u=u)["W"]
    assert vc.verdict[0, 0] == PASS, (vc.verdict, vc.reference, vc.how)
    assert vc.autograd[0, 0] == pytest.approx(float(exact.derivative), rel=1e-12)


# Copies of one value that tie for the extreme (a broadcast) are no kink: their gap is 0 under
# every move, so it cannot show the real kink where the next value takes over.
COPIES_TIED = {  # the program, and how many copies of x tie for its extreme
    "max([x, x, y])": 2,
    "max(transpose(broadcast_to([x, y], [2, 2])))": 2,
    "min([x, x, y])": 2,
    "max([" + "x, " * 8 + "y])": 8,  # past the watched gaps of an earlier version (7)
    "max(broadcast_to([x, y], [20, 2]))": 20,  # a tie longer than all the watched gaps
}


@pytest.mark.parametrize("gap", [2e-316, 1e-300, 1e-250, 1e-25, 1e-3])
@pytest.mark.parametrize("text", COPIES_TIED)
def test_copies_tied_for_the_extreme_beside_the_next_value(text: str, gap: float) -> None:
    """At x = 0 with y a gap away on the losing side, f is x itself up to that gap: ∂f/∂x = 1
    and ∂f/∂y = 0 exactly. A stencil that reaches y sees half the slope on one side (the
    sweep's false failure, with a subnormal gap that no normal step stays within); no verdict
    may fail the closed form, nor call the point a kink, and a pass is a pass of it."""
    y = gap if text.startswith("min") else -gap
    checks = run(text, x=0.0, y=y)
    for name, exact in (("x", 1.0), ("y", 0.0)):
        verdict, autograd, _, tolerance, message = entry(checks, name)
        assert verdict in (PASS, UNCHECKED), (name, verdict, message)
        assert abs(autograd - exact) <= 4 * np.finfo(float).eps  # 20 shares of 1/20: rounding
        if verdict == PASS:
            assert tolerance < 0.5, (name, tolerance)


@pytest.mark.parametrize("gap", [2e-316, 1e-300, 1e-25, 1e-3])
@pytest.mark.parametrize("text", COPIES_TIED)
def test_a_rule_that_does_not_split_a_tie_of_copies_never_passes(text: str, gap: float) -> None:
    """The same points, with max's and min's rule giving every tied element the whole adjoint
    (∂f/∂x = 2 from two copies, 20 from twenty): never a pass, and a failure wherever a step
    resolves it."""
    y = gap if text.startswith("min") else -gap

    def unsplit(node, g, shape_of):
        (x,), axis = node.inputs, node.attrs[0]
        shape = shape_of(x)
        return (_expand(g, shape, axis) * equal(x, _expand(node, shape, axis)),)

    saved = {name: REGISTRY[name] for name in ("amax", "amin")}
    try:
        for name, prim in saved.items():
            REGISTRY[name] = dataclasses.replace(prim, vjp=unsplit)
        verdict, autograd, _, _, message = entry(run(text, x=0.0, y=y), "x")
    finally:
        REGISTRY.update(saved)
    assert autograd == COPIES_TIED[text]
    assert verdict != PASS, message
    if gap >= 1e-3:
        assert verdict == FAIL, message


def test_the_gaps_to_the_next_values_of_max_and_min() -> None:
    """The watched gaps against a sort: the top minus the third, fourth and fifth values (inf
    where they tie with it), along an axis and over all elements."""
    x = np.array([[3.0, 3.0, 1.0, 0.0, 3.0], [2.0, 5.0, 5.0, 4.0, -1.0]])
    inf = np.inf
    np.testing.assert_array_equal(
        REGISTRY["next_gaps_max"].forward(x, 1), [[inf, 2.0, 3.0], [1.0, 3.0, 6.0]]
    )
    np.testing.assert_array_equal(
        REGISTRY["next_gaps_min"].forward(x, 1), [[3.0, 3.0, 3.0], [5.0, 6.0, 6.0]]
    )
    everything = np.sort(x.ravel())[::-1]
    expected = everything[0] - everything[2:]
    np.testing.assert_array_equal(
        REGISTRY["next_gaps_max"].forward(x, None), np.where(expected > 0, expected, inf)
    )
    assert REGISTRY["next_gaps_max"].forward(np.array([1.0, 2.0]), None).shape == (0,)
    # A tie longer than the gaps watched: one more, to the next distinct value.
    long = np.array([0.0] * 20 + [-1e-300, -5.0])
    gaps = REGISTRY["next_gaps_max"].forward(long, None)
    assert gaps.shape == (15,) and np.isinf(gaps[:-1]).all() and gaps[-1] == 1e-300
    assert REGISTRY["next_gaps_max"].forward(np.arange(20.0), None)[-1] == np.inf


# max(A, B) at a tie of a constant A = log10(π) and a B that curves away from it (the sweep's
# seed 0): along the kink, B - A = s·t + c·t² with s ≈ 3e-6 from the normal's error and
# c ≪ 0, so every step's stencil sees only A on both sides (rates 0), while the subgradients
# reach s/2. The directions along a kink are only as good as the measured normal.
CURVED_TIE = (
    "max(log10(max([[W[0, -1], W[1, 1]], [W[0, 0], pi]])), dot([W[0, 0], W[-1, 0], W[1, -1]]"
    " / [W[0, 1], W[-1, -1], W[1, 0]], prod_except([W[0, 1], W[-1, 0], W[-1, -1]])))"
)
CURVED_AT = [[-0.001763262658536031, 0.00977206414575755], [-2.832195174151692, 1.00770989199757]]


def _b_gradient_mpmath() -> list[float]:
    """∇B at the point, B = Σ_k (u_k/v_k)·Π_{j≠k} w_j, by mpmath's differences at 50 digits."""
    mpmath.mp.dps = 50
    w = [[mpmath.mpf(v) for v in row] for row in CURVED_AT]

    def b(*flat):
        m = [[flat[0], flat[1]], [flat[2], flat[3]]]
        u = [m[0][0], m[-1][0], m[1][-1]]
        v = [m[0][1], m[-1][-1], m[1][0]]
        p = [m[0][1], m[-1][0], m[-1][-1]]
        excl = [p[1] * p[2], p[0] * p[2], p[0] * p[1]]
        return sum(u[k] / v[k] * excl[k] for k in range(3))

    flat = [w[0][0], w[0][1], w[1][0], w[1][1]]
    grads = [mpmath.diff(b, flat, tuple(int(i == k) for i in range(4))) for k in range(4)]
    mpmath.mp.dps = 15
    return [float(g) for g in grads]


def test_a_gradient_along_a_curved_kink_is_judged_within_what_its_normal_allows() -> None:
    """The tie is real (B = A to the last digit) and A is constant, so each element's sides
    are 0 and ∂B (mpmath), and the split gradient ∇B/2 is a subgradient: "not differentiable"
    for every element, never "not a subgradient". A rule of mul 1e-3 off still is none."""
    values = {"W": np.array([CURVED_AT])}
    program = compile_program(CURVED_TIE)
    exact = _b_gradient_mpmath()
    vc = check(program, values, CheckOptions()).variables[0]
    assert list(vc.verdict[0]) == [KINK] * 4, vc.messages
    sides = np.sort(np.stack([vc.left[0], vc.right[0]]), axis=0)
    error = np.abs(sides - np.sort([np.zeros(4), exact], axis=0))
    assert (error <= vc.tolerance[0]).all(), (error, vc.tolerance[0])  # within its own claim
    np.testing.assert_allclose(vc.autograd[0], np.array(exact) / 2, rtol=1e-9)
    with wrong_rule("mul", scaled(0, 1.001)):
        wrong = check(program, values, CheckOptions()).variables[0]
    assert (wrong.verdict[0] == KINK_FAIL).any() or (wrong.verdict[0] == FAIL).any()


# The sweep's false passes of the misalignment bound's first version: at coordinates of 1e255
# and more, norms of the normals and moves overflowed, every direction counted as along a
# kink with an infinite slack, and no direction judged the gradient as a whole.
HUGE_KINKS = [
    (
        "min(sqrt(abs(v)) * sqrt(abs(v)) * equal(sign(v), sign(v)))",
        {"v": [8.43142370642998e255, 8.43142370642998e255]},
        ("sqrt", 0),
    ),
    (
        "h = softplus([v[1, 1], v[1, 0], W[-2], W[-1]]); "
        "max(hypot(0.1 * W[2], mean(W[::2])), softplus(softplus(h[-3])))",
        {
            "W": [-1.1139705773468484e-263, 5.050560913363808e-161, 6.281283128762405e293],
            "v": [
                [1.0489829347098698e-107, -3.6457746522176866e-186],
                [3.2028385243960644e293, 1e217],
            ],
        },
        ("hypot", 1),
    ),
    (
        "h = min(W[1], u[0]); softplus(softplus([h, h, h])) * "
        "log(abs([h, h, h] / cosh(tanh(sinh(0.5 * tanh([h, h, h]))))))",
        {
            "u": [2.586541001927263e275, -1.5795151211733799e119],
            "W": [-1.38e-25, 2.586541001927263e275],
        },
        ("abs", 0),
    ),
]


@pytest.mark.parametrize("text, values, rule", HUGE_KINKS)
def test_a_gradient_at_a_kink_among_huge_coordinates_is_judged_as_a_whole(text, values, rule):
    """At each point a tie (mpmath: one-sided derivatives that differ, pieces as the sweep
    found them); the right gradient is a subgradient, and a rule 1e-3 off, whose every element
    still lies between its own sides, is none along a direction that moves the tie."""
    program = compile_program(text)
    points = {k: np.array([v], dtype=float) for k, v in values.items()}
    right = check(program, points, CheckOptions())
    assert not any((vc.verdict[0] == KINK_FAIL).any() for vc in right.variables)
    assert any((vc.verdict[0] == KINK).any() for vc in right.variables)
    with wrong_rule(rule[0], scaled(rule[1], 1.001)):
        wrong = check(program, points, CheckOptions())
    assert any((vc.verdict[0] == KINK_FAIL).any() for vc in wrong.variables)


# Where the slack along a kink must stay small: a gradient jump of 1e160 (its square overflowed
# and gave an infinite slack), and another kink, abs(w) at w = h, a step or two from the point
# (an error estimate at twice the step crossed it and came out as large as the normal).
SLACK_BOUNDED = [
    ("max(x, y) * 1e160", {"x": 1.0, "y": 1.0}),
    ("max(x, abs(w) + y) * 2", {"x": 1.0, "w": 2.0**-18, "y": 1 - 2.0**-18}),
]


@pytest.mark.parametrize("text, values", SLACK_BOUNDED)
def test_the_slack_along_a_kink_hides_no_wrong_rule(text: str, values: dict) -> None:
    """At these ties (closed form: the pieces' gradients are the arguments' of max, e.g. 1e160
    and 0 in x), the right split gradient is a subgradient and mul 1e-3 off is none."""
    right = run(text, **values)
    assert all((vc.verdict[0] == KINK).all() for vc in right.values())
    with wrong_rule("mul", scaled(0, 1.001)):
        wrong = run(text, **values)
    assert all((vc.verdict[0] == KINK_FAIL).all() for vc in wrong.values())


@pytest.mark.parametrize("name", ["i1e", "erf"])
def test_a_slope_of_1e200_into_a_saturating_function_is_no_failure(name: str) -> None:
    """f(x*y) at x = 0, y = -1.5e200 (the adversarial benchmark, seed 0, through an einsum):
    f saturates within 1e-200 of 0, and every step down to the rounding floor of x saw it flat
    and seconded a failure of the right slope. The ladder now goes on below that floor where
    the autograd value says f changes by its own size over a smaller step; a wrong rule still
    fails there."""
    text = f"{name}(x*y)"
    verdict, autograd, *_ = entry(run(text, x=0.0, y=-1.5e200), "x")
    assert verdict in (PASS, UNCHECKED), verdict
    assert autograd == pytest.approx(-1.5e200 * {"i1e": 0.5, "erf": 2 / math.sqrt(math.pi)}[name])
    with wrong_rule(name, scaled(0, 1.5)):
        assert entry(run(text, x=0.0, y=-1.5e200), "x")[0] == FAIL


def test_a_pass_the_reference_cannot_resolve_is_unchecked_unless_atol_covers_it() -> None:
    """At x = y = 1.4e-113 the values of dot(prod_except(…), v) underflow: differences of them
    are 0 ± 1.6e-205, and ∂f/∂y = 2.7e-225 passed, as any wrong value of that size would (a
    false pass of the adversarial benchmark, seed 11). It is unchecked now, with a note; a
    user's --atol that covers the difference is a pass by their rule."""
    text = "dot(prod_except([[y, x], [y, y]]), v)"
    values = {"x": np.array([1.4e-113]), "y": np.array([1.4e-113]), "v": np.array([[1.0, 2.0]])}
    program = compile_program(text)
    vc = {c.name: c for c in check(program, values, CheckOptions()).variables}["y"]
    assert vc.verdict[0, 0] == UNCHECKED
    assert "cannot resolve" in vc.messages[0, 0]
    # f = 4xy² + 2y³ (each element times the product of the other three, summed against v)
    assert vc.autograd[0, 0] == pytest.approx(8 * 1.4e-113 * 1.4e-113 + 6 * 1.4e-113**2)
    loose = CheckOptions(atol=1e-200)
    assert {c.name: c for c in check(program, values, loose).variables}["y"].verdict[0, 0] == PASS
