"""The abstract syntax tree that the parser produces and `lower` turns into a graph.

The tree is plain data with a span on every node. Nothing here walks it; passes over it live in
their own modules and are iterative, so a 20,000-deep nesting is just a long chain of objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from .source import Source, Span


@dataclass(slots=True, eq=False)
class Number:
    value: float
    span: Span


@dataclass(slots=True, eq=False)
class String:
    """Text within quotes: only an argument of the functions that take one (einsum's subscripts,
    norm's ord), never a value."""

    value: str
    span: Span


@dataclass(slots=True, eq=False)
class Name:
    id: str
    span: Span


@dataclass(slots=True, eq=False)
class Unary:
    op: str  # "+", "-" or "not"
    operand: Expr
    span: Span


@dataclass(slots=True, eq=False)
class Binary:
    op: str  # "+", "-", "*", "/", "^", "@", a comparison ("<", "==", …), "and" or "or"
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@dataclass(slots=True, eq=False)
class Keyword:
    """`name = value` among a call's arguments; `target` is checked to be a Name."""

    target: Expr
    value: Expr
    span: Span


@dataclass(slots=True, eq=False)
class Call:
    func: str
    func_span: Span
    args: list[Expr | Keyword]
    span: Span


@dataclass(slots=True, eq=False)
class Array:
    """An array literal: [1, 2, 3], [[1, 2], [3, 4]], [x, y]."""

    elements: list[Expr]
    span: Span


@dataclass(slots=True, eq=False)
class Slice:
    """start:stop:step inside an index; each part may be missing."""

    start: Expr | None
    stop: Expr | None
    step: Expr | None
    span: Span


@dataclass(slots=True, eq=False)
class Index:
    """x[i], x[1:3], x[0, :]."""

    target: Expr
    subscripts: list[Expr | Slice]
    span: Span


@dataclass(slots=True, eq=False)
class Assign:
    target: Expr  # checked to be a Name when names are resolved
    value: Expr
    span: Span


Expr = Number | String | Name | Unary | Binary | Call | Array | Index
Statement = Expr | Assign


@dataclass(slots=True, eq=False)
class Program:
    statements: list[Statement]
    source: Source


@dataclass(slots=True, eq=False)
class NewAxis:
    """`None` (or `newaxis`) among the subscripts of an index: a new axis of length 1."""

    span: Span


def children(node: Expr) -> list[Expr]:
    """The sub-expressions of `node`, left to right (a keyword's value, a slice's parts)."""
    match node:
        case Unary():
            return [node.operand]
        case Binary():
            return [node.left, node.right]
        case Call():
            return [a.value if isinstance(a, Keyword) else a for a in node.args]
        case Array():
            return node.elements
        case Index():
            out = [node.target]
            for sub in node.subscripts:
                if isinstance(sub, Slice):
                    out += [p for p in (sub.start, sub.stop, sub.step) if p is not None]
                elif not isinstance(sub, NewAxis):
                    out.append(sub)
            return out
        case _:
            return []
