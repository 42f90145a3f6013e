"""Evaluation strategies give the same numbers: threads for large arrays, the scan for nan and
inf limited to the nodes that could hide one, and the sequential run that every node checks."""

from __future__ import annotations

import numpy as np
import pytest

from gradcli import compile_program, evaluate
from gradcli.evaluation import interpreter as compute
from gradcli.transforms.reverse import grad

N = compute._PARALLEL_ELEMENTS + 7
RNG = np.random.default_rng(17)

PROGRAMS = [
    "sum(x*y + x/y)",
    "sum(exp(-x^2) * sin(y) + log(1 + x^2) / y)",
    "sum(tanh(x) @ transpose(reshape(y, shape=[1, -1]))) + mean(x*y)",
    "a = x*y; b = a/y + sqrt(abs(a)); sum(b*b) + max(x)",
    "sum(softplus(x - y)) + logsumexp(x)",
]


def _sequential(program, values):
    """Every node checked, one after another: the reference for the other strategies."""
    names = list(program.variables)
    shapes = {n: np.shape(v) for n, v in values.items()}
    grads = grad(program.output, [program.variables[n] for n in names], shapes)
    outputs = [program.output, *grads]
    order = compute.toposort(outputs)
    arrays = {n: np.asarray(v, dtype=float) for n, v in values.items()}
    got, faults, _ = compute._run(order, outputs, arrays, np.float64, False, False, None)
    return got, faults


@pytest.mark.parametrize("text", PROGRAMS)
def test_threads_give_the_sequential_numbers_bit_for_bit(text, monkeypatch):
    program = compile_program(text.replace("-1", str(N)) if "reshape" in text else text)
    values = {"x": RNG.uniform(-2, 2, N), "y": RNG.uniform(0.5, 2, N)}
    calls = []
    real = compute._run_parallel
    monkeypatch.setattr(compute, "_run_parallel", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = evaluate(program, values)
    assert calls, "large arrays take the threaded path"
    want, faults = _sequential(program, values)
    assert faults == [] and result.faults == []
    got = [result.value, *result.gradient.values()]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.broadcast_to(b, np.shape(a)))


@pytest.mark.parametrize("size", [10, N])
def test_a_fault_anywhere_is_reported_as_by_the_sequential_run(size):
    """A nan at one element of a large array, one hidden by a later step (exp(-1/0) = 0), and
    one only in the derivative: each is found and named as when every node is checked."""
    x = RNG.uniform(1, 2, size)
    x[size - 3] = -1.0
    z = RNG.uniform(1, 2, size)
    z[size // 2] = 0.0
    cases = [
        ("sum(log(x) * y)", {"x": x, "y": np.ones(size)}, "log(x) requires x > 0"),
        ("sum(exp(-1/z) + z)", {"z": z}, "division by zero"),
        ("sum(sqrt(z))", {"z": z}, "sqrt"),
    ]
    for text, values, message in cases:
        program = compile_program(text)
        result = evaluate(program, values)
        _, faults = _sequential(program, values)
        assert len(result.faults) == len(faults) >= 1, text
        assert message in result.faults[0].message, (text, result.faults[0].message)
        if "log" in text:
            assert f"[{size - 3}]" in result.faults[0].message  # the element is named


def test_a_nan_that_every_output_shows_is_found_without_scanning_every_node():
    """Only outputs and inputs of primitives that can hide a nan are scanned."""
    program = compile_program("sum(x*y + x/y)")
    shapes = {"x": (3,), "y": (3,)}
    outputs = [program.output, *grad(program.output, list(program.variables.values()), shapes)]
    order = compute.toposort(outputs)
    watched = compute._watched(order, outputs)
    ops = sorted(n.op if n.op != "variable" else n.name for n in watched)
    # y is a divisor (x/inf is 0); the value and both gradients are outputs; nothing else.
    assert ops.count("y") == 1 and "mul" not in ops and len(watched) == len(set(outputs)) + 1


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("sum(log(x)*y)", {"x": -1.0, "y": np.zeros(0)}),
        ("sum(broadcast_to(log(x), shape=[0])) + x", {"x": -1.0}),
    ],
)
def test_a_nan_swallowed_by_an_empty_array_is_still_reported(text, values):
    """Broadcasting against a 0-length axis removes a nan that add and mul otherwise pass on:
    an empty result sends the evaluation to the run that checks every node."""
    result = evaluate(text, values)
    assert [f.message.split(":")[0] for f in result.faults] == ["log(x) is nan"]


def test_gradients_are_arrays_of_the_callers_own():
    """The gradient of x*y in x is y itself in the graph: the result is a writable copy, not a
    view of the caller's y."""
    x, y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    r = evaluate("sum(x*y)", {"x": x, "y": y})
    g = r.gradient["x"]
    assert not np.shares_memory(g, y) and g.flags.writeable
    y[0] = 100.0
    assert g.tolist() == [4.0, 5.0, 6.0]
    ones = evaluate("sum(x)", {"x": x}).gradient["x"]
    assert ones.flags.writeable and ones.tolist() == [1.0, 1.0, 1.0]


def _evaluate_in_child(_):
    x = np.linspace(1, 2, N)
    return float(evaluate("sum(x*x)", {"x": x}).value)


def test_a_forked_child_evaluates_large_arrays_with_its_own_threads():
    """The thread pool does not survive fork(): a child would wait for threads it lacks."""
    import multiprocessing

    x = np.linspace(1, 2, N)
    want = float(evaluate("sum(x*x)", {"x": x}).value)  # the parent's pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.map_async(_evaluate_in_child, [0]).get(timeout=60)
    assert got == [want]
