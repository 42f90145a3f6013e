"""What a check needs to know of a program's graph, before it evaluates anything.

Which nodes move with the variables, the switching function of every kink, the values watched
beside them (periodic arguments, poles), and the rounding scale of the value: all read from the
graph and the registry, never from the derivative rules under test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import reduce
from operator import add
from typing import Any

import numpy as np

from ..graph.nodes import Node, toposort
from ..graph.shapes import infer_shapes
from ..language.source import GradcliError
from ..primitives import REGISTRY
from ..transforms.reverse import grad


def point_batch(points: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Variables with a leading point axis: of length `count`, or 1 for a value all points share."""
    count = max((a.shape[0] for a in points.values()), default=1)
    for name, a in points.items():
        if a.shape[0] not in (1, count):
            raise GradcliError(f"{name} has {a.shape[0]} points where the others have {count}")
    return dict(points), count


def moving_nodes(order: Sequence[Node]) -> set[Node]:
    """The nodes of `order` (topologically sorted) that depend on a variable."""
    moving: set[Node] = set()
    for node in order:
        if node.op == "variable" or any(i in moving for i in node.inputs):
            moving.add(node)
    return moving


def switching_functions(order: Sequence[Node]) -> dict[Node, bool]:
    """The switching function of every kink in `order` that can move (depends on a variable),
    and whether the value jumps where it is 0 (for any of the primitives it switches)."""
    moving = moving_nodes(order)
    out: dict[Node, bool] = {}
    for node in order:
        prim = REGISTRY.get(node.op)
        if prim is not None and prim.kink is not None and node in moving:
            with node.graph.deriving(node):
                switch = prim.kink(*node.inputs, *node.attrs)
            if isinstance(switch, Node):
                out[switch] = out.get(switch, False) or prim.jump
    return out


def watched_values(order: Sequence[Node]) -> tuple[list[Node], list[float]]:
    """What the stencils watch besides the switches, for every primitive in `order` that can
    move: the argument of a periodic function, with half its period as the reach; and the
    registry's `singular` function of the inputs, with nan: half its own value."""
    moving = moving_nodes(order)
    program = set(order)
    nodes: list[Node] = []
    reach: list[float] = []
    for node in order:
        if not node.inputs or not any(i in moving for i in node.inputs):
            continue
        prim = REGISTRY[node.op]
        if prim.period is not None and node.inputs[0] in moving:
            nodes.append(node.inputs[0])
            reach.append(prim.period / 2)
        if prim.singular is not None:
            with node.graph.deriving(node):
                witness = prim.singular(*node.inputs, *node.attrs)
            if isinstance(witness, Node) and _moves(witness, moving, program):
                nodes.append(witness)
                reach.append(math.nan)
    return nodes, reach


def _moves(witness: Node, moving: set[Node], program: set[Node]) -> bool:
    """Whether a node built from the program's nodes (a witness such as (1 − x)(1 + x)) depends
    on one that moves: a walk through the witness's own new nodes, which stops at the program's
    (whether those move is known), so every witness costs only its own size; never recursive."""
    stack, seen = [witness], set()
    while stack:
        node = stack.pop()
        if node in moving:
            return True
        if node not in seen and node not in program:
            seen.add(node)
            stack.extend(node.inputs)
    return False


def rounding_scale(
    output: Node, item_shapes: Mapping[str, tuple], wrt: Sequence[Node] = ()
) -> tuple[Node, Node, list[Node]]:
    """Σ over the nodes v of |v·∂f/∂v|, and of |∂f/∂v|: ε times the first bounds the rounding
    error of a value of f to first order (a sum of large terms that cancel has a small value but
    a large bound), and the smallest subnormal times the second what values that underflow lose
    (x*x at x = 1e-290 is 0, and 1e300*(x*x) with it).

    The same reverse pass gives the gradient in `wrt`, returned beside them."""
    graph = output.graph
    everything = toposort([output])
    order = [n for n in everything if n.inputs]
    adjoints = grad(output, [*order, *wrt], item_shapes)
    gradient = adjoints[len(order) :]
    if not order:
        return graph.const(0.0), graph.const(0.0), gradient
    shapes = infer_shapes(everything, item_shapes)
    relative, absolute = [], []
    for node, adjoint in zip(order, adjoints, strict=False):
        for terms, term in ((relative, node * adjoint), (absolute, adjoint)):
            term = graph.apply("abs", term)
            if shapes[node] != ():
                term = graph.apply("sum_to", term, attrs=((),))
            terms.append(term)
    return reduce(add, relative), reduce(add, absolute), gradient


def row_sums(value: Any, rows: int) -> np.ndarray:
    """The sum of each row's elements: the scalar whose derivative is checked."""
    value = np.asarray(value)
    if value.ndim == 0:
        return np.full(rows, value)
    with np.errstate(over="ignore", invalid="ignore"):  # a sum may overflow: checked as inf
        return np.broadcast_to(value, (rows, *value.shape[1:])).reshape(rows, -1).sum(axis=1)


def reached_from(order: Sequence[Node], source: Node) -> list[Node]:
    """`source` and the nodes of `order` that depend on it, in order."""
    reached = {source}
    for node in order:
        if any(i in reached for i in node.inputs):
            reached.add(node)
    return [source] + [n for n in order if n in reached and n is not source]
