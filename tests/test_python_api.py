"""`import gradcli`: the command line's verbs as functions, with the numbers the CLI prints."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from support import cli, strict

import gradcli
import gradcli.api
from gradcli import GradcliError


def test_the_docstring_examples_run():
    for module in (gradcli, gradcli.api):
        failed, tried = doctest.testmod(module, raise_on_error=False)
        assert failed == 0 and tried > 0, module.__name__


def test_the_api_and_the_command_line_give_the_same_numbers():
    values = {"x": 0.7, "y": -1.3}
    text = "x^2*y + sin(x*y) + exp(-x^2 - y^2)"
    doc = strict(cli("eval", text, "--x", "0.7", "--y", "-1.3", "--json").stdout)
    g = gradcli.grad(text, values)
    assert {k: float(v) for k, v in g.items()} == doc["gradient"]
    assert float(gradcli.evaluate(text, values).value) == doc["value"]
    h = gradcli.hessian(text, values)
    hdoc = strict(cli("hessian", text, "--x", "0.7", "--y", "-1.3", "--json").stdout)
    assert h.matrix.tolist() == hdoc["hessian"]
    d = gradcli.diff(text)
    ddoc = strict(cli("diff", text, "--json").stdout)
    assert [i.text for i in d.items] == [i["text"] for i in ddoc["derivatives"]]


def test_check_at_a_point_and_on_a_sample():
    ok = gradcli.check("x*y + x/y", {"x": 5, "y": 2})
    assert ok.passed and [c.name for c in ok.checks] == ["x", "y"]
    worst = max(abs(c.autograd - c.reference).max() for c in ok.checks)
    assert worst < 1e-12
    sampled = gradcli.check("log(x)*y", {"y": 2.0}, domains={"x": "0.1:10:log"}, samples=40)
    assert sampled.passed and sampled.result.count == 40
    assert math.isclose(float(np.max(sampled.checks[0].autograd)), 2 / 0.1, rel_tol=0.5)


def test_a_wrong_rule_fails_check_and_its_report_says_so(monkeypatch):
    import dataclasses

    from gradcli.primitives import REGISTRY
    from gradcli.primitives._common import cos

    wrong = dataclasses.replace(REGISTRY["sin"], partials=(lambda ans, x: -cos(x),))
    monkeypatch.setitem(REGISTRY, "sin", wrong)
    result = gradcli.check("sin(x)*y", {"x": 0.5, "y": 2})
    assert not result.passed and result.status == "failed"
    assert "fail" in result.report() and "∂f/∂x" in result.report()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gradcli.check("x*y", {"x": 1}), "y"),
        (lambda: gradcli.check("x", samples=10), "samples needs domains"),
        (lambda: gradcli.check("x", domains={"x": "3:1"}), "domain"),
        (lambda: gradcli.grad("x +", {"x": 1}), "unexpected end of input"),
    ],
)
def test_bad_input_is_a_gradcli_error(call, message):
    with pytest.raises(GradcliError, match=message):
        call()
