"""`gradcli check` for people: one case in full, the summary of a run of check files, and the
progress bar of a long run. Its output for machines (JSON, JUnit XML, GitHub annotations) is in
reports.py; the error-against-step plots of --sweep in sweep.py.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any

import numpy as np
from rich import box
from rich.table import Table
from rich.text import Text

from . import console
from .console import short

_VERDICT_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "non-finite": "bold red",
    "not differentiable": "yellow",
    "not differentiable, not a subgradient": "bold red",
    "unchecked": "dim",
}

# Past this many entries, a case's table lists only those that did not pass.
LISTED_ROWS = 40
# Past this many cases the table lists only those that did not pass: a CI log of a thousand
# "passed" rows hides the one that matters (--json and --junit-xml have every case).
LISTED_CASES = 100


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return short(np.asarray(value, dtype=float))
    return f"{float(value):.6g}"


# --- one case ---------------------------------------------------------------------------------

_TITLES = ["", "autograd", "reference", "abs. error", "rel. error", "ref. error", "method"]
_TITLES += ["step", "verdict"]
_COLUMNS = [(t, "left" if t in ("", "method", "verdict") else "right") for t in _TITLES]
# The entry, its value, the reference and the verdict first: what a reader acts on.
_PRIORITY = [0, 1, 2, 8, 4, 3, 5, 6, 7]


def check_details_text(outcome, width: int = 160) -> str:
    """`check_details` as plain text, for a report that is not the terminal (pytest's)."""
    with console.captured(width) as buffer:
        check_details(outcome)
    return buffer.getvalue()


def check_details(outcome) -> None:
    """One case in full: a row per variable (and hand-derived gradient), then the notes."""
    console.stdout.print(_case_heading(outcome), soft_wrap=True)
    if outcome.error is not None:
        console.error(outcome.error)
        return
    rows, notes = _rows_and_notes(outcome)
    notes[:0] = _entries_table(rows)
    result = outcome.result
    if result is not None and result.options.order == 2:
        notes.append(_symmetry_note(result.symmetry, result.symmetric, result.options.fast))
    for note in notes:
        console.stdout.print(Text(note), soft_wrap=True)


def _case_heading(outcome) -> Text:
    """The case's name and place, and its point (or how many points it was checked at)."""
    case = outcome.case
    heading = Text(case.name if case.file is None else f"{case.name}  ({case.where})", style="bold")
    result = outcome.result
    if result is not None and result.count == 1:
        point = ", ".join(f"{n} = {short(v)}" for n, v in result.point(0).items())
        if point:
            heading.append(f"  at {point}")
    elif result is not None:
        heading.append(f"  at {result.count} points (the worst is shown)")
    return heading


def _rows_and_notes(outcome) -> tuple[list[list[Any]], list[str]]:
    """A row of the table per record of the case, and the notes printed below it."""
    from ..checking.records import records

    result = outcome.result
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
        rows.append(_entry_row(rec, verdict))
        notes += _entry_notes(rec, result)
    return rows, notes


def _entry_row(rec: dict[str, Any], verdict: Text) -> list[Any]:
    """The row of a derivative: at a jump or a kink, the reference is the jump or the range of
    the one-sided derivatives, and there are no errors to show."""
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
    return [label, _num(value), reference, *errors, rec["how"], _num(rec["step"]), verdict]


def _entry_notes(rec: dict[str, Any], result) -> list[str]:
    """What the row of a derivative cannot hold: the worst point, the message, the blame, and
    the elements of an array that failed."""
    label = rec["label"]
    notes = []
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
    return notes


def _entries_table(rows: list[list[Any]]) -> list[str]:
    """Print the table of the entries, fitted to the width; returns, entry by entry, the
    columns that did not fit, for the notes."""
    passing = [row for row in rows if _plain_text(row[-1]) == "pass"]
    summarized = len(rows) > LISTED_ROWS and bool(passing)
    if summarized:
        # A long run's thousand "pass" rows would hide what matters: only the others are
        # listed (all of them, and every entry is in --json).
        rows = [row for row in rows if _plain_text(row[-1]) != "pass"]
        console.stdout.print(
            f"{len(passing):,} of {len(passing) + len(rows):,} entries passed and are not "
            "listed (--json lists every entry)",
            soft_wrap=True,
        )
    if not rows and summarized:  # all passed and summarized: no table of nothing
        return []
    table, hidden = _fitted(_COLUMNS, rows, _PRIORITY, console.stdout.width, box=box.SIMPLE_HEAD)
    console.stdout.print(table)
    below = []
    for row in rows if hidden else []:  # what did not fit, below, entry by entry
        extra = [f"{_TITLES[i]} {_plain_text(row[i])}" for i in hidden if _plain_text(row[i])]
        if extra:
            below.append(f"{_plain_text(row[0])}: " + ", ".join(extra))
    return below


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
    if symmetric is None:
        verdict = (
            "not judged: where entries differ from their transposes, some entries of that point "
            "have no reference or are at a kink, where H need not be symmetric"
        )
    else:
        verdict = (
            "symmetric within the tolerance of its entries"
            if symmetric
            else "NOT symmetric within the tolerance of its entries"
        )
    return f"symmetry: max |H - Hᵀ| / max |H| = {asymmetry:.3g}: {verdict}"


# --- a run of check files ---------------------------------------------------------------------


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
        console.stdout.width,
        flexible=0,
        title=title,
        title_justify="left",
    )
    if listed:
        console.stdout.print(table)
        if hidden:
            left_out = ", ".join(titles[i] for i in hidden)
            console.stdout.print(f"({left_out} not shown at this width; --json has every field)")
    elif results:
        console.stdout.print(title, style="italic")
    for outcome in results:
        if outcome.status != "passed":
            console.stdout.print()
            check_details(outcome)
    for err in errors:
        console.error(err)
    s = summary(results, errors, files)
    if not results:
        if not errors:
            console.stdout.print(
                "nothing collected: no *.grad.toml check files were found", style="bold"
            )
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
    console.stdout.print(line, style="bold", soft_wrap=True)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@contextmanager
def check_progress(total: int):
    """A progress bar of a check run on stderr (cases done, failures so far, elapsed, rate),
    only where stderr is a terminal and not in CI (its logs keep every redraw); yields the
    callback to call after each case with its result."""
    if total < 2 or not console.stderr.is_terminal or os.environ.get("CI"):
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
    with Progress(*columns, console=console.stderr, transient=True) as progress:
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
