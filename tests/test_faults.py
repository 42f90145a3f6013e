"""Numerical faults are never silent: the first node to make a nan or inf is named, with a span."""

import numpy as np

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
