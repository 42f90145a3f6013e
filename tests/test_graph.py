"""The graph IR: hash-consing, constant folding, exact identities, spans and toposort."""

import math
import warnings

import pytest

from gradcli import GradcliError, compile_program, evaluate
from gradcli.graph.nodes import Graph, toposort


def test_hash_consing_makes_identical_subexpressions_one_node():
    g = Graph()
    x, y = g.var("x"), g.var("y")
    assert g.apply("mul", x, y) is g.apply("mul", x, y)
    assert g.apply("mul", x, y) is not g.apply("mul", y, x)
    assert g.var("x") is x
    assert g.const(2.0) is g.const(2)
    assert g.const(0.0) is not g.const(-0.0)  # different numbers, though 0.0 == -0.0


def test_constants_fold_and_non_finite_results_are_kept_as_nodes():
    g = Graph()
    folded = g.apply("add", 2.0, g.apply("mul", 3.0, 4.0))
    assert folded.op == "const" and folded.value == 14.0
    assert g.apply("log", -1.0).op == "log"  # nan is not folded: evaluation must report it
    assert g.apply("div", 1.0, 0.0).op == "div"


def test_exact_identities():
    g = Graph()
    x = g.var("x")
    assert g.apply("add", x, 0.0) is x
    assert g.apply("add", 0.0, x) is x
    assert g.apply("sub", x, 0.0) is x
    assert g.apply("mul", x, 1.0) is x
    assert g.apply("mul", 1.0, x) is x
    assert g.apply("div", x, 1.0) is x
    assert g.apply("pow", x, 1.0) is x
    assert g.apply("mul", x, -1.0) is g.apply("neg", x)
    assert g.apply("neg", g.apply("neg", x)) is x
    assert g.apply("mul", x, 0.0).op == "mul"  # not folded: x*0 is nan when x is inf


def test_program_folds_constants_and_keeps_spans():
    program = compile_program("y = 2*pi; sin(x)*y")
    mul = program.output
    assert mul.op == "mul"
    sin, two_pi = mul.inputs
    assert two_pi.op == "const" and two_pi.value == 2 * math.pi
    text = program.source.text
    assert text[sin.span.start : sin.span.end] == "sin(x)"
    assert text[mul.span.start : mul.span.end] == "sin(x)*y"
    assert text[two_pi.span.start : two_pi.span.end] == "2*pi"


def test_toposort_puts_inputs_first_and_visits_each_node_once():
    program = compile_program("a = x*y; b = a + x; c = a*b; c + b")
    order = toposort([program.output])
    position = {n: i for i, n in enumerate(order)}
    assert len(order) == len(set(order))
    for node in order:
        for inp in node.inputs:
            assert position[inp] < position[node]
    assert order[-1] is program.output


def test_toposort_of_several_outputs_includes_each_once():
    g = Graph()
    x = g.var("x")
    a = g.apply("sin", x)
    b = g.apply("mul", a, a)
    order = toposort([b, a, b])
    assert order.count(a) == 1 and order.count(b) == 1 and order[0] is x


def test_folding_is_quiet_and_leaves_what_numpy_refuses_to_evaluation():
    """Found by tests/test_fuzz.py: folding printed numpy's "Mean of empty slice" warning on
    stderr, and a RuntimeError (more than 32 axes) or MemoryError escaped as a traceback."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty_mean = compile_program("mean([1, 2][1:1])")
    assert empty_mean.output.op == "mean"  # nan is not folded: evaluation reports it
    g = Graph()
    deep = g.const(1.0)
    for _ in range(40):  # numpy broadcasts at most 32 axes
        deep = g.apply("stack", deep)
    assert deep.op == "stack"
    with pytest.raises(GradcliError, match="32"):
        evaluate(compile_program("[" * 40 + "1" + "]" * 40), {})
    huge = g.apply("unindex", 1.0, attrs=((10**15,), (), (), ()))  # 8 PB: not allocated
    assert huge.op == "unindex"
