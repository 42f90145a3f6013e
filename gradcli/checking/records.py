"""What a check found, as plain data: one record per checked entry, and a plain-text account.

The records are the layer's answer to "what happened", independent of how it is shown: the
JSON document, the terminal tables, JUnit and GitHub annotations (all in `gradcli.output`) are
built from them, and `CaseResult.report()` writes them as text for tests and the Python API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..evaluation.values import format_number, to_json
from .verdicts import FAILING, PASS, VariableCheck

if TYPE_CHECKING:
    from .runner import CaseResult


def _number(value: Any) -> Any:
    return to_json(value) if value is not None else None


def variable_record(outcome: CaseResult, vc: VariableCheck) -> dict[str, Any]:
    """The worst entry of one variable's check, with everything needed to act on it."""
    p, e = vc.worst()
    g, r = float(vc.autograd[p, e]), float(vc.reference[p, e])
    with np.errstate(all="ignore"):
        abs_error = abs(g - r)
        rel_error = abs_error / abs(r) if r else (0.0 if abs_error == 0 else None)
    point = outcome.result.point(p) if outcome.result is not None else {}
    kink = None if np.isnan(vc.left[p, e]) else (vc.left[p, e], vc.right[p, e])
    blame = [
        {
            "primitive": b.node.op,
            "argument": b.argument + 1,
            **_position(b.node.span, outcome),
            "rule": _number(b.rule),
            "finite_difference": _number(b.numeric),
            "message": b.message,
        }
        for b in vc.blame
    ]
    result = outcome.result
    symmetry = None if result is None else result.symmetry
    symmetric = None if result is None else result.symmetric
    elements = int(vc.verdict.shape[1])
    failing = int(np.isin(vc.verdict[p], list(FAILING)).sum())
    return {
        **_where(outcome),
        "variable": vc.name,
        "label": entry_label(vc, e),
        "order": 1 if vc.of is None else 2,
        "of": vc.of,
        "kind": "hand-derived" if vc.source == "expected" else "autograd",
        "verdict": str(vc.verdict[p, e]),
        "passed": not vc.failed,
        "autograd" if vc.source != "expected" else "expected": _number(g),
        "forward": _number(vc.forward[p, e]) if vc.forward is not None else None,
        "reference": _number(r),
        "abs_error": _number(abs_error) if kink is None else None,
        "rel_error": _number(rel_error) if kink is None else None,
        "error_estimate": _number(vc.error[p, e]),
        "tolerance": _number(vc.tolerance[p, e]),
        "method": vc.method,
        "how": str(vc.how[p, e]),
        "step": _number(vc.step[p, e]),
        "point": {name: to_json(v) for name, v in point.items()},
        "point_index": int(p),
        "index": list(vc.index(e)) if vc.index(e) is not None else None,
        "direction": vc.direction is not None,
        "left": _number(vc.left[p, e]),
        "right": _number(vc.right[p, e]),
        "message": vc.messages.get((p, e)),
        "blame": blame,
        "points": int(vc.verdict.shape[0]),
        "counts": vc.counts(),
        "symmetry": _number(symmetry) if vc.of is not None else None,
        "symmetric": symmetric if vc.of is not None else None,
        "elements": elements,
        "failed_elements": failing,
        "arrays": _side_by_side(vc, p) if failing and vc.direction is None else None,
    }


# Up to this many elements, a failing array gradient is shown whole beside its reference, so
# that a transpose, a missing term or a swapped row can be seen.
SHOWN_ELEMENTS = 100


def _side_by_side(vc: VariableCheck, p: int) -> dict[str, Any] | None:
    """The gradient and its reference at point `p`, as arrays of the variable's shape."""
    if not vc.shape or int(np.prod(vc.shape)) > SHOWN_ELEMENTS:
        return None
    name = "expected" if vc.source == "expected" else "autograd"
    return {
        name: to_json(vc.autograd[p].reshape(vc.shape)),
        "reference": to_json(vc.reference[p].reshape(vc.shape)),
    }


def entry_label(vc: VariableCheck, element: int) -> str:
    """What an entry is: ∂f/∂x[1], ∂²f/∂x∂y[0], or a derivative along a random direction."""
    index = vc.index(element)
    at = f"[{', '.join(map(str, index))}]" if index else ""
    if vc.of is None:
        label = f"vᵀ∇{vc.name} (random v)" if vc.direction is not None else f"∂f/∂{vc.name}{at}"
    elif vc.direction is not None:
        label = f"vᵀ∇{vc.name}(∂f/∂{vc.of}) (random v)"
    else:
        label = f"∂²f/∂{vc.of}∂{vc.name}{at}"
    return label + (" (hand-derived)" if vc.source == "expected" else "")


def _position(span, outcome: CaseResult) -> dict[str, Any]:
    if span is None:
        return {}
    line, column = outcome.case.program.source.file_line_col(span.start)
    return {"line": line, "column": column}


def _where(outcome: CaseResult) -> dict[str, Any]:
    case = outcome.case
    return {
        "file": str(case.file) if case.file is not None else None,
        "line": case.line if case.file is not None else None,
        "case": case.name,
    }


def records(results: list[CaseResult]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for outcome in results:
        if outcome.error is not None:
            out.append(
                {
                    **_where(outcome),
                    "variable": None,
                    "kind": "error",
                    "verdict": "error",
                    "passed": False,
                    "message": outcome.error.message,
                }
            )
            continue
        out += [variable_record(outcome, vc) for vc in outcome.checks]
        if outcome.value is not None:
            v = outcome.value
            out.append(
                {
                    **_where(outcome),
                    "variable": None,
                    "kind": "value",
                    "verdict": PASS if v.passed else "fail",
                    "passed": v.passed,
                    "expected": to_json(v.expected),
                    "actual": to_json(v.actual),
                    "tolerance": _number(v.tolerance),
                }
            )
    return out


def _show(value: float) -> str:
    """A number for people, inf and nan included (JSON writes those as null)."""
    return format_number(value) if np.isfinite(value) else str(float(value))


def failure_text(outcome: CaseResult, everything: bool = False) -> str:
    """Plain-text account of what failed in a case (with `everything`, of every check), for
    JUnit, annotations, pytest and `CaseResult.report()`."""
    if outcome.error is not None:
        return str(outcome.error)
    lines = []
    for vc in outcome.checks:
        if not (vc.failed or everything):
            continue
        rec = variable_record(outcome, vc)
        p, e = vc.worst()
        at = ", ".join(f"{k} = {v}" for k, v in rec["point"].items())
        g, r, tol = vc.autograd[p, e], vc.reference[p, e], vc.tolerance[p, e]
        lines.append(
            f"{rec['label']}: {rec['verdict']}: got {_show(g)}, reference {_show(r)} "
            f"(error {abs(g - r):.3g}, tolerance {tol:.3g}, {rec['how']}) at {at}"
        )
        if rec["message"]:
            lines.append(f"  {rec['message']}")
        lines += [f"  blame: {b['message']}" for b in rec["blame"]]
    if outcome.value is not None and (everything or not outcome.value.passed):
        v = outcome.value
        verdict = ("pass: " if v.passed else "fail: ") if everything else ""
        lines.append(f"value: {verdict}expected {to_json(v.expected)}, got {to_json(v.actual)}")
    return "\n".join(lines)
