"""The backward pass at a point, node by node: what `gradcli explain` tabulates and what
`gradcli graph` writes beside each node.

`autodiff.backward` records, as graph nodes, each node's adjoint, the contributions it received
from its users and what it sent to each input (with the local derivative, for an elementwise
primitive); here they are all evaluated in one pass and labelled for display.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..api import describe_fault, differentiable, fault_order, prepared
from ..evaluation.interpreter import evaluate as run
from ..graph.nodes import Node, toposort
from ..language.lower import Lowered
from ..language.printer import LANGUAGE, expression
from ..language.source import GradcliError
from ..primitives import REGISTRY
from ..transforms.reverse import backward

_LONGEST = 40  # characters of an expression shown for a node


@dataclass
class Sent:
    """What a node sends one input: adjoint × local derivative (the local derivative is None
    for an array primitive, whose rule is a vector-Jacobian product)."""

    to: int  # the input's step number
    local: np.ndarray | None
    contribution: np.ndarray


@dataclass
class Step:
    number: int  # position in topological order, from 1: how nodes refer to each other
    node: Node
    op: str  # how the node is written: "x", "2", "*", "sin"
    text: str  # the expression it computes, shortened
    value: np.ndarray
    inputs: list[int]  # the step numbers of its inputs
    adjoint: np.ndarray | None = None  # ∂f/∂(this node); None where no variable reaches it
    received: list[tuple[int | None, np.ndarray]] = field(default_factory=list)  # None: seed
    sent: list[Sent] = field(default_factory=list)

    @property
    def shared(self) -> bool:
        """Used more than once: its adjoint is a sum of what it received."""
        return len(self.received) > 1


@dataclass
class Explanation:
    program: Lowered
    variables: dict[str, np.ndarray] | None
    steps: list[Step]  # in topological order: inputs first, the output last
    faults: list[GradcliError]

    @property
    def backward(self) -> list[Step]:
        """The steps the backward pass takes, in its order: from the output back."""
        return [s for s in reversed(self.steps) if s.adjoint is not None]


def explain(program: Lowered | str, values: Mapping[str, Any] | None = None) -> Explanation:
    """Every node of the program; with `values` (for every variable), its value, its adjoint
    and what flowed through it in the backward pass."""
    if values is None:
        if isinstance(program, str):
            from ..api import compile_program

            program = compile_program(program)
        order = toposort([program.output])
        return Explanation(program, None, _steps(order, {}), [])
    program, arrays, shapes = prepared(program, values)
    differentiable(program, list(program.variables))
    try:
        trace = backward(program.output, shapes)
        order = toposort([program.output])
        wanted: list[Node] = list(order)
        for node in trace.order:
            if node not in trace.adjoint:  # it received nothing: heaviside(x, 0) sends x zero
                continue
            wanted.append(trace.adjoint[node])
            wanted += [c for _, c in trace.received[node]]
            for _, contribution, local in trace.sent.get(node, []):
                wanted.append(contribution)
                if isinstance(local, Node):
                    wanted.append(local)
        computed, faults, _ = run(wanted, arrays)
    except GradcliError as err:
        raise err.with_source(program.source) from None
    value = dict(zip(wanted, computed, strict=True))
    steps = _steps(order, value)
    number = {s.node: s.number for s in steps}
    for step in steps:
        node = step.node
        if node not in trace.adjoint:
            continue
        step.adjoint = np.asarray(value[trace.adjoint[node]])
        step.received = [
            (None if user is None else number[user], np.asarray(value[c]))
            for user, c in trace.received[node]
        ]
        for position, contribution, local in trace.sent.get(node, []):
            if isinstance(local, Node):
                local_value = np.asarray(value[local])
            else:
                local_value = None if local is None else np.asarray(float(local))
            step.sent.append(
                Sent(number[node.inputs[position]], local_value, np.asarray(value[contribution]))
            )
    described = [describe_fault(f, program) for f in sorted(faults, key=fault_order)]
    return Explanation(program, arrays, steps, described)


def _steps(order: list[Node], value: Mapping[Node, Any]) -> list[Step]:
    number = {node: k for k, node in enumerate(order, start=1)}
    labels = _labels(order)
    return [
        Step(
            number[node],
            node,
            written(node),
            labels[node],
            np.asarray(value[node]) if node in value else np.asarray(np.nan),
            [number[i] for i in node.inputs],
        )
        for node in order
    ]


def _labels(order: list[Node]) -> dict[Node, str]:
    """Each node's expression, cut at _LONGEST characters: built from its inputs' cut labels,
    so the cost stays linear however deep or long the program is."""
    labels: dict[Node, str] = {}
    for node in order:
        if not node.inputs:
            labels[node] = expression(node)
            continue
        text = "".join(p if isinstance(p, str) else labels[p] for p in LANGUAGE.pieces(node, {}))
        labels[node] = _short(text)
    return labels


def written(node: Node) -> str:
    """The operator, function name, variable name or number a node shows."""
    if node.op in ("const", "var"):
        return expression(node)
    prim = REGISTRY[node.op]
    if prim.operator is not None:
        return "−" if node.op == "neg" else prim.operator.symbol
    if node.op == "index":
        return "[]"
    if node.op == "stack":
        return "[…]"
    return prim.written_as or node.op


def _short(text: str) -> str:
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"
