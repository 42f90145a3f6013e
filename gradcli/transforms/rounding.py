"""A running bound on rounding errors: how far a computed value can be from the exact one.

The gradient check compares two computed numbers, and each carries rounding error. Where a
program cancels (0.5·x·(1 + tanh(u)) at x = -6, where 1 + tanh(u) is 4e-10 made from numbers of
size 1), the forward values carry relative errors far above ε, and every derivative computed from
them inherits those errors: the autograd value and the complex-step reference may then differ by
more than rtol although both rules are right. Bounding |g − r| needs a bound on each.

The bound is Wilkinson's running error analysis, built as graph nodes by one forward walk: a
node v computed from inputs a, b, … has

    E(v) = own(v) + Σ |∂v/∂a|·E(a)

in units of ε, where own(v) is the rounding of the operation itself (|v| for one correctly
rounded operation, Σ|x|·log₂ n for a sum of n terms, k·|A|·|B| for a matrix product with inner
dimension k, 0 for moving data) and variables and constants are exact (E = 0). Because every
derivative is a graph, the same walk over the gradient graph bounds the rounding error of the
autograd gradient, cancellation in the forward values included. It is a first-order bound: it
holds while every relative error is small, which is where a comparison means something.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..graph.nodes import Node, collector_paused, toposort
from ..graph.shapes import infer_shapes
from ..primitives import REGISTRY, Shape
from ..primitives.einsum import summed_terms

# Operations that move or copy numbers: no rounding of their own.
EXACT = frozenset(
    {"neg", "abs", "transpose", "reshape", "index", "unindex", "stack", "broadcast_to", "sign",
     "heaviside", "equal", "relu", "max", "min", "amax", "amin", "top_gap_max", "top_gap_min",
     "top_pair_max", "top_pair_min"}
)  # fmt: skip


def error_bounds(
    outputs: Sequence[Node], var_shapes: Mapping[str, Shape] | None = None
) -> list[Node]:
    """For each output, a node bounding its rounding error in units of ε (to first order),
    element by element, with the output's shape."""
    graph = outputs[0].graph
    with collector_paused():
        order = toposort(outputs)
        shapes = infer_shapes(order, var_shapes)
        bound: dict[Node, Node] = {}
        for node in order:
            if not node.inputs:
                continue
            prim = REGISTRY[node.op]
            moving = [bound.get(i) for i in node.inputs]
            with graph.deriving(node):
                own = _own(node, prim, shapes)
                carried = None
                if any(e is not None for e in moving):
                    carried = _carried(node, prim, moving, shapes)
                if own is not None:  # |v|-shaped: a sum with it has the node's shape
                    bound[node] = own if carried is None else own + carried
                elif carried is not None:
                    bound[node] = _fill(carried, shapes[node])
        zero = graph.const(0.0)
        return [bound.get(o) or _fill(zero, shapes[o]) for o in outputs]


def _fill(value: Node, shape: Shape) -> Node:
    """`value` spread to `shape` (an input's bound can be smaller, before broadcasting)."""
    return value if shape == () else value.graph.apply("broadcast_to", value, attrs=(shape,))


def _terms(node: Node, shapes: Mapping[Node, Shape]) -> int:
    """How many input elements make one element of a reduction's output."""
    x = node.inputs[0]
    return max(1, math.prod(shapes[x]) // max(1, math.prod(shapes[node])))


def _own(node: Node, prim, shapes: Mapping[Node, Shape]) -> Node | None:
    """The rounding of the operation itself, in units of ε."""
    if node.op in EXACT:
        return None
    if node.op in ("sum", "mean", "sum_to"):  # pairwise summation: log₂ n roundings of Σ|x|
        size = node.graph.apply(node.op, _abs(node.inputs[0]), attrs=node.attrs)
        return size * float(math.ceil(math.log2(_terms(node, shapes))) + 1)
    if node.op == "matmul":  # k products and k - 1 sums of |a|·|b| terms
        a, b = node.inputs
        inner = shapes[a][-1] if shapes[a] else 1
        return node.graph.apply("matmul", _abs(a), _abs(b)) * float(inner + 1)
    if node.op == "tensordot":  # as matmul: k products and k - 1 sums of |a|·|b| terms
        a, b = node.inputs
        inner = math.prod(shapes[a][k % len(shapes[a])] for k in node.attrs[0])
        size = node.graph.apply("tensordot", _abs(a), _abs(b), attrs=node.attrs)
        return size * float(max(1, inner) + 1)
    if node.op == "einsum":  # k sums of products of m factors: k + m roundings of Σ|terms|
        terms = summed_terms(node.attrs[0], tuple(shapes[x] for x in node.inputs))
        size = node.graph.apply("einsum", *map(_abs, node.inputs), attrs=node.attrs)
        return size * float(terms + len(node.inputs))
    if node.op == "polyval":  # Horner's rule: 2n roundings of Σ|p_k|·|x|^k, cancelled or not
        p, x = node.inputs
        return node.graph.apply("polyval", _abs(p), _abs(x)) * float(2 * shapes[p][0])
    if prim.partials is None and node.inputs and shapes[node.inputs[0]]:
        # a product or reduction over n elements: at most n + 2 roundings of its result
        return _abs(node) * float(_terms(node, shapes) + 2)
    return _abs(node)


def _carried(node: Node, prim, moving: list[Node | None], shapes: Mapping[Node, Shape]):
    """|J|·E: the inputs' errors carried through the operation."""
    if prim.partials is not None:
        total = None
        for e, partial in zip(moving, prim.partials, strict=True):
            if e is None:
                continue
            local = partial(node, *node.inputs)
            if local is None:
                continue
            term = e * (_abs(local) if isinstance(local, Node) else abs(float(local)))
            total = term if total is None else total + term
        return total
    rule = prim.error_jvp or prim.jvp
    # Without `error_jvp`, J has no negative entries (sums, moves, the weights of max and of
    # logsumexp), and |J|·E is J·E, the primitive's forward rule.
    return rule(node, moving, shapes.__getitem__)


def _abs(node: Node) -> Node:
    return node.graph.apply("abs", node)
