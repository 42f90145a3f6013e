"""Syntax tree to graph: resolve names and build nodes through the hash-consing constructor.

A name is, in order: a binding made earlier in the program, a constant (`pi`, `e`), a function
(an error unless it is called), or else a free variable. Called names are looked up in the
registry, so a new primitive needs no change here. The walk uses an explicit stack.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from functools import reduce

from . import syntax as ast
from .graph import Graph, Node, toposort
from .registry import REGISTRY, public_names
from .source import GradcliError, Source

CONSTANTS = {"pi": math.pi, "e": math.e}

_OPERATORS = {
    (prim.operator.symbol, prim.arity): name
    for name, prim in REGISTRY.items()
    if prim.operator is not None
}


@dataclass(frozen=True)
class Lowered:
    """A program as a graph: its output node and the free variables it depends on."""

    graph: Graph
    output: Node
    variables: dict[str, Node]  # in order of first appearance in the source
    bindings: dict[str, Node]
    source: Source


def lower(program: ast.Program) -> Lowered:
    graph = Graph()
    scope: dict[str, Node] = {}
    free: dict[str, Node] = {}
    output: Node | None = None
    try:
        for stmt in program.statements:
            if isinstance(stmt, ast.Assign):
                if not isinstance(stmt.target, ast.Name):
                    raise GradcliError(
                        "the left side of '=' must be a name",
                        stmt.target.span,
                        hint="bind a value to a name, as in a = x^2",
                    )
                output = _lower_expr(stmt.value, graph, scope, free)
                scope[stmt.target.id] = output
            else:
                output = _lower_expr(stmt, graph, scope, free)
    except GradcliError as err:
        raise err.with_source(program.source) from None
    assert output is not None  # the grammar requires one statement
    used = set(toposort([output]))
    variables = {name: node for name, node in free.items() if node in used}
    return Lowered(graph, output, variables, scope, program.source)


def _lower_expr(
    expr: ast.Expr, graph: Graph, scope: dict[str, Node], free: dict[str, Node]
) -> Node:
    stack: list[tuple[ast.Expr, bool]] = [(expr, False)]
    out: list[Node] = []
    while stack:
        node, ready = stack.pop()
        match node:
            case ast.Number():
                out.append(graph.const(node.value, node.span))
            case ast.Name():
                out.append(_resolve(node, graph, scope, free))
            case _ if not ready:
                if isinstance(node, ast.Call):
                    _check_call(node, scope, free)
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(ast.children(node)))
            case ast.Unary():
                if node.op == "-":
                    out[-1] = graph.apply(_OPERATORS["-", 1], out[-1], span=node.span)
            case ast.Binary():
                right = out.pop()
                out[-1] = graph.apply(_OPERATORS[node.op, 2], out[-1], right, span=node.span)
            case ast.Call():
                count = len(node.args)
                args = out[len(out) - count :]
                del out[len(out) - count :]
                out.append(_call(node, args, graph))
    return out[0]


def _resolve(name: ast.Name, graph: Graph, scope: dict[str, Node], free: dict[str, Node]) -> Node:
    if name.id in scope:
        return scope[name.id]
    if name.id in CONSTANTS:
        return graph.const(CONSTANTS[name.id], name.span)
    prim = REGISTRY.get(name.id)
    if prim is not None and prim.public:
        raise GradcliError(
            f"'{name.id}' is a function, not a value",
            name.span,
            hint=f"call it with arguments, as in {prim.signature()}",
        )
    node = free.get(name.id)
    if node is None:
        node = free[name.id] = graph.var(name.id, name.span)
    return node


def _check_call(call: ast.Call, scope: dict[str, Node], free: dict[str, Node]) -> None:
    prim = REGISTRY.get(call.func)
    if prim is None or not prim.public:
        hint = None
        close = difflib.get_close_matches(call.func, public_names(), n=1, cutoff=0.6)
        if close:
            hint = f"did you mean '{close[0]}'?"
        elif call.func in scope or call.func in free or call.func in CONSTANTS:
            hint = f"'{call.func}' is a value; to multiply, write {call.func}*(…)"
        else:
            hint = (
                f"the functions are {', '.join(public_names())}; "
                f"to multiply by {call.func}, write {call.func}*(…)"
            )
        raise GradcliError(f"unknown function '{call.func}'", call.func_span, hint=hint)
    count = len(call.args)
    if count < prim.arity or (count > prim.arity and not prim.variadic):
        wanted = f"{'at least ' if prim.variadic else ''}{prim.arity}"
        plural = "" if prim.arity == 1 and not prim.variadic else "s"
        raise GradcliError(
            f"{call.func} takes {wanted} argument{plural}, "
            f"but {count} {'was' if count == 1 else 'were'} given",
            call.span,
            hint=f"call it as {prim.signature()}",
        )


def _call(call: ast.Call, args: list[Node], graph: Graph) -> Node:
    prim = REGISTRY[call.func]
    if prim.variadic and len(args) > prim.arity:
        return reduce(lambda a, b: graph.apply(call.func, a, b, span=call.span), args)
    return graph.apply(call.func, *args, span=call.span)
