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
class Name:
    id: str
    span: Span


@dataclass(slots=True, eq=False)
class Unary:
    op: str  # "+" or "-"
    operand: Expr
    span: Span


@dataclass(slots=True, eq=False)
class Binary:
    op: str  # "+", "-", "*", "/", "^"
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@dataclass(slots=True, eq=False)
class Call:
    func: str
    func_span: Span
    args: list[Expr]
    span: Span


@dataclass(slots=True, eq=False)
class Assign:
    target: Expr  # checked to be a Name when names are resolved
    value: Expr
    span: Span


Expr = Number | Name | Unary | Binary | Call
Statement = Expr | Assign


@dataclass(slots=True, eq=False)
class Program:
    statements: list[Statement]
    source: Source


def children(node: Expr) -> list[Expr]:
    """The sub-expressions of `node`, left to right."""
    match node:
        case Unary():
            return [node.operand]
        case Binary():
            return [node.left, node.right]
        case Call():
            return node.args
        case _:
            return []
