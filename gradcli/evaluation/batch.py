"""JSON Lines in, JSON Lines out: one evaluation per line, in batched numpy passes of chunks.

Lines are read lazily and evaluated a chunk at a time (lines whose arrays have the same shapes go
through one batched pass), and each chunk's results are written, in input order, before the next
chunk is read: memory depends on the chunk size, not on the length of the input. A line that is
not usable gets an error record with its line number; the others still run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from ..graph.nodes import Node
from ..language.lower import Lowered
from ..language.program import wrt_names
from ..language.source import GradcliError
from ..transforms.reverse import grad
from .faults import describe_fault
from .interpreter import evaluate

CHUNK = 4096


@dataclass
class BatchSummary:
    lines: int = 0
    evaluated: int = 0
    errors: int = 0
    nonfinite: int = 0
    first_errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else (1 if self.nonfinite else 0)


def run_batch(
    program: Lowered,
    lines: Iterable[str | GradcliError],
    out: TextIO,
    fixed: Mapping[str, np.ndarray] | None = None,
    wrt: list[str] | None = None,
    chunk: int = CHUNK,
) -> BatchSummary:
    """Evaluate `program` and its gradient for each JSON object in `lines`, writing one JSON
    record per line to `out`. Variables in `fixed` hold for every line unless a line sets them."""
    fixed = dict(fixed or {})
    names = wrt_names(program, wrt)
    summary = BatchSummary()
    graphs: dict[tuple, list[Node]] = {}
    for block in _chunks(enumerate(lines, start=1), chunk):
        records: dict[int, dict[str, Any]] = {}
        groups: dict[tuple, list[tuple[int, dict[str, np.ndarray]]]] = {}
        for number, line in block:
            summary.lines += 1
            if isinstance(line, str) and not line.strip():
                summary.lines -= 1
                continue
            try:
                if isinstance(line, GradcliError):  # a line past the limits, already skipped
                    raise line
                values = _read_line(line, program, fixed)
            except GradcliError as err:
                records[number] = {"line": number, "error": err.message}
                summary.errors += 1
                if len(summary.first_errors) < 5:
                    summary.first_errors.append(f"line {number}: {err.message}")
                continue
            signature = tuple((n, np.shape(values[n])) for n in program.variables)
            groups.setdefault(signature, []).append((number, values))
        for signature, items in groups.items():
            if signature not in graphs:
                graphs[signature] = grad(
                    program.output, [program.variables[n] for n in names], dict(signature)
                )
            for number, record in _evaluate_group(program, names, graphs[signature], items):
                records[number] = record
                summary.evaluated += 1
                summary.nonfinite += not record["finite"]
        out.write("".join(_encode(records[n]) + "\n" for n in sorted(records)))
        out.flush()
    return summary


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    block = []
    for item in items:
        block.append(item)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def _reject(constant: str) -> float:
    raise ValueError(f"{constant} is not allowed: values must be finite")


_decode = json.JSONDecoder(parse_constant=_reject).decode
_encode = json.JSONEncoder(allow_nan=False, ensure_ascii=False).encode


def _read_line(line: str, program: Lowered, fixed: Mapping[str, np.ndarray]) -> dict:
    """The variables a line gives (plus the fixed ones), checked: a clear error otherwise."""
    try:
        data = _decode(line)
    except ValueError as exc:
        raise GradcliError(f"not a JSON object: {exc}") from None
    except RecursionError:  # Python's JSON reader recurses on nesting
        raise GradcliError("the line is nested too deeply") from None
    if not isinstance(data, dict):
        raise GradcliError('each line must be a JSON object of variables, like {"x": 1}')
    values = dict(fixed)
    for name, raw in data.items():
        if name not in program.variables:
            known = ", ".join(program.variables) or "(none)"
            raise GradcliError(f"{name} is not a variable of the expression (they are {known})")
        values[name] = _array(raw, name)
    missing = [n for n in program.variables if n not in values]
    if missing:
        raise GradcliError(f"missing value for {', '.join(missing)}")
    return values


def _array(raw: Any, name: str) -> float | np.ndarray:
    """A number stays a Python float (the common case, kept cheap); a list becomes an array."""
    if type(raw) is float or type(raw) is int:
        if not math.isfinite(raw):
            raise GradcliError(f"the value of {name} must be finite numbers")
        return float(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float | list):
        raise GradcliError(f"the value of {name} must be a number or an array of numbers")
    try:
        array = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradcliError(f"the value of {name} must be a number or an array of numbers") from None
    if array.dtype == object or not np.all(np.isfinite(array)):
        raise GradcliError(f"the value of {name} must be finite numbers")
    return array


def _evaluate_group(
    program: Lowered, names: list[str], grads: list[Node], items: list
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Lines with arrays of the same shapes: one batched pass for all of them."""
    env = {n: np.array([values[n] for _, values in items]) for n in program.variables}
    outputs, faults, _ = evaluate([program.output, *grads], env, batched=True)
    count = len(items)
    arrays = [np.broadcast_to(outputs[0], (count, *np.shape(outputs[0])[1:]))] + [
        np.broadcast_to(g, (count, *np.shape(env[n])[1:]))
        for n, g in zip(names, outputs[1:], strict=True)
    ]
    finite = np.ones(count, bool)
    for a in arrays:
        finite &= np.isfinite(a).reshape(count, -1).all(axis=1)
    # One conversion per array, not per line: nan and inf become null (JSON has neither).
    value, *gradients = (
        a.tolist() if finite.all() else np.where(np.isfinite(a), a, None).tolist() for a in arrays
    )
    by_item: dict[int, list[str]] = {}
    for fault in faults:
        by_item.setdefault(fault.index[0] if fault.index else 0, []).append(
            describe_fault(fault, program, batched=True).message
        )
    for k, (number, values) in enumerate(items):
        record = {
            "line": number,
            "value": value[k],
            "gradient": {n: g[k] for n, g in zip(names, gradients, strict=True)},
            "finite": bool(finite[k]),
        }
        messages = by_item.get(k, [])
        if not finite[k] and not messages:  # the fault was first seen on another line
            messages = _faults_of_one(program, grads, values)
        if messages:
            record["faults"] = messages
        yield number, record


def _faults_of_one(program: Lowered, grads: list[Node], values: dict) -> list[str]:
    _, faults, _ = evaluate([program.output, *grads], values)
    return [describe_fault(f, program).message for f in faults]
