"""Reverse mode: the gradient of a node with respect to others, as new nodes of the same graph.

The walk is the one the tutorials teach: visit nodes in reverse topological order (from
`toposort`, which counts uses, so a node is visited only after every use of it has sent its
contribution), add up the contributions a node received into its adjoint, and send each input
`adjoint × local derivative`. Each node is visited once, so the cost is linear in the graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import reduce
from operator import add

from .graph import Node, toposort
from .registry import REGISTRY, Shape
from .shapes import infer_shapes


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
    order = toposort([output, *wrt])
    shapes = infer_shapes(order, var_shapes)
    targets = set(wrt)
    live = set()  # nodes through which some target reaches the output
    for node in order:
        if node in targets or any(i in live for i in node.inputs):
            live.add(node)

    totals: dict[Node, Node] = {}
    received: dict[Node, list[Node]] = {}
    if output in live:
        seed = graph.const(1.0)
        if shapes[output] != ():
            seed = graph.apply("broadcast_to", seed, attrs=(shapes[output],))
        received[output] = [seed]
    for node in reversed(order):
        contributions = received.pop(node, None)
        if contributions is None:
            continue
        adjoint = reduce(add, contributions)
        if node in targets:
            totals[node] = adjoint
        if not node.inputs:
            continue
        with graph.deriving(node):
            for inp, contribution in _vjp(node, adjoint, shapes, live, magnitude):
                if contribution is not None:
                    received.setdefault(inp, []).append(contribution)

    zero = graph.const(0.0)
    result = []
    for w in wrt:
        total = totals.get(w)
        if total is None:  # the output does not depend on w
            shape = shapes[w]
            total = zero if shape == () else graph.apply("broadcast_to", zero, attrs=(shape,))
        result.append(total)
    return result


def _vjp(
    node: Node, adjoint: Node, shapes: Mapping[Node, Shape], live: set[Node], magnitude: bool
) -> list[tuple[Node, Node | None]]:
    """The contribution `node` sends to each live input, given its adjoint (None: zero)."""
    prim = REGISTRY[node.op]
    if prim.vjp is not None:
        # A vjp is |J|ᵀ g for a non-negative adjoint when J has no negative entries (sums,
        # indexing, reshapes); the others state their |J|ᵀ g as `magnitude_vjp`.
        rule = prim.magnitude_vjp if magnitude and prim.magnitude_vjp else prim.vjp
        pairs = zip(node.inputs, rule(node, adjoint, shapes.__getitem__), strict=True)
        # A rule may give a function for a contribution that is costly or unsupported: it is
        # called only when that input needs its adjoint.
        return [(inp, c() if callable(c) else c) for inp, c in pairs if inp in live]
    out = []
    for inp, partial in zip(node.inputs, prim.partials, strict=True):
        if inp not in live:
            continue
        local = partial(node, *node.inputs)
        if local is None:
            continue
        if magnitude:
            local = node.graph.apply("abs", local) if isinstance(local, Node) else abs(local)
        contribution = adjoint * local
        if shapes[inp] != shapes[node]:
            contribution = node.graph.apply("sum_to", contribution, attrs=(shapes[inp],))
        out.append((inp, contribution))
    return out
