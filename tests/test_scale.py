"""Nothing recurses on the depth of its input: long chains and deep nesting go through every pass.

The recursion limit is lowered while each pass runs, so a pass that recursed once per level of the
input would fail here even on a much smaller input.
"""

import math
import sys
from contextlib import contextmanager

import pytest

from gradcli import compile_program, evaluate
from gradcli.evaluation.interpreter import evaluate as run
from gradcli.language.printer import to_source
from gradcli.transforms.reverse import grad

pytestmark = pytest.mark.usefixtures("no_size_limits")  # depth and length, not size limits


@contextmanager
def shallow_stack(limit: int = 300):
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(saved)


def through_every_pass(text: str, x: float):
    with shallow_stack():
        program = compile_program(text)  # parse and lower
        (gx,) = grad(program.output, [program.variables["x"]])
        value_text = to_source(program.output)
        grad_text = to_source(gx)
        (value, gradient), faults, _ = run([program.output, gx], {"x": x})
        reparsed = compile_program(value_text)
        (again,), _, _ = run([reparsed.output], {"x": x})
        regrad = compile_program(grad_text)
        (gagain,), _, _ = run([regrad.output], {"x": x})
    return float(value), float(gradient), float(again), float(gagain), faults


def test_sum_of_100000_terms():
    n = 100_000
    value, gradient, again, gagain, faults = through_every_pass(" + ".join(["x"] * n), 0.25)
    assert value == again == n * 0.25
    assert gradient == gagain == n
    assert not faults


def test_sin_nested_20000_deep():
    depth, x = 20_000, 0.5
    value, gradient, again, gagain, faults = through_every_pass(
        "sin(" * depth + "x" + ")" * depth, x
    )
    # Independent reference: iterate the map and the chain rule in plain Python.
    v, d = x, 1.0
    for _ in range(depth):
        v, d = math.sin(v), d * math.cos(v)
    assert value == pytest.approx(v, rel=1e-12) and again == value
    assert gradient == pytest.approx(d, rel=1e-9) and gagain == pytest.approx(gradient, rel=1e-12)
    assert not faults


def test_parentheses_nested_20000_deep():
    depth = 20_000
    with shallow_stack():
        r = evaluate("(" * depth + "x*2" + ")" * depth, {"x": 3.0})
    assert float(r.value) == 6.0 and float(r.gradient["x"]) == 2.0


def test_unary_minus_and_power_chains_20000_long():
    with shallow_stack():
        r = evaluate("-" * 20_001 + "x", {"x": 2.0})
        assert float(r.value) == -2.0 and float(r.gradient["x"]) == -1.0
        # x^1^1^...^1 is right-associative: 20,000 levels of nesting on the right.
        r = evaluate("x" + "^1" * 20_000, {"x": 2.0})
        assert float(r.value) == 2.0 and float(r.gradient["x"]) == 1.0


def test_a_program_of_20000_bindings():
    n = 20_000
    text = "a0 = x\n" + "\n".join(f"a{i} = a{i - 1} + x" for i in range(1, n + 1))
    with shallow_stack():
        r = evaluate(text, {"x": 1.5})
    assert float(r.value) == (n + 1) * 1.5 and float(r.gradient["x"]) == n + 1
