"""A built-in function's call, as lowering hands it to the registry: its arguments sorted into
positional and keyword ones, with their spans, for a primitive's own `lower` hook or the generic
path (attributes written in the program: whole numbers or lists of them), and keepdims=True
applied to the reductions. String arguments reach the hooks as `Text`, never as nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from ..graph.nodes import Graph, Node
from ..primitives import REGISTRY, Primitive
from . import syntax as ast
from .source import GradcliError, Span


@dataclass(frozen=True)
class Text:
    """A string argument, as a call's `lower` hook sees it: never a node of the graph."""

    value: str
    span: Span


class CallArgs:
    """A call's arguments as a registry entry's `lower` hook sees them."""

    def __init__(self, call: ast.Call, args: list[Node], graph: Graph) -> None:
        self.call, self.graph, self.name = call, graph, call.func
        self.args, self.arg_spans, self.keywords, self.keyword_spans = [], [], {}, {}
        for written, node in zip(call.args, args, strict=True):
            if isinstance(written, ast.Keyword):
                if not isinstance(written.target, ast.Name):
                    raise GradcliError(
                        "a keyword argument is a name, as in axis=0", written.target.span
                    )
                self.keywords[written.target.id] = (node, written.value.span)
                self.keyword_spans[written.target.id] = written.target.span
            else:
                self.args.append(node)
                self.arg_spans.append(written.span)

    def error(self, message: str, span: Span | None = None, hint: str | None = None):
        return GradcliError(message, span or self.call.span, hint=hint)

    def positional(self, count: int) -> list[Node]:
        """Exactly `count` positional arguments and no keywords."""
        if self.keywords:
            name = next(iter(self.keywords))
            raise self.error(
                f"{self.name} takes no argument named {name}", self.keyword_spans[name]
            )
        if len(self.args) != count:
            raise self.error(
                f"{self.name} takes {count} argument{'s' if count != 1 else ''}, "
                f"but {len(self.args)} {'was' if len(self.args) == 1 else 'were'} given"
            )
        return self.args

    def keepdims(self) -> bool:
        """Whether keepdims=True was given (taken out of the keywords: lowering applies it)."""
        if "keepdims" not in self.keywords:
            return False
        value = attribute("keepdims", self.keywords.pop("keepdims"), self)
        if value not in (0, 1):
            raise self.error("keepdims is True or False", self.keyword_spans["keepdims"])
        return bool(value)

    def written(self, position: int, param: str) -> Any:
        """A positional argument that must be written in the program, as an attribute is: a
        whole number or a list of them (the size of eye, the shape of ones)."""
        return attribute(param, (self.args[position], self.arg_spans[position]), self)

    def apply(self, prim: Primitive, inputs: list[Node]) -> Node:
        """`prim` applied to `inputs`, with its attributes from the remaining arguments."""
        extra = list(zip(self.args[len(inputs) :], self.arg_spans[len(inputs) :], strict=True))
        attrs = []
        for position, (param, default) in enumerate(prim.attr_params):
            given = [extra[position]] if position < len(extra) else []
            if param in self.keywords:
                if given:
                    raise self.error(f"{param} is given twice", self.keyword_spans[param])
                given = [self.keywords[param]]
            attrs.append(attribute(param, given[0], self) if given else default)
        if len(extra) > len(prim.attr_params):
            raise self.error(
                f"{self.name} takes at most {len(inputs) + len(prim.attr_params)} arguments",
                hint=f"call it as {prim.signature()}",
            )
        for name in self.keywords:
            if name not in dict(prim.attr_params):
                raise self.error(
                    f"{self.name} takes no argument named {name}",
                    self.keyword_spans[name],
                    hint=f"call it as {prim.signature()}",
                )
        return self.graph.apply(prim.name, *inputs, attrs=tuple(attrs), span=self.call.span)


def attribute(param: str, given: tuple[Node, Span], call: CallArgs) -> Any:
    """An attribute argument must be written in the program: a whole number (axis=0), or a
    list of them (axes=[1, 0]); the primitive's shape rule checks which it takes."""
    node, span = given
    value = node.value if node.op == "const" else None
    whole = (
        value is not None
        and np.ndim(value) <= 1
        and bool(np.all(np.isfinite(value)))
        and bool(np.all(np.mod(value, 1) == 0))
    )
    if not whole:
        raise call.error(
            f"{param} must be a whole number (or a list of them) written in the program", span
        )
    return int(value) if np.ndim(value) == 0 else tuple(int(v) for v in value)


# The functions that reduce an axis, which keepdims=True keeps as numpy's do; max and min take
# it by keyword only, as max(a, b) is elementwise, and norm, as numpy's norm(x, 1) is ord=1.
REDUCTIONS = {"sum": 1, "mean": 1, "prod": 1, "logsumexp": 1, "var": 1, "std": 1}
REDUCTIONS |= {"max": None, "min": None, "norm": None}


def kept(out: Node, call: CallArgs) -> Node:
    """A reduction's result with its reduced axis kept as an axis of length 1."""
    span = call.keyword_spans["keepdims"]
    if call.name not in REDUCTIONS:
        raise call.error(f"{call.name} reduces no axis: keepdims is for reductions", span)
    position = REDUCTIONS[call.name]
    if "axis" in call.keywords:
        axis = attribute("axis", call.keywords["axis"], call)
    elif position is not None and len(call.args) > position:
        axis = call.written(position, "axis")
    else:
        raise call.error(
            "keepdims=True needs the axis reduced: every axis gives a number, whose shape "
            "depends on the values given",
            span,
            hint=f"write {call.name}(…, axis=-1, keepdims=True), or the number alone: it "
            "broadcasts against the array as the kept array would",
        )
    return call.graph.apply("expand_dims", out, attrs=(axis,), span=call.call.span)


def call_builtin(node: ast.Call, call: CallArgs, graph: Graph) -> Node:
    """The node for a call of a built-in function."""
    prim = REGISTRY[node.func]
    if prim.lower is not None:
        return prim.lower(call)
    inputs = call.args[: prim.arity] if not prim.variadic else call.args
    if prim.variadic:
        if call.keywords:
            name = next(iter(call.keywords))
            raise call.error(
                f"{node.func} takes no argument named {name}", call.keyword_spans[name]
            )
        return reduce(lambda a, b: graph.apply(prim.name, a, b, span=node.span), inputs)
    return call.apply(prim, inputs)
