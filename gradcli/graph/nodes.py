"""The graph IR: nodes with an op, inputs and attributes, made by one hash-consing constructor.

Every node is made by `Graph._make`, which looks the node up by (op, inputs, attributes) first, so
identical subexpressions are one node, and `Graph.apply` folds constants and a few exact algebraic
identities before that. Nodes overload the arithmetic operators, so derivative rules in the
registry read like the formulas they implement: `lambda ans, x: 1 / x`.

Nodes compare by identity; a node's id is its creation number, and inputs are always created before
the nodes that use them.
"""

from __future__ import annotations

import gc
import math
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..language.limits import ELEMENTS, NODES
from ..language.source import Span
from .registry import REGISTRY

Attr = Any  # hashable: a float, a string, a shape tuple


class Node:
    """One operation in a graph. Build nodes with `Graph` methods or operators, never directly."""

    __slots__ = ("attrs", "graph", "id", "inputs", "op", "origin", "span")

    def __init__(
        self,
        graph: Graph,
        id: int,
        op: str,
        inputs: tuple[Node, ...],
        attrs: tuple[Attr, ...],
        span: Span | None,
        origin: Node | None,
    ) -> None:
        self.graph = graph
        self.id = id
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.span = span  # where in the source this node came from
        self.origin = origin  # for a derivative node: the node whose rule made it

    @property
    def is_const(self) -> bool:
        return self.op == "const"

    @property
    def value(self) -> float:
        """The value of a constant node."""
        return self.attrs[0]

    @property
    def name(self) -> str:
        """The name of a variable node."""
        return self.attrs[0]

    def __repr__(self) -> str:
        if self.op == "const":
            return f"<const {self.attrs[0]!r}>"
        if self.op == "variable":
            return f"<var {self.attrs[0]}>"
        return f"<#{self.id} {self.op}({', '.join(f'#{i.id}' for i in self.inputs)})>"

    def __add__(self, other: Operand) -> Node:
        return self.graph.apply("add", self, other)

    def __radd__(self, other: Operand) -> Node:
        return self.graph.apply("add", other, self)

    def __sub__(self, other: Operand) -> Node:
        return self.graph.apply("sub", self, other)

    def __rsub__(self, other: Operand) -> Node:
        return self.graph.apply("sub", other, self)

    def __mul__(self, other: Operand) -> Node:
        return self.graph.apply("mul", self, other)

    def __rmul__(self, other: Operand) -> Node:
        return self.graph.apply("mul", other, self)

    def __truediv__(self, other: Operand) -> Node:
        return self.graph.apply("div", self, other)

    def __rtruediv__(self, other: Operand) -> Node:
        return self.graph.apply("div", other, self)

    def __pow__(self, other: Operand) -> Node:
        return self.graph.apply("pow", self, other)

    def __rpow__(self, other: Operand) -> Node:
        return self.graph.apply("pow", other, self)

    def __neg__(self) -> Node:
        return self.graph.apply("neg", self)


Operand = Node | float | int


class Graph:
    """A hash-consing table of nodes, plus the context (span, origin) that new nodes inherit."""

    def __init__(self) -> None:
        self._table: dict[tuple, Node] = {}
        self._max_nodes = NODES.value() or sys.maxsize
        self._span: Span | None = None
        self._origin: Node | None = None
        self._folds: dict[tuple, Node] = {}  # op(consts) -> the constant it folded to

    def __len__(self) -> int:
        return len(self._table)

    def const(self, value: Any, span: Span | None = None) -> Node:
        """A number, or a (read-only) array of them."""
        if np.ndim(value) == 0:
            number = float(value)
            # hex keeps 0.0 and -0.0 apart, which == and hash() would merge.
            return self._make("const", (), (number,), ("const", number.hex()), span)
        array = np.array(value, dtype=np.float64)
        array.flags.writeable = False
        key = ("const", array.shape, array.tobytes())
        return self._make("const", (), (array,), key, span)

    def var(self, name: str, span: Span | None = None) -> Node:
        return self._make("variable", (), (name,), ("variable", name), span)

    def apply(
        self,
        op: str,
        *args: Operand,
        attrs: tuple[Attr, ...] = (),
        span: Span | None = None,
        fold: bool = True,
    ) -> Node:
        """The node for `op(*args)`: simplified or folded if it can be, else the one shared node.
        fold=False keeps constant inputs apart (a literal whose elements differ in shape, which
        concatenate takes one by one)."""
        inputs = tuple([a if type(a) is Node else self.const(a) for a in args])
        simpler = _identity(op, inputs, attrs)
        if simpler is not None:
            return simpler
        prim = REGISTRY[op]
        key = (op, tuple([i.id for i in inputs]), attrs)
        folded_before = self._folds.get(key) if fold else None
        if folded_before is not None:  # 2 - 1 in each of 100,000 powers is folded once
            return folded_before
        if (
            fold
            and prim.foldable
            and inputs
            and all(i.op == "const" for i in inputs)
            and self._fits(prim, inputs, attrs)
        ):
            # Quietly, as evaluation is: a nan or inf is not folded, and evaluation reports it.
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "mean of empty slice"
                try:
                    folded = prim.forward(*[_number(i.attrs[0]) for i in inputs], *attrs)
                except (ValueError, IndexError, RuntimeError, MemoryError):  # too many axes…
                    folded = None  # left for shape inference to report, with its span
            if folded is not None and np.all(np.isfinite(folded)):
                node = self._folds[key] = self.const(folded, span)
                return node
        return self._make(op, inputs, attrs, key, span)

    @staticmethod
    def _fits(prim, inputs: tuple[Node, ...], attrs: tuple[Attr, ...]) -> bool:
        """Whether folding makes an array within the element limit: if not, the node stays, and
        shape inference refuses it with its span before anything is allocated."""
        try:
            shape = prim.output_shape(*(np.shape(i.value) for i in inputs), attrs=attrs)
        except (ValueError, TypeError, IndexError, RuntimeError):  # numpy: more than 32 axes
            return True  # folding fails or succeeds by itself; shapes report the mistake
        limit = ELEMENTS.value()
        return limit is None or math.prod(shape) <= limit

    def _make(
        self, op: str, inputs: tuple[Node, ...], attrs: tuple, key: tuple, span: Span | None
    ) -> Node:
        node = self._table.get(key)
        if node is None:
            if len(self._table) >= self._max_nodes:
                raise NODES.error("the graph", None, span or self._span)
            node = Node(self, len(self._table), op, inputs, attrs, span or self._span, self._origin)
            self._table[key] = node
        return node

    @property
    def deriving_now(self) -> bool:
        """Whether nodes are being made by a derivative rule (inside `deriving`)."""
        return self._origin is not None

    @contextmanager
    def deriving(self, node: Node) -> Iterator[None]:
        """New nodes made inside this block are marked as coming from `node`'s derivative rule."""
        saved = self._span, self._origin
        self._span, self._origin = node.span, node
        try:
            yield
        finally:
            self._span, self._origin = saved


def _number(value: Any) -> Any:
    return np.float64(value) if np.ndim(value) == 0 else value


def _is(node: Node, value: float) -> bool:
    """Whether `node` is the scalar constant `value` (identities never apply to arrays)."""
    return node.op == "const" and np.ndim(node.attrs[0]) == 0 and node.attrs[0] == value


def _identity(op: str, inputs: tuple[Node, ...], attrs: tuple[Attr, ...]) -> Node | None:
    """Exact rewrites: x+0, x-0, x*1, x/1, x^1 give x; x*-1 gives -x; --x gives x.

    In a derivative rule a negation moves out of products and quotients and into sums, where it
    becomes a subtraction: a + -b is a - b and (-a)/b is -(a/b) in IEEE arithmetic (up to the
    sign of a zero), and a derivative, where rules make many negations, costs fewer passes over
    its arrays. A program's own nodes keep the user's form and spans, for printing and messages.
    """
    if op == "add":
        a, b = inputs
        if _is(b, 0.0) or _is(a, 0.0):
            return a if _is(b, 0.0) else b
        if (b.op == "neg" or a.op == "neg") and a.graph.deriving_now:
            return a.graph.apply("sub", a, b.inputs[0]) if b.op == "neg" else b - a.inputs[0]
        return None
    if op == "sub":
        a, b = inputs
        if _is(b, 0.0):
            return a
        return (
            a.graph.apply("add", a, b.inputs[0]) if b.op == "neg" and a.graph.deriving_now else None
        )
    if op == "mul":
        a, b = inputs
        if _is(b, 1.0) or _is(a, 1.0):
            return a if _is(b, 1.0) else b
        if _is(b, -1.0) or _is(a, -1.0):
            return -(a if _is(b, -1.0) else b)
        if (a.op == "neg" or b.op == "neg") and a.graph.deriving_now:
            return -(a.inputs[0] * b if a.op == "neg" else a * b.inputs[0])
        return None
    if op == "div":
        a, b = inputs
        if _is(b, 1.0):
            return a
        return -(a.inputs[0] / b) if a.op == "neg" and a.graph.deriving_now else None
    if op == "pow":
        return inputs[0] if _is(inputs[1], 1.0) else None
    if op == "broadcast_to" and inputs[0].op == "neg" and inputs[0].graph.deriving_now:
        (a,) = inputs[0].inputs
        return -a.graph.apply("broadcast_to", a, attrs=attrs)
    if op == "neg" and inputs[0].op == "neg":
        return inputs[0].inputs[0]
    return None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a pass builds many objects.

    A pass over a 100,000-node program allocates millions of objects and frees almost none, and
    each collection walks them all: with the collector running, 10 times the nodes took 15 to 17
    times as long (measured in benchmarks/scale.py). Paused, the passes are linear; the cycles
    they leave (nodes point at their graph) are collected afterwards as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def toposort(outputs: Iterable[Node]) -> list[Node]:
    """All nodes the outputs depend on, each after all of its inputs.

    Iterative: first count, for every reachable node, how many reachable nodes use it; then peel
    nodes off from the outputs once every use has been seen (Kahn's algorithm), and reverse.
    """
    roots = list(dict.fromkeys(outputs))
    uses: dict[Node, int] = {}
    stack = list(roots)
    seen = set(roots)
    while stack:
        node = stack.pop()
        for inp in node.inputs:
            uses[inp] = uses.get(inp, 0) + 1
            if inp not in seen:
                seen.add(inp)
                stack.append(inp)
    ready = [n for n in roots if uses.get(n, 0) == 0]
    order: list[Node] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for inp in node.inputs:
            uses[inp] -= 1
            if uses[inp] == 0:
                ready.append(inp)
    order.reverse()
    return order


def variables(order: Sequence[Node]) -> list[Node]:
    """The variable nodes among `order`."""
    return [n for n in order if n.op == "variable"]
