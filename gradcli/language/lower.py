"""Syntax tree to graph: resolve names and build nodes through the hash-consing constructor.

A name is, in order: a binding made earlier in the program (or a parameter, inside a function),
a constant (`pi`, `e`), a function (an error unless it is called), or else a free variable.
Called names are looked up among the user's functions, then in the registry, so a new primitive
needs no change here. A user function, `f(t) = t^2 + 1`, is inlined at every call: its body is
lowered again with the parameters bound to the arguments. The walk uses an explicit stack, user
functions included, so neither deep nesting nor long chains of calls recurse.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import ChainMap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph.nodes import Graph, Node, toposort
from ..primitives import REGISTRY, public_names
from . import syntax as ast
from .calls import CallArgs, Text, call_builtin, kept
from .source import GradcliError, Source, Span

CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "True": 1.0, "False": 0.0}

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
    functions: Mapping[str, Function] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a key of `calls`
class Function:
    """A user-defined function: inlined at each call, with the bindings of its definition."""

    name: str
    params: tuple[str, ...]
    body: ast.Expr
    scope: Mapping[str, Node]  # the bindings visible where it was defined
    functions: Mapping[str, Function]  # the functions defined before it
    span: Span


class _AsOf(Mapping[str, Any]):
    """The bindings (or the functions) made before a point of the program. One table holds each
    name's values in the order they were made, with the statement that made them, and a view
    sees those made before its statement: a function's definition copies nothing (a copy of
    every earlier binding and definition for each new one was quadratic)."""

    __slots__ = ("limit", "table")

    def __init__(self, table: dict[str, list[tuple[int, Any]]], limit: int) -> None:
        self.table, self.limit = table, limit

    def __getitem__(self, name: str) -> Any:
        versions = self.table.get(name, ())
        k = bisect_left(versions, self.limit, key=lambda made: made[0])
        if k == 0:
            raise KeyError(name)
        return versions[k - 1][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self.table if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class _Made:
    """Marks where the body of a user function's call ends, on the lowering stack."""

    key: tuple


@dataclass(frozen=True)
class _Env:
    scope: Mapping[str, Node]
    functions: Mapping[str, Function]
    # The user functions being inlined, innermost first, as (function, the rest) pairs.
    inside: tuple | None = None


def lower(program: ast.Program) -> Lowered:
    graph = Graph()
    scope: dict[str, Node] = {}
    bound: dict[str, list[tuple[int, Node]]] = {}  # every binding, with its statement
    defined: dict[str, list[tuple[int, Function]]] = {}  # every definition, likewise
    free: dict[str, Node] = {}
    calls: dict[tuple, Node] = {}  # what each function gave for the same argument nodes
    output: Node | None = None
    try:
        for step, stmt in enumerate(program.statements):
            functions = _AsOf(defined, step)
            if isinstance(stmt, ast.Assign) and isinstance(stmt.target, ast.Call):
                fn = _define(stmt, _AsOf(bound, step), functions)
                defined.setdefault(fn.name, []).append((step, fn))
                continue
            if isinstance(stmt, ast.Assign):
                if not isinstance(stmt.target, ast.Name):
                    raise GradcliError(
                        "the left side of '=' must be a name, or a function such as f(t)",
                        stmt.target.span,
                        hint="bind a value to a name, as in a = x^2",
                    )
                output = _lower_expr(stmt.value, graph, _Env(scope, functions), free, calls)
                scope[stmt.target.id] = output
                bound.setdefault(stmt.target.id, []).append((step, output))
            else:
                output = _lower_expr(stmt, graph, _Env(scope, functions), free, calls)
    except GradcliError as err:
        raise err.with_source(program.source) from None
    if output is None:
        last = program.statements[-1]
        raise GradcliError(
            "the program only defines functions: it needs an expression to evaluate",
            last.span,
            hint="end it with an expression, such as f(x)",
            source=program.source,
        )
    used = set(toposort([output]))
    variables = {name: node for name, node in free.items() if node in used}
    functions = _AsOf(defined, len(program.statements))
    return Lowered(graph, output, variables, scope, program.source, functions)


def _define(stmt: ast.Assign, scope: _AsOf, functions: _AsOf) -> Function:
    head = stmt.target
    assert isinstance(head, ast.Call)
    if head.func in REGISTRY or head.func in CONSTANTS:
        raise GradcliError(
            f"'{head.func}' is a built-in function and cannot be redefined",
            head.func_span,
            hint="choose another name",
        )
    params = []
    for arg in head.args:
        if not isinstance(arg, ast.Name):
            raise GradcliError(
                "the parameters of a function are names, as in f(t, u) = t*u", arg.span
            )
        if arg.id in params:
            raise GradcliError(f"the parameter {arg.id} appears twice", arg.span)
        params.append(arg.id)
    return Function(head.func, tuple(params), stmt.value, scope, functions, head.span)


def _lower_expr(
    expr: ast.Expr, graph: Graph, env: _Env, free: dict[str, Node], calls: dict[tuple, Node]
) -> Node:
    """The node of `expr`. A user function's body is lowered once for each different tuple of
    argument nodes (`calls` remembers the rest), so that a function calling the previous one
    twice costs a walk per level, not one per path: linear, as its hash-consed graph is."""
    if isinstance(expr, ast.String):
        raise _misplaced(expr)  # a whole statement, or bound to a name
    stack: list[tuple[ast.Expr | _Made, _Env, bool]] = [(expr, env, False)]
    out: list[Node] = []
    while stack:
        node, env, ready = stack.pop()
        match node:
            case _Made():  # the body of a call just lowered: remember what it gave
                calls[node.key] = out[-1]
            case ast.Number():
                out.append(graph.const(node.value, node.span))
            case ast.Name():
                out.append(_resolve(node, graph, env, free))
            case ast.String():  # an argument of a function that takes one
                out.append(Text(node.value, node.span))  # type: ignore[arg-type]
            case _ if not ready:
                if isinstance(node, ast.Call):
                    _check_call(node, env, free)
                _check_strings(node, env)
                stack.append((node, env, True))
                stack.extend((child, env, False) for child in reversed(ast.children(node)))
            case ast.Unary():
                if node.op != "+":
                    out[-1] = graph.apply(_OPERATORS[node.op, 1], out[-1], span=node.span)
            case ast.Binary():
                right = out.pop()
                out[-1] = graph.apply(_OPERATORS[node.op, 2], out[-1], right, span=node.span)
            case _:
                count = len(ast.children(node))
                parts = out[len(out) - count :]
                del out[len(out) - count :]
                if isinstance(node, ast.Call) and node.func in env.functions:
                    body = _inline(node, parts, env)  # checks the call, as every call is
                    key = (env.functions[node.func], *parts)
                    if key in calls:
                        out.append(calls[key])
                    else:
                        stack.append((_Made(key), env, True))
                        stack.append(body)
                else:
                    out.append(_build(node, parts, graph))
    return out[0]


def _build(node: ast.Expr, parts: list[Node], graph: Graph) -> Node:
    """The node for an array literal, an index or a built-in call, from its lowered parts."""
    if isinstance(node, ast.Array):
        # Constants of different shapes are broadcast only when evaluated: concatenate takes
        # them as they are written.
        same = all(p.op == "const" for p in parts) and len({np.shape(p.value) for p in parts}) == 1
        return graph.apply("stack", *parts, span=node.span, fold=same or len(parts) == 0)
    if isinstance(node, ast.Index):
        gathered = _gathered(node, parts, graph)
        if gathered is not None:
            return gathered
        key, new_axes = _index_key(node, parts[1:])
        out = parts[0]
        if key or not new_axes:
            out = graph.apply("index", out, attrs=(key,), span=node.span)
        if new_axes:
            out = graph.apply("expand_dims", out, attrs=(new_axes,), span=node.span)
        return out
    assert isinstance(node, ast.Call)
    call = CallArgs(node, parts, graph)
    keep = call.keepdims()
    out = call_builtin(node, call, graph)
    return kept(out, call) if keep else out


def _gathered(node: ast.Index, parts: list[Node], graph: Graph) -> Node | None:
    """x[idx], x[:, i] or A[rows, cols] where the subscripts are arrays of indices or values
    (not numbers written in the program): the elements gathered from those positions. None for
    an index of numbers and slices."""
    values = iter(parts[1:])
    kinds, arrays = [], []
    for sub in node.subscripts:
        if isinstance(sub, ast.NewAxis):
            kinds.append("new")
        elif isinstance(sub, ast.Slice):
            bounds = [next(values) for p in (sub.start, sub.stop, sub.step) if p is not None]
            kinds.append("slice" if bounds else "all")
        else:
            value = next(values)
            written = value.op == "const" and np.ndim(value.value) == 0
            kinds.append("number" if written else "array")
            if not written:
                arrays.append(value)
    if not arrays:
        return None
    at = [k for k, kind in enumerate(kinds) if kind == "array"]
    if set(kinds) - {"all", "array"} or at != list(range(at[0], at[-1] + 1)):
        raise GradcliError(
            "arrays of indices combine only with ':' and with each other, side by side",
            node.span,
            hint="x[idx], x[:, idx] and A[rows, cols] pick elements by arrays of indices",
        )
    return graph.apply("gather", parts[0], *arrays, attrs=(at[0],), span=node.span)


def _index_key(node: ast.Index, parts: list[Node]) -> tuple[tuple, tuple[int, ...]]:
    """The index as a hashable tuple (whole numbers, and ("slice", start, stop, step)), and the
    positions in the result of the new axes that None (or newaxis) makes, as numpy places them."""
    values = iter(parts)

    def whole(expr: ast.Expr) -> int:
        value = next(values)
        if value.op != "const" or np.ndim(value.value) or not float(value.value).is_integer():
            raise GradcliError(
                "an index must be a whole number written in the program",
                expr.span,
                hint="x[0], x[-1], x[1:3] and x[::2] are indices",
            )
        return int(value.value)

    key: list[Any] = []
    new_axes: list[int] = []
    position = 0  # the axis of the result that the next subscript makes
    for sub in node.subscripts:
        if isinstance(sub, ast.NewAxis):
            new_axes.append(position)
            position += 1
        elif isinstance(sub, ast.Slice):
            bounds = [None if p is None else whole(p) for p in (sub.start, sub.stop, sub.step)]
            if bounds[2] == 0:
                raise GradcliError("a slice step cannot be 0", sub.step.span)
            key.append(("slice", *bounds))
            position += 1
        else:
            key.append(whole(sub))
    return tuple(key), tuple(new_axes)


def _inline(call: ast.Call, args: list[Node], env: _Env) -> tuple[ast.Expr, _Env, bool]:
    """The body of a user function to lower next, with its parameters bound to `args`."""
    fn = env.functions[call.func]
    if any(isinstance(a, ast.Keyword) for a in call.args):
        raise GradcliError(f"{fn.name} takes its arguments by position", call.span)
    if len(args) != len(fn.params):
        count = len(fn.params)
        raise GradcliError(
            f"{fn.name} takes {count} argument{'s' if count != 1 else ''}, "
            f"but {len(args)} {'was' if len(args) == 1 else 'were'} given",
            call.span,
            hint=f"it is defined as {fn.name}({', '.join(fn.params)})",
        )
    # The parameters in front of the bindings of the definition: no copy of those per call.
    scope = ChainMap(dict(zip(fn.params, args, strict=True)), fn.scope)
    return fn.body, _Env(scope, fn.functions, (fn, env.inside)), False


def _resolve(name: ast.Name, graph: Graph, env: _Env, free: dict[str, Node]) -> Node:
    if name.id in env.scope:
        return env.scope[name.id]
    if name.id in CONSTANTS:
        return graph.const(CONSTANTS[name.id], name.span)
    # A built-in function's name not followed by "(" is a variable, as in Python: gamma*x + beta
    # is a normalization layer, not a misuse of Γ and B. The program's own functions are not.
    if name.id in env.functions:
        raise GradcliError(
            f"'{name.id}' is a function, not a value",
            name.span,
            hint=f"call it with arguments, as in {name.id}(…)",
        )
    node = free.get(name.id)
    if node is None:
        node = free[name.id] = graph.var(name.id, name.span)
    return node


def _check_strings(node: ast.Expr, env: _Env) -> None:
    """Strings are arguments of the built-in functions that take them, and nothing else."""
    called = isinstance(node, ast.Call) and node.func not in env.functions
    if called and REGISTRY[node.func].strings:
        return  # its hook checks where it takes one
    for child in ast.children(node):
        if isinstance(child, ast.String):
            raise _misplaced(child, node.func if isinstance(node, ast.Call) else None)


def _misplaced(string: ast.String, function: str | None = None) -> GradcliError:
    takers = sorted(name for name, prim in REGISTRY.items() if prim.strings and prim.public)
    return GradcliError(
        f"{function} takes no string" if function else "a string is not a value",
        string.span,
        hint=f"strings are arguments of {', '.join(takers)}: einsum('ij,jk->ik', a, b), "
        "norm(A, ord='fro')",
    )


def _check_call(call: ast.Call, env: _Env, free: dict[str, Node]) -> None:
    if call.func in env.functions:
        return
    prim = REGISTRY.get(call.func)
    if prim is None or not prim.public:
        # A function sees only the functions defined before it: a call to its own name that
        # is not an earlier definition of that name is recursion.
        inside = env.inside
        while inside is not None:
            if inside[0].name == call.func:
                raise GradcliError(
                    f"{call.func} calls itself: functions cannot be recursive",
                    call.func_span,
                    hint="each call is inlined, so a function may only call functions defined "
                    "before it",
                )
            inside = inside[1]
        known = public_names() + list(env.functions)
        import difflib  # only for a mistake: not at start-up

        close = difflib.get_close_matches(call.func, known, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean '{close[0]}'?"
        elif call.func in env.scope or call.func in free or call.func in CONSTANTS:
            hint = f"'{call.func}' is a value; to multiply, write {call.func}*(…)"
        else:
            hint = (
                f"the functions are {', '.join(known)}; "
                f"to multiply by {call.func}, write {call.func}*(…); "
                f"to define a function, write {call.func}(t) = …"
            )
        raise GradcliError(f"unknown function '{call.func}'", call.func_span, hint=hint)
    if prim.lower is not None:
        return  # its hook checks its own arguments
    positional = sum(not isinstance(a, ast.Keyword) for a in call.args)
    count = positional
    if count < prim.arity or (count > prim.arity + len(prim.attr_params) and not prim.variadic):
        wanted = f"{'at least ' if prim.variadic else ''}{prim.arity}"
        plural = "" if prim.arity == 1 and not prim.variadic else "s"
        raise GradcliError(
            f"{call.func} takes {wanted} argument{plural}, "
            f"but {count} {'was' if count == 1 else 'were'} given",
            call.span,
            hint=f"call it as {prim.signature()}",
        )
