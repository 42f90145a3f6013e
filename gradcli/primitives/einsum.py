"""einsum, numpy's: the products of arrays summed over the letters their subscripts name.

The subscripts are checked when the call is lowered and kept in numpy's explicit form,
'ij,jk->ik' (the implicit form, 'ij,jk', gets numpy's output: the letters named once, in
alphabetical order); an ellipsis stays as written, and each rule spells it out in letters once
the shapes are known. A letter of length 1 broadcasts against the same letter elsewhere, as in
numpy. Every derivative is an einsum again, as in JAX: an operand's adjoint is the einsum of the
output's adjoint with the other operands, with an identity matrix for each letter the operand
repeats (its adjoint lies on that diagonal) and a vector of ones for each letter only it names
(every element it sums receives the adjoint).
"""

from __future__ import annotations

import math
import string
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, register
from ._common import ShapeOf, _abs, _apply

_LETTERS = string.ascii_letters


def _explicit(subscripts: str, count: int) -> str:
    """The subscripts in numpy's explicit form, checked against the number of operands."""
    text = subscripts.replace(" ", "")
    if text.count("->") > 1:
        raise ValueError("einsum's subscripts have one '->', before the output's letters")
    inputs, arrow, out = text.partition("->")
    terms = inputs.split(",")
    if len(terms) != count:
        raise ValueError(
            f"einsum's subscripts name {len(terms)} operand{'s' * (len(terms) != 1)}, but "
            f"{count} {'is' if count == 1 else 'are'} given"
        )
    for term in [*terms, out]:
        body = term.replace("...", "", 1)
        wrong = next((c for c in body if c not in _LETTERS), None)
        if wrong is not None:
            raise ValueError(
                f"einsum's subscripts are letters and '...', not {wrong!r} in {term!r}"
            )
    dotted = any("..." in t for t in terms)
    if not arrow:  # numpy's implicit output: the letters named once, in alphabetical order
        letters = "".join(t.replace("...", "") for t in terms)
        once = sorted(c for c in set(letters) if letters.count(c) == 1)  # A-Z before a-z
        return ",".join(terms) + "->" + "..." * dotted + "".join(once)
    body = out.replace("...", "")
    twice = next((c for c in body if body.count(c) > 1), None)
    if twice is not None:
        raise ValueError(f"einsum's output names {twice!r} twice")
    missing = next((c for c in body if not any(c in t for t in terms)), None)
    if missing is not None:
        raise ValueError(f"einsum's output names {missing!r}, which no operand does")
    if "..." in out and not dotted:
        raise ValueError("einsum's output has '...', which no operand does")
    return text


def _spelled(subscripts: str, shapes: tuple[Shape, ...]) -> tuple[list[str], str, dict[str, int]]:
    """Each operand's letters and the output's, '...' spelled out in letters no one uses (right
    aligned, as numpy broadcasts), and each letter's length; ValueError on shapes that differ."""
    inputs, _, out = subscripts.partition("->")
    terms = inputs.split(",")
    spare = [c for c in _LETTERS if c not in subscripts]
    ranks = []
    for k, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        named = len(term.replace("...", ""))
        if len(shape) < named or ("..." not in term and len(shape) != named):
            raise ValueError(
                f"einsum's {term!r} names {named} ax{'i' if named == 1 else 'e'}s, but operand "
                f"{k + 1} has shape {shape}"
            )
        ranks.append(len(shape) - named)
    rank = max(ranks, default=0)
    if rank > len(spare):
        raise ValueError("einsum's '...' stands for more axes than there are letters")
    if rank and "..." not in out:
        raise ValueError("einsum keeps the axes of '...': write '...' in the output too")
    dots = "".join(spare[:rank])
    spelled = [
        t.replace("...", dots[rank - r :] if r else "") for t, r in zip(terms, ranks, strict=True)
    ]
    sizes: dict[str, int] = {}
    owner: dict[str, int] = {}
    for k, (term, shape) in enumerate(zip(spelled, shapes, strict=True)):
        own: dict[str, int] = {}
        for c, n in zip(term, shape, strict=True):
            if own.setdefault(c, n) != n:
                raise ValueError(
                    f"einsum takes a diagonal over {c!r} of operand {k + 1}, whose axes differ "
                    f"in length: {shape}"
                )
            old = sizes.get(c)
            if old is None or old == 1:
                sizes[c], owner[c] = n, k
            elif n not in (1, old):
                raise ValueError(
                    f"einsum's {c!r} has length {old} in operand {owner[c] + 1} {shapes[owner[c]]} "
                    f"and {n} in operand {k + 1} {shape}"
                )
    return spelled, out.replace("...", dots), sizes


def _einsum_shape(*shapes_and_subscripts: Any) -> Shape:
    *shapes, subscripts = shapes_and_subscripts
    _, out, sizes = _spelled(subscripts, tuple(shapes))
    return tuple(sizes[c] for c in out)


def summed_terms(subscripts: str, shapes: tuple[Shape, ...]) -> int:
    """How many products each element of the output sums: the rounding bound's count."""
    _, out, sizes = _spelled(subscripts, shapes)
    return max(1, math.prod(sizes.values()) // max(1, math.prod(sizes[c] for c in out)))


def _einsum(*xs_and_subscripts: Any) -> Any:
    *xs, subscripts = xs_and_subscripts
    _spelled(subscripts, tuple(np.shape(x) for x in xs))  # folding calls this before shapes
    return np.einsum(subscripts, *xs, optimize=len(xs) > 2)


def _einsum_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """Each operand's adjoint: g with the others, its diagonals and sums spelled out."""
    (subscripts,), graph = node.attrs, g.graph
    shapes = tuple(shape_of(x) for x in node.inputs)
    terms, out, sizes = _spelled(subscripts, shapes)
    adjoints = []
    for k, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        spare = iter(c for c in _LETTERS if c not in sizes)
        parts = [(out, g, tuple(sizes[c] for c in out))] + [
            (t, size(x), s)
            for j, (t, x, s) in enumerate(zip(terms, node.inputs, shapes, strict=True))
            if j != k
        ]
        named = set(out).union(*(t for j, t in enumerate(terms) if j != k))
        result = ""
        for c in term:
            if c in result:  # a repeated letter: the adjoint lies on the diagonal
                fresh = next(spare)
                n = sizes[c]
                parts.append((c + fresh, graph.const(np.eye(n)), (n, n)))
                result += fresh
                continue
            if c not in named:  # summed here alone: each element it sums receives g
                parts.append((c, graph.const(np.ones(sizes[c])), (sizes[c],)))
            result += c
        spec = ",".join(t for t, _, _ in parts) + "->" + result
        adjoint = _apply("einsum", *(x for _, x, _ in parts), attrs=(spec,))
        full = _einsum_shape(*(s for _, _, s in parts), spec)
        # A letter of length 1 here that broadcast against a longer one sums its adjoint.
        adjoints.append(adjoint if full == shape else _apply("sum_to", adjoint, attrs=(shape,)))
    return tuple(adjoints)


def _einsum_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    """Multilinear: the sum over operands of the einsum with that operand's tangent."""
    terms = [
        _apply("einsum", *node.inputs[:k], t, *node.inputs[k + 1 :], attrs=node.attrs)
        for k, t in enumerate(ts)
        if t is not None
    ]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _einsum_batched(args, flags, items, out, subscripts):
    terms, result, sizes = _spelled(subscripts, tuple(items))
    batch = next(c for c in _LETTERS if c not in sizes)
    lettered = [batch + t if f else t for t, f in zip(terms, flags, strict=True)]
    return np.einsum(",".join(lettered) + "->" + batch + result, *args, optimize=len(args) > 2)


def _einsum_call(call: Any) -> Node:
    """einsum('ij,jk->ik', a, b): the subscripts first, as a string, then the operands."""
    usage = "call it as einsum('ij,jk->ik', a, b): the subscripts, then the operands"
    if call.keywords:
        name = next(iter(call.keywords))
        raise call.error(f"einsum takes no argument named {name}", call.keyword_spans[name])
    if not call.args or isinstance(call.args[0], Node):
        span = call.arg_spans[0] if call.args else None
        raise call.error("einsum's first argument is its subscripts, a string", span, usage)
    text, *operands = call.args
    for operand, span in zip(operands, call.arg_spans[1:], strict=True):
        if not isinstance(operand, Node):
            raise call.error("einsum takes one string, its subscripts: operands are arrays", span)
    if not operands:
        raise call.error("einsum needs an operand after its subscripts", hint=usage)
    try:
        subscripts = _explicit(text.value, len(operands))
    except ValueError as err:
        raise call.error(str(err), text.span, usage) from None
    return call.graph.apply("einsum", *operands, attrs=(subscripts,), span=call.call.span)


register(Primitive(
    "einsum", 1, _einsum,
    "the products of the operands summed over the letters that the output does not name, as "
    "numpy's einsum('ij,jk->ik', a, b)",
    vjp=_einsum_vjp, jvp=_einsum_jvp, shape=_einsum_shape, batch=_einsum_batched, analytic=True,
    magnitude_vjp=lambda node, g, shape_of: _einsum_vjp(node, g, shape_of, _abs),
    variadic=True, lower=_einsum_call, strings=("subscripts",), params=("a", "b", "c"),
    attr_params=(("subscripts", ""),),
    latex=r"\operatorname{einsum}\left(\texttt{@subscripts}, @inputs\right)",
    python="np.einsum(@subscripts, @inputs)",
))  # fmt: skip
