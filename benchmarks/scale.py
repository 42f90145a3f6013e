"""Scale: each pass on a 10,000-node and a 100,000-node program, and a sharing-heavy graph.

Four program shapes, each at about 10^4 and 10^5 nodes (counted after lowering):

- a sum of terms, `sin(1*x) + sin(2*x) + ... + sin(n*x)` (n = 2,500 and 25,000);
- a long chain, `x + x + ... + x` (n = 10,000 and 100,000);
- n statements, `a_{k+1} = a_k*a_k*0.25 + x` (n = 10,000 and 100,000; issue 15's chain, scaled
  so that it converges);
- n functions, each calling the previous one twice, `f_k(t) = 0.5*(f_{k-1}(t) + f_{k-1}(t))`
  (n = 1,000 and 10,000 levels: 2^n call paths, about 2n nodes).

Each pass is timed on its own, the two sizes in turn, median of the rounds:
parse (`gradcli.language.parser.parse`), compile (`gradcli.api.compile_program`: parse and
lower), differentiate (`gradcli.transforms.reverse.grad`, as `gradcli.api.evaluate` calls it, on
a freshly compiled program each round) and evaluate (`gradcli.evaluation.interpreter.evaluate`
of the value and the gradient nodes, as `gradcli.api.evaluate` does). The value and gradient
are checked against closed forms.

For information: `sin(sin(...sin(x)...))` nested 20,000 deep through every pass. A
RecursionError anywhere is reported as an error.

Sharing: `a1 = x*x; a2 = a1*a1; ...; a60 = a59*a59; a60` has 2^60 paths from a60 to x;
`gradcli.api.evaluate(text, {"x": 1.0})` (compile, differentiate, evaluate) must take well under
a second, and give 1 and 2^60.

Target: time(10^5 nodes) / time(10^4 nodes) ≤ 12 for every pass and shape; sharing < 1 s.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
from common import (
    ERROR,
    INFO,
    Result,
    interleaved_setup,
    median,
    repeat,
    seconds,
    time_once,
    verdict,
)

NAME = "scale"
TARGET = 12.0
SHARING_LIMIT = 1.0
X = 0.3


def _terms(n: int) -> str:
    return " + ".join(f"sin({k}*x)" for k in range(1, n + 1))


def _terms_expected(n: int) -> tuple[float, float]:
    k = np.arange(1, n + 1)
    return float(np.sum(np.sin(k * X))), float(np.sum(k * np.cos(k * X)))


def _chain(n: int) -> str:
    return " + ".join(["x"] * n)


def _statements(n: int) -> str:
    """n statements, each using the one before: lowering must not copy the bindings each time."""
    lines = ["a0 = x", *(f"a{k + 1} = a{k}*a{k}*0.25 + x" for k in range(n))]
    return "\n".join([*lines, f"a{n}"])


def _statements_expected(n: int) -> tuple[float, float]:
    a, g = X, 1.0
    for _ in range(n):
        a, g = a * a * 0.25 + X, 0.5 * a * g + 1.0
    return a, g


def _doubling(n: int) -> str:
    """f_k calls f_{k-1} twice: 2^n call paths, 2n + 2 nodes once hash-consed."""
    lines = ["f0(t) = sin(t)", *(f"f{k}(t) = 0.5*(f{k - 1}(t) + f{k - 1}(t))" for k in range(1, n))]
    return "\n".join([*lines, f"f{n - 1}(x)"])


SHAPES = {
    "sum of sin(k*x)": (_terms, (2_500, 25_000), _terms_expected),
    "chain x + x + ... + x": (_chain, (10_000, 100_000), lambda n: (n * X, float(n))),
    "statements a_{k+1} = a_k*a_k*0.25 + x": (_statements, (10_000, 100_000), _statements_expected),
    "functions f_k(t) = 0.5*(f_{k-1}(t) + f_{k-1}(t))": (
        _doubling,
        (1_000, 10_000),
        lambda n: (math.sin(X), math.cos(X)),
    ),
}


def _phases(text: str) -> dict[str, Callable[[], Callable[[], object]]]:
    """For each pass, a setup (untimed) that returns the call to time."""
    from gradcli.api import compile_program
    from gradcli.evaluation.interpreter import evaluate as run
    from gradcli.language.parser import parse
    from gradcli.transforms.reverse import grad

    def differentiate():
        program = compile_program(text)
        return lambda: grad(program.output, list(program.variables.values()), {"x": ()})

    program = compile_program(text)
    grads = grad(program.output, list(program.variables.values()), {"x": ()})
    env = {"x": np.asarray(X)}

    return {
        "parse": lambda: lambda: parse(text),
        "compile": lambda: lambda: compile_program(text),
        "differentiate": differentiate,
        "evaluate": lambda: lambda: run([program.output, *grads], env),
    }


def _value_and_gradient(text: str) -> tuple[float, float, int]:
    from gradcli.api import compile_program, evaluate
    from gradcli.graph.nodes import toposort

    program = compile_program(text)
    result = evaluate(program, {"x": X})
    return float(result.value), float(result.gradient["x"]), len(toposort([program.output]))


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _shape_rows(label: str, make, sizes, expected, repeats: int) -> list[Result]:
    small, large = make(sizes[0]), make(sizes[1])
    try:
        checks = [_value_and_gradient(small), _value_and_gradient(large)]
    except RecursionError as exc:
        return [Result(NAME, label, f"RecursionError: {exc}", status=ERROR)]
    nodes = f"{checks[0][2]:,} → {checks[1][2]:,} nodes"
    correct = all(
        _close(v, e[0]) and _close(g, e[1])
        for (v, g, _), e in zip(checks, (expected(sizes[0]), expected(sizes[1])), strict=True)
    )
    small_phases, large_phases = _phases(small), _phases(large)
    rows = []
    for phase in small_phases:
        try:
            times = interleaved_setup(
                {"small": small_phases[phase], "large": large_phases[phase]}, repeats, warmup=0
            )
        except RecursionError as exc:
            rows.append(Result(NAME, f"{label}: {phase}", f"RecursionError: {exc}", status=ERROR))
            continue
        a, b = median(times["small"]), median(times["large"])
        ratio = b / a
        rows.append(
            Result(
                NAME,
                f"{label}: {phase}",
                f"{seconds(a)} → {seconds(b)} ({nodes})",
                ratio,
                f"≤ {TARGET:g}",
                verdict(ratio <= TARGET) if correct else ERROR,
                "" if correct else "value or gradient differs from the closed form",
            )
        )
    return rows


def _nested_row(depth: int, repeats: int) -> Result:
    text = "sin(" * depth + "x" + ")" * depth
    label = f"sin(sin(...(x))) {depth:,} deep"
    try:
        phases = _phases(text)
        parts = []
        for phase, setup in phases.items():
            t = median([time_once(setup()) for _ in range(repeats)])
            parts.append(f"{phase} {seconds(t)}")
        value, gradient, _ = _value_and_gradient(text)
    except RecursionError as exc:
        return Result(NAME, label, f"RecursionError: {exc}", status=ERROR)
    expected_value, expected_gradient = X, 1.0
    for _ in range(depth):
        expected_gradient *= math.cos(expected_value)
        expected_value = math.sin(expected_value)
    correct = _close(value, expected_value) and _close(gradient, expected_gradient)
    return Result(
        NAME,
        label,
        ", ".join(parts),
        status=INFO if correct else ERROR,
        note="value and gradient as computed in Python"
        if correct
        else f"got {value}, {gradient}; expected {expected_value}, {expected_gradient}",
    )


def _sharing_row(levels: int, repeats: int) -> Result:
    from gradcli.api import evaluate

    text = "a1 = x*x; " + "; ".join(f"a{k} = a{k - 1}*a{k - 1}" for k in range(2, levels + 1))
    text += f"; a{levels}"
    label = f"sharing: a1 = x*x; ...; a{levels} = a{levels - 1}*a{levels - 1} (2^{levels} paths)"
    try:
        result = evaluate(text, {"x": 1.0})
        times = repeat(lambda: evaluate(text, {"x": 1.0}), repeats, warmup=0)
    except RecursionError as exc:
        return Result(NAME, label, f"RecursionError: {exc}", status=ERROR)
    t = median(times)
    correct = float(result.value) == 1.0 and float(result.gradient["x"]) == 2.0**levels
    return Result(
        NAME,
        label,
        f"{seconds(t)} for compile + gradient + evaluate at x = 1 (median of {repeats})",
        None,
        f"< {SHARING_LIMIT:g} s",
        verdict(t < SHARING_LIMIT) if correct else ERROR,
        f"value 1 and gradient 2^{levels}: {'correct' if correct else 'WRONG'}",
    )


def run(quick: bool = False) -> list[Result]:
    from gradcli.api import evaluate

    repeats = 2 if quick else 5
    # The programs here are larger than the default guard on source text (300,000 characters).
    os.environ["GRADCLI_MAX_SOURCE"] = "0"
    evaluate("sin(x)*x + x", {"x": X})  # build the parser and import everything first
    rows: list[Result] = []
    for label, (make, sizes, expected) in SHAPES.items():
        rows += _shape_rows(label, make, sizes, expected, repeats)
    rows.append(_nested_row(20_000, 1 if quick else 3))
    rows.append(_sharing_row(60, 5 if quick else 20))
    return rows
