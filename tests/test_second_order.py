"""`gradcli check --order 2` and the comparison of forward with reverse mode inside `check`.

References: closed-form Hessians written here, and derivative rules deliberately broken (by
replacing a registry entry for the length of one test) to show that each comparison can fail.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from support import cli, strict

from gradcli.primitives import REGISTRY


def records(result) -> list[dict]:
    return [r for r in strict(result.stdout)["records"] if r["kind"] != "value"]


def test_order_2_checks_every_hessian_entry_against_its_closed_form():
    x, y = 0.7, -1.3
    s, c = math.sin(x * y), math.cos(x * y)
    closed = {
        ("x", "x"): 2 * y - y * y * s,
        ("x", "y"): 2 * x + c - x * y * s,
        ("y", "x"): 2 * x + c - x * y * s,
        ("y", "y"): -x * x * s,
    }
    r = cli("check", "x^2*y + sin(x*y)", "--x", str(x), "--y", str(y), "--order", "2", "--json")
    assert r.exit_code == 0, r.output
    got = {(rec["of"], rec["variable"]): rec for rec in records(r)}
    assert set(got) == set(closed)
    for key, want in closed.items():
        rec = got[key]
        assert rec["order"] == 2 and rec["verdict"] == "pass"
        assert rec["label"] == f"∂²f/∂{key[0]}∂{key[1]}"
        assert rec["autograd"] == pytest.approx(want, rel=1e-14)
        assert rec["forward"] == pytest.approx(want, rel=1e-14)
        assert rec["reference"] == pytest.approx(want, rel=1e-9)
        assert rec["symmetric"] is True and rec["symmetry"] <= 1e-15


def test_order_2_table_names_entries_and_reports_symmetry():
    r = cli("check", "sum(x^3) * y", "--x", "1,2", "--y", "3", "--order", "2")
    assert r.exit_code == 0, r.output
    # A row per (gradient component, variable): its worst entry.
    for label in ("∂²f/∂x[0]∂x[", "∂²f/∂x[1]∂x[", "∂²f/∂x[0]∂y ", "∂²f/∂y∂x[", "∂²f/∂y∂y "):
        assert label in r.stdout
    assert "symmetric within the tolerance of its entries" in r.stdout


def test_a_wrong_second_derivative_rule_fails_only_at_order_2(monkeypatch):
    """d(cos)/dx made +sin: the gradient of sin(x) is still right (it is cos), its Hessian not."""
    cos = REGISTRY["cos"]
    monkeypatch.setitem(
        REGISTRY, "cos", replace(cos, partials=(lambda ans, x: x.graph.apply("sin", x),))
    )
    first = cli("check", "sin(x)", "--x", "0.5", "--json")
    assert first.exit_code == 0, first.output
    second = cli("check", "sin(x)", "--x", "0.5", "--order", "2", "--json")
    assert second.exit_code == 1
    (rec,) = records(second)
    assert rec["verdict"] == "fail"
    assert rec["autograd"] == pytest.approx(math.sin(0.5), rel=1e-15)  # the broken rule
    assert rec["reference"] == pytest.approx(-math.sin(0.5), rel=1e-9)  # the truth


def test_forward_mode_that_disagrees_with_reverse_mode_fails(monkeypatch):
    """A jvp rule broken by a factor of 2: reverse mode and the differences agree, forward mode
    does not, and the check says which is which."""
    total = REGISTRY["sum"]
    monkeypatch.setitem(
        REGISTRY,
        "sum",
        replace(
            total,
            jvp=lambda node, ts, shape_of: node.graph.apply("sum", ts[0], attrs=node.attrs) * 2.0,
        ),
    )
    r = cli("check", "sum(x^2)", "--x", "1,-2", "--json")
    assert r.exit_code == 1
    recs = records(r)
    assert all(rec["verdict"] == "fail" for rec in recs)
    worst = recs[0]
    assert worst["autograd"] == pytest.approx(worst["reference"], rel=1e-9)
    assert worst["forward"] == pytest.approx(2 * worst["autograd"], rel=1e-15)
    assert "forward mode gives" in worst["message"] and "reverse mode" in worst["message"]


def test_forward_values_are_reported_beside_reverse_mode():
    r = cli("check", "x*y + x/y", "--x", "5", "--y", "2", "--json")
    got = {rec["variable"]: rec for rec in records(r)}
    assert got["x"]["forward"] == 2.5 and got["y"]["forward"] == 3.75


def test_order_2_in_a_check_file(tmp_path):
    path = tmp_path / "h.grad.toml"
    path.write_text(
        "[[case]]\n"
        'name = "logsumexp Hessian"\n'
        'expr = "logsumexp(x)"\n'
        "order = 2\n"
        'sample = { n = 20, seed = 1, domains = { x = "-3:3" } }\n'
        "at = { x = [0, 0, 0] }\n",
        encoding="utf-8",
    )
    r = cli("check", str(path), "--json")
    assert r.exit_code == 0, r.output
    recs = records(r)
    assert {rec["of"] for rec in recs} == {"x[0]", "x[1]", "x[2]"}
    assert all(rec["points"] == 20 and rec["passed"] for rec in recs)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("order = 3\n", "order must be 1 or 2, not 3"),
        ("order = true\n", "order must be 1 or 2"),
        ('order = 2\ngrad = { x = "2*x" }\n', "grad gives first derivatives"),
    ],
)
def test_bad_order_in_a_check_file_is_a_located_error(tmp_path, body, needle):
    path = tmp_path / "bad.grad.toml"
    path.write_text(
        f'[[case]]\nname = "c"\nexpr = "x^2"\nat = {{ x = 1 }}\n{body}', encoding="utf-8"
    )
    r = cli("check", str(path))
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "bad.grad.toml:" in r.stderr


def test_order_on_the_command_line_is_validated():
    r = cli("check", "x^2", "--x", "1", "--order", "3")
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_order_2_with_fast_checks_directions_and_says_symmetry_is_not_measured():
    r = cli("check", "logsumexp(x)", "--x", "1,2,3", "--order", "2", "--fast")
    assert r.exit_code == 0, r.output
    assert "(random v)" in r.stdout and "symmetry: not measured" in r.stdout


def test_order_2_finds_the_kink_of_a_gradient():
    """relu(x)·y: ∂f/∂x = heaviside(x)·y jumps at 0, so ∂²f/∂x² does not exist there."""
    r = cli("check", "relu(x)*y", "--x", "0", "--y", "3", "--order", "2", "--json")
    assert r.exit_code == 0, r.output
    got = {(rec["of"], rec["variable"]): rec for rec in records(r)}
    assert got["x", "x"]["verdict"] == "not differentiable"
    assert got["x", "y"]["verdict"] == "pass" and got["x", "y"]["autograd"] == 0.0
    assert got["y", "x"]["verdict"] == "not differentiable"
    assert np.isclose(got["y", "x"]["right"], 1.0) and got["y", "x"]["left"] == 0.0


def test_forward_mode_overflowing_alone_is_not_a_failure():
    """The tangent of exp(100000*x) overflows where the gradient of log(exp(100000*x)) does not:
    forward mode, linear in its tangent, is taken again with a shorter one, and agrees."""
    r = cli("check", "log(exp(100000*x))", "--x", "0.007", "--json")
    assert r.exit_code == 0, r.output
    (rec,) = records(r)
    assert rec["verdict"] == "pass" and rec["autograd"] == pytest.approx(1e5, rel=1e-12)
    assert rec["forward"] == pytest.approx(1e5, rel=1e-12)


def test_at_a_jump_the_table_shows_no_one_sided_derivatives():
    """abs(x)*y at 0: ∂f/∂x = sign(x)·y jumps, so ∂²f/∂x² does not exist, and the jump over the
    step is not shown as if it were a pair of one-sided derivatives."""
    r = cli("check", "abs(x)*y", "--x", "0", "--y", "2", "--order", "2", "--json")
    assert r.exit_code == 0, r.output
    got = {(rec["of"], rec["variable"]): rec for rec in records(r)}
    assert got["x", "x"]["verdict"] == "not differentiable" and "jumps" in got["x", "x"]["message"]
    table = cli("check", "abs(x)*y", "--x", "0", "--y", "2", "--order", "2").stdout
    (row,) = [line for line in table.splitlines() if "∂²f/∂x∂x" in line and "(a jump)" in line]
    assert "…" not in row
