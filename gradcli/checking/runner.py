"""Running check cases: the gradient check, plus any expected value and hand-derived gradient.

A hand-derived gradient is judged the way the autograd one is: against the finite-difference
reference, with the same tolerance rule, the same kink and edge handling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..evaluation.interpreter import evaluate
from ..language.lower import Lowered
from ..language.source import GradcliError
from .checkfile import Case
from .engine import check
from .merging import split
from .subgradients import mark_not_subgradients
from .verdicts import (
    FAIL,
    FAILING,
    KINK,
    KINK_FAIL,
    NONFINITE,
    PASS,
    UNCHECKED,
    CheckResult,
    VariableCheck,
)

_ROWS = 1 << 16  # points per evaluation of a hand-derived gradient


@dataclass
class ValueCheck:
    expected: np.ndarray
    actual: np.ndarray
    tolerance: float
    passed: bool


@dataclass
class CaseResult:
    case: Case
    result: CheckResult | None = None
    expected: list[VariableCheck] = field(default_factory=list)  # hand-derived gradients
    value: ValueCheck | None = None
    error: GradcliError | None = None
    seconds: float = 0.0

    @property
    def checks(self) -> list[VariableCheck]:
        return ([] if self.result is None else self.result.variables) + self.expected

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def report(self) -> str:
        """This case's checks as plain text: one line per entry checked (its worst element),
        then what was found there. The terminal's tables are `gradcli.output`'s."""
        from .records import failure_text

        heading = f"{self.case.name}: {self.status}"
        return heading + "\n" + failure_text(self, everything=True)

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        failed = any(c.failed for c in self.checks) or (
            self.value is not None and not self.value.passed
        )
        return "failed" if failed else "passed"


def run_case(case: Case, samples: int | None = None, **overrides) -> CaseResult:
    """Check one case; `samples` replaces the sample size of sampled cases."""
    start = time.perf_counter()
    outcome = CaseResult(case)
    options = replace(case.options, **{k: v for k, v in overrides.items() if v is not None})
    try:
        result = check(case.program, case.points(samples, options), options)
        outcome.result = result
        if case.value is not None:
            outcome.value = _value_check(case.value, result)
        full: dict[str, np.ndarray] = {}
        for vc in result.variables:
            formula = case.grad.get(vc.name) if vc.of is None else None
            if formula is not None:
                values = _expected(formula, result, vc)
                outcome.expected.append(_expected_check(vc, values))
                if vc.direction is None:
                    full[vc.name] = values
        # A hand-derived gradient of only some variables is judged along directions that move
        # only those: it need not be consistent with the subgradient gradcli chose for the rest.
        checked = [vc.name for vc in result.variables if vc.of is None]
        directional = result.directional
        if full and set(full) != set(checked) and result.directional_for is not None:
            directional = result.directional_for([n for n in checked if n in full])
        if directional is not None and full:
            mark_not_subgradients(outcome.expected, directional, full)
    except GradcliError as err:
        outcome.error = err
    outcome.seconds = time.perf_counter() - start
    return outcome


def _value_check(expected: np.ndarray, result: CheckResult) -> ValueCheck:
    actual = np.asarray(result.value[0])
    rtol = result.options.effective_rtol
    tolerance = result.options.atol + rtol * float(np.max(np.abs(expected), initial=0.0))
    with np.errstate(all="ignore"):
        ok = actual.shape == np.broadcast_shapes(actual.shape, expected.shape) and bool(
            np.all(np.abs(actual - expected) <= tolerance)
        )
    return ValueCheck(expected, actual, tolerance, ok)


def _expected(formula: Lowered | np.ndarray, result: CheckResult, vc: VariableCheck) -> np.ndarray:
    """The hand-derived gradient at every point, shaped like the check: (points, entries)."""
    if isinstance(formula, Lowered) and formula.variables:  # a batch axis first
        parts = []
        for chunk in split(result.points, result.count, _ROWS):  # to bound memory
            (value,), _, _ = evaluate([formula.output], chunk, batched=True)
            parts.append(np.broadcast_to(value, (np.shape(value)[0], *vc.shape)))
        value = np.concatenate(parts)
    elif isinstance(formula, Lowered):  # a constant for every point
        (value,), _, _ = evaluate([formula.output], result.points, batched=True)
        value = np.broadcast_to(value, vc.shape)[None]
    else:
        value = np.asarray(formula)[None]
    try:
        full = np.broadcast_to(value, (result.count, *vc.shape))
    except ValueError:
        raise GradcliError(
            f"the hand-derived gradient for {vc.name} has shape {np.shape(value)}, "
            f"but {vc.name} has shape {vc.shape}"
        ) from None
    flat = full.reshape(result.count, -1)
    return flat @ vc.direction if vc.direction is not None else flat


def _expected_check(vc: VariableCheck, expected: np.ndarray) -> VariableCheck:
    """Judge hand-derived values against the same reference the autograd values met."""
    out = replace(vc, autograd=expected, forward=None, messages={}, blame=[], source="expected")
    reference, tolerance = vc.reference, vc.tolerance
    with np.errstate(all="ignore"):
        ok = np.abs(expected - reference) <= tolerance
        inside = (np.fmin(vc.left, vc.right) - tolerance <= expected) & (
            expected <= np.fmax(vc.left, vc.right) + tolerance
        )
    verdict = np.where(ok, PASS, FAIL).astype(object)
    kink = np.isin(vc.verdict, [KINK, KINK_FAIL])
    verdict[kink] = np.where(inside[kink] | np.isnan(vc.left[kink]), KINK, KINK_FAIL)
    verdict[vc.verdict == UNCHECKED] = UNCHECKED
    verdict[(vc.verdict == NONFINITE) & ~np.isfinite(reference)] = UNCHECKED
    verdict[~np.isfinite(expected)] = NONFINITE
    out.verdict = verdict
    for p, e in zip(*np.nonzero(verdict != PASS), strict=True):
        if verdict[p, e] == KINK_FAIL:
            out.messages[p, e] = (
                f"left derivative {vc.left[p, e]:.17g}, right derivative {vc.right[p, e]:.17g}; "
                "the hand-derived value is not between them: not a subgradient"
            )
        elif verdict[p, e] in FAILING and verdict[p, e] != NONFINITE:
            out.messages[p, e] = (
                "the hand-derived gradient disagrees with the finite-difference reference"
            )
        elif (p, e) in vc.messages:
            out.messages[p, e] = vc.messages[p, e]
    return out
