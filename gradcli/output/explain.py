"""The backward pass at a point, node by node: what `gradcli graph` writes beside each node
(pictures.py), and `gradcli explain`'s table and JSON.

`transforms.reverse.backward` records, as graph nodes, each node's adjoint, the contributions it
received from its users and what it sent to each input (with the local derivative, for an
elementwise primitive); here they are all evaluated in one pass and labelled for display.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich import box
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ..api import describe_fault, differentiable, fault_order, prepared
from ..evaluation.interpreter import evaluate as run
from ..evaluation.values import to_json
from ..graph.nodes import Node, toposort
from ..language.lower import Lowered
from ..language.printer import LANGUAGE, expression
from ..language.source import GradcliError
from ..primitives import REGISTRY
from ..transforms.reverse import backward
from . import console
from .console import heading, short

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
        labels[node] = _cut(text)
    return labels


def written(node: Node) -> str:
    """The operator, function name, variable name or number a node shows."""
    if node.op in ("const", "variable"):
        return expression(node)
    prim = REGISTRY[node.op]
    if prim.operator is not None:
        return "−" if node.op == "neg" else prim.operator.symbol
    if node.op == "index":
        return "[]"
    if node.op == "stack":
        return "[…]"
    return prim.written_as or node.op


def _cut(text: str) -> str:
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"


# --- gradcli explain ---------------------------------------------------------------------------


def _explain_row(step) -> tuple[str, ...]:
    """One node of the backward pass: number, node, value, adjoint, local derivatives, sends."""
    if step.received and step.received[0][0] is None:
        adjoint = f"{short(step.adjoint)} (the seed: ∂f/∂f)"
    elif step.shared:
        parts = " + ".join(f"{short(v)} from #{k}" for k, v in reversed(step.received))
        adjoint = f"{parts} = {short(step.adjoint)}"
    else:
        ((k, _),) = step.received
        adjoint = f"{short(step.adjoint)} from #{k}"
    local = "\n".join(
        f"∂/∂#{s.to} = {short(s.local)}" if s.local is not None else f"#{s.to}: by a vjp rule"
        for s in step.sent
    )
    sends = "\n".join(
        f"#{s.to} ← {short(step.adjoint)} × {short(s.local)} = {short(s.contribution)}"
        if s.local is not None
        else f"#{s.to} ← {short(s.contribution)}"
        for s in step.sent
    )
    node = step.op if step.op == step.text else f"{step.op}   {step.text}"
    return str(step.number), node, short(step.value), adjoint, local, sends


def explain_table(result) -> None:
    """The backward pass as the tutorials teach it: from the output back, each node's adjoint
    (the sum of what its users sent, for a shared node) and what it sends each input."""
    console.stdout.print(heading(result.program, result.variables), soft_wrap=True)
    titles = ("#", "node", "value", "adjoint ∂f/∂node", "local derivatives", "sends")
    rows = [_explain_row(step) for step in result.backward]
    table = Table(box=box.SIMPLE_HEAD)
    for title in titles:
        table.add_column(title, justify="right" if title == "#" else "left", overflow="fold")
    for row in rows:
        table.add_row(*row)
    natural = Measurement.get(
        console.stdout, console.stdout.options.update_width(10_000), table
    ).maximum
    if natural <= console.stdout.width:
        console.stdout.print(table)
    else:  # too narrow for six columns: each node as a block of labelled lines
        for number, node, value, adjoint, local, sends in rows:
            console.stdout.print(
                Text(f"#{number}  {node} = {value}", style="bold"), soft_wrap=False
            )
            block = Table.grid(padding=(0, 1))
            block.add_column(width=2)
            block.add_column(no_wrap=True, style="dim")
            block.add_column(overflow="fold")
            for label, cell in (("adjoint", adjoint), ("local", local), ("sends", sends)):
                if cell:
                    block.add_row("", label, cell)
            console.stdout.print(block)
    # A variable no contribution reached (through heaviside, say) has the gradient 0, as eval
    # reports it.
    gradient = ", ".join(
        f"∂f/∂{s.op} = {short(s.adjoint) if s.adjoint is not None else '0.0'} (#{s.number})"
        for s in result.steps
        if s.node.op == "variable" and result.variables is not None
    )
    console.stdout.print(
        Text(
            "Read from the top: the output's adjoint is 1; each node multiplies its adjoint by "
            "its local derivatives and sends the products to its inputs; a node used more than "
            "once adds up what it receives.",
            style="dim",
        ),
        soft_wrap=True,
    )
    if gradient:
        console.stdout.print(Text("gradient: " + gradient, style="bold"), soft_wrap=True)


def explain_json(result) -> dict[str, Any]:
    return {
        "expression": result.program.source.text,
        "variables": {n: to_json(v) for n, v in (result.variables or {}).items()},
        "steps": [
            {
                "number": s.number,
                "op": s.op,
                "text": s.text,
                "inputs": s.inputs,
                "value": to_json(s.value),
                "adjoint": None if s.adjoint is None else to_json(s.adjoint),
                "received": [{"from": k, "value": to_json(v)} for k, v in s.received],
                "sent": [
                    {
                        "to": t.to,
                        "local": None if t.local is None else to_json(t.local),
                        "contribution": to_json(t.contribution),
                    }
                    for t in s.sent
                ],
            }
            for s in result.steps
        ],
        "backward_order": [s.number for s in result.backward],
        "gradient": {
            s.op: to_json(s.adjoint)
            for s in result.steps
            if s.node.op == "variable" and s.adjoint is not None
        },
        "faults": [f.message for f in result.faults],
    }
