"""Forward mode: the directional derivative of a node, as new nodes of the same graph.

The walk goes the other way from reverse mode: in topological order, each node's tangent is built
from its inputs' tangents, with the same partial derivatives for the elementwise primitives and a
jvp rule from the registry for the others. One pass gives the derivative along one direction (or,
evaluated with batched tangents, along many).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..graph.nodes import Node, toposort
from ..graph.shapes import infer_shapes
from ..primitives import REGISTRY, Shape
from .reverse import zero_rule

TANGENT = "·tangent"  # the suffix of a tangent variable's name: no program can write it


def jvp(
    output: Node, tangents: Mapping[Node, Node], var_shapes: Mapping[str, Shape] | None = None
) -> Node:
    """The tangent of `output` when each node in `tangents` moves along its tangent.

    Nodes without a tangent are held fixed. The result has the shape of `output`.
    """
    return jvps([output], tangents, var_shapes)[0]


def jvps(
    outputs: list[Node],
    tangents: Mapping[Node, Node],
    var_shapes: Mapping[str, Shape] | None = None,
) -> list[Node]:
    """The tangents of several outputs, from one forward pass over their shared graph."""
    graph = outputs[0].graph
    order = toposort(outputs)
    shapes = infer_shapes(order, var_shapes)
    tangent: dict[Node, Node] = dict(tangents)
    for node in order:
        if node in tangent or not node.inputs:
            continue
        moving = [tangent.get(i) for i in node.inputs]
        if all(t is None for t in moving):
            continue
        prim = REGISTRY[node.op]
        with graph.deriving(node):
            if prim.jvp is not None or prim.partials is None:
                total = prim.jvp(node, moving, shapes.__getitem__)
            else:
                total = None
                for t, partial in zip(moving, prim.partials, strict=True):
                    local = None if t is None else partial(node, *node.inputs)
                    if local is not None and not zero_rule(local):  # as in reverse mode
                        term = t * local
                        total = term if total is None else total + term
                smaller = any(
                    t is not None and shapes[i] != shapes[node]
                    for i, t in zip(node.inputs, moving, strict=True)
                )
                if total is not None and smaller:
                    # A broadcast input: its tangent may not fill the output, so spread it.
                    total = graph.apply("broadcast_to", total, attrs=(shapes[node],))
        if total is not None:
            tangent[node] = total
    zero = graph.const(0.0)
    return [
        tangent.get(o)
        or (zero if shapes[o] == () else graph.apply("broadcast_to", zero, attrs=(shapes[o],)))
        for o in outputs
    ]
