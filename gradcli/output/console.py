"""The terminal, shared by every table: the two Rich consoles, messages on stderr, and how a
number, an array and a program at its point are written in a table or a heading.

The consoles are read as `console.stdout` and `console.stderr` when a table is printed, not
imported by name: `captured` swaps them for a buffer, which is how pytest's report gets the
table that the terminal would show.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from ..evaluation.values import format_number
from ..language.source import GradcliError, format_error, printable
from .documents import program_label

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


stdout = _Console(highlight=False, **_plain, **_wide)
stderr = _Console(stderr=True, highlight=False, soft_wrap=True, **_plain)


@contextmanager
def captured(width: int) -> Iterator[io.StringIO]:
    """What is printed through `stdout` and `stderr` meanwhile, as plain text `width` cells
    wide, in the buffer yielded: for a report that is not the terminal (pytest's)."""
    global stdout, stderr
    saved = stdout, stderr
    buffer = io.StringIO()
    stdout = stderr = _Console(
        file=buffer, width=width, color_system=None, highlight=False, soft_wrap=True
    )
    try:
        yield buffer
    finally:
        stdout, stderr = saved


def error(err: Exception, label: str = "error") -> None:
    text = format_error(err, label) if isinstance(err, GradcliError) else f"{label}: {err}"
    head, _, rest = text.partition("\n")
    style = "bold red" if label == "error" else "bold yellow"
    kind, _, message = head.partition(": ")
    out = Text.assemble((kind + ":", style), " ", (message, "bold"))
    if rest:
        out.append("\n" + rest)
    stderr.print(out)


def stdout_line() -> None:
    stdout.print()


def warning(err: GradcliError) -> None:
    error(err, "warning")


def short(value: Any) -> str:
    """A number, or an array on one line with a few entries from each end of each axis."""
    array = np.asarray(value)
    if array.ndim == 0:
        return format_number(array)
    body = np.array2string(
        array, precision=6, threshold=8, edgeitems=2, separator=", ", max_line_width=10**6
    )
    return " ".join(body.split())


def brief(value: Any) -> str:
    """A value in a heading: a small array in full, a large one by its shape."""
    array = np.asarray(value)
    if array.size > 8:
        return f"({'×'.join(map(str, array.shape))} array)"
    return short(array)


def heading(program, variables) -> Text:
    """The program, and the point it is evaluated at: the first line of a command's table."""
    shown = program_label(program.source)
    text = Text(shown, style="bold")
    if variables:
        text.append("  at " + ", ".join(f"{n} = {brief(v)}" for n, v in variables.items()))
    return text
