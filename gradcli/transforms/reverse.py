"""Reverse mode: the gradient of a node with respect to others, as new nodes of the same graph.

The walk is the one the tutorials teach: visit nodes in reverse topological order (from
`toposort`, which counts uses, so a node is visited only after every use of it has sent its
contribution), add up the contributions a node received into its adjoint, and send each input
`adjoint × local derivative`. Each node is visited once, so the cost is linear in the graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from operator import add
from typing import Any

import numpy as np

from ..graph.nodes import Node, collector_paused, toposort
from ..graph.shapes import infer_shapes
from ..primitives import REGISTRY, Shape


def grad(
    output: Node,
    wrt: Sequence[Node],
    var_shapes: Mapping[str, Shape] | None = None,
    magnitude: bool = False,
) -> list[Node]:
    """Nodes for ∂(sum of output)/∂w for each w in `wrt`.

    `var_shapes` gives the shapes of array variables (others are scalars); a non-scalar output is
    differentiated as its sum, and an adjoint is summed back to the shape of a broadcast input.

    With `magnitude`, every local derivative is replaced by its absolute value: the result is the
    sum over all chain-rule paths of |product of local derivatives|, the scale that rounding errors
    in computing the gradient (or a complex-step reference) are proportional to.
    """
    graph = output.graph
    with collector_paused():
        order = toposort([output, *wrt])
        shapes = infer_shapes(order, var_shapes)
        adjoints = _propagate(output, order, _live(order, set(wrt)), shapes, magnitude)
    zero = graph.const(0.0)
    result = []
    for w in wrt:
        total = adjoints.get(w)
        if total is None:  # the output does not depend on w
            shape = shapes[w]
            total = zero if shape == () else graph.apply("broadcast_to", zero, attrs=(shape,))
        result.append(total)
    return result


@dataclass
class Backward:
    """The backward pass step by step, as nodes: what `gradcli explain` and `graph` show."""

    order: list[Node]  # the nodes that depend on a variable, in reverse topological order
    adjoint: dict[Node, Node]
    received: dict[Node, list[tuple[Node | None, Node]]]  # (from which user, contribution)
    sent: dict[Node, list[tuple[int, Node, Any]]]  # (input position, contribution, local ∂)
    shapes: dict[Node, Shape]


def backward(output: Node, var_shapes: Mapping[str, Shape] | None = None) -> Backward:
    """The adjoint of every node that depends on a variable, with what each node received and
    sent: the walk `grad` makes, kept for display."""
    order = toposort([output])
    shapes = infer_shapes(order, var_shapes)
    live = _live(order, {n for n in order if n.op == "variable"})
    trace = Backward([n for n in reversed(order) if n in live], {}, {}, {}, shapes)
    trace.adjoint = _propagate(output, order, live, shapes, False, trace)
    return trace


def _live(order: Sequence[Node], targets: set[Node]) -> set[Node]:
    """The nodes through which some target reaches the output."""
    live = set()
    for node in order:
        if node in targets or any(i in live for i in node.inputs):
            live.add(node)
    return live


def _propagate(
    output: Node,
    order: Sequence[Node],
    live: set[Node],
    shapes: Mapping[Node, Shape],
    magnitude: bool,
    trace: Backward | None = None,
) -> dict[Node, Node]:
    """The adjoint of every live node: the sum of the contributions its users sent it."""
    graph = output.graph
    adjoints: dict[Node, Node] = {}
    received: dict[Node, list[tuple[Node | None, Node]]] = {}
    if output in live:
        seed = graph.const(1.0)
        if shapes[output] != ():
            seed = graph.apply("broadcast_to", seed, attrs=(shapes[output],))
        received[output] = [(None, seed)]
    for node in reversed(order):
        contributions = received.pop(node, None)
        if contributions is None:
            continue
        adjoints[node] = _total([c for _, c in contributions])
        if trace is not None:
            trace.received[node] = contributions
        if not node.inputs:
            continue
        with graph.deriving(node):
            for position, contribution, local in _vjp(
                node, adjoints[node], shapes, live, magnitude
            ):
                if contribution is not None:
                    received.setdefault(node.inputs[position], []).append((node, contribution))
                    if trace is not None:
                        trace.sent.setdefault(node, []).append((position, contribution, local))
    return adjoints


def _total(parts: list[Node]) -> Node:
    """The sum of a node's contributions, k·g for a contribution g sent k times: the adjoint of
    x in x + x + … + x (2 million terms in a 4 MB program) is then one product, not a chain of
    additions as long as the program (and k·g rounds once, where the chain rounded k times)."""
    parts = _merge_masks(parts)
    counts: dict[Node, int] = {}
    for part in parts:
        counts[part] = counts.get(part, 0) + 1
    if len(counts) == len(parts):
        return reduce(add, parts)
    return reduce(add, [g if k == 1 else g * float(k) for g, k in counts.items()])


def _merge_masks(parts: list[Node]) -> list[Node]:
    """Contributions masked by the same condition, as one: where(c, g1, 0) + where(c, 0, g2) is
    where(c, g1, g2) (x used in both branches), so the mask survives the sum for the products
    below it (see `_times`), and `gradcli diff` prints one where, not two."""
    groups: dict[Node, list[Node]] = {}
    for p in parts:
        if p.op == "where" and (zero_rule(p.inputs[1]) or zero_rule(p.inputs[2])):
            groups.setdefault(p.inputs[0], []).append(p)
    if all(len(g) < 2 for g in groups.values()):
        return parts
    out = [
        p
        for p in parts
        if p.op != "where" or p.inputs[0] not in groups or p not in groups[p.inputs[0]]
    ]
    for c, group in groups.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        sides = [[p.inputs[k] for p in group if not zero_rule(p.inputs[k])] for k in (1, 2)]
        first, second = (reduce(add, side) if side else 0.0 for side in sides)
        out.append(group[0].graph.apply("where", c, first, second))
    return out


def zero_rule(node: Node | float) -> bool:
    """Whether a local derivative is the constant 0, everywhere."""
    if isinstance(node, Node):
        return node.op == "const" and not np.any(node.value)
    return node == 0


def _times(adjoint: Node, local: Node | float) -> Node:
    """adjoint × local, with the masks of `where` kept outside the product.

    The adjoint of a branch of where(c, a, b) is where(c, g, 0): 0 where the branch is not
    taken. Multiplied there by a local derivative that is inf or nan (sqrt's at x < 0 in
    where(x > 0, sqrt(x), 0)), 0 × inf would make the gradient nan, the trap JAX documents for
    its where. So the product goes inside the mask, where(c, g × local, 0), and the branch not
    taken gets an exact 0 whatever its derivatives are. A loop, not recursion, peels nested masks.
    """
    masks: list[tuple[Node, bool]] = []  # (condition, whether the adjoint is its first branch)
    inner = adjoint
    while inner.op == "where":
        c, a, b = inner.inputs
        if zero_rule(b):
            masks.append((c, True))
            inner = a
        elif zero_rule(a):
            masks.append((c, False))
            inner = b
        else:
            break
    if not masks:
        return adjoint * local
    product = inner * local
    for c, first in reversed(masks):
        product = adjoint.graph.apply("where", c, *((product, 0.0) if first else (0.0, product)))
    return product


def _ones(node: Node) -> bool:
    """Whether `node` is broadcast_to(1): multiplying by it is broadcasting, a view in numpy."""
    if node.op != "broadcast_to":
        return False
    (one,) = node.inputs
    return one.op == "const" and np.size(one.value) == 1 and bool(np.all(one.value == 1.0))


def _vjp(
    node: Node, adjoint: Node, shapes: Mapping[Node, Shape], live: set[Node], magnitude: bool
) -> list[tuple[int, Node | None, Any]]:
    """(input position, contribution, local derivative) for each live input: the contribution
    is None for zero, and the local derivative None for a primitive with a vjp rule."""
    prim = REGISTRY[node.op]
    if prim.vjp is not None:
        # A vjp is |J|ᵀ g for a non-negative adjoint when J has no negative entries (sums,
        # indexing, reshapes); the others state their |J|ᵀ g as `magnitude_vjp`.
        rule = prim.magnitude_vjp if magnitude and prim.magnitude_vjp else prim.vjp
        contributions = rule(node, adjoint, shapes.__getitem__)
        # A rule may give a function for a contribution that is costly or unsupported: it is
        # called only when that input needs its adjoint.
        return [
            (k, c() if callable(c) else c, None)
            for k, (inp, c) in enumerate(zip(node.inputs, contributions, strict=True))
            if inp in live
        ]
    out = []
    for k, (inp, partial) in enumerate(zip(node.inputs, prim.partials, strict=True)):
        if inp not in live:
            continue
        local = partial(node, *node.inputs)
        if local is None or zero_rule(local):
            # A rule that is the constant 0 (∂(0·x)/∂x) says the node does not depend on that
            # input at any point: no path, even from an adjoint that is nan or inf
            # (xlogy(0·x, −x), whose ∂/∂first is log(−x)), as 0·x is 0 for every x.
            continue
        if magnitude:
            local = node.graph.apply("abs", local) if isinstance(local, Node) else abs(local)
        if _ones(adjoint):  # the seed spread over an array (as sum sends it): no product
            contribution = node.graph.apply("broadcast_to", local, attrs=(shapes[node],))
        elif isinstance(local, int | float) and local == 1:  # add's, sub's first: g itself
            contribution = adjoint
        else:
            contribution = _times(adjoint, local)
        if shapes[inp] != shapes[node]:
            contribution = node.graph.apply("sum_to", contribution, attrs=(shapes[inp],))
        out.append((k, contribution, local))
    return out
