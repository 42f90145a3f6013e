"""gradcli check --sweep: the error of the finite-difference reference against the step.

References: Taylor's theorem (the central difference of f errs by f'''·h²/6 + O(h⁴), the forward
difference by f''·h/2 + O(h²)), the classical optimal steps (ε|f|/|f'''|)^(1/3) and
(ε|f|/|f''|)^(1/2) up to a small factor, and float32 against float64.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcli import compile_program
from gradcli.checking.sweep import sweep
from gradcli.cli.app import app

runner = CliRunner()
X, Y = 0.7, 0.3
F = "sin(x)*exp(y)"


def curve(method: str, dtype: str = "float64", wrt: str = "x"):
    result = sweep(compile_program(F), {"x": X, "y": Y}, method, dtype, [wrt])
    (c,) = result.curves
    return c


def test_central_differences_err_by_f3_h2_over_6_and_converge_at_order_2():
    c = curve("central")
    f3 = -math.cos(X) * math.exp(Y)  # ∂³/∂x³ of sin(x)·e^y
    for h, err in zip(c.steps, c.errors, strict=True):
        if 2**-12 <= h <= 2**-6:  # truncation-dominated, asymptotic
            assert err == pytest.approx(abs(f3) * h * h / 6, rel=0.02)
    assert c.observed_order() == pytest.approx(2.0, abs=0.05)
    optimum = (3 * np.finfo(float).eps * abs(math.sin(X) * math.exp(Y)) / abs(f3)) ** (1 / 3)
    assert optimum / 16 <= c.steps[c.best] <= optimum * 16


def test_forward_differences_converge_at_order_1():
    c = curve("forward")
    f2 = -math.sin(X) * math.exp(Y)
    for h, err in zip(c.steps, c.errors, strict=True):
        if 2**-20 <= h <= 2**-10:
            assert err == pytest.approx(abs(f2) * h / 2, rel=0.02)
    assert c.observed_order() == pytest.approx(1.0, abs=0.05)


def test_richardson_converges_faster_and_the_complex_step_has_no_rounding_side():
    r = curve("richardson")
    # Its truncation side is two or three steps long before rounding takes over: measure the
    # slope between h = 1 and h = 1/2 directly (order 8 in theory, at least 4 here).
    assert math.log2(r.errors[0] / r.errors[1]) > 4
    assert r.errors[r.best] <= curve("central").errors[curve("central").best]
    c = curve("complex")
    g = math.cos(X) * math.exp(Y)
    tiny = c.errors[c.steps < 2**-30]
    assert np.all(tiny <= 4 * np.finfo(float).eps * g)  # no cancellation: flat at rounding
    central = curve("central")
    assert central.errors[-1] > 1e6 * c.errors[-1]  # at h = 2^-52 differences are ruined


def test_float32_moves_the_bottom_of_the_v_to_larger_steps():
    assert (
        curve("central", "float32").steps[curve("central", "float32").best]
        > 64 * (curve("central").steps[curve("central").best])
    )


def test_the_table_shows_the_v_and_the_orders():
    r = runner.invoke(app, ["check", F, "--x", str(X), "--y", str(Y), "--sweep"])
    assert r.exit_code == 0, r.output
    assert "observed order 2.00 (expected 2)" in r.stdout
    assert "◆" in r.stdout and "▲" in r.stdout and "h →" in r.stdout
    assert r.stdout.count("central differences, float64") == 2  # x and y


def test_json_has_every_curve_of_an_array_variable():
    r = runner.invoke(app, ["check", "sum(x^3)", "--x", "1,2,3", "--sweep", "--json"])
    assert r.exit_code == 0, r.output

    def reject(constant):
        raise ValueError(constant)

    doc = json.loads(r.stdout, parse_constant=reject)
    curves = doc["sweep"]["curves"]
    assert [c["index"] for c in curves] == [[0], [1], [2]]
    assert [c["autograd"] for c in curves] == [3.0, 12.0, 27.0]
    for c in curves:
        assert c["observed_order"] == pytest.approx(2.0, abs=0.05)
        assert len(c["steps"]) == len(c["errors"]) == 53
    assert doc["records"][0]["verdict"] == "pass"


@pytest.mark.parametrize(
    "args",
    [
        ["samples/"],
        ["x^2", "--samples", "10", "--domain", "x=0:1"],
        ["x^2", "--x", "1", "--order", "2"],
    ],
)
def test_sweep_needs_one_expression_at_one_point(args):
    r = runner.invoke(app, ["check", *args, "--sweep"])
    assert r.exit_code == 2, r.output
    assert "--sweep" in r.stderr and "Traceback" not in r.output


def test_a_tiny_point_is_swept_below_its_own_size_and_a_domain_edge_says_so():
    """log at 1e-300: steps reach below x (2^-52·|x|), where the reference exists."""
    (c,) = sweep(compile_program("log(x)"), {"x": 1e-300}).curves
    assert c.steps.min() < 1e-300 * 2**-40
    assert np.isfinite(c.errors).sum() >= 3
    assert c.errors[c.best] < 1e-6 * c.autograd  # a good reference exists at small steps
    r = runner.invoke(app, ["check", "sqrt(x)", "--x", "0", "--sweep"])
    assert "no step gives a finite reference" in r.stdout
