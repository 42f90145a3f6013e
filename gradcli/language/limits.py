"""Limits on what one run takes in: program text, graph nodes, and elements of one array.

A program, a check file or a value file may be generated, or hostile; past these sizes gradcli
stops with a message that names the limit and how to raise it, before it spends the memory,
rather than being killed by the machine. Each limit is an environment variable, so that it
holds for every command and for the Python API alike:

    GRADCLI_MAX_SOURCE=20000000 gradcli check generated/      # 0 removes a limit
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from .source import GradcliError, Span


@dataclass(frozen=True)
class Limit:
    variable: str
    default: int
    unit: str

    def value(self) -> int | None:
        """The limit in force: the environment's, else the default; None for no limit."""
        raw = os.environ.get(self.variable, "").strip().replace("_", "")
        if not raw:
            return self.default
        try:
            number = float(raw)
            if number != int(number) or number < 0:
                raise ValueError
        except (ValueError, OverflowError):
            raise GradcliError(
                f"{self.variable}={os.environ[self.variable]!r} is not a whole number",
                hint=f"for example {self.variable}={self.default} (0 removes the limit)",
            ) from None
        return int(number) or None

    def error(self, what: str, amount: int | None, span: Span | None = None) -> GradcliError:
        limit = f"the limit of {self.value():,} {self.unit}"
        return GradcliError(
            f"{what} has {amount:,} {self.unit}, more than {limit}"
            if amount is not None
            else f"{what} has more than {limit}",
            span,
            hint=f"set {self.variable} to a larger number to raise the limit (0 removes it)",
        )


# Defaults, chosen so that every input under them finishes in seconds (benchmarks/RESULTS.md,
# "Limits"): the costliest texts per character (x*x*…*x, ((x^2)^2)…, x+x+…+x) take 30-70 µs a
# term, so 300,000 characters take at most about 10 s and 0.3 GB; 4 MB took minutes and 2 GB.
# Generated programs raise them. 50 million float64 elements are 400 MB.
SOURCE = Limit("GRADCLI_MAX_SOURCE", 300_000, "characters")
NODES = Limit("GRADCLI_MAX_NODES", 1_000_000, "nodes")
ELEMENTS = Limit("GRADCLI_MAX_ELEMENTS", 50_000_000, "elements")


def check_source(text: str, what: str = "the program") -> None:
    limit = SOURCE.value()
    if limit is not None and len(text) > limit:
        raise SOURCE.error(what, len(text))


def read_bounded(handle: IO[str], what: str) -> str:
    """All of a text stream, but never more than the source limit in memory."""
    limit = SOURCE.value()
    if limit is None:
        return handle.read()
    text = handle.read(limit + 1)
    if len(text) > limit:
        raise SOURCE.error(what, None)
    return text


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """A UTF-8 file, read with at most the source limit in memory (OSError and
    UnicodeDecodeError are the caller's to report, in its own words)."""
    with open(path, encoding="utf-8") as handle:
        return read_bounded(handle, what)


def lines_bounded(handle: IO[str], what: str) -> Iterator[str | GradcliError]:
    """The lines of a stream, each read with at most the source limit in memory. A longer line
    is skipped to its end, piece by piece, and stands as the error that says so: the lines
    after it are still read (one 10 MB line aborted a whole batch)."""
    limit = SOURCE.value()
    while True:
        line = handle.readline(limit + 1) if limit is not None else handle.readline()
        if not line:
            return
        if limit is not None and len(line) > limit:
            while line and not line.endswith("\n"):
                line = handle.readline(limit + 1)
            yield SOURCE.error(f"a line of {what}", None)
            continue
        yield line


def check_elements(shape: tuple[int, ...], what: str, span: Span | None = None) -> None:
    limit = ELEMENTS.value()
    if limit is not None:
        size = math.prod(shape)
        if size > limit:
            dims = "×".join(map(str, shape))
            raise ELEMENTS.error(f"{what} (shape {dims})", size, span)
