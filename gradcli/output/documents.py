"""Output that needs no Rich: JSON documents, and the plain table of a scalar evaluation.

`gradcli eval` at a scalar point prints through here on its quick path (gradcli/cli/entry.py);
the table is the one Rich draws for it, which tests/test_startup.py holds it to.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from ..evaluation.values import format_number, to_json
from ..language.source import GradcliError, Source, Span

if TYPE_CHECKING:
    from ..api import Evaluation


def json_text(doc: dict[str, Any]) -> str:
    """One strict (RFC 8259) JSON document: a nan or inf that reached here is a bug, not data."""
    import json  # not for the table: not at start-up

    text = json.dumps(doc, allow_nan=False, ensure_ascii=False, indent=2) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: escape it, as JSON allows
        text = json.dumps(doc, allow_nan=False, ensure_ascii=True, indent=2) + "\n"
    # DEL and the C1 controls may stand raw in JSON, but a terminal showing it may obey them.
    return text.translate(_C1)


_C1 = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}


def json_document(doc: dict[str, Any]) -> None:
    sys.stdout.write(json_text(doc))
    sys.stdout.flush()


def at_point_json(result) -> dict[str, Any]:
    """What every command that evaluates at a point reports first: the program and the point,
    the value and its shape."""
    source = result.program.source
    return {
        "expression": source.text,
        "source": source.name,
        "variables": {name: to_json(v) for name, v in result.variables.items()},
        "value": to_json(result.value),
        "shape": list(np.shape(result.value)),
    }


def evaluation_json(result: Evaluation) -> dict[str, Any]:
    return {
        **at_point_json(result),
        "gradient": {name: to_json(g) for name, g in result.gradient.items()},
        "gradient_of": "sum" if result.reduced else "value",
        "finite": result.finite,
        "faults": [fault_json(f) for f in result.faults],
    }


def fault_json(fault: GradcliError) -> dict[str, Any]:
    doc: dict[str, Any] = {"message": fault.message}
    if fault.span is not None and fault.source is not None:
        line, column = fault.source.line_col(fault.span.start)
        end_line, end_column = fault.source.line_col(fault.span.end)
        doc |= {"line": line, "column": column, "end_line": end_line, "end_column": end_column}
    return doc


def program_label(source: Source) -> str:
    """How a heading names a program: its file, or its text (shortened) when typed in."""
    if source.name != "<expr>":
        return source.name
    return source.snippet(Span(0, len(source.text)), 70)


def scalar_table(result) -> str | None:
    """The heading and boxed table that `at_point.evaluation_table` prints for a result whose
    value and gradients are all scalars, as plain text; None where Rich would draw anything
    else (arrays, colours, wide or unusual characters)."""
    if not all(np.ndim(v) == 0 for v in (result.value, *result.gradient.values())):
        return None
    if result.reduced or not all(
        np.ndim(v) == 0 and np.isfinite(v) for v in (result.value, *result.variables.values())
    ):
        return None
    shown = program_label(result.program.source)
    if result.variables:
        point = ", ".join(f"{n} = {format_number(v)}" for n, v in result.variables.items())
        shown += "  at " + point
    rows = [("f", format_number(result.value))] + [
        (f"∂f/∂{name}", format_number(g)) for name, g in result.gradient.items()
    ]
    cells = [shown, *(label for label, _ in rows)]
    # One column per character: printable ASCII, and the ∂ and − that labels and programs use.
    if not all((c.isascii() and c.isprintable()) or c in "∂−" for text in cells for c in text):
        return None
    left = max(len(label) for label, _ in rows)
    right = max(len(value) for _, value in rows)
    if left + right + 7 > 160 or len(shown) > 160:
        return None
    lines = [shown, f"┌{'─' * (left + 2)}┬{'─' * (right + 2)}┐"]
    lines += [f"│ {label:<{left}} │ {value:>{right}} │" for label, value in rows]
    lines.append(f"└{'─' * (left + 2)}┴{'─' * (right + 2)}┘")
    return "\n".join(lines) + "\n"
