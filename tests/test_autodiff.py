"""Reverse mode: accumulation on shared nodes, linear cost, broadcasting, gradients as graphs."""

import math

import numpy as np
import pytest

from gradcli import compile_program, evaluate
from gradcli.evaluation.interpreter import evaluate as run
from gradcli.graph.nodes import toposort
from gradcli.language.printer import to_source
from gradcli.transforms.reverse import grad


def test_tutorial_example():
    r = evaluate("x*y + x/y", {"x": 5, "y": 2})
    assert float(r.value) == 12.5
    assert float(r.gradient["x"]) == 2.5  # y + 1/y
    assert float(r.gradient["y"]) == 3.75  # x - x/y^2


def test_a_shared_node_accumulates_the_adjoints_of_all_its_uses():
    # a is used three times; d/dx (a*a + a) with a = sin(x) is (2 sin x + 1) cos x.
    x = 0.7
    r = evaluate("a = sin(x); a*a + a", {"x": x})
    assert float(r.gradient["x"]) == pytest.approx((2 * math.sin(x) + 1) * math.cos(x), rel=1e-15)
    r = evaluate("x + x + x*x", {"x": 3.0})
    assert float(r.gradient["x"]) == 8.0


def test_exponential_sharing_chain_is_linear():
    """a_i = a_{i-1}^2 sixty times: 2^60 paths from output to x, one visit per node."""
    text = "a0 = x\n" + "\n".join(f"a{i} = a{i - 1}*a{i - 1}" for i in range(1, 61)) + "\na60"
    program = compile_program(text)
    before = len(program.graph)
    (g,) = grad(program.output, [program.variables["x"]])
    assert len(toposort([g])) < 5 * 61  # the gradient graph is linear in the chain's length
    assert len(program.graph) - before < 5 * 61
    (dx,), _, _ = run([g], {"x": 1.0})
    assert float(dx) == 2.0**60  # d/dx x^(2^60) at x = 1


def test_squaring_chain_matches_the_power_rule():
    n, x = 20, 1.0000001
    text = "a0 = x\n" + "\n".join(f"a{i} = a{i - 1}*a{i - 1}" for i in range(1, n + 1))
    r = evaluate(text, {"x": x})
    assert float(r.gradient["x"]) == pytest.approx(2**n * x ** (2**n - 1), rel=1e-9)


def test_gradient_is_a_graph_that_prints_and_parses_back():
    program = compile_program("x*y + x/y")
    gx, gy = grad(program.output, [program.variables["x"], program.variables["y"]])
    for g, expected in ((gx, 2.5), (gy, 3.75)):
        text = to_source(g)
        assert float(evaluate(text, _only(text, x=5.0, y=2.0)).value) == expected


def _only(text, **values):
    names = compile_program(text).variables
    return {k: v for k, v in values.items() if k in names}


def test_second_derivative_from_the_same_machinery():
    program = compile_program("x^3 * sin(x)")
    x = program.variables["x"]
    (g,) = grad(program.output, [x])
    (h,) = grad(g, [x])
    v = 0.9
    (second,), _, _ = run([h], {"x": v})
    exact = 6 * v * math.sin(v) + 6 * v**2 * math.cos(v) - v**3 * math.sin(v)
    assert float(second) == pytest.approx(exact, rel=1e-13)


def test_variable_not_reaching_the_output_has_zero_gradient():
    r = evaluate("a = y*2; x^2", {"x": 3.0})
    assert list(r.gradient) == ["x"]
    program = compile_program("x^2 + 0*y")
    (gy,) = grad(program.output, [program.variables["y"]])
    (v,), _, _ = run([gy], {"x": 3.0, "y": 1.0})
    assert float(v) == 0.0


def test_wrt_subset():
    r = evaluate("x*y*z", {"x": 2, "y": 3, "z": 4}, wrt=["z", "x"])
    assert list(r.gradient) == ["z", "x"]
    assert float(r.gradient["z"]) == 6.0 and float(r.gradient["x"]) == 12.0


def test_array_variables_broadcast_and_the_gradient_is_of_the_sum():
    x = np.array([0.5, 1.0, 2.0])
    y = 3.0
    r = evaluate("sin(x)*y + x", {"x": x, "y": y})
    assert r.reduced
    np.testing.assert_allclose(r.value, np.sin(x) * y + x, rtol=1e-15)
    np.testing.assert_allclose(r.gradient["x"], np.cos(x) * y + 1, rtol=1e-15)
    assert r.gradient["y"].shape == ()
    assert float(r.gradient["y"]) == pytest.approx(np.sin(x).sum(), rel=1e-15)


def test_broadcasting_between_a_row_and_a_column():
    row = np.array([[1.0, 2.0, 3.0]])
    col = np.array([[1.0], [10.0]])
    r = evaluate("row*col + row", {"row": row, "col": col})
    assert r.value.shape == (2, 3)
    np.testing.assert_array_equal(r.gradient["row"], (col.sum() + 2) * np.ones_like(row))
    np.testing.assert_array_equal(r.gradient["col"], row.sum() * np.ones_like(col))


def test_gradient_of_a_variable_with_constant_derivative_has_the_variables_shape():
    x = np.arange(4.0)
    r = evaluate("x + 1", {"x": x})
    np.testing.assert_array_equal(r.gradient["x"], np.ones(4))


def test_integer_inputs_are_floats():
    r = evaluate("x/y", {"x": 1, "y": 2})
    assert float(r.value) == 0.5
    assert r.value.dtype == np.float64


def test_incompatible_shapes_are_a_located_error():
    from gradcli import GradcliError

    with pytest.raises(GradcliError) as info:
        evaluate("x*y + 1", {"x": np.ones(3), "y": np.ones(2)})
    assert "cannot be broadcast" in info.value.message
    assert "x*y" in str(info.value)


def test_each_node_is_computed_once_per_evaluation(monkeypatch):
    """The value and every gradient are evaluated together: shared nodes are computed once."""
    import dataclasses

    from gradcli.primitives import REGISTRY

    calls = {"sin": 0, "cos": 0}
    for name in calls:
        prim = REGISTRY[name]

        def counted(x, _forward=prim.forward, _name=name):
            calls[_name] += 1
            return _forward(x)

        monkeypatch.setitem(REGISTRY, name, dataclasses.replace(prim, forward=counted))
    # sin(x) is used three times in the value, cos(x) appears in both gradients.
    r = evaluate("a = sin(x); a*a + a*y + cos(x)", {"x": 0.3, "y": 2.0})
    assert calls == {"sin": 1, "cos": 1}
    s, c = math.sin(0.3), math.cos(0.3)
    assert float(r.gradient["x"]) == pytest.approx((2 * s + 2.0) * c - s, rel=1e-15)
