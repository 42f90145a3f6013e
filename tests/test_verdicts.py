"""Verdicts at the points where checkers go wrong: each test is a class of false verdict.

Every expected verdict is justified by a closed form: the derivative, the one-sided directional
derivatives at a kink, or the rule that was deliberately broken.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from gradcli import compile_program
from gradcli.checking.engine import FAIL, PASS, CheckOptions, check
from gradcli.primitives import REGISTRY


@contextmanager
def replaced(name: str, **fields) -> Iterator[None]:
    """The registry's primitive `name` with other fields (rules), for this block only."""
    prim = REGISTRY[name]
    REGISTRY[name] = dataclasses.replace(prim, **fields)
    try:
        yield
    finally:
        REGISTRY[name] = prim


def run(text: str, **values) -> tuple:
    program = compile_program(text)
    points = {k: np.asarray(v, dtype=float)[None] for k, v in values.items()}
    return check(program, points, CheckOptions())


def verdicts(result) -> dict[str, set[str]]:
    return {vc.name: {str(v) for v in vc.verdict.flat} for vc in result.variables}


# --- forward mode that is not finite where reverse mode is ------------------------------------


def _prod_jvp_by_division(node, ts, shape_of):
    """The textbook slip: d prod(x) = Σ t·prod(x)/x, which is 0/0 where an element is 0."""
    (x,) = node.inputs
    return node.graph.apply("sum", ts[0] * node / x, attrs=node.attrs)


@pytest.mark.parametrize("x", [[0.0, 2.0, 3.0], [1.0, 0.0, 0.0], [0.0]])
def test_a_jvp_that_is_nan_where_reverse_mode_is_finite_fails_and_names_the_node(x):
    """∂prod/∂x_j = Π_{k≠j} x_k is finite everywhere; the jvp by division is nan at a zero."""
    with replaced("prod", jvp=_prod_jvp_by_division):
        result = run("prod(x) + sum(x)", x=x)
    (vc,) = result.variables
    assert FAIL in verdicts(result)["x"]
    failing = [m for (p, e), m in vc.messages.items() if vc.verdict[p, e] == FAIL]
    assert failing and all("forward mode gives nan" in m for m in failing)
    assert all("the derivative of prod(x)" in m for m in failing)


def test_the_right_prod_jvp_passes_at_the_same_zeros():
    for x in ([0.0, 2.0, 3.0], [1.0, 0.0, 0.0], [0.0]):
        result = run("prod(x) + sum(x)", x=x)
        assert result.passed, result.variables[0].messages
        exact = [np.prod(np.delete(x, j)) + 1 for j in range(len(x))]
        assert result.variables[0].forward[0].tolist() == exact


@pytest.mark.parametrize(
    ("text", "x", "exact"),
    [
        ("log(exp(100000*x))", 0.007, 1e5),  # the tangent of exp(700) overflows, the value not
        ("exp(1000*x)*exp(-1000*x)", 0.709, 0.0),  # the tangents of both factors overflow
        ("2*log(exp(300*x))", 2.36, 600.0),
    ],
)
def test_forward_mode_that_only_overflows_is_taken_again_and_agrees(text, x, exact):
    result = run(text, x=x)
    (vc,) = result.variables
    assert vc.verdict[0, 0] == PASS, vc.messages
    assert vc.autograd[0, 0] == pytest.approx(exact, rel=1e-9, abs=1e-6)
    # a shorter tangent keeps the overflowing factor finite but can underflow the other one
    # (the tangent of exp(-1000*x)): the forward value is shown only when it agrees
    assert np.isnan(vc.forward[0, 0]) or vc.forward[0, 0] == pytest.approx(exact, rel=1e-9)


# --- hand-derived gradients at kinks, and gradients judged as a whole at ties -----------------


def hand_derived(text: str, at: dict, gradient: dict):
    """Check a hand-derived gradient (numbers, by variable) as a check file's `grad` does."""
    from gradcli.checking.checkfile import Case
    from gradcli.checking.runner import run_case

    program = compile_program(text)
    case = Case(
        text,
        program,
        at={k: np.asarray(v, dtype=float) for k, v in at.items()},
        grad={k: np.asarray(v, dtype=float) for k, v in gradient.items()},
    )
    outcome = run_case(case)
    assert outcome.error is None, outcome.error
    return outcome


@pytest.mark.parametrize(
    ("text", "at", "name", "left", "right"),
    [
        ("relu(x)*y", {"x": 0.0, "y": 3.0}, "x", 0.0, 3.0),
        ("relu(1 - y*w)", {"y": 1.0, "w": 1.0}, "w", -1.0, 0.0),  # the hinge loss at its kink
        ("abs(x)*y", {"x": 0.0, "y": -2.0}, "x", 2.0, -2.0),
        ("relu(x - y) + x", {"x": 1.5, "y": 1.5}, "x", 1.0, 2.0),
    ],
)
def test_a_hand_derived_partial_at_a_kink_is_judged_between_the_sides(text, at, name, left, right):
    """A hand-derived value at a kink passes exactly when it lies between the one-sided
    derivatives (closed forms): a sweep over values inside, at the ends and outside."""
    low, high = min(left, right), max(left, right)
    width = high - low
    for value in np.linspace(low - width, high + width, 13):
        outcome = hand_derived(text, at, {name: value})
        (vc,) = outcome.expected
        inside = low - 1e-9 <= value <= high + 1e-9
        assert (not vc.failed) == inside, (value, vc.verdict, vc.messages)


def _simplex(rng, k: int) -> np.ndarray:
    w = rng.exponential(size=k)
    return w / w.sum()


TIES = [
    # program, point, the tied coordinates (in the order of the variables), the rest's gradient
    ("max(x, y)", {"x": 1.0, "y": 1.0}, ["x", "y"], {}),
    ("min(x, y)", {"x": -3.0, "y": -3.0}, ["x", "y"], {}),
    ("max(x, y, z)", {"x": 0.5, "y": 0.5, "z": 0.5}, ["x", "y", "z"], {}),
    ("max(x, y) + 2*z", {"x": 2.0, "y": 2.0, "z": 1.0}, ["x", "y"], {"z": 2.0}),
    ("min(x, y)*z", {"x": 1e-3, "y": 1e-3, "z": 2.0}, ["x", "y"], {"z": 1e-3}),
]


@pytest.mark.parametrize(("text", "at", "tied", "rest"), TIES)
def test_at_a_tie_the_gradient_is_judged_as_a_vector(text, at, tied, rest):
    """The subdifferential of max (or min) of tied arguments is the simplex of weights on them
    (scaled by the outer factor): every point of it passes, and every vector off it fails —
    including (1, 1), whose every coordinate lies in [0, 1]."""
    scale = at["z"] if "*z" in text else 1.0
    rng = np.random.default_rng(1)
    for trial in range(12):
        w = _simplex(rng, len(tied))
        inside = {n: scale * w[k] for k, n in enumerate(tied)} | rest
        assert hand_derived(text, at, inside).status != "failed", (trial, inside)
        off = dict(inside)
        if trial % 3 == 0:
            off = {n: scale * 1.0 for n in tied} | rest  # every coordinate in range, sum too big
        elif trial % 3 == 1:
            off[tied[0]] += scale * 0.01  # the weights sum to 1.01
        else:
            off[tied[0]], off[tied[-1]] = -0.02 * scale, inside[tied[-1]] + inside[tied[0]] * 1.02
        assert hand_derived(text, at, off).status == "failed", (trial, off)


def _ties_to_both(name: str):
    """max/min rules that give 1 to both sides of a tie (heaviside(·, 1) instead of 0.5)."""
    from gradcli.primitives._common import heaviside

    if name == "max":
        return (lambda ans, a, b: heaviside(a - b, 1.0), lambda ans, a, b: heaviside(b - a, 1.0))
    return (lambda ans, a, b: heaviside(b - a, 1.0), lambda ans, a, b: heaviside(a - b, 1.0))


@pytest.mark.parametrize(("name", "text", "at"), [(t[0][:3], t[0], t[1]) for t in TIES])
def test_tie_rules_that_give_the_whole_derivative_to_both_sides_fail(name, text, at):
    with replaced(name, partials=_ties_to_both(name)):
        result = run(text, **at)
    assert not result.passed
    assert any(
        "not a subgradient as a whole" in m for vc in result.variables for m in vc.messages.values()
    )


def _extreme_vjp_without_split(node, g, shape_of):
    """amax/amin's rule with every tied element given the whole adjoint."""
    from gradcli.primitives._common import _expand

    (x,), axis = node.inputs, node.attrs[0]
    shape = shape_of(x)
    hit = node.graph.apply("equal", x, _expand(node, shape, axis))
    return (_expand(g, shape, axis) * hit,)


def _extreme_jvp_without_split(node, ts, shape_of):
    """The same slip in forward mode, so that both modes agree and only the verdict at the tie
    can catch it."""
    from gradcli.primitives._common import _expand

    (x,), axis = node.inputs, node.attrs[0]
    hit = node.graph.apply("equal", x, _expand(node, shape_of(x), axis))
    return node.graph.apply("sum", ts[0] * hit, attrs=node.attrs)


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize(
    "x", [[1.0, 1.0, 0.0], [2.0, 5.0, 2.0, 5.0], [[3.0, 3.0], [3.0, -1.0]], [-7.0, -7.0, -7.0]]
)
def test_an_array_max_or_min_that_does_not_split_ties_fails(name, x):
    x = np.asarray(x) if name == "amax" else -np.asarray(x)
    text = f"{name[1:]}(x)"
    assert run(text, x=x).passed  # the registry's rule splits the tie evenly
    with replaced(name, vjp=_extreme_vjp_without_split, jvp=_extreme_jvp_without_split):
        result = run(text, x=x)
    assert not result.passed, result.variables[0].verdict


# --- cancellation: the tolerance bounds the rounding of both sides ----------------------------

CANCELLING = [
    # the tanh form of GELU: 1 + tanh(u) is 4e-10 at x = -6, made from numbers of size 1
    ("0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3)))", (-10.0, 10.0)),
    ("x*(1 + tanh(x))", (-12.0, -4.0)),
    ("x*(cosh(x) - 1)", (-1e-3, 1e-3)),
    ("x*(1 - tanh(x)^2)", (3.0, 15.0)),
    ("(1 + tanh(x))*exp(-x)", (-12.0, -4.0)),
    # and some whose derivative does not inherit the cancellation, which must pass too
    ("(exp(x) - 1 - x)*y", (-1e-4, 1e-4)),
    ("x*(sigmoid(x) - 1)", (5.0, 35.0)),
    ("sum(x*x) - sum(x)*sum(x)/3", (-1e4, 1e4)),
]


@pytest.mark.parametrize(("text", "domain"), CANCELLING)
def test_correct_rules_never_fail_where_the_forward_values_cancel(text, domain):
    """Where the values cancel, the autograd value and the complex-step reference each carry
    rounding errors far above ε relative to the derivative; neither fails a right rule. (The
    first five failed 2 to 68 of their 500 points without the running error bound.)"""
    from gradcli.api import check as api_check

    domains = {"x": f"{domain[0]}:{domain[1]}"}
    if "y" in text:
        domains["y"] = "0.5:2"
    at = {"x": [0.0, 0.0, 0.0]} if "sum" in text else None
    result = api_check(text, at, domains=domains, samples=500, seed=3)
    assert result.passed, result.report()


@pytest.mark.parametrize("name", ["tanh", "exp", "cos", "sigmoid"])
def test_a_wrong_rule_is_still_caught_where_the_values_do_not_cancel(name):
    """The rounding bound grows only where values cancel: a 1e-3 error still fails."""
    from gradcli.api import check as api_check

    prim = REGISTRY[name]
    (right,) = prim.partials
    with replaced(name, partials=(lambda ans, x: 1.001 * right(ans, x),)):
        result = api_check(f"{name}(x)*x", domains={"x": "-2:2"}, samples=50)
    assert not result.passed


# --- sort: ties of three, where f is not regular ----------------------------------------------


def _sort_vjp_without_order(node, g, shape_of):
    """sort's rule with the adjoint left where it is, unsorted: right only where x is sorted."""
    return (g,)


def _sort_jvp_without_order(node, ts, shape_of):
    return ts[0]


@pytest.mark.parametrize(
    ("x", "weights", "judged", "unsorted_fails"),
    [
        ([0.0, 0.0, -1.0], [1.0, 2.0, 3.0], True, True),  # a tie of two: two pieces
        ([2.0, 2.0, 0.5], [1.0, -2.0, 3.0], True, True),
        ([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], True, False),  # convex; unsorted is the same here
        ([0.0, 0.0, 0.0], [1.0, -2.0, 3.0], False, False),  # three pieces, not regular
    ],
)
def test_sort_at_ties_is_judged_where_the_rates_can_judge(x, weights, judged, unsorted_fails):
    """sum(sort(x)·w) at a tie: the stable order's gradient (each tied element gets the weight
    of its place) passes. At a tie of three with weights 1, −2, 3 the rates along each tied
    coordinate are 1 and 3, and along all three 2: no vector fits, the limiting gradient
    (1, −2, 3) included, so the point is not judged, not failed. Where the rates can judge, a
    rule that leaves the adjoint unsorted fails."""
    text = f"sum(sort(x) * {weights})"
    result = run(text, x=x)
    assert result.passed
    messages = " ".join(result.variables[0].messages.values())
    assert ("no gradient lies between the one-sided rates" in messages) != judged
    with replaced("sort", vjp=_sort_vjp_without_order, jvp=_sort_jvp_without_order):
        wrong = run(text, x=x)
    assert wrong.passed != unsorted_fails
