"""Evaluation: every node computed once, in topological order, with numpy.

A value is dropped as soon as its last user has been computed, so memory follows the widest part
of the graph, not its size. The first node to turn finite inputs into nan or inf is recorded as a
`Fault` with the reason (outside the domain, division by zero, overflow), so that a numerical
problem is reported where it starts rather than where it ends up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .graph import Node, toposort
from .registry import REGISTRY
from .source import GradcliError


@dataclass(frozen=True)
class Fault:
    """A node whose finite inputs gave a nan or inf result (or a variable given as nan or inf)."""

    node: Node
    kind: str  # "nan", "inf" or "-inf"
    cause: str  # "domain" (outside the primitive's domain), "overflow", "undefined" or "input"
    index: tuple[int, ...] | None  # the first bad element, for an array result
    args: tuple[Any, ...]  # the inputs at that element

    @property
    def in_derivative(self) -> bool:
        return self.node.origin is not None


def evaluate(
    outputs: Sequence[Node],
    env: Mapping[str, Any],
    dtype: type[np.generic] = np.float64,
    keep_all: bool = False,
) -> tuple[list[Any], list[Fault], dict[Node, Any]]:
    """Values of `outputs` with variables bound by `env`; also the faults, and all values if asked.

    Inputs are cast to `dtype` (float64, float32 or complex128).
    """
    order = toposort(outputs)
    uses: dict[Node, int] = {}
    for node in order:
        for inp in node.inputs:
            uses[inp] = uses.get(inp, 0) + 1
    keep = set(outputs)
    values: dict[Node, Any] = {}
    faults: list[Fault] = []
    make = np.dtype(dtype).type
    with np.errstate(all="ignore"):
        for node in order:
            if node.op == "const":
                value = make(node.value)
            elif node.op == "var":
                value = _cast(env[node.name], make)
                if not _finite(value):
                    faults.append(_fault(node, value, []))
            else:
                args = [values[i] for i in node.inputs]
                try:
                    value = REGISTRY[node.op].forward(*args, *node.attrs)
                except ValueError as exc:
                    raise GradcliError(f"cannot evaluate: {exc}", node.span) from None
                if not _finite(value) and all(_finite(a) for a in args):
                    faults.append(_fault(node, value, args))
                if not keep_all:
                    for inp in node.inputs:
                        uses[inp] -= 1
                        if uses[inp] == 0 and inp not in keep:
                            values.pop(inp, None)
            values[node] = value
    return [values[o] for o in outputs], faults, values


def _cast(value: Any, make: type[np.generic]) -> Any:
    """`value` in the working precision; complex stays complex (for the complex step)."""
    if np.iscomplexobj(value):
        make = np.result_type(make, np.complex64).type
    array = np.asarray(value, dtype=make)
    return make(array) if array.ndim == 0 else array


def _finite(value: Any) -> bool:
    if type(value) in (float, np.float64, np.float32):
        return math.isfinite(value)
    return bool(np.isfinite(value).all())


def _fault(node: Node, value: Any, args: list[Any]) -> Fault:
    value = np.asarray(value)
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0]) if value.ndim else None
    first = value[index] if index is not None else value[()]
    kind = "nan" if np.isnan(first) else ("inf" if np.real(first) > 0 else "-inf")
    at = tuple(
        np.broadcast_to(a, value.shape)[index] if index is not None else np.asarray(a)[()]
        for a in args
    )
    if node.op == "var":
        cause = "input"
    else:
        domain = REGISTRY[node.op].domain
        if domain is not None and not np.all(domain.contains(*at)):
            cause = "domain"
        else:
            cause = "undefined" if kind == "nan" else "overflow"
    return Fault(node, kind, cause, index, at)
