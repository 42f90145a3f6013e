"""Output: Rich tables for people, strict JSON for machines, located messages on stderr.

JSON is written with `json.dumps(allow_nan=False)` straight to stdout, never through Rich, which
would wrap long lines when the output is piped.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from ..api import Evaluation
from ..evaluation.values import format_number, to_json
from ..language.source import GradcliError, format_error, printable
from .documents import (  # noqa: F401
    _at_point_json,
    _fault_json,
    evaluation_json,
    json_document,
    program_label,
)

# NO_COLOR (https://no-color.org) turns off every escape sequence, bold included.
_plain = {"color_system": None} if os.environ.get("NO_COLOR") else {}
# Piped output is data for a file or a log, not a narrow terminal: wide tables stay whole.
_wide = {} if sys.stdout.isatty() or "COLUMNS" in os.environ else {"width": 160}


class _Console(Console):
    """Rich's console, showing the control characters of user text rather than sending them
    (an escape sequence in a case name would set the terminal's title, colours or worse,
    NO_COLOR or not), and leaving a closed pipe to the command line."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            Segment(printable(s.text), s.style, s.control) if s.control is None else s
            for s in buffer
        )

    def on_broken_pipe(self) -> None:
        # Rich exits with status 1, which in CI reads as "a check failed": the command line
        # ends as tools do when their reader leaves (streams.reader_left).
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader closed the pipe")


_stdout = _Console(highlight=False, **_plain, **_wide)
_stderr = _Console(stderr=True, highlight=False, soft_wrap=True, **_plain)


def error(err: Exception, label: str = "error") -> None:
    text = format_error(err, label) if isinstance(err, GradcliError) else f"{label}: {err}"
    head, _, rest = text.partition("\n")
    style = "bold red" if label == "error" else "bold yellow"
    kind, _, message = head.partition(": ")
    out = Text.assemble((kind + ":", style), " ", (message, "bold"))
    if rest:
        out.append("\n" + rest)
    _stderr.print(out)


def stdout_line() -> None:
    _stdout.print()


def warning(err: GradcliError) -> None:
    error(err, "warning")


def evaluation_table(result: Evaluation) -> None:
    """The value and each gradient; an array as its shape, a few entries and its norm (the full
    arrays are in --json)."""
    shown = program_label(result.program.source)
    heading = Text(shown, style="bold")
    if result.variables:
        heading.append(
            "  at " + ", ".join(f"{n} = {_brief(v)}" for n, v in result.variables.items())
        )
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
    _stdout.print(heading, soft_wrap=True)
    _stdout.print(table)
    if result.reduced:
        _stdout.print(
            f"f has shape {np.shape(result.value)}: "
            "each gradient is that of the sum of its elements (--json has every entry)",
            style="dim",
            soft_wrap=True,
        )


def _value(value: Any) -> Text:
    array = np.asarray(value)
    style = "red" if not np.all(np.isfinite(array)) else ""
    return Text(_short(array), style=style)


def _brief(value: Any) -> str:
    """A value in a heading: a small array in full, a large one by its shape."""
    array = np.asarray(value)
    if array.size > 8:
        return f"({'×'.join(map(str, array.shape))} array)"
    return _short(array)


def _short(value: Any) -> str:
    """A number, or an array on one line with a few entries from each end of each axis."""
    array = np.asarray(value)
    if array.ndim == 0:
        return format_number(array)
    body = np.array2string(
        array, precision=6, threshold=8, edgeitems=2, separator=", ", max_line_width=10**6
    )
    return " ".join(body.split())


def jacobian_json(result) -> dict[str, Any]:
    return {
        **_at_point_json(result),
        "jacobian": {name: to_json(j) for name, j in result.matrices.items()},
        "finite": result.finite,
        "faults": [_fault_json(f) for f in result.faults],
    }


def jacobian_table(result) -> None:
    """One row per element of f and one column per element of each variable; when that would
    be too large, one row per variable with the shape and norm of its block."""
    shown = program_label(result.program.source)
    heading = Text(shown, style="bold")
    if result.variables:
        heading.append(
            "  at " + ", ".join(f"{n} = {_brief(v)}" for n, v in result.variables.items())
        )
    _stdout.print(heading, soft_wrap=True)
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
            table.add_row(f"∂f/∂{name}", shape, f"{_norm(j):.6g}", _short(j))
    _stdout.print(table)


def _norm(array: Any) -> float:
    """The 2-norm, inf where it overflows (without numpy's warning on stderr)."""
    with np.errstate(all="ignore"):
        return float(np.linalg.norm(array))


def _index_label(flat: int, shape: tuple[int, ...]) -> str:
    if not shape:
        return ""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


# --- gradient checks --------------------------------------------------------------------------

_VERDICT_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "non-finite": "bold red",
    "not differentiable": "yellow",
    "not differentiable, not a subgradient": "bold red",
    "unchecked": "dim",
}


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return _short(np.asarray(value, dtype=float))
    return f"{float(value):.6g}"


def check_details_text(outcome, width: int = 160) -> str:
    """`check_details` as plain text, for a report that is not the terminal (pytest's)."""
    global _stdout, _stderr
    saved = _stdout, _stderr
    buffer = io.StringIO()
    _stdout = _stderr = _Console(
        file=buffer, width=width, color_system=None, highlight=False, soft_wrap=True
    )
    try:
        check_details(outcome)
    finally:
        _stdout, _stderr = saved
    return buffer.getvalue()


def check_details(outcome) -> None:
    """One case in full: a row per variable (and hand-derived gradient), then the notes."""
    from ..checking.records import records

    case = outcome.case
    heading = Text(case.name if case.file is None else f"{case.name}  ({case.where})", style="bold")
    result = outcome.result
    if result is not None and result.count == 1:
        point = ", ".join(f"{n} = {_short(v)}" for n, v in result.point(0).items())
        if point:
            heading.append(f"  at {point}")
    elif result is not None:
        heading.append(f"  at {result.count} points (the worst is shown)")
    _stdout.print(heading, soft_wrap=True)
    if outcome.error is not None:
        error(outcome.error)
        return
    titles = ["", "autograd", "reference", "abs. error", "rel. error", "ref. error", "method"]
    titles += ["step", "verdict"]
    columns = [(t, "left" if t in ("", "method", "verdict") else "right") for t in titles]
    rows: list[list[Any]] = []
    notes: list[str] = []
    for rec in records([outcome]):
        verdict = Text(rec["verdict"], style=_VERDICT_STYLE.get(rec["verdict"], ""))
        if rec["kind"] == "value":
            rows.append(
                [
                    "f",
                    _num(rec["actual"]),
                    _num(rec["expected"]),
                    "",
                    "",
                    "",
                    "expected value",
                    "",
                    verdict,
                ]
            )
            continue
        label = rec["label"]
        value = rec.get("autograd", rec.get("expected"))
        reference = _num(rec["reference"])
        errors = [_num(rec["abs_error"]), _num(rec["rel_error"]), _num(rec["error_estimate"])]
        if rec["message"] and rec["message"].startswith("the value jumps"):
            reference = "(a jump)"  # one-sided differences there are the jump over the step
            errors = ["—", "—", "—"]
        elif rec["left"] is not None:  # a kink: the one-sided derivatives bound the subgradients
            reference = f"{_num(rec['left'])} … {_num(rec['right'])}"
            errors = ["—", "—", "—"]
        rows.append(
            [label, _num(value), reference, *errors, rec["how"], _num(rec["step"]), verdict]
        )
        if result is not None and result.count > 1 and rec["verdict"] != "pass":
            at = ", ".join(f"{k} = {_num(v)}" for k, v in rec["point"].items())
            notes.append(f"{label}: worst at {at}")
        if rec["message"]:
            notes.append(f"{label}: {rec['message']}")
        notes += [f"{label}: blame: {b['message']}" for b in rec["blame"]]
        if rec.get("failed_elements") and rec["elements"] > 1:
            where = " at that point" if result is not None and result.count > 1 else ""
            notes.append(
                f"{_entry_name(rec)}: {rec['failed_elements']} of {rec['elements']} elements "
                f"failed{where}"
            )
            if rec["arrays"] is not None:
                notes.append(_arrays_side_by_side(rec["arrays"]))
    passing = [row for row in rows if _plain_text(row[-1]) == "pass"]
    summarized = len(rows) > LISTED_ROWS and bool(passing)
    if summarized:
        # A long run's thousand "pass" rows would hide what matters: only the others are
        # listed (all of them, and every entry is in --json).
        rows = [row for row in rows if _plain_text(row[-1]) != "pass"]
        _stdout.print(
            f"{len(passing):,} of {len(passing) + len(rows):,} entries passed and are not "
            "listed (--json lists every entry)",
            soft_wrap=True,
        )
    if rows or not summarized:  # all passed and summarized: no table of nothing
        # The entry, its value, the reference and the verdict first: what a reader acts on.
        table, hidden = _fitted(
            columns, rows, [0, 1, 2, 8, 4, 3, 5, 6, 7], _stdout.width, box=box.SIMPLE_HEAD
        )
        _stdout.print(table)
        below = []
        for row in rows if hidden else []:  # what did not fit, below, entry by entry
            extra = [f"{titles[i]} {_plain_text(row[i])}" for i in hidden if _plain_text(row[i])]
            if extra:
                below.append(f"{_plain_text(row[0])}: " + ", ".join(extra))
        notes[:0] = below
    if result is not None and result.options.order == 2:
        notes.append(_symmetry_note(result.symmetry, result.symmetric, result.options.fast))
    for note in notes:
        _stdout.print(Text(note), soft_wrap=True)


def _cell_len(value: Any) -> int:
    text = value if isinstance(value, Text) else Text(str(value))
    return max((Text(line).cell_len for line in text.plain.split("\n")), default=0)


def _fitted(
    columns: list[tuple[str, str]],
    rows: list[list[Any]],
    priority: list[int],
    width: int,
    flexible: int | None = None,
    **table_options: Any,
) -> tuple[Table, list[int]]:
    """A table of the columns that fit in `width`, chosen in order of `priority`, and the
    indices of those left out, for the caller to show otherwise: at 80 columns the check
    table showed every column cut to `∂…  -345…  ver…`. The `flexible` column (a case name)
    may wrap, and is counted at up to 24 cells; the others are shown whole or not at all."""
    # Each column takes its cells, a space of padding either side and one of border.
    need = [
        max([_cell_len(title), *(_cell_len(row[i]) for row in rows)]) + 3
        for i, (title, _) in enumerate(columns)
    ]
    if flexible is not None:
        need[flexible] = min(need[flexible], 24)
    budget, used, chosen = width - 1, 0, set()
    for i in priority:
        if used + need[i] <= budget or not chosen:
            chosen.add(i)
            used += need[i]
    table = Table(**table_options)
    shown = [i for i in range(len(columns)) if i in chosen]
    for i in shown:
        title, justify = columns[i]
        table.add_column(title, justify=justify, no_wrap=i != flexible)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table, [i for i in range(len(columns)) if i not in chosen]


def _entry_name(rec: dict[str, Any]) -> str:
    """∂f/∂W for the record of ∂f/∂W[1, 2]: the whole array's name."""
    return rec["label"].split("[")[0]


def _arrays_side_by_side(arrays: dict[str, Any]) -> str:
    """Two arrays of the same shape as columns of text, each headed by its name."""
    columns = []
    for name, value in arrays.items():
        text = np.array2string(
            np.asarray(value, dtype=float), precision=6, max_line_width=70, separator=", "
        )
        columns.append([name, *text.splitlines()])
    width = max(len(line) for line in columns[0]) + 4
    rows = max(len(c) for c in columns)
    lines = [
        "  "
        + (columns[0][i] if i < len(columns[0]) else "").ljust(width)
        + (columns[1][i] if i < len(columns[1]) else "")
        for i in range(rows)
    ]
    return "\n".join(line.rstrip() for line in lines)


def _plain_text(value: Any) -> str:
    return value.plain if isinstance(value, Text) else str(value)


def _symmetry_note(asymmetry: float | None, symmetric: bool | None, fast: bool) -> str:
    if asymmetry is None and fast:
        return "symmetry: not measured (--fast checks directions, not entries of the Hessian)"
    if asymmetry is None:
        return "symmetry: not measured (an entry of the Hessian is not finite)"
    verdict = (
        "symmetric within the tolerance of its entries"
        if symmetric
        else "NOT symmetric within the tolerance of its entries"
    )
    return f"symmetry: max |H - Hᵀ| / max |H| = {asymmetry:.3g}: {verdict}"


# Past this many entries, a case's table lists only those that did not pass.
LISTED_ROWS = 40
# Past this many cases the table lists only those that did not pass: a CI log of a thousand
# "passed" rows hides the one that matters (--json and --junit-xml have every case).
LISTED_CASES = 100


def check_summary(results, errors, files: int) -> None:
    """Files mode: a row per case, then the details of every case that did not pass."""
    from .reports import summary

    listed = results
    title = f"gradcli check: {files} file{'s' if files != 1 else ''}"
    if len(results) > LISTED_CASES:
        listed = [r for r in results if r.status != "passed"]
        title += f"; {len(results) - len(listed)} passed cases not listed (--json lists all)"
    rows = []
    for outcome in listed:
        status = outcome.status
        points = str(outcome.result.count) if outcome.result is not None else "—"
        variables = (
            ", ".join(dict.fromkeys(vc.name for vc in outcome.result.variables))
            if outcome.result
            else "—"
        )
        style = {"passed": "green", "failed": "bold red", "error": "bold red"}[status]
        rows.append(  # Text: a name like "max [x, y]" or "[/x]" is words, not Rich markup
            [
                Text(outcome.case.name),
                Text(outcome.case.where),
                variables,
                points,
                Text(status, style=style),
            ]
        )
    titles = ["case", "where", "variables", "points", "result"]
    table, hidden = _fitted(
        [(t, "left") for t in titles],
        rows,
        [0, 4, 1, 3, 2],
        _stdout.width,
        flexible=0,
        title=title,
        title_justify="left",
    )
    if listed:
        _stdout.print(table)
        if hidden:
            left_out = ", ".join(titles[i] for i in hidden)
            _stdout.print(f"({left_out} not shown at this width; --json has every field)")
    elif results:
        _stdout.print(title, style="italic")
    for outcome in results:
        if outcome.status != "passed":
            _stdout.print()
            check_details(outcome)
    for err in errors:
        error(err)
    s = summary(results, errors, files)
    if not results:
        if not errors:
            _stdout.print("nothing collected: no *.grad.toml check files were found", style="bold")
        return
    line = Text(
        f"{_plural(s['cases'], 'case')}: {s['passed']} passed, {s['failed']} failed, "
        f"{_plural(s['errors'], 'error')}"
    )
    kinks = s["verdicts"].get("not differentiable", 0)
    unchecked = s["verdicts"].get("unchecked", 0)
    if kinks:
        line.append(f"; {kinks} checks at points where f is not differentiable")
    if unchecked:
        line.append(f"; {unchecked} checks without a usable reference")
    _stdout.print(line, style="bold", soft_wrap=True)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@contextmanager
def check_progress(total: int):
    """A progress bar of a check run on stderr (cases done, failures so far, elapsed, rate),
    only where stderr is a terminal and not in CI (its logs keep every redraw); yields the
    callback to call after each case with its result."""
    if total < 2 or not _stderr.is_terminal or os.environ.get("CI"):
        yield lambda outcome: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[rate]}"),
    )
    with Progress(*columns, console=_stderr, transient=True) as progress:
        task = progress.add_task("check", total=total, failed=0, rate="")
        failed = 0

        def on_case(outcome) -> None:
            nonlocal failed
            failed += outcome.status != "passed"
            elapsed = progress.tasks[0].elapsed or 0.0
            done = progress.tasks[0].completed + 1
            rate = f"{done / elapsed:.1f} cases/s" if elapsed > 0 else ""
            progress.update(task, advance=1, failed=failed, rate=rate)

        yield on_case


# --- training -------------------------------------------------------------------------------


@contextmanager
def training_progress(steps: int, enabled: bool = True):
    """A progress bar with the current loss, on stderr; yields the per-step callback."""
    if not enabled or not _stderr.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("minimizing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_stderr, transient=True) as progress:
        task = progress.add_task("minimize", total=steps, loss="…")

        def on_step(step: int, loss: float) -> None:
            progress.update(task, completed=step, loss=f"{loss:.6g}")

        yield on_step


def training_json(result, optimizer: str, lr: float) -> dict[str, Any]:
    return {
        "optimizer": optimizer,
        "lr": lr,
        "steps": max(0, result.steps - 1),
        "stopped": result.stopped,
        "loss": to_json(result.history[-1]) if result.history else None,
        "best_loss": to_json(result.best_loss) if result.history else None,
        "best_step": result.best_step,
        "params": {name: to_json(v) for name, v in result.best.items()},
        "last_params": {name: to_json(v) for name, v in result.params.items()},
        "history": [to_json(v) for v in result.history],
    }


def training_report(result) -> None:
    """The best parameters, how the run ended, and the loss curve."""
    what = {
        "completed": f"{max(0, result.steps - 1)} steps",
        "interrupted": f"interrupted after {max(0, result.steps - 1)} steps",
        "diverged": f"stopped after {max(0, result.steps - 1)} steps: the loss became nan or inf",
        "overflowed": f"stopped after {max(0, result.steps - 1)} steps: the gradient or the "
        "update overflowed (no finite step exists; start closer, or lower --lr)",
        "stuck": f"no parameter moved in {max(0, result.steps - 1)} steps, though the gradient "
        "is not 0: the steps are below the parameters' rounding (raise --lr, or rescale)",
    }[result.stopped]
    heading = Text(f"minimize: {what}", style="bold")
    if result.history:
        heading.append(
            f"; loss {result.history[0]:.6g} → {result.history[-1]:.6g}, "
            f"best {result.best_loss:.6g} at step {result.best_step}"
        )
    _stdout.print(heading, soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("parameter", style="cyan", no_wrap=True)
    table.add_column("best value", justify="right")
    for name, value in result.best.items():
        table.add_row(name, _short(value))
    _stdout.print(table)
    if len(result.history) > 1:
        for line in loss_curve(result.history):
            _stdout.print(line, highlight=False, soft_wrap=True)


_BLOCKS = " ▁▂▃▄▅▆▇█"


def loss_curve(history: list[float], width: int = 60, height: int = 10) -> list[str]:
    """The loss against the step, drawn with block characters; on a log scale when the loss
    spans more than two decades and stays positive."""
    losses = np.asarray(history, dtype=float)
    log = losses.min() > 0 and losses.max() / losses.min() > 100
    values = np.log10(losses) if log else losses
    columns = np.array_split(values, min(width, len(values)))
    tops = np.array([c.min() for c in columns])
    low, high = values.min(), values.max()
    span = high - low or 1.0
    levels = np.rint((tops - low) / span * (height * 8 - 1)).astype(int) + 1
    rows = []
    for row in range(height - 1, -1, -1):
        cells = "".join(_BLOCKS[min(8, max(0, lv - row * 8))] for lv in levels)
        label = ""
        if row == height - 1:
            label = f"{(10**high if log else high):.3g}"
        elif row == 0:
            label = f"{(10**low if log else low):.3g}"
        rows.append(f"{label:>10} │{cells}")
    rows.append(f"{'':>10} └{'─' * len(levels)}")
    steps = len(history) - 1
    rows.append(f"{'':>10}  0{'step':^{max(0, len(levels) - 2 - len(str(steps)))}}{steps}")
    if log:
        rows.append(f"{'':>10}  (loss on a log scale)")
    return rows


def loss_plot(history: list[float], path: Path) -> None:
    """The loss curve as a PNG, written atomically (matplotlib, an optional dependency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .reports import write_atomically

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(len(history)), history)
    losses = np.asarray(history)
    if len(losses) and losses.min() > 0 and losses.max() / losses.min() > 100:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("gradcli minimize")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomically(path, buffer.getvalue())


# --- forward mode and Hessians ----------------------------------------------------------------


def _heading(program, variables) -> Text:
    shown = program_label(program.source)
    heading = Text(shown, style="bold")
    if variables:
        heading.append("  at " + ", ".join(f"{n} = {_brief(v)}" for n, v in variables.items()))
    return heading


def directional_json(result) -> dict[str, Any]:
    return {
        **_at_point_json(result),
        "direction": {n: to_json(v) for n, v in result.direction.items()},
        "derivative": to_json(result.derivative),
        "reverse": to_json(result.reverse),
        "faults": [_fault_json(f) for f in result.faults],
    }


def directional_table(result) -> None:
    _stdout.print(_heading(result.program, result.variables), soft_wrap=True)
    table = Table(show_header=False)
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(justify="right")
    along = ", ".join(f"{n} = {_brief(v)}" for n, v in result.direction.items())
    table.add_row("f", _value(result.value))
    table.add_row("forward mode: ∂f along v", _value(result.derivative))
    table.add_row("reverse mode: vᵀ∇(Σf)", _value(result.reverse))
    _stdout.print(table)
    _stdout.print(Text(f"v: {along}", style="dim"), soft_wrap=True)


def hessian_json(result) -> dict[str, Any]:
    return {
        **_at_point_json(result),
        "labels": result.labels,
        "gradient": to_json(result.gradient),
        "hessian": to_json(result.matrix),
        "asymmetry": to_json(result.asymmetry),
        "mode": result.mode,
        "finite": result.finite,
        "faults": [_fault_json(f) for f in result.faults],
    }


def hessian_table(result) -> None:
    """The matrix (or, when it is large, its shape and norm), then its symmetry and definiteness."""
    _stdout.print(_heading(result.program, result.variables), soft_wrap=True)
    n = len(result.labels)
    if n <= 12:
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("", style="cyan", no_wrap=True)
        for label in result.labels:
            table.add_column(f"∂/∂{label}", justify="right", no_wrap=True)
        for label, row in zip(result.labels, result.matrix, strict=True):
            table.add_row(f"∂/∂{label}", *(f"{v:.6g}" for v in row))
        _stdout.print(table)
    else:
        _stdout.print(f"a {n}×{n} matrix, norm {_norm(result.matrix):.6g} (--json has it all)")
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
        _stdout.print(Text(note, style="dim"), soft_wrap=True)


# --- gradcli diff ------------------------------------------------------------------------------


def diff_text(result, output_format: str) -> str:
    """The derivatives in the language (each parses back), LaTeX or a Python module."""
    from . import formats

    program = result.program
    hints, reserved = result.hints, list(program.variables)
    if output_format == "python":
        return _diff_python(result, hints, reserved)
    blocks = []
    for item in result.items:
        if output_format == "latex":
            label = _latex_label(item.wrt)
            blocks.append(formats.latex(item.node, label, reserved, hints))
        elif len(result.items) == 1:
            blocks.append(item.text)
        else:
            blocks.append(f"# {item.label}\n{item.text}")
    return "\n\n".join(blocks) + "\n"


def _latex_label(wrt: tuple[str, ...]) -> str:
    from .formats import latex_name

    def one(label: str) -> str:
        base, _, index = label.partition("[")
        return latex_name(base) + (f"_{{[{index}}}" if index else "")

    if len(wrt) == 1:
        return rf"\frac{{\partial f}}{{\partial {one(wrt[0])}}}"
    if wrt[0] == wrt[1]:
        return rf"\frac{{\partial^2 f}}{{\partial {one(wrt[0])}^2}}"
    return rf"\frac{{\partial^2 f}}{{\partial {one(wrt[0])} \partial {one(wrt[1])}}}"


def _diff_python(result, hints, reserved) -> str:
    import re

    from . import formats

    program = result.program
    params = list(program.variables)
    source = program.source.text.strip().replace('"""', "'''")
    parts = [
        f'"""Derivatives of {source!r}, written by gradcli diff."""',
        "from __future__ import annotations\n\nimport numpy as np",
        *(h.strip() for h in formats.helpers([item.node for item in result.items])),
    ]
    for item in result.items:
        name = "d" + ("2" if len(item.wrt) == 2 else "") + "_"
        name += "_".join(re.sub(r"\W+", "", w) for w in item.wrt)
        parts.append(formats.python_function(item.node, name, params, item.label, reserved, hints))
    return "\n\n\n".join(parts) + "\n"


def diff_json(result) -> dict[str, Any]:
    from . import formats

    program = result.program
    hints, reserved = result.hints, list(program.variables)
    return {
        "expression": program.source.text,
        "source": program.source.name,
        "order": result.order,
        "variables": list(program.variables),
        "shapes": {n: list(s) for n, s in result.shapes.items()},
        "point": None if result.point is None else {n: to_json(v) for n, v in result.point.items()},
        "derivatives": [
            {
                "wrt": list(item.wrt),
                "label": item.label,
                "shape": list(item.shape),
                "text": item.text,
                "latex": formats.latex(item.node, _latex_label(item.wrt), reserved, hints),
                "value": None if item.value is None else to_json(item.value),
            }
            for item in result.items
        ],
    }


# --- gradcli explain ---------------------------------------------------------------------------


def _explain_row(step) -> tuple[str, ...]:
    """One node of the backward pass: number, node, value, adjoint, local derivatives, sends."""
    if step.received and step.received[0][0] is None:
        adjoint = f"{_short(step.adjoint)} (the seed: ∂f/∂f)"
    elif step.shared:
        parts = " + ".join(f"{_short(v)} from #{k}" for k, v in reversed(step.received))
        adjoint = f"{parts} = {_short(step.adjoint)}"
    else:
        ((k, _),) = step.received
        adjoint = f"{_short(step.adjoint)} from #{k}"
    local = "\n".join(
        f"∂/∂#{s.to} = {_short(s.local)}" if s.local is not None else f"#{s.to}: by a vjp rule"
        for s in step.sent
    )
    sends = "\n".join(
        f"#{s.to} ← {_short(step.adjoint)} × {_short(s.local)} = {_short(s.contribution)}"
        if s.local is not None
        else f"#{s.to} ← {_short(s.contribution)}"
        for s in step.sent
    )
    node = step.op if step.op == step.text else f"{step.op}   {step.text}"
    return str(step.number), node, _short(step.value), adjoint, local, sends


def explain_table(result) -> None:
    """The backward pass as the tutorials teach it: from the output back, each node's adjoint
    (the sum of what its users sent, for a shared node) and what it sends each input."""
    _stdout.print(_heading(result.program, result.variables), soft_wrap=True)
    titles = ("#", "node", "value", "adjoint ∂f/∂node", "local derivatives", "sends")
    rows = [_explain_row(step) for step in result.backward]
    table = Table(box=box.SIMPLE_HEAD)
    for title in titles:
        table.add_column(title, justify="right" if title == "#" else "left", overflow="fold")
    for row in rows:
        table.add_row(*row)
    natural = Measurement.get(_stdout, _stdout.options.update_width(10_000), table).maximum
    if natural <= _stdout.width:
        _stdout.print(table)
    else:  # too narrow for six columns: each node as a block of labelled lines
        for number, node, value, adjoint, local, sends in rows:
            _stdout.print(Text(f"#{number}  {node} = {value}", style="bold"), soft_wrap=False)
            block = Table.grid(padding=(0, 1))
            block.add_column(width=2)
            block.add_column(no_wrap=True, style="dim")
            block.add_column(overflow="fold")
            for label, cell in (("adjoint", adjoint), ("local", local), ("sends", sends)):
                if cell:
                    block.add_row("", label, cell)
            _stdout.print(block)
    # A variable no contribution reached (through heaviside, say) has the gradient 0, as eval
    # reports it.
    gradient = ", ".join(
        f"∂f/∂{s.op} = {_short(s.adjoint) if s.adjoint is not None else '0.0'} (#{s.number})"
        for s in result.steps
        if s.node.op == "var" and result.variables is not None
    )
    _stdout.print(
        Text(
            "Read from the top: the output's adjoint is 1; each node multiplies its adjoint by "
            "its local derivatives and sends the products to its inputs; a node used more than "
            "once adds up what it receives.",
            style="dim",
        ),
        soft_wrap=True,
    )
    if gradient:
        _stdout.print(Text("gradient: " + gradient, style="bold"), soft_wrap=True)


def explain_json(result) -> dict[str, Any]:
    return {
        "expression": result.program.source.text,
        "variables": {n: to_json(v) for n, v in (result.variables or {}).items()},
        "steps": [
            {
                "number": s.number,
                "op": s.op,
                "text": s.text,
                "inputs": s.inputs,
                "value": to_json(s.value),
                "adjoint": None if s.adjoint is None else to_json(s.adjoint),
                "received": [{"from": k, "value": to_json(v)} for k, v in s.received],
                "sent": [
                    {
                        "to": t.to,
                        "local": None if t.local is None else to_json(t.local),
                        "contribution": to_json(t.contribution),
                    }
                    for t in s.sent
                ],
            }
            for s in result.steps
        ],
        "backward_order": [s.number for s in result.backward],
        "gradient": {
            s.op: to_json(s.adjoint)
            for s in result.steps
            if s.node.op == "var" and s.adjoint is not None
        },
        "faults": [f.message for f in result.faults],
    }


# --- gradcli check --sweep ---------------------------------------------------------------------

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
        _stdout.print(head, soft_wrap=True)
        for line in _plot(curve):
            _stdout.print(Text(line), soft_wrap=True, overflow="ignore")
        _stdout.print()
    if len(result.curves) > _PLOTTED:
        _stdout.print(
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
