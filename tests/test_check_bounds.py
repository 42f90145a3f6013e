"""Every loop of the checker ends, whatever the arithmetic does.

The ladders of smaller steps (confirmation of a failure, refinement at a kink, the complex step's
second opinions) once divided a step until it fell below a floor; at a coordinate of 0, or below
about 1e-290, the floor itself rounded to 0 and the loop never ended (`check "x*x" --x 1e-300`
grew to 600 MB). Now no step is below the smallest normal number and every ladder has a fixed
number of rungs. These tests run each path at zero, subnormal and tiny coordinates, with correct
rules and with wrong ones, each under a wall-clock bound that does not rely on the checker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from timer import time_limit

from gradcli import compile_program
from gradcli.checking.engine import FAIL, FAILING, CheckOptions, check
from gradcli.checking.finite_diff import METHODS
from gradcli.graph.nodes import Node
from gradcli.primitives import REGISTRY

TINY = float(np.finfo(np.float64).tiny)
SUBNORMAL = 5e-324
POINTS = (0.0, SUBNORMAL, -SUBNORMAL, 1e-310, TINY, 1e-300, -1e-300, 1e-290)
SECONDS = 20  # far above the few tenths of a second each check takes


def run(text: str, x: float, method: str = "auto", dtype: str = "float64", **values: float):
    program = compile_program(text)
    points = {"x": np.array([x])}
    points |= {k: np.array([v]) for k, v in values.items() if k in program.variables}
    with time_limit(SECONDS):
        return check(program, points, CheckOptions(method=method, dtype=dtype))


def verdicts(result) -> set[str]:
    return {str(v) for vc in result.variables for v in vc.verdict.flat}


@contextmanager
def scaled_rule(name: str, factor: float, argument: int = 0) -> Iterator[None]:
    """The registry's rule of `name` in `argument`, multiplied by `factor`, for this block."""
    prim = REGISTRY[name]
    partials = list(prim.partials)
    right = partials[argument]
    partials[argument] = lambda ans, *xs: factor * right(ans, *xs)
    REGISTRY[name] = dataclasses.replace(prim, partials=tuple(partials))
    try:
        yield
    finally:
        REGISTRY[name] = prim


PROGRAMS = (
    "x*x",
    "x^2",
    "x^2 + 1",
    "exp(x)",
    "sin(x)*x",
    "relu(x)*x",
    "abs(x) + x*x",
    "sqrt(x*x+1)",
)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("x", POINTS)
@pytest.mark.parametrize("text", PROGRAMS)
def test_correct_rules_end_without_failing(text: str, x: float, method: str) -> None:
    result = run(text, x, method)
    assert not verdicts(result) & FAILING, result.variables[0].messages


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("x", POINTS)
def test_wrong_rules_end(x: float, dtype: str) -> None:
    """A wrong rule makes every failing probe climb the whole ladder: it must still end."""
    for name, text in (("exp", "exp(x)"), ("mul", "x*x"), ("mul", "x*y"), ("sin", "sin(x)*x")):
        with scaled_rule(name, 1.001):
            run(text, x, "auto", dtype, y=3.0)


@pytest.mark.parametrize("method", METHODS)
def test_a_wrong_rule_at_zero_fails(method: str) -> None:
    """exp'(0) = 1 is resolved by every method: 1.001 is a failure, reached in bounded time."""
    with scaled_rule("exp", 1.001):
        result = run("exp(x)", 0.0, method)
    assert verdicts(result) == {FAIL}


@pytest.mark.parametrize("x", POINTS)
def test_sampled_points_at_the_bottom_of_the_range_end(x: float) -> None:
    program = compile_program("x*x + x")
    points = {"x": np.array([x, x / 2, -x, 1e-300 + x])}
    with time_limit(SECONDS):
        result = check(program, points, CheckOptions())
    assert result.passed


def test_the_complex_steps_never_go_below_the_smallest_normal_number(monkeypatch) -> None:
    """Every stencil the checker evaluates moves x by at least the smallest normal number."""
    from gradcli.checking import engine as checking

    steps: list[np.ndarray] = []
    original = checking._Run._stencil

    def spy(self, var, probes, offsets, h):
        steps.append(np.abs(np.asarray(h)))
        return original(self, var, probes, offsets, h)

    monkeypatch.setattr(checking._Run, "_stencil", spy)
    with scaled_rule("mul", 1.001):
        for x in POINTS:
            run("x*x", x)
    assert steps and min(float(s.min()) for s in steps if s.size) >= TINY


def test_a_node_helper_is_used_for_rules() -> None:
    """The helper above really replaces the rule (so the tests of wrong rules test something)."""
    program = compile_program("exp(x)")
    from gradcli.evaluation.interpreter import evaluate
    from gradcli.transforms.reverse import grad

    with scaled_rule("exp", 1.001):
        (g,) = grad(program.output, [program.variables["x"]])
        assert isinstance(g, Node)
        (value,), _, _ = evaluate([g], {"x": 0.0})
    assert float(value) == pytest.approx(1.001, rel=1e-15)
