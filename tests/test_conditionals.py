"""Conditions in the language: comparisons, and/or/not, where, clip and the rounding steps.

References are independent of gradcli: Python's own comparisons and boolean operators for the
meaning of the syntax (precedence, chains), closed-form derivatives of each branch for `where`,
and the checker's verdicts against what calculus says at jumps and kinks. The where-gradient trap
(a nan or inf derivative in the branch not taken) is tested in value, gradient, forward mode,
Hessian and fault reports. The mpmath rows of every new elementwise primitive are in
test_primitives.py, and every rule is under the rule-mutation test (mutants.py).
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradcli import api, compile_program, evaluate
from gradcli.evaluation.interpreter import evaluate as run_graph
from gradcli.language.printer import to_source
from gradcli.transforms.forward import jvp
from gradcli.transforms.reverse import grad

POINTS = [-2.0, -0.5, 0.0, 0.5, 1.0, 3.0]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "gradcli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


# The language's text, and the same condition as Python computes it.
SYNTAX = [
    ("x < y", lambda x, y: x < y),
    ("x + 1 > y", lambda x, y: x + 1 > y),
    ("x*2 <= y - 1", lambda x, y: x * 2 <= y - 1),
    ("-x >= y^2", lambda x, y: -x >= y**2),
    ("x == y", lambda x, y: x == y),
    ("x != y", lambda x, y: x != y),
    ("0 < x < 1", lambda x, y: 0 < x < 1),
    ("x < y <= 1 < 2", lambda x, y: x < y <= 1 < 2),
    ("x > 0 and y > 0 or x < -1", lambda x, y: (x > 0 and y > 0) or x < -1),
    ("x > 0 or y > 0 and x < -1", lambda x, y: x > 0 or (y > 0 and x < -1)),
    ("not x > 0 and y > 0", lambda x, y: (not x > 0) and y > 0),
    ("not (x > 0 and y > 0)", lambda x, y: not (x > 0 and y > 0)),
    ("not not x", lambda x, y: bool(x)),
    ("x and y", lambda x, y: bool(x) and bool(y)),
    ("(x < y) + (x > y)", lambda x, y: (x < y) + (x > y)),
    ("(x < y) < 1", lambda x, y: (x < y) < 1),
    ("True and not False", lambda x, y: True),
    ("x < inf and -inf < y", lambda x, y: True),
]


@pytest.mark.parametrize(("text", "python"), SYNTAX, ids=[t for t, _ in SYNTAX])
def test_conditions_mean_what_python_means(text, python) -> None:
    names = list(compile_program(text).variables)
    for x, y in itertools.product(POINTS, POINTS):
        got = evaluate(text, {n: v for n, v in (("x", x), ("y", y)) if n in names}).value
        assert float(got) == float(python(x, y)), (text, x, y)


@pytest.mark.parametrize(("text", "python"), SYNTAX, ids=[t for t, _ in SYNTAX])
def test_conditions_print_and_parse_back(text, python) -> None:
    program = compile_program(text)
    again = compile_program(to_source(program.output))
    for x, y in itertools.product(POINTS, POINTS):
        env = {"x": x, "y": y}
        (want,), _, _ = run_graph([program.output], env)
        (got,), _, _ = run_graph([again.output], env)
        assert float(got) == float(want), (text, to_source(program.output))


def test_keywords_are_not_names() -> None:
    for text in ("and = 1", "x + or", "not"):
        r = run("eval", text, "--x", "1")
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr


# --- where: the derivative follows the branch chosen -------------------------------------------


def _inside(x: float) -> float:
    return 1.0 if -1 < x < 1 else 0.5 if abs(x) == 1 else 0.0


# (program, closed-form gradient in x and y)
WHERE = [
    ("where(x > y, x*y, x - y)", lambda x, y: (y, x) if x > y else (1.0, -1.0)),
    ("where(x, y^2, x*y)", lambda x, y: (0.0, 2 * y) if x != 0 else (y, x)),
    # At x = ±1, a tie of min or max: the derivative split evenly, 1/2.
    ("clip(x, -1, 1)*y", lambda x, y: (y * _inside(x), max(-1.0, min(x, 1.0)))),
    ("maximum(x, y) - minimum(x, 2*y)", lambda x, y: (float(x > y) - float(x < 2 * y), 0.0)),
    ("floor(x)*y + mod(x, 2)*y", lambda x, y: (y, math.floor(x) + x % 2)),
]


@pytest.mark.parametrize(("text", "closed"), WHERE, ids=[t for t, _ in WHERE])
def test_where_gradients_match_closed_forms(text, closed) -> None:
    for x, y in [(3.0, 2.0), (1.0, 2.0), (-1.5, 0.25), (0.5, -0.75), (2.5, -3.0), (-3.5, 4.0)]:
        if "maximum" in text and x == 2 * y:
            continue
        r = evaluate(text, {"x": x, "y": y})
        want = closed(x, y)
        if "maximum" in text:
            want = (float(x > y) - float(x < 2 * y), float(y >= x) - 2 * float(2 * y <= x))
        assert (float(r.gradient["x"]), float(r.gradient["y"])) == pytest.approx(want), (x, y)


# The where-gradient trap: an inf or nan derivative in the branch not taken.
TRAPS = [
    ("where(x > 0, sqrt(x), 2*x)", -1.0, 2.0),
    ("where(x > 0, sqrt(x), 2*x)", 0.0, 2.0),
    ("where(x != 0, sin(x)/x, 1)", 0.0, 0.0),
    ("where(x > 0, log(x)*x, x^2)", -3.0, -6.0),
    ("where(x < 1, x, sqrt(1 - x) + log(x - 1))", 0.5, 1.0),
    ("where(x > 0, x, where(x > -1, 3*x, sqrt(x)))", -0.5, 3.0),
    ("where(x > 0, sqrt(x), sqrt(-x))", -4.0, -0.25),
    ("where(x > 0, sqrt(x), 0) + where(x > 0, log(x), 0)", -1.0, 0.0),
    ("t = where(x > 0, sqrt(x), 0); t*t + x", -2.0, 1.0),
]


@pytest.mark.parametrize(("text", "x", "want"), TRAPS, ids=[f"{t}@{x}" for t, x, _ in TRAPS])
def test_a_branch_not_taken_never_poisons_the_gradient(text, x, want) -> None:
    r = evaluate(text, {"x": x})
    assert float(r.gradient["x"]) == pytest.approx(want, abs=1e-15), r.gradient
    assert r.faults == [], [f.message for f in r.faults]
    # Forward mode and second derivatives too.
    program = compile_program(text)
    var = program.variables["x"]
    tangent = program.graph.var("t·")
    (first,) = grad(program.output, [var])
    forward = jvp(program.output, {var: tangent})
    (second,) = grad(first, [var])
    (g, f, h), _, _ = run_graph([first, forward, second], {"x": x, "t·": 1.0})
    assert float(g) == float(f) == pytest.approx(want, abs=1e-15)
    assert math.isfinite(float(h)), h


def test_a_branch_taken_that_is_undefined_is_still_reported() -> None:
    r = evaluate("where(x > 0, sqrt(-x), x)", {"x": 1.0})
    assert math.isnan(float(r.value))
    assert any("sqrt(-x)" in f.message for f in r.faults), [f.message for f in r.faults]
    r = evaluate("where(log(x), 1, 2)", {"x": -1.0})  # a nan condition is not hidden
    assert any("log(x)" in f.message for f in r.faults), [f.message for f in r.faults]
    # The nan of the branch not taken is dropped, the one reaching the output is not.
    r = evaluate("where(x > 0, sqrt(x), 0) + log(y)", {"x": -1.0, "y": -1.0})
    assert [f.message.split(" is ")[0] for f in r.faults] == ["log(y)"]


def test_where_broadcasts_and_sums_back() -> None:
    x, y = np.array([-1.0, 0.0, 2.0]), 0.5
    r = evaluate("sum(where(x > 0, x*y, -x) * [1, -2, 3])", {"x": x, "y": y})
    w = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(r.gradient["x"], np.where(x > 0, y * w, -w))
    assert float(r.gradient["y"]) == float(np.sum(np.where(x > 0, x * w, 0.0)))


def test_where_over_an_array_matches_the_closed_form() -> None:
    xs = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    text = "where(x > 0, sqrt(x), x^2)*y"
    batch = api.check(text, {"x": xs, "y": np.full(5, 2.0)})
    assert batch.passed
    for k, x in enumerate(xs):
        want = 2 / (2 * math.sqrt(x)) if x > 0 else 2 * 2 * x
        assert float(batch.checks[0].autograd[0, k]) == pytest.approx(want, rel=1e-15)


# --- the checker at jumps and kinks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "point", "verdict"),
    [
        ("x > 1", {"x": 1.0}, "not differentiable"),  # a jump
        ("where(x > 1, x^2, x)", {"x": 1.0}, "not differentiable"),  # a kink: slopes 1 and 2
        ("where(x > 1, x^2, x + 1)", {"x": 1.0}, "not differentiable"),  # a jump from 2 to 1
        ("where(x > 1, x^2, 2*x - 1)", {"x": 1.0}, "pass"),  # smooth: both sides 2
        ("floor(x)", {"x": 2.0}, "not differentiable"),
        ("floor(x)", {"x": 2.5}, "pass"),
        ("round(x)", {"x": 2.5}, "not differentiable"),
        ("round(x)", {"x": 2.0}, "pass"),
        ("mod(x, 3)", {"x": 6.0}, "not differentiable"),
        ("mod(x, 3)", {"x": 7.0}, "pass"),
        ("trunc(x)", {"x": 0.0}, "pass"),  # continuous at 0: 0 on both sides
        # Beyond 2^52 every float64 is an integer: floor jumps at each, and no difference of
        # floats can see that; the checker says so rather than failing the derivative 0.
        ("floor(x)", {"x": 1e15}, "unchecked"),
    ],
)
def test_verdicts_at_jumps(text, point, verdict) -> None:
    r = api.check(text, point)
    got = r.checks[0].verdict.ravel()[0]
    assert got == verdict, (text, point, r.checks[0].messages)
    assert r.passed


HUBER = "where(abs(r) <= d, 0.5*r^2, d*(abs(r) - 0.5*d))"


@pytest.mark.parametrize(
    ("expr", "at", "gradient", "passes"),
    [
        (HUBER, "{ r = 2.5, d = 1 }", "{ r = 'where(abs(r) <= d, r, d*sign(r))' }", True),
        (HUBER, "{ r = 2.5, d = 1 }", "{ r = 'where(abs(r) <= d, r, sign(r)*r)' }", False),
        (HUBER, "{ r = 1, d = 1 }", "{ r = 'r' }", True),  # at the join: both sides 1
        (HUBER, "{ r = 1, d = 1 }", "{ r = '2*r' }", False),
        # At a kink, a value outside the one-sided derivatives [1, 2] is no subgradient.
        ("where(x > 1, x^2, x)", "{ x = 1 }", "{ x = '1.5' }", True),
        ("where(x > 1, x^2, x)", "{ x = 1 }", "{ x = '3' }", False),
        ("where(x > 1, x^2, 2*x - 1)", "{ x = 1 }", "{ x = '3' }", False),
    ],
)
def test_hand_gradients_of_piecewise_formulas(tmp_path, expr, at, gradient, passes) -> None:
    (tmp_path / "c.grad.toml").write_text(
        f'[[case]]\nname = "c"\nexpr = "{expr}"\nat = {at}\ngrad = {gradient}\n'
    )
    r = run("check", "c.grad.toml", cwd=tmp_path)
    assert r.returncode == (0 if passes else 1), r.stdout + r.stderr


def test_eval_of_a_trap_prints_no_warning() -> None:
    r = run("eval", "where(x > 0, sqrt(x), 0)", "--x", "-1", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert '"x": 0' in r.stdout.replace("0.0", "0")


def test_an_inf_the_program_writes_is_its_meaning_a_nan_made_of_it_a_fault() -> None:
    assert evaluate("clip(x, -inf, inf)", {"x": 2.0}).faults == []
    assert evaluate("where(x > 0, x, -inf)", {"x": -1.0}).faults == []
    (fault,) = evaluate("x + inf - inf", {"x": 1.0}).faults
    assert "is nan" in fault.message
    (fault,) = evaluate("x*inf", {"x": 0.0}).faults
    assert fault.message.startswith("x*inf is nan")


@pytest.mark.parametrize(
    "text", ["polygamma(inf, x)", "polygamma(x, n=inf)", "log_softmax(v, axis=inf)", "eye(inf)*x"]
)
def test_an_infinite_size_or_order_is_a_located_error(text) -> None:
    r = run("eval", text, "--x", "1", "--v", "1,2")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert "Warning" not in r.stderr, r.stderr


def test_conditions_keep_float32() -> None:
    program = compile_program("(x > 0)*x + (x < 1 and not x > 2) + digamma(x)")
    (value,), _, _ = run_graph([program.output], {"x": 0.5}, np.float32)
    assert np.asarray(value).dtype == np.float32
