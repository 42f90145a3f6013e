"""Output: Rich tables for people, strict JSON for machines, located messages on stderr.

JSON is written with `json.dumps(allow_nan=False)` straight to stdout, never through Rich, which
would wrap long lines when the output is piped.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .api import Evaluation
from .source import GradcliError, Span, format_error
from .values import format_number, to_json

# NO_COLOR (https://no-color.org) turns off every escape sequence, bold included.
_plain = {"color_system": None} if os.environ.get("NO_COLOR") else {}
_stdout = Console(highlight=False, **_plain)
_stderr = Console(stderr=True, highlight=False, soft_wrap=True, **_plain)


def error(err: Exception, label: str = "error") -> None:
    text = format_error(err, label) if isinstance(err, GradcliError) else f"{label}: {err}"
    head, _, rest = text.partition("\n")
    style = "bold red" if label == "error" else "bold yellow"
    kind, _, message = head.partition(": ")
    out = Text.assemble((kind + ":", style), " ", (message, "bold"))
    if rest:
        out.append("\n" + rest)
    _stderr.print(out)


def warning(err: GradcliError) -> None:
    error(err, "warning")


def json_document(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, allow_nan=False, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def evaluation_json(result: Evaluation) -> dict[str, Any]:
    source = result.program.source
    return {
        "expression": source.text,
        "source": source.name,
        "variables": {name: to_json(v) for name, v in result.variables.items()},
        "value": to_json(result.value),
        "shape": list(np.shape(result.value)),
        "gradient": {name: to_json(g) for name, g in result.gradient.items()},
        "gradient_of": "sum" if result.reduced else "value",
        "finite": result.finite,
        "faults": [_fault_json(f) for f in result.faults],
    }


def _fault_json(fault: GradcliError) -> dict[str, Any]:
    doc: dict[str, Any] = {"message": fault.message}
    if fault.span is not None and fault.source is not None:
        line, column = fault.source.line_col(fault.span.start)
        end_line, end_column = fault.source.line_col(fault.span.end)
        doc |= {"line": line, "column": column, "end_line": end_line, "end_column": end_column}
    return doc


def evaluation_table(result: Evaluation) -> None:
    source = result.program.source
    shown = (
        source.name if source.name != "<expr>" else source.snippet(Span(0, len(source.text)), 70)
    )
    heading = Text(shown, style="bold")
    if result.variables:
        heading.append(
            "  at " + ", ".join(f"{n} = {_short(v)}" for n, v in result.variables.items())
        )
    table = Table(show_header=False)
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(justify="right")
    table.add_row("f", _value(result.value))
    for name, g in result.gradient.items():
        table.add_row(f"∂(Σf)/∂{name}" if result.reduced else f"∂f/∂{name}", _value(g))
    _stdout.print(heading, soft_wrap=True)
    _stdout.print(table)
    if result.reduced:
        _stdout.print(
            f"f has shape {np.shape(result.value)}: "
            "each gradient is that of the sum of its elements",
            style="dim",
            soft_wrap=True,
        )


def _value(value: Any) -> Text:
    array = np.asarray(value)
    text = _short(array, full=True)
    style = "red" if not np.all(np.isfinite(array)) else ""
    return Text(text, style=style)


def _short(value: Any, full: bool = False) -> str:
    array = np.asarray(value)
    if array.ndim == 0:
        return format_number(array)
    body = np.array2string(
        array,
        precision=6,
        threshold=12 if full else 6,
        edgeitems=3,
        separator=", ",
        max_line_width=70,
    )
    return f"{body}" + (f"  shape {array.shape}" if full else "")
