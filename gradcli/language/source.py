"""Source text, spans inside it, and errors that point at a span.

Every error gradcli reports about user input is a `GradcliError`; when it carries a span, it is
shown with the offending source line and a caret underneath, in the user's own words.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import NamedTuple


class Span(NamedTuple):
    """Half-open character range [start, end) in a `Source`."""

    start: int
    end: int

    def cover(self, other: Span) -> Span:
        return Span(min(self.start, other.start), max(self.end, other.end))


@dataclass(frozen=True)
class Source:
    """A program's text and where it came from (`<expr>`, `<stdin>` or a file name)."""

    text: str
    name: str = "<expr>"
    origin: tuple[int, int] = (1, 1)  # where the text starts in its file: line, column
    frame: str | None = None  # the whole file line the text starts on, to show around it
    columns: tuple[int, ...] | None = None  # file column of each character of a one-line text
    _line_starts: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        i = find("\n")
        while i != -1:
            starts.append(i + 1)
            i = find("\n", i + 1)
        object.__setattr__(self, "_line_starts", starts)

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def line_text(self, line: int) -> str:
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end != -1 else len(self.text)].rstrip("\r")

    def snippet(self, span: Span, limit: int = 60) -> str:
        """The spanned text on one line, shortened to `limit` characters."""
        text = " ".join(self.text[span.start : span.end].split())
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def location(self, span: Span) -> str:
        line, col = self.file_line_col(span.start)
        return f"{self.name}:{line}:{col}"

    def file_line_col(self, offset: int) -> tuple[int, int]:
        """Line and column in the file the text came from (see `origin` and `columns`)."""
        line, col = self.line_col(offset)
        first_line, first_col = self.origin
        if line == 1 and self.columns:
            return first_line, self.columns[min(col - 1, len(self.columns) - 1)]
        return line + first_line - 1, (col + first_col - 1 if line == 1 else col)


class GradcliError(Exception):
    """A problem with the user's input: a message, optionally a place, optionally a hint."""

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        source: Source | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source
        self.hint = hint
        self.cause: str | None = None  # for a numerical fault: "overflow", "underflow", …

    def with_source(self, source: Source) -> GradcliError:
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        return format_error(self)


def error_location(err: GradcliError) -> tuple[str, int, int] | None:
    """The file, line and column an error points at, when it points at one."""
    if getattr(err, "file", None) is not None:
        return str(err.file), err.line, 1
    if err.span is not None and err.source is not None and not err.source.name.startswith("<"):
        line, col = err.source.file_line_col(err.span.start)
        return err.source.name, line, col
    return None


def format_error(err: GradcliError, label: str = "error") -> str:
    """Render an error as plain text: message, location, the source line and a caret."""
    lines = [f"{label}: {err.message}"]
    if err.span is not None and err.source is not None:
        lines += point_at(err.source, err.span)
    if err.hint:
        lines.append(f"  = {err.hint}")
    return "\n".join(lines)


def point_at(source: Source, span: Span, note: str = "") -> list[str]:
    """Lines showing where `span` is in `source`, with an optional note after the caret."""
    from rich.cells import cell_len  # display width, so carets line up under wide characters

    line, col = source.line_col(span.start)
    text = source.line_text(line)
    end_line, _ = source.line_col(max(span.start, span.end - 1))
    end_col = len(text) + 1 if end_line != line else source.line_col(span.end)[1]
    width = max(1, cell_len(text[col - 1 : end_col - 1]))
    if line == 1 and source.frame is not None:  # show the file's line, not only the expression
        start = source.file_line_col(span.start)[1]
        end = source.file_line_col(max(span.start, span.end - 1))[1] + 1
        text, col = source.frame, start
        width = max(1, cell_len(text[start - 1 : end - 1]))
    shown, pad = _window(text, col - 1)
    shown_line = source.file_line_col(span.start)[0]
    gutter = " " * len(str(shown_line))
    caret = " " * cell_len(shown[:pad]) + "^" * min(width, 80)
    return [
        f"{gutter}--> {source.location(span)}",
        f"{gutter} |",
        f"{shown_line} | {shown}",
        f"{gutter} | {caret}{' ' + note if note else ''}",
    ]


def _window(text: str, index: int, width: int = 100) -> tuple[str, int]:
    """Cut a long line to about `width` characters around `index`; return it and the new index."""
    if len(text) <= width:
        return text, index
    start = max(0, min(index - width // 2, len(text) - width))
    shown = text[start : start + width]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(text) else ""
    return prefix + shown + suffix, index - start + len(prefix)


# C0 controls but tab and newline, DEL, and C1 controls: what a terminal obeys rather than shows
# (an escape sequence sets the title or colours), and what XML 1.0 cannot hold.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c not in (9, 10)}


def printable(text: str) -> str:
    """`text` with its control characters written as escapes (ESC as \\x1b): user text (a case
    name, a file name, a line of a program) is shown, never obeyed by the terminal."""
    return text.translate(_CONTROLS)


def xml_safe(text: str) -> str:
    """`text` without what XML 1.0 cannot carry: controls, lone surrogates, U+FFFE and U+FFFF."""
    out = printable(text)
    if out.isascii():
        return out
    return "".join(
        f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF or ord(c) in (0xFFFE, 0xFFFF) else c
        for c in out
    )


def underflows(literal: str) -> bool:
    """Whether a decimal literal that float() made 0 stands for a number that is not 0 (1e-400),
    in a program or a value alike."""
    return any(c in "123456789" for c in re.split("[eE]", literal)[0])
