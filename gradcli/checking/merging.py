"""The checks of a large sample, joined from checks of its chunks.

A check holds about fifteen arrays per value of the program at every point at once (its
derivative graphs, stencils and confirmations): 300,000 points of `x*y + x/y` took 255 MB.
`checking.check` therefore checks a sample a chunk of points at a time, and this module joins
the chunks' results into the one result of the whole sample: per-point arrays end to end, point
indices (in messages, directions and fault rows) moved by the chunk's offset.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..language.source import GradcliError
from .kinks import Directional

if TYPE_CHECKING:
    from .verdicts import CheckResult, VariableCheck


def split(points: Mapping[str, np.ndarray], count: int, rows: int) -> list[dict[str, np.ndarray]]:
    """The points in chunks of at most `rows`; a variable of one row is shared by every chunk."""
    return [
        {
            name: a if len(a) == 1 and count > 1 else a[start : start + rows]
            for name, a in points.items()
        }
        for start in range(0, count, rows)
    ]


def joined(results: Sequence[CheckResult], points: dict[str, np.ndarray]) -> CheckResult:
    """One result for the whole sample from the results of its chunks, in order."""
    offsets = [0, *np.cumsum([r.count for r in results[:-1]]).tolist()]
    first = results[0]
    variables = [
        _variable([r.variables[i] for r in results], offsets) for i in range(len(first.variables))
    ]
    out = replace(
        first,
        points=points,
        count=sum(r.count for r in results),
        value=np.concatenate([np.asarray(r.value) for r in results]),
        variables=variables,
        faults=_faults(results),
        directional=_directional([r.directional for r in results], offsets),
    )
    parts = [r.directional_for for r in results]
    if all(p is not None for p in parts):
        out.directional_for = _directional_for(parts, offsets)
    return out


def _variable(parts: Sequence[VariableCheck], offsets: Sequence[int]) -> VariableCheck:
    first = parts[0]
    arrays: dict[str, Any] = {}
    for name in (
        "autograd",
        "reference",
        "error",
        "step",
        "tolerance",
        "verdict",
        "how",
        "left",
        "right",
        "forward",
    ):  # a literal tuple: no name from elsewhere reaches getattr
        pieces = [getattr(p, name) for p in parts]
        if any(piece is None for piece in pieces):  # forward mode was not taken
            continue
        arrays[name] = out = np.concatenate(pieces)
        # Each part then holds a view of its piece: the pieces are freed as they are joined,
        # and a chunk's result (kept alive by its `directional_for`) costs no memory twice.
        start = 0
        for part, piece in zip(parts, pieces, strict=True):
            setattr(part, name, out[start : start + len(piece)])
            start += len(piece)
    messages = {
        (p + offset, e): text
        for part, offset in zip(parts, offsets, strict=True)
        for (p, e), text in part.messages.items()
    }
    blame, seen = [], set()
    for part in parts:
        for b in part.blame:
            if (b.node, b.argument) not in seen:
                seen.add((b.node, b.argument))
                blame.append(b)
    return replace(first, **arrays, messages=messages, blame=blame)


def _faults(results: Sequence[CheckResult]) -> list[GradcliError]:
    """Each fault once, with the rows it cost digits at (an underflow) over the whole sample."""
    by_message: dict[str, list[tuple[int, GradcliError]]] = {}
    for i, r in enumerate(results):
        for f in r.faults:
            by_message.setdefault(f.message, []).append((i, f))
    out = []
    for found in by_message.values():
        fault = copy.copy(found[0][1])
        rows = [getattr(f, "rows", None) for _, f in found]
        if all(isinstance(r, np.ndarray) for r in rows):
            mask = [np.zeros(r.count, bool) for r in results]
            for (i, _), r in zip(found, rows, strict=True):
                mask[i] = np.broadcast_to(r, (results[i].count,))
            fault.rows = np.concatenate(mask)
        elif hasattr(fault, "rows"):
            fault.rows = None  # at any row
        out.append(fault)
    return out


def _directional(parts: Sequence[Directional | None], offsets: Sequence[int]) -> Directional | None:
    present = [(d, o) for d, o in zip(parts, offsets, strict=True) if d is not None]
    if not present:
        return None
    first = present[0][0]

    def cat(field: Callable[[Directional], np.ndarray]) -> np.ndarray:
        return np.concatenate([field(d) for d, _ in present])

    second = None
    if any(d.second is not None for d, _ in present):
        # A chunk without a second step judges by its only one: the same as judging twice by it.
        sides = [d.second or (d.left, d.right, d.tolerance) for d, _ in present]
        second = tuple(np.concatenate([s[i] for s in sides]) for i in range(3))
    return Directional(
        points=np.concatenate([d.points + o for d, o in present]),
        moves=cat(lambda d: d.moves),
        left=cat(lambda d: d.left),
        right=cat(lambda d: d.right),
        tolerance=cat(lambda d: d.tolerance),
        layout=first.layout,
        second=second,
    )


def _directional_for(
    parts: Sequence[Callable[[Sequence[str]], Directional | None]], offsets: Sequence[int]
) -> Callable[[Sequence[str]], Directional | None]:
    return lambda among: _directional([p(among) for p in parts], offsets)
