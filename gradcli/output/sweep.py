"""`gradcli check --sweep`: for each entry, the error of the finite-difference reference against
its step, drawn as a log-log plot in the terminal (the V of truncation and rounding error), and
every curve in JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text

from ..evaluation.values import format_number, to_json
from . import console

_PLOT_ROWS = 12
_PLOTTED = 6  # curves drawn in the terminal; --json has them all


def sweep_plots(result) -> None:
    """For each entry, log error against log step: the V of truncation and rounding error."""
    method = {"central": "central differences", "forward": "forward differences"}.get(
        result.method, result.method
    )
    for curve in result.curves[:_PLOTTED]:
        order = curve.observed_order()
        best = curve.best
        head = Text(f"{curve.label} = {format_number(curve.autograd)}", style="bold")
        head.append(
            f"   {method}, {result.dtype}: observed order "
            + (f"{order:.2f}" if order is not None else "— (too few steps before rounding)")
            + f" (expected {result.expected_order}); best step {curve.steps[best]:.3g}, "
            f"error {curve.errors[best]:.3g}"
        )
        if np.any(curve.errors == 0):
            head.append("; an error of exactly 0 is drawn on the bottom row", style="dim")
        if not np.any(np.isfinite(curve.errors)):
            head.append(
                "; no step gives a finite reference (every stencil leaves the domain)",
                style="bold yellow",
            )
        console.stdout.print(head, soft_wrap=True)
        for line in _plot(curve):
            console.stdout.print(Text(line), soft_wrap=True, overflow="ignore")
        console.stdout.print()
    if len(result.curves) > _PLOTTED:
        console.stdout.print(
            Text(f"{len(result.curves) - _PLOTTED} more entries: --json has them all", style="dim")
        )


def _plot(curve) -> list[str]:
    """A log-log scatter, h growing to the right; ◆ marks the best step, ▲ the check's."""
    steps = curve.steps[::-1]  # smallest h first
    errors = curve.errors[::-1]
    finite = errors[np.isfinite(errors)]
    positive = finite[finite > 0]
    low = float(np.floor(np.log10(positive.min()))) if positive.size else -16.0
    high = float(np.ceil(np.log10(positive.max()))) if positive.size else 0.0
    high = max(high, low + 1)
    rows = [[" "] * len(steps) for _ in range(_PLOT_ROWS)]
    best = len(steps) - 1 - curve.best
    for k, err in enumerate(errors):
        if not np.isfinite(err):
            continue
        level = low if err <= 0 else float(np.log10(err))
        row = round((high - level) / (high - low) * (_PLOT_ROWS - 1))
        rows[min(max(row, 0), _PLOT_ROWS - 1)][k] = "◆" if k == best else "●"
    lines = []
    for r, cells in enumerate(rows):
        level = high - r * (high - low) / (_PLOT_ROWS - 1)
        label = f"1e{round(level)}" if r % 3 == 0 else ""
        lines.append(f"{label:>7} {'┤' if label else '│'}{''.join(cells)}")
    lines.append(" " * 8 + "└" + "─" * len(steps))
    ticks = [" "] * (len(steps) + 8)
    for k in range((len(steps) - 1) % 13, len(steps), 13):  # the last tick is h = max(1, |x|)
        text = f"{steps[k]:.0e}"
        start = k
        if start + len(text) <= len(ticks):
            ticks[start : start + len(text)] = list(text)
    lines.append(" " * 9 + "".join(ticks).rstrip() + "   h →")
    marker = [" "] * len(steps)
    nearest = int(np.argmin(np.abs(np.log2(steps) - np.log2(curve.check_step))))
    marker[nearest] = "▲"
    lines.append(" " * 9 + "".join(marker).rstrip() + "  the step gradcli check takes")
    return lines


def sweep_json(result) -> dict[str, Any]:
    return {
        "method": result.method,
        "dtype": result.dtype,
        "expected_order": result.expected_order,
        "curves": [
            {
                "variable": c.variable,
                "index": list(c.index) if c.index else None,
                "autograd": to_json(c.autograd),
                "steps": to_json(c.steps),
                "estimates": to_json(c.estimates),
                "errors": to_json(c.errors),
                "best_step": to_json(c.steps[c.best]),
                "best_error": to_json(c.errors[c.best]),
                "observed_order": c.observed_order(),
                "check_step": c.check_step,
            }
            for c in result.curves
        ],
    }
