"""Numerical faults are never silent: the first node to make a nan or inf, and every adjoint
that underflows, is named, with a span."""

import json
import math

import numpy as np
import pytest
from support import cli

from gradcli import evaluate


def first_fault(text, **values):
    r = evaluate(text, values)
    assert r.faults, "expected a fault"
    fault = r.faults[0]
    source = r.program.source
    return r, fault, source.text[fault.span.start : fault.span.end]


def test_log_of_a_negative_number_names_log_and_its_domain():
    r, fault, spanned = first_fault("y = x + 1; 2*log(y) + 3", x=-3.0)
    assert np.isnan(r.value)
    assert spanned == "log(y)"
    assert "log(y) is nan" in fault.message
    assert "x > 0" in fault.message and "y = -2.0" in fault.message


def test_division_by_zero():
    r, fault, spanned = first_fault("a = x - 1; (a + 2)/a", x=1.0)
    assert spanned == "(a + 2)/a"
    assert "division by zero" in fault.message
    assert not r.finite


def test_overflow():
    _, fault, spanned = first_fault("exp(x)*0 + 1", x=1000.0)
    assert spanned == "exp(x)"
    assert "exp(x) is inf: overflow" in fault.message


def test_fault_in_the_derivative_names_the_primitive_whose_rule_made_it():
    r, fault, spanned = first_fault("sqrt(x) + 1", x=0.0)
    assert float(r.value) == 1.0  # the value is fine; its derivative is not
    assert np.isinf(r.gradient["x"])
    assert spanned == "sqrt(x)"
    assert fault.message.startswith("the derivative of sqrt(x) is inf")


def test_the_first_fault_is_reported_not_its_consequences():
    r = evaluate("a = log(x); b = a*2; sin(b) + b", {"x": -1.0})
    value_faults = [f for f in r.faults if not f.message.startswith("the derivative")]
    assert len(value_faults) == 1 and "log(x)" in value_faults[0].message


def test_array_fault_gives_the_index_of_the_first_bad_element():
    _, fault, _ = first_fault("log(x)", x=np.array([1.0, 2.0, -1.0, -2.0]))
    assert "at index [2]" in fault.message
    assert "x = -1.0" in fault.message


def test_finite_results_have_no_faults():
    r = evaluate("exp(-x^2)", {"x": 40.0})  # underflows to 0: not a fault
    assert r.faults == [] and r.finite


def test_fault_masked_later_is_still_reported():
    # exp(-1/x) at x = 0 is exp(-inf) = 0: finite, but the division by zero is worth knowing.
    r = evaluate("exp(-1/x)", {"x": 0.0})
    assert float(r.value) == 0.0
    assert any("division by zero" in f.message for f in r.faults)


# --- adjoints that underflow -----------------------------------------------------------------

PLANCK = "2*6.62607015e-34*299792458^2/lam^5/expm1(6.62607015e-34*299792458/(lam*1.380649e-23*T))"


def _planck_gradient(lam: float, t: float) -> dict[str, float]:
    import mpmath

    mpmath.mp.dps = 50
    h, c, k = (mpmath.mpf(v) for v in ("6.62607015e-34", "299792458", "1.380649e-23"))

    def f(lam_, t_):
        return 2 * h * c**2 / lam_**5 / mpmath.expm1(h * c / (lam_ * k * t_))

    lam_, t_ = mpmath.mpf(lam), mpmath.mpf(t)
    return {
        "lam": float(mpmath.diff(lambda v: f(v, t_), lam_)),
        "T": float(mpmath.diff(lambda v: f(lam_, v), t_)),
    }


def test_an_adjoint_that_underflows_is_a_fault_naming_its_node():
    """Planck's law at 1e-7 m, 300 K: ∂f/∂expm1 = -f/expm1 ≈ 3e-398 underflows, and the
    gradient comes out 0 and with the wrong sign (mpmath: +2.94e-180 and 9.89e-190)."""
    from gradcli import evaluate

    result = evaluate(PLANCK, {"lam": 1e-7, "T": 300.0})
    exact = _planck_gradient(1e-7, 300.0)
    assert result.finite  # no nan or inf: the numbers are simply wrong
    assert float(result.gradient["T"]) != pytest.approx(exact["T"], rel=0.5, abs=0)
    (fault,) = [f for f in result.faults if f.cause == "underflow"]
    assert "underflows" in fault.message and "expm1" in fault.message
    assert fault.span is not None


@pytest.mark.parametrize(
    ("text", "values", "wrong"),
    [
        # ∂/∂x = -e^-400 ≈ -1.9e-174, but the adjoint of exp(x), -f/exp(x) ≈ 3.7e-348, is 0
        ("1/exp(x)", {"x": 400.0}, ("x", -math.exp(-400.0))),
        ("y/exp(x)", {"x": 400.0, "y": 2.0}, ("x", -2 * math.exp(-400.0))),
        # the value: x/exp(y) ≈ 2.7e-461 is 0, and e^600 times it, 1e-200, with it
        ("exp(y)*(x/exp(y))", {"x": 1e-200, "y": 600.0}, ("value", 1e-200)),
        ("1e300*(x*y)", {"x": 1e-200, "y": 1e-200}, ("value", 1e-100)),
    ],
)
def test_every_underflow_that_loses_digits_is_reported_and_eval_exits_1(text, values, wrong):
    args = [a for name, v in values.items() for a in (f"--{name}", repr(v))]
    r = cli("eval", text, *args, "--json")
    assert r.exit_code == 1, r.output
    document = json.loads(r.stdout)
    assert document["finite"] is True
    assert any("underflows" in f["message"] for f in document["faults"])
    name, exact = wrong  # the number really is wrong (closed form), so the warning is due
    got = document["value"] if name == "value" else document["gradient"][name]
    assert got != pytest.approx(exact, rel=1e-3, abs=0)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("sigmoid(x)", {"x": 1000.0}),  # the derivative itself is below the range: no lost digits
        ("exp(-x)*y", {"x": 800.0, "y": 2.0}),
        ("x*y", {"x": 1e-200, "y": 1e-100}),
        ("x*y*z", {"x": 1e-200, "y": 1e-200, "z": 1.0}),  # ∂/∂z = x·y = 1e-400: 0 is its rounding
        ("x/exp(y)", {"x": 1e-200, "y": 600.0}),  # ∂/∂y = -x/e^600 ≈ -2.7e-461, rounded to 0
        ("norm(x, axis=1)", {"x": [[1e200, 1e-200], [3.0, 4.0]]}),  # x/‖x‖ = 1e-400
    ],
)
def test_an_underflow_whose_exact_result_is_below_the_range_is_no_fault(text, values):
    """A product or quotient of nonzero numbers that underflows loses digits that matter only
    where a later product would be a normal number again; a function that rounds to 0
    (sigmoid's derivative at 1000, e^-800), or a result whose exact size is below the range,
    is correctly rounded."""
    from gradcli import evaluate

    result = evaluate(text, values)
    assert not [f for f in result.faults if f.cause == "underflow"], result.faults
