"""A large sample is checked a chunk of points at a time (issue 12): the joined result must be
the check of the whole sample, with every point index (messages, kink directions, faults,
hand-derived gradients) where it belongs. Chunks of a few points are forced here, so that each
case crosses several chunk boundaries; the values are judged against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from gradcli.api import compile_program
from gradcli.checking import engine as checking
from gradcli.checking.checkfile import Case
from gradcli.checking.engine import FAIL, KINK, KINK_FAIL, PASS, CheckOptions, check
from gradcli.checking.runner import run_case

ROWS = 4


@pytest.fixture
def chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checking, "_rows_per_chunk", lambda *a: ROWS)


def _whole_and_chunked(monkeypatch, expr: str, points: dict, **options):
    program = compile_program(expr)
    whole = check(program, points, CheckOptions(**options))
    monkeypatch.setattr(checking, "_rows_per_chunk", lambda *a: ROWS)
    return whole, check(program, points, CheckOptions(**options))


def test_a_chunked_check_is_the_check_of_the_whole_sample(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-3, 3, 19), rng.uniform(0.5, 2, 19)
    whole, parts = _whole_and_chunked(monkeypatch, "x*y + x/y", {"x": x, "y": y})
    assert parts.count == 19 and parts.value.shape == (19,)
    np.testing.assert_allclose(parts.value, x * y + x / y, rtol=1e-15)
    gx, gy = (vc for vc in parts.variables)
    np.testing.assert_allclose(gx.autograd[:, 0], y + 1 / y, rtol=1e-15)
    np.testing.assert_allclose(gy.autograd[:, 0], x - x / y**2, rtol=1e-14, atol=1e-15)
    for a, b in zip(whole.variables, parts.variables, strict=True):
        assert (a.verdict == PASS).all() and (b.verdict == PASS).all()
        for name in ("autograd", "reference", "tolerance", "left", "right", "forward"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_a_fixed_variable_is_shared_by_every_chunk(chunked) -> None:
    x = np.linspace(0.5, 3, 10)
    result = check(compile_program("x^2*c"), {"x": x, "c": np.array([3.0])}, CheckOptions())
    gx, gc = result.variables
    np.testing.assert_allclose(gx.autograd[:, 0], 6 * x, rtol=1e-15)
    np.testing.assert_allclose(gc.autograd[:, 0], x**2, rtol=1e-15)
    assert result.point(7) == {"x": x[7], "c": 3.0}


def test_ties_in_later_chunks_are_judged_at_their_own_points(chunked) -> None:
    """max(x, y) at x = y: (1, 1) is no subgradient (along (1, 1) f grows at rate 1, the
    gradient claims 2); the ties sit in the second and fourth chunks."""
    x = np.linspace(-1, 1, 15)
    y = x + 0.5
    ties = [5, 13]
    y[ties] = x[ties]
    result = check(compile_program("max(x, y)"), {"x": x, "y": y}, CheckOptions())
    gx, gy = result.variables
    for vc in (gx, gy):
        assert set(np.flatnonzero(vc.verdict[:, 0] == KINK)) == set(ties)
    assert set(result.directional.points.tolist()) == set(ties)
    ones = {"x": np.ones((15, 1)), "y": np.ones((15, 1))}
    outside = result.directional.points[result.directional.outside(ones)]
    assert set(outside.tolist()) == set(ties)
    # one-hot gradients, the true subgradients, are inside along every direction
    for g in ({"x": np.ones((15, 1)), "y": np.zeros((15, 1))},):
        assert not result.directional.outside(g).any()


@pytest.mark.parametrize(
    ("dy", "verdict"), [("z", KINK_FAIL), ("0*z", KINK)], ids=["no-subgradient", "subgradient"]
)
def test_a_partial_hand_derived_gradient_is_judged_at_every_point_of_every_chunk(
    chunked, dy: str, verdict: str
) -> None:
    """A hand-derived gradient of x and y only (not z) is judged along directions that move x
    and y, through the joined `directional_for`: (z, z) is no subgradient of max(x, y)·z at a
    tie, (z, 0) is one, at each of the 15 points."""
    x = np.linspace(-1, 1, 15)
    points = {"x": x, "y": x.copy(), "z": np.full(15, 2.0)}
    grad = {"x": compile_program("z"), "y": compile_program(dy)}
    case = Case("ties", compile_program("max(x, y)*z"), grad=grad)
    case.points = lambda *a, **k: points  # type: ignore[method-assign]
    outcome = run_case(case)
    assert outcome.error is None
    for vc in outcome.expected:
        assert (vc.verdict[:, 0] == verdict).all(), (vc.name, vc.verdict[:, 0])


def test_faults_are_reported_once_with_their_rows_over_the_whole_sample(chunked) -> None:
    x = np.linspace(-2, 2, 13)
    x[[1, 9]] = (
        1e-320,
        2e-320,
    )  # subnormal in the first and third chunks: the adjoint 1/x² overflows
    result = check(compile_program("1/x"), {"x": x}, CheckOptions())
    messages = [f.message for f in result.faults]
    assert len(messages) == len(set(messages)) and messages
    (gx,) = result.variables
    np.testing.assert_allclose(gx.autograd[[0, 2, 12], 0], -1 / x[[0, 2, 12]] ** 2, rtol=1e-15)


def test_fast_mode_gives_every_chunk_the_same_entries(chunked) -> None:
    """With --fast a chunk with a kink (a zero element of w) checks element by element; the
    joined result does so at every point rather than mixing shapes."""
    rng = np.random.default_rng(2)
    w = rng.uniform(0.5, 2, (10, 3))
    w[6, 1] = 0.0
    result = check(compile_program("sum(abs(w))"), {"w": w}, CheckOptions(fast=True))
    (gw,) = result.variables
    assert gw.direction is None and gw.verdict.shape == (10, 3)
    assert gw.verdict[6, 1] == KINK
    np.testing.assert_array_equal(np.delete(gw.autograd, [19]), np.delete(np.sign(w), [19]))


def test_fast_mode_without_kinks_stays_directional(chunked) -> None:
    rng = np.random.default_rng(3)
    w = rng.uniform(0.5, 2, (10, 3))
    (gw,) = check(compile_program("sum(w*w)"), {"w": w}, CheckOptions(fast=True)).variables
    assert gw.direction is not None and gw.verdict.shape == (10, 1)
    np.testing.assert_allclose(gw.autograd[:, 0], (2 * w) @ gw.direction, rtol=1e-14)


def test_a_chunked_hessian_is_the_closed_form(chunked) -> None:
    x, y = np.linspace(0.5, 2, 9), np.linspace(-1, 1, 9)
    result = check(compile_program("x^3*y"), {"x": x, "y": y}, CheckOptions(order=2))
    assert result.symmetric and result.symmetry == 0.0
    by = {(vc.of, vc.name): vc.autograd[:, 0] for vc in result.variables}
    np.testing.assert_allclose(by["x", "x"], 6 * x * y, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(by["x", "y"], 3 * x**2, rtol=1e-15)
    np.testing.assert_allclose(by["y", "x"], 3 * x**2, rtol=1e-15)
    np.testing.assert_array_equal(by["y", "y"], 0.0)
    assert all((vc.verdict == PASS).all() for vc in result.variables)


def test_a_wrong_hand_derived_gradient_fails_in_every_chunk(chunked) -> None:
    x = np.linspace(0.5, 2, 11)
    program = compile_program("x^2")
    case = Case("wrong", program, grad={"x": compile_program("2.001*x")})
    case.points = lambda *a, **k: {"x": x}  # type: ignore[method-assign]
    (vc,) = run_case(case).expected
    assert (vc.verdict[:, 0] == FAIL).all()
