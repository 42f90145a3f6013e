"""Underflow as a fault: products and quotients whose nonzero inputs give a result below the
smallest normal number, and whether the digits lost there matter downstream.

An adjoint of 1e-398 is 0 in float64; it matters only where a later product would have made
it a normal number again. `ExactSizes` follows the exact sizes (as log₂) of such values through
the products, quotients and sums that use them, so that an underflow is reported exactly where
it cost digits, and nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..graph.nodes import Node
from .faults import Fault


def underflow_watched(order: Sequence[Node]) -> set[Node]:
    """The products and quotients: where their nonzero inputs give a result below the smallest
    normal number, the value or adjoint loses digits (the gradient of Planck's law at 1e-7 m
    came out 0, and another with the wrong sign, from adjoints of 1e-398). A function whose
    result rounds below the range (e^-800) is correctly rounded, and not watched."""
    return {n for n in order if n.op in ("mul", "div")}


TINY = {np.dtype(t): float(np.finfo(t).tiny) for t in (np.float64, np.float32, np.float16)}


def underflows(value: Any, args: list[Any]) -> bool:
    """Whether `value`, from finite nonzero `args`, has an element below the normal range."""
    tiny = TINY.get(getattr(value, "dtype", None))
    if tiny is None:  # complex (the complex step), integer, or a Python number
        return False
    if type(value) is not np.ndarray:
        if abs(value) >= tiny:
            return False
    elif not value.size or np.min(np.abs(value)) >= tiny:
        return False
    small = np.abs(value) < tiny
    for a in args:
        small = small & (np.asarray(a) != 0) & np.isfinite(a)
    return bool(small.any())


# Elementwise sums carry an underflowed size on: an adjoint of 1e-420 plus a contribution of 0
# is still 1e-420, and a later product can make it normal again.
CARRIERS = frozenset({"add", "sub", "neg"})


class ExactSizes:
    """The exact sizes (as log₂) of products and quotients that underflowed, carried through
    the products and quotients that use them, and through sums that stay below the range.

    An underflow loses digits that matter where a later product would be a normal number again:
    1e300*(x*y) at x = y = 1e-200 (x*y is 1e-400, the product 1e-100), or an adjoint of 3e-398
    times a local derivative of 1e208. Where the exact result is itself below the range (x/‖x‖
    = 1e-400 for an element of 1e-200 in a norm of 1e200), 0 is its correct rounding."""

    def __init__(self, batched: bool = False) -> None:
        self.log2: dict[Node, np.ndarray] = {}  # nan where an element did not underflow
        self.first: dict[Node, Fault] = {}  # the underflow each carried size started at
        self.reported: set[Node] = set()
        self.batched = batched
        self.rows: dict[Node, np.ndarray] = {}  # by origin: the batch rows where it mattered

    def with_rows(self, fault: Fault) -> Fault:
        """`fault` with the batch rows its underflow cost digits at, once they are all known."""
        rows = self.rows.get(fault.node) if fault.cause == "underflow" else None
        return fault if rows is None else replace(fault, rows=rows)

    def _inputs(
        self, node: Node, value: np.ndarray, args: list[Any]
    ) -> tuple[list[np.ndarray], np.ndarray, Fault | None]:
        """The log₂ size of each input (the exact one where it underflowed before), where the
        output carries such a size, and the underflow the first carried size started at."""
        logs, carried, origin = [], np.zeros(value.shape, bool), None
        for inp, a in zip(node.inputs, args, strict=True):
            size = np.log2(np.abs(np.asarray(a, dtype=float)))
            if inp in self.log2:
                known = np.reshape(self.log2[inp], np.shape(a))
                carried = carried | np.broadcast_to(~np.isnan(known), value.shape)
                size = np.where(np.isnan(known), size, known)
                origin = origin or self.first[inp]
            logs.append(size)
        return logs, carried, origin

    def see(self, node: Node, value: Any, args: list[Any]) -> Fault | None:
        value = np.asarray(value)
        if value.dtype not in TINY:  # not a float, or wider than float64: not tracked
            return None
        if not any(i in self.log2 for i in node.inputs) and not underflows(value, args):
            return None  # nothing carried in, nothing below the range: the common case
        if value.ndim == 0 and all(np.ndim(a) == 0 for a in args):
            return self._see_number(node, value, args)
        floor = math.log2(np.finfo(value.dtype).tiny)
        with np.errstate(all="ignore"):
            logs, carried, origin = self._inputs(node, value, args)
            exact = logs[0] + logs[1] if node.op == "mul" else logs[0] - logs[1]
            exact = np.broadcast_to(exact, value.shape)
            nonzero = np.ones(value.shape, bool)
            for a in args:
                nonzero = nonzero & (np.asarray(a) != 0) & np.isfinite(a)
            fresh = (np.abs(value) < np.finfo(value.dtype).tiny) & nonzero & ~carried
        matters = carried & np.isfinite(exact) & (exact >= floor)
        if matters.any() and origin is not None:
            if self.batched and matters.ndim:
                rows = matters.reshape(len(matters), -1).any(axis=1)
                seen = self.rows.get(origin.node)
                if seen is not None and seen.shape != rows.shape:  # a row shared by the batch
                    seen, rows = np.broadcast_arrays(seen, rows)
                self.rows[origin.node] = rows if seen is None else (seen | rows)
            if origin.node not in self.reported:
                self.reported.add(origin.node)
                return origin
        below = (fresh | carried) & np.isfinite(exact) & (exact < floor)
        if below.any():
            self.log2[node] = np.where(below, exact, np.nan)
            self.first[node] = (
                origin
                if (origin is not None and not fresh.any())
                else (underflow_fault(node, value, args) if fresh.any() else origin)
            )
        return None

    def _numbers(self, node: Node, args: list[Any]) -> tuple[list[float], bool, Fault | None]:
        """`_inputs` for numbers, in Python floats: a long chain of scalar statements whose
        adjoints underflow spent 100 µs a node in numpy calls on 0-d arrays."""
        logs, carried, origin = [], False, None
        for inp, a in zip(node.inputs, args, strict=True):
            size = _log2(float(a))
            if inp in self.log2:
                known = float(np.reshape(self.log2[inp], ()))
                if not math.isnan(known):
                    size, carried = known, True
                origin = origin or self.first[inp]
            logs.append(size)
        return logs, carried, origin

    def _see_number(self, node: Node, value: np.ndarray, args: list[Any]) -> Fault | None:
        """`see` of a product or quotient of numbers (not arrays): the same, in floats."""
        tiny = float(np.finfo(value.dtype).tiny)
        floor = math.log2(tiny)
        logs, carried, origin = self._numbers(node, args)
        exact = logs[0] + logs[1] if node.op == "mul" else logs[0] - logs[1]
        nonzero = all(float(a) != 0 and math.isfinite(float(a)) for a in args)
        fresh = abs(float(value)) < tiny and nonzero and not carried
        matters = carried and math.isfinite(exact) and exact >= floor
        if matters and origin is not None and origin.node not in self.reported:
            self.reported.add(origin.node)
            return origin
        if (fresh or carried) and math.isfinite(exact) and exact < floor:
            self.log2[node] = np.asarray(exact)
            self.first[node] = (
                origin
                if (origin is not None and not fresh)
                else (underflow_fault(node, value, args) if fresh else origin)
            )
        return None

    def carry(self, node: Node, value: Any, args: list[Any]) -> None:
        """Carry the sizes of underflowed inputs through a sum whose result is still below the
        normal range: its exact size is that of its largest term (a normal term would have
        made it normal, and what the underflow lost is then below its rounding)."""
        if not any(i in self.log2 for i in node.inputs):
            return
        value = np.asarray(value)
        if value.dtype not in TINY:  # not a float, or wider than float64: not tracked
            return
        tiny = np.finfo(value.dtype).tiny
        if value.ndim == 0 and all(np.ndim(a) == 0 for a in args):
            logs, carried_in, origin = self._numbers(node, args)
            exact = math.nan if any(math.isnan(v) for v in logs) else max(logs)
            below = carried_in and abs(float(value)) < tiny and exact < math.log2(tiny)
            if below and origin is not None:
                self.log2[node] = np.asarray(exact)
                self.first[node] = origin
            return
        with np.errstate(all="ignore"):
            sizes, carried, origin = self._inputs(node, value, args)
            exact = np.maximum.reduce([np.broadcast_to(size, value.shape) for size in sizes])
            below = carried & (np.abs(value) < tiny) & (exact < math.log2(tiny))
        if below.any() and origin is not None:
            self.log2[node] = np.where(below, exact, np.nan)
            self.first[node] = origin


def _log2(x: float) -> float:
    """log₂|x| as numpy gives it: -inf at 0, inf at ±inf, nan at nan."""
    if x == 0:
        return -math.inf
    if not math.isfinite(x):
        return x if math.isnan(x) else math.inf
    return math.log2(abs(x))


def underflow_fault(node: Node, value: Any, args: list[Any]) -> Fault:
    """The fault of a product or quotient that underflowed: its first such element."""
    value = np.asarray(value)
    small = np.abs(value) < np.finfo(value.dtype).tiny
    for a in args:
        small = small & (np.asarray(a) != 0)
    index = tuple(int(i) for i in np.argwhere(small)[0]) if value.ndim else None
    at = tuple(
        np.broadcast_to(a, value.shape)[index] if index is not None else np.asarray(a)[()]
        for a in args
    )
    return Fault(node, "underflow", "underflow", index, at)
