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
from gradcli.checking import FAIL, PASS, CheckOptions, check
from gradcli.registry import REGISTRY


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
