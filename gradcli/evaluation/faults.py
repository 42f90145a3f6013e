"""Numerical faults: the `Fault` record the interpreter makes where a nan, an inf or an
underflow starts, and its account as a located diagnostic: which node, from which arguments,
and why (its domain, an overflow), in the user's own text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..language.lower import Lowered
from ..language.printer import expression
from ..language.source import GradcliError, Source
from ..primitives import REGISTRY
from .values import format_number


@dataclass(frozen=True)
class Fault:
    """A node whose finite inputs gave a nan or inf result (or a variable given as nan or inf),
    or a product or quotient in a derivative whose nonzero inputs gave a result below the
    smallest normal number: an adjoint that underflows loses its digits, or all of them."""

    node: Node
    kind: str  # "nan", "inf", "-inf", or "underflow"
    # "domain" (outside the primitive's domain), "overflow", "undefined", "input", "underflow"
    cause: str
    index: tuple[int, ...] | None  # the first bad element, for an array result
    args: tuple[Any, ...]  # the inputs at that element
    # For an underflow in a batched evaluation: the batch rows whose digits it cost (None:
    # not known by row), so that one point's underflow does not excuse another's.
    rows: np.ndarray | None = field(default=None, compare=False)

    @property
    def in_derivative(self) -> bool:
        return self.node.origin is not None


def fault_order(fault: Fault) -> tuple[bool, int]:
    """Faults of the value first, then of derivatives; each in the order they arose."""
    return fault.in_derivative, fault.node.id


def describe_fault(fault: Fault, program: Lowered, batched: bool = False) -> GradcliError:
    """A located message for a nan or inf (or an underflow): what produced it, and why.

    With `batched`, the first axis of every value is a batch of points, not part of an array.
    """
    error = _describe_fault(fault, program, batched)
    error.cause = fault.cause
    error.rows = fault.rows  # the batch rows an underflow cost digits at (None: any)
    return error


def lost_digits(faults: Sequence[GradcliError]) -> bool:
    """Whether a gradient lost digits to underflow: finite, but not to be trusted."""
    return any(f.cause == "underflow" for f in faults)


def _describe_fault(fault: Fault, program: Lowered, batched: bool) -> GradcliError:
    source = program.source
    bound = {node: name for name, node in program.bindings.items()}
    node = fault.node
    index = fault.index[1:] if batched and fault.index is not None else fault.index
    element = f" at index {list(index)}" if index else ""
    if fault.cause == "input":
        return GradcliError(
            f"the value of {node.name} is {fault.kind}{element}", node.span, source=source
        )
    what = _text(node, source)
    args = [
        f"{bound.get(i) or _text(i, source)} = {_format(a)}"
        for i, a in zip(node.inputs, fault.args, strict=False)
        if i.op != "const"
    ]
    prim = REGISTRY[node.op]
    if fault.cause == "underflow":
        exact = _exact_size(node.op, fault.args)
        detail = f"{', '.join(args)} give {exact}, below the smallest normal number"
        if fault.in_derivative:
            derivative = f"the derivative of {_text(node.origin, source)}"
            message = f"{derivative} underflows{element} at {what}: {detail}, so the gradient "
            message += "loses digits (or all of them)"
        else:
            message = f"{what} underflows{element}: {detail}, so the value and its gradient "
            message += "lose digits (or all of them)"
        return GradcliError(message, node.span, source=source)
    if fault.cause == "domain":
        domain = prim.domain
        reason = domain.fault or f"{prim.signature()} requires {domain.text}"
    else:
        reason = "overflow" if fault.cause == "overflow" else "undefined result"
    detail = f"{reason}; here {', '.join(args)}" if args else reason
    if fault.in_derivative:
        derivative = f"the derivative of {_text(node.origin, source)}"
        message = f"{derivative} is {fault.kind}{element} at {what}: {detail}"
    else:
        message = f"{what} is {fault.kind}{element}: {detail}"
    return GradcliError(message, node.span, source=source)


def _exact_size(op: str, args: tuple[Any, ...]) -> str:
    """The size of a product or quotient that float64 cannot hold, as a power of ten."""
    a, b = (abs(float(np.real(v))) for v in args)
    if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
        return "a number below the normal range"
    exponent = math.log10(a) + (math.log10(b) if op == "mul" else -math.log10(b))
    whole = math.floor(exponent)
    return f"about {10 ** (exponent - whole):.2g}e{whole}"


def _text(node: Node, source: Source) -> str:
    if node.op == "const":
        return format_number(node.value)
    if node.origin is None and node.span is not None:
        return source.snippet(node.span)
    try:
        text = expression(node)
    except ValueError:  # a shape operation, which has no written form
        text = node.op
    return text if len(text) <= 60 else text[:59] + "…"


def _format(value: Any) -> str:
    return format_number(value) if not np.iscomplexobj(value) else str(complex(value))
