"""Graph to text in gradcli's own language, so that what is printed parses back to the same graph.

A node used more than once becomes a binding (`t1 = …`) printed before its first use, so a graph
with heavy sharing prints in linear size. Parentheses come from the operators' precedence in the
registry. The walk emits text pieces from an explicit stack, so depth costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from ..graph.nodes import Node, toposort
from ..primitives import REGISTRY

_ATOM = 10  # precedence of names, numbers and calls


def to_source(
    output: Node,
    reserved: Iterable[str] = (),
    compact: bool = False,
    hints: Mapping[Node, str] | None = None,
) -> str:
    """A program whose value is `output`: its bindings (see `bindings`), then the expression."""
    lines, names = bindings(output, reserved, compact, hints)
    text = [f"{name} = {expression(node, names)}" for name, node in lines]
    return "\n".join([*text, expression(output, names)])


def bindings(
    output: Node,
    reserved: Iterable[str] = (),
    compact: bool = False,
    hints: Mapping[Node, str] | None = None,
    max_depth: int | None = None,
) -> tuple[list[tuple[str, Node]], dict[Node, str]]:
    """The bindings that print `output` in linear size: (name, node) pairs, in order, and the
    name of each bound node.

    Every node used more than once is bound, which keeps the text linear in the graph; with
    `compact`, only those whose binding makes the text shorter (`t1 = x*y` used twice is not
    worth it; `t1 = sqrt(x^2 + y^2)` is). `hints` names nodes (the program's own bindings):
    a bound node takes its hint, if no variable or earlier binding has that name. With
    `max_depth`, a node nested that deep in unbound operations is bound too.
    """
    hints = hints or {}
    order = toposort([output])
    uses: dict[Node, int] = {}
    for node in order:
        for inp in node.inputs:
            uses[inp] = uses.get(inp, 0) + 1
    taken = set(reserved) | {n.name for n in order if n.op == "variable"}
    names: dict[Node, str] = {}
    length: dict[Node, int] = {}  # of each node's expression, given the bindings made so far
    lines = []
    counter = 0
    depth: dict[Node, int] = {}
    for node in order:
        if compact:
            length[node] = _length(node, names, length)
        depth[node] = 1 + max((depth[i] for i in node.inputs if i not in names), default=-1)
        deep = max_depth is not None and depth[node] >= max_depth
        if node is output or not node.inputs or (uses.get(node, 0) < 2 and not deep):
            continue
        hint = hints.get(node)
        # pi and e print as the constants: a binding that shadows them is renamed.
        if hint is not None and hint not in taken and hint not in ("pi", "e"):
            name = hint
        else:
            hint = None
            name = f"t{counter + 1}"
            while name in taken:
                counter += 1
                name = f"t{counter + 1}"
        if compact and not deep:
            inline = uses[node] * length[node]
            bound = len(name) + 3 + length[node] + 1 + uses[node] * len(name)
            if bound >= inline:
                continue
        if hint is None:
            counter += 1
        taken.add(name)
        lines.append((name, node))
        names[node] = name
    return lines, names


def _length(node: Node, names: dict[Node, str], length: dict[Node, int]) -> int:
    """The length of `expression(node, names)`, from the lengths of its inputs'."""
    if node.op == "const":
        return len(_constant(node.value))
    if node.op == "variable":
        return len(node.name)
    total = 0
    for piece in _pieces(node, names):
        if isinstance(piece, str):
            total += len(piece)
        else:
            total += len(names[piece]) if piece in names else length[piece]
    return total


class Style:
    """How to write nodes: gradcli's language here; LaTeX and Python in formats.py."""

    def leaf(self, node: Node) -> str:
        return _constant(node.value) if node.op == "const" else node.name

    def name(self, name: str) -> str:
        return name

    def pieces(self, node: Node, names: dict[Node, str]) -> list[Node | str]:
        return _pieces(node, names)


LANGUAGE = Style()


def expression(
    root: Node,
    names: dict[Node, str] | None = None,
    style: Style = LANGUAGE,
    limit: int | None = None,
) -> str:
    """One expression for `root`; nodes in `names` are written as those names. With `limit`,
    the walk stops once that many characters are written (a label need not be whole)."""
    names = names or {}
    out: list[str] = []
    written = 0
    stack: list[Node | str] = [root]
    while stack and (limit is None or written <= limit):
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif item is not root and item in names:
            out.append(style.name(names[item]))
        elif not item.inputs:
            out.append(style.leaf(item))
        else:
            stack.extend(reversed(style.pieces(item, names)))
            continue
        written += len(out[-1])
    return "".join(out)


def _pieces(node: Node, names: dict[Node, str]) -> list[Node | str]:
    """The text pieces and child nodes of `node`, left to right, with the parentheses it needs."""
    prim = REGISTRY[node.op]
    op = prim.operator
    if node.op == "stack":
        return ["[", *_joined(node.inputs), "]"]
    if node.op == "gather":  # x[:, i, j]; take(x, i, axis=-1) where the axis counts from the end
        target, *indices = node.inputs
        (axis,) = node.attrs
        if axis < 0:
            return ["take(", target, ", ", indices[0], f", axis={axis})"]
        return [*_wrap(target, _precedence(target, names) < _ATOM), "[", ":, " * axis,
                *_joined(indices), "]"]  # fmt: skip
    if node.op == "tensordot":  # numpy's spelling: axes=[[1, 0], [0, 2]], or 0 for none
        pairs = [list(map(int, k)) for k in node.attrs]
        axes = str(pairs) if pairs[0] else "0"
        return ["tensordot(", *_joined(list(node.inputs)), f", axes={axes})"]
    if node.op == "einsum":  # the subscripts first, as numpy's
        return [f"einsum('{node.attrs[0]}', ", *_joined(list(node.inputs)), ")"]
    if node.op == "index":
        (target,) = node.inputs
        key = ", ".join(_subscript(k) for k in node.attrs[0])
        return [*_wrap(target, _precedence(target, names) < _ATOM), f"[{key}]"]
    if op is None:
        if not prim.public and prim.written_as is None:
            raise ValueError(f"{node.op} has no written form in the language")
        extra = [
            f"{param}={_attribute(value)}"
            for (param, default), value in zip(prim.attr_params, node.attrs, strict=True)
            if value != default
        ]
        name = prim.written_as or node.op
        if prim.listed:  # concatenate([a, b], axis=1)
            return [f"{name}([", *_joined(node.inputs), "]", *(f", {e}" for e in extra), ")"]
        return [f"{name}(", *_joined([*node.inputs, *extra]), ")"]
    if op.assoc == "prefix":
        (arg,) = node.inputs
        symbol = f"{op.symbol} " if op.symbol.isalpha() else op.symbol  # not x, -x
        return [symbol, *_wrap(arg, _precedence(arg, names) < op.precedence)]
    left, right = node.inputs
    lp, rp = _precedence(left, names), _precedence(right, names)
    if op.assoc == "right":  # x^y: the right operand may be unary, as in 2^-x
        wrap_left, wrap_right = lp <= op.precedence, rp < op.precedence - 1
    elif op.assoc == "none":  # (a < b) < c is not the chain a < b < c
        wrap_left, wrap_right = lp <= op.precedence, rp <= op.precedence
    else:
        wrap_left, wrap_right = lp < op.precedence, rp <= op.precedence
    symbol = f" {op.symbol} " if op.precedence <= 1 else op.symbol
    return [*_wrap(left, wrap_left), symbol, *_wrap(right, wrap_right)]


def _attribute(value) -> str:
    """An attribute as a program writes it: 1, or [2, 3] for a shape or a list of axes."""
    if isinstance(value, tuple):
        return "[" + ", ".join(str(int(v)) for v in value) + "]"
    if isinstance(value, str):
        return f"'{value}'"
    return str(int(value))


def _joined(items: list) -> list[Node | str]:
    out: list[Node | str] = []
    for i, item in enumerate(items):
        out += [", ", item] if i else [item]
    return out


def _subscript(part) -> str:
    if isinstance(part, tuple):  # ("slice", start, stop, step)
        start, stop, step = ("" if p is None else str(p) for p in part[1:])
        return f"{start}:{stop}" + (f":{step}" if step else "")
    return str(part)


def _wrap(node: Node, parens: bool) -> list[Node | str]:
    return ["(", node, ")"] if parens else [node]


def _precedence(node: Node, names: dict[Node, str]) -> int:
    if node in names or node.op == "variable":
        return _ATOM
    if node.op == "const":
        if np.ndim(node.value):
            return _ATOM
        return 3 if math.copysign(1.0, node.value) < 0 else _ATOM
    op = REGISTRY[node.op].operator
    return op.precedence if op is not None else _ATOM


def _constant(value) -> str:
    """A number, or an array literal of numbers."""
    if np.ndim(value) == 0:
        return _number(float(value))
    stack: list = [np.asarray(value)]
    out: list[str] = []
    while stack:  # iterative, like every pass over user input
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif item.ndim == 0:
            out.append(_number(float(item)))
        else:
            stack.append("]")
            for i in reversed(range(len(item))):
                stack.append(item[i])
                if i:
                    stack.append(", ")
            stack.append("[")
    return "".join(out)


def _number(value: float) -> str:
    if value == math.pi:
        return "pi"
    if value == math.e:
        return "e"
    # A whole number below 2^64 is printed exactly, digit by digit: 2^54 is 18014398509481984,
    # not 1.8014398509481984e+16, and reads back as the same float.
    if value.is_integer() and abs(value) < 2.0**64:
        return str(int(value)) if value or math.copysign(1.0, value) > 0 else "-0"
    return repr(value)
