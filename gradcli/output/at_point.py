"""The commands that evaluate at a point: the tables and JSON of `gradcli eval`, `jacobian`,
`jvp` (a directional derivative) and `hessian`.

The JSON of `eval` is in documents.py, beside the pieces every document here starts with: the
quick path of `gradcli eval` prints it without Rich.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich import box
from rich.table import Table
from rich.text import Text

from ..api import Evaluation
from ..evaluation.values import to_json
from . import console
from .console import brief, heading, short
from .documents import at_point_json, fault_json


def evaluation_table(result: Evaluation) -> None:
    """The value and each gradient; an array as its shape, a few entries and its norm (the full
    arrays are in --json)."""
    title = heading(result.program, result.variables)
    arrays = any(np.ndim(v) for v in (result.value, *result.gradient.values()))
    table = Table(show_header=arrays, box=box.SIMPLE_HEAD if arrays else box.SQUARE)
    table.add_column("", style="cyan", no_wrap=True)
    table.add_column("value", justify="right")
    if arrays:
        table.add_column("shape", justify="right")
        table.add_column("norm", justify="right")
    rows = [("f", result.value)] + [
        (f"∂(Σf)/∂{name}" if result.reduced else f"∂f/∂{name}", g)
        for name, g in result.gradient.items()
    ]
    for label, value in rows:
        cells = [label, _value(value)]
        if arrays:
            array = np.asarray(value)
            shape = "×".join(map(str, array.shape)) if array.ndim else "scalar"
            norm = f"{_norm(array):.6g}" if array.ndim else ""
            cells += [shape, norm]
        table.add_row(*cells)
    console.stdout.print(title, soft_wrap=True)
    console.stdout.print(table)
    if result.reduced:
        console.stdout.print(
            f"f has shape {np.shape(result.value)}: "
            "each gradient is that of the sum of its elements (--json has every entry)",
            style="dim",
            soft_wrap=True,
        )


def _value(value: Any) -> Text:
    array = np.asarray(value)
    style = "red" if not np.all(np.isfinite(array)) else ""
    return Text(short(array), style=style)


def _norm(array: Any) -> float:
    """The 2-norm, inf where it overflows (without numpy's warning on stderr)."""
    with np.errstate(all="ignore"):
        return float(np.linalg.norm(array))


# --- gradcli jacobian --------------------------------------------------------------------------


def jacobian_json(result) -> dict[str, Any]:
    return {
        **at_point_json(result),
        "jacobian": {name: to_json(j) for name, j in result.matrices.items()},
        "finite": result.finite,
        "faults": [fault_json(f) for f in result.faults],
    }


def jacobian_table(result) -> None:
    """One row per element of f and one column per element of each variable; when that would
    be too large, one row per variable with the shape and norm of its block."""
    console.stdout.print(heading(result.program, result.variables), soft_wrap=True)
    out_shape = np.shape(result.value)
    rows = int(np.prod(out_shape, dtype=int))
    columns = []
    for name, j in result.matrices.items():
        var_shape = np.shape(j)[len(out_shape) :]
        block = np.reshape(j, (rows, int(np.prod(var_shape, dtype=int))))
        for k in range(block.shape[1]):
            label = f"∂/∂{name}" + _index_label(k, var_shape)
            columns.append((label, block[:, k]))
    table = Table(box=box.SIMPLE_HEAD)
    if len(columns) <= 12 and rows <= 50:
        table.add_column("", style="cyan", no_wrap=True)
        for label, _ in columns:
            table.add_column(label, justify="right", no_wrap=True)
        for r in range(rows):
            values = (f"{c[r]:.6g}" for _, c in columns)
            table.add_row("f" + _index_label(r, out_shape), *values)
    else:
        for title in ("", "shape", "norm", "entries"):
            table.add_column(title, justify="right" if title else "left", no_wrap=True)
        for name, j in result.matrices.items():
            shape = "×".join(map(str, np.shape(j)))
            table.add_row(f"∂f/∂{name}", shape, f"{_norm(j):.6g}", short(j))
    console.stdout.print(table)


def _index_label(flat: int, shape: tuple[int, ...]) -> str:
    if not shape:
        return ""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


# --- gradcli jvp: forward mode ----------------------------------------------------------------


def directional_json(result) -> dict[str, Any]:
    return {
        **at_point_json(result),
        "direction": {n: to_json(v) for n, v in result.direction.items()},
        "derivative": to_json(result.derivative),
        "reverse": to_json(result.reverse),
        "faults": [fault_json(f) for f in result.faults],
    }


def directional_table(result) -> None:
    console.stdout.print(heading(result.program, result.variables), soft_wrap=True)
    table = Table(show_header=False)
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(justify="right")
    along = ", ".join(f"{n} = {brief(v)}" for n, v in result.direction.items())
    table.add_row("f", _value(result.value))
    table.add_row("forward mode: ∂f along v", _value(result.derivative))
    table.add_row("reverse mode: vᵀ∇(Σf)", _value(result.reverse))
    console.stdout.print(table)
    console.stdout.print(Text(f"v: {along}", style="dim"), soft_wrap=True)


# --- gradcli hessian --------------------------------------------------------------------------


def hessian_json(result) -> dict[str, Any]:
    return {
        **at_point_json(result),
        "labels": result.labels,
        "gradient": to_json(result.gradient),
        "hessian": to_json(result.matrix),
        "asymmetry": to_json(result.asymmetry),
        "mode": result.mode,
        "finite": result.finite,
        "faults": [fault_json(f) for f in result.faults],
    }


def hessian_table(result) -> None:
    """The matrix (or, when it is large, its shape and norm), then its symmetry and definiteness."""
    console.stdout.print(heading(result.program, result.variables), soft_wrap=True)
    n = len(result.labels)
    if n <= 12:
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("", style="cyan", no_wrap=True)
        for label in result.labels:
            table.add_column(f"∂/∂{label}", justify="right", no_wrap=True)
        for label, row in zip(result.labels, result.matrix, strict=True):
            table.add_row(f"∂/∂{label}", *(f"{v:.6g}" for v in row))
        console.stdout.print(table)
    else:
        console.stdout.print(
            f"a {n}×{n} matrix, norm {_norm(result.matrix):.6g} (--json has it all)"
        )
    notes = [f"symmetry: max |H - Hᵀ| / max |H| = {result.asymmetry:.3g}"]
    if result.finite and n:
        eig = np.linalg.eigvalsh((result.matrix + result.matrix.T) / 2)
        tol = 1e-12 * (np.max(np.abs(eig)) or 1.0)  # eigenvalues within rounding of 0 count as 0
        kind = (
            "positive definite" if eig.min() > tol
            else "negative definite" if eig.max() < -tol
            else "indefinite" if eig.min() < -tol and eig.max() > tol
            else "zero" if eig.max() <= tol and eig.min() >= -tol
            else "positive semidefinite (singular)" if eig.min() >= -tol
            else "negative semidefinite (singular)"
        )  # fmt: skip
        notes.append(f"eigenvalues from {eig.min():.6g} to {eig.max():.6g}: {kind}")
    for note in notes:
        console.stdout.print(Text(note, style="dim"), soft_wrap=True)
