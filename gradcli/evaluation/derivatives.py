"""Symbolic derivatives (`gradcli diff`): reverse mode returns nodes, simplified and printed.

The derivative of a program is built by the same `grad` that evaluation uses, so what is printed
is exactly what gradcli computes; `simplify` makes it readable and the printer writes it in the
language (or LaTeX, or Python with numpy), so it can be pasted back into a program.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..language.lower import Lowered
from ..language.printer import to_source
from ..language.program import compile_program, differentiable, unknown_variable, wrt_names
from ..language.source import GradcliError
from ..primitives import Shape
from ..transforms.reverse import grad
from ..transforms.simplify import simplify
from .interpreter import evaluate as run


@dataclass(frozen=True)
class Derivative:
    """One derivative: ∂f/∂x (order 1) or ∂²f/∂x[k]∂y (order 2), as a node and as text."""

    wrt: tuple[str, ...]  # the variables, outermost first: ("x",) or ("x[1]", "y")
    node: Node
    shape: Shape
    text: str  # a program in gradcli's language: bindings, then the expression
    value: np.ndarray | None  # at the point, when one was given

    @property
    def label(self) -> str:
        if len(self.wrt) == 1:
            return f"∂f/∂{self.wrt[0]}"
        return "∂²f/" + "".join(f"∂{w}" for w in self.wrt)


@dataclass(frozen=True)
class Derivatives:
    program: Lowered
    order: int
    shapes: dict[str, Shape]
    items: list[Derivative]
    point: dict[str, np.ndarray] | None

    @property
    def hints(self) -> dict[Node, str]:
        return _hints(self.program)


def _hints(program: Lowered) -> dict[Node, str]:
    """The program's own binding names, for the nodes they name: printed derivatives use them."""
    return {node: name for name, node in program.bindings.items()}


def derivatives(
    program: Lowered | str,
    wrt: Sequence[str] | None = None,
    order: int = 1,
    values: Mapping[str, Any] | None = None,
) -> Derivatives:
    """The derivatives of Σf in `wrt` (every variable by default), simplified.

    `values` gives array variables their shapes (others are numbers); when it gives every
    variable, each derivative is also evaluated there.
    """
    if isinstance(program, str):
        program = compile_program(program)
    if order not in (1, 2):
        raise GradcliError(f"--order must be 1 or 2, not {order}")
    arrays = {n: np.asarray(v, dtype=np.float64) for n, v in (values or {}).items()}
    for name in arrays:
        if name not in program.variables:
            raise unknown_variable(name, program, "")
    names = wrt_names(program, wrt)
    differentiable(program, names)
    shapes = {n: a.shape for n, a in arrays.items()}
    graph = program.graph
    try:
        firsts = grad(program.output, [program.variables[n] for n in names], shapes)
        labels: list[tuple[str, ...]] = [(n,) for n in names]
        nodes = firsts
        if order == 2:
            labels, nodes = [], []
            for name, g in zip(names, firsts, strict=True):
                for k in np.ndindex(shapes.get(name, ())):
                    component = graph.apply("index", g, attrs=(k,)) if k else g
                    label = name + (f"[{', '.join(map(str, k))}]" if k else "")
                    seconds = grad(component, [program.variables[n] for n in names], shapes)
                    labels += [(label, n) for n in names]
                    nodes += seconds
        simple = simplify(nodes, shapes)
        point = arrays if set(arrays) >= set(program.variables) else None
        values_at = run(simple, point)[0] if point is not None and simple else [None] * len(simple)
    except GradcliError as err:
        raise err.with_source(program.source) from None
    hints = _hints(program)
    items = [
        Derivative(
            label,
            node,
            tuple(shapes.get(label[-1], ())),
            to_source(node, reserved=program.variables, compact=True, hints=hints),
            None if value is None else np.asarray(value),
        )
        for label, node, value in zip(labels, simple, values_at, strict=True)
    ]
    return Derivatives(program, order, shapes, items, point)
