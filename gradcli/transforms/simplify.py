"""Simplification of derivative graphs, so that printed derivatives read like hand-written ones.

Reverse mode builds `0.5/sqrt(r)*(2*x)` and `x + x + y*(1/x)`; this pass rewrites them to
`x/sqrt(r)` and `2*x + y/x`. It walks the graph once in topological order and rebuilds every node
through the graph's constructor (which folds constants and applies x*1, x+0, x^1):

- a maximal tree of + and - (whose inner nodes have no other use) is flattened into terms with
  numeric coefficients, like terms are added (x + x → 2*x, x - x → 0) and terms of 0 vanish;
- a maximal tree of *, / and unary - likewise becomes coefficient · Π factors^k: numbers are
  multiplied out, equal factors gather into powers (x*x → x^2, g*(1/b) → g/b), and a factor
  cancels against itself (x/x → 1) only where it can never be 0 (exp, cosh, nonzero numbers, and
  products and powers of those), so no division by zero disappears from the printed formula.

A rewritten node keeps its shape: where terms cancel down to a smaller shape, the result is
broadcast back. The rewrites are exact in real arithmetic; in floating point the printed
expression agrees with the autograd gradient to rounding (tests/test_diff.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np

from ..graph.nodes import Node, toposort
from ..graph.shapes import infer_shapes
from ..primitives import REGISTRY, Shape


def simplify(outputs: Sequence[Node], var_shapes: Mapping[str, Shape] | None = None) -> list[Node]:
    """Simplified nodes (of the same graph) with the values of `outputs`."""
    return _Simplifier(outputs, var_shapes or {}).run()


class _Simplifier:
    def __init__(self, outputs: Sequence[Node], var_shapes: Mapping[str, Shape]):
        self.outputs = list(outputs)
        self.graph = self.outputs[0].graph
        self.order = toposort(self.outputs)
        self.var_shapes = var_shapes
        self.shapes = infer_shapes(self.order, var_shapes)
        self.users: dict[Node, list[Node]] = {}
        for node in self.order:
            for inp in node.inputs:
                self.users.setdefault(inp, []).append(node)
        self.new: dict[Node, Node] = {}
        # For a rebuilt product: its coefficient and its factors, so sums can combine like terms.
        self.parts: dict[Node, tuple[float, tuple[tuple[Node, float], ...]]] = {}
        self.nonzero: dict[Node, bool] = {}

    def run(self) -> list[Node]:
        roots = set(self.outputs)
        for node in self.order:
            if not node.inputs:
                self.new[node] = node
            elif node not in roots and self._inner(node):
                continue  # flattened into the tree it belongs to
            elif _family(node) == "sum":
                self.new[node] = self._fit(self._sum(node), node)
            elif _family(node) == "product":
                self.new[node] = self._fit(self._product(node), node)
            else:
                self.new[node] = self._fit(self._other(node), node)
        return [self.new[o] for o in self.outputs]

    def _other(self, node: Node) -> Node:
        inputs = [self.new[i] for i in node.inputs]
        if node.op in _RESHAPES:
            (x,) = inputs
            if self._shape(x) == self.shapes[node]:
                return x  # a change of shape that changes nothing
            if node.op == "sum_to" and self.shapes[node] == ():
                return self._apply("sum", x, attrs=(None,))
            if x.op == "const" and int(np.prod(self.shapes[node])) <= _SMALL:
                value = np.asarray(REGISTRY[node.op].forward(x.value, *node.attrs))
                return self._const(value)
        if REGISTRY[node.op].partials is not None:  # elementwise: broadcasting is implied
            inputs = [self._unbroadcast(i) for i in inputs]
        return self._apply(node.op, *inputs, attrs=node.attrs)

    def _const(self, value: np.ndarray) -> Node:
        node = self.graph.const(value)
        self._shape(node)
        return node

    def _unbroadcast(self, node: Node) -> Node:
        """An operand of an elementwise operation (a sum, a product) as the smallest thing that
        broadcasts the same way: broadcast_to dropped, a reshape of one element dropped, an
        array of equal numbers as one number. The result is fitted back to its shape."""
        while True:
            inner = self._shape(node.inputs[0]) if node.inputs else ()
            if node.op == "broadcast_to" or (
                node.op == "reshape"
                and int(np.prod(inner)) == 1
                and len(inner) <= len(self._shape(node))  # a reshape to fewer axes must stay
            ):
                node = node.inputs[0]
            elif node.op == "const" and np.ndim(node.value) and np.size(node.value):
                flat = np.ravel(node.value)
                if not np.all(flat == flat[0]):
                    return node
                return self._const(flat[0])
            else:
                return node

    def _inner(self, node: Node) -> bool:
        """A node of a sum or product whose only use is in the same sum or product."""
        users = self.users.get(node, [])
        family = _family(node)
        return (
            family is not None
            and len(users) == 1
            and _family(users[0]) == family
            and self.shapes[node] == self.shapes[users[0]]
        )

    def _flattened(self, node: Node, root: Node, family: str) -> bool:
        return node is root or (node not in self.new and _family(node) == family)

    # --- sums ------------------------------------------------------------------------------

    def _sum(self, root: Node) -> Node:
        terms: list[tuple[float, Node]] = []
        stack: list[tuple[Node, float]] = [(root, 1.0)]
        while stack:
            node, sign = stack.pop()
            if self._flattened(node, root, "sum"):
                if node.op == "add":
                    stack += [(node.inputs[1], sign), (node.inputs[0], sign)]
                elif node.op == "sub":
                    stack += [(node.inputs[1], -sign), (node.inputs[0], sign)]
                else:
                    stack.append((node.inputs[0], -sign))
                continue
            terms.append((sign, self._unbroadcast(self.new[node])))
        combined: dict[tuple, list] = {}
        constant = 0.0
        for sign, term in terms:
            coef, factors = self._split(term)
            if not factors:
                constant += sign * coef
                continue
            key = tuple((id(b), k) for b, k in factors)
            if key in combined:
                combined[key][0] += sign * coef
            else:
                combined[key] = [sign * coef, factors]
        pieces = [(c, f) for c, f in combined.values() if c != 0]
        if constant != 0 or not pieces:
            # Terms that cancel leave +0, and the same negated -0, as floating point has it.
            zero = -0.0 if root.op == "neg" and not pieces and constant == 0 else constant
            pieces.append((zero, ()))
        pieces.sort(key=lambda piece: piece[0] < 0)  # x - y rather than -y + x
        out: Node | None = None
        for coef, factors in pieces:
            if out is None:
                out = self._assemble(coef, factors)
            elif coef < 0:
                out = self._apply("sub", out, self._assemble(-coef, factors))
            else:
                out = self._apply("add", out, self._assemble(coef, factors))
        return out

    # --- products --------------------------------------------------------------------------

    def _product(self, root: Node) -> Node:
        coef = 1.0
        powers: dict[int, list] = {}  # id(base) -> [base, numerator power, denominator power]
        stack: list[tuple[Node, float]] = [(root, 1.0)]
        while stack:
            node, k = stack.pop()
            if self._flattened(node, root, "product"):
                if node.op == "mul":
                    stack += [(node.inputs[1], k), (node.inputs[0], k)]
                elif node.op == "div":
                    stack += [(node.inputs[1], -k), (node.inputs[0], k)]
                else:
                    coef = -coef
                    stack.append((node.inputs[0], k))
                continue
            factor = self._unbroadcast(self.new[node])
            if _scalar_const(factor) and (factor.value != 0 or k > 0):
                coef *= factor.value if k > 0 else 1.0 / factor.value
                continue
            c, factors = self.parts.get(factor, (1.0, ()))
            if factors and len(factors) <= _INLINE and abs(k) == 1 and (c != 0 or k > 0):
                coef *= c if k > 0 else 1.0 / c  # a small shared product joins this one
            elif factor.op == "pow" and _scalar_const(factor.inputs[1]):
                factors = ((factor.inputs[0], float(factor.inputs[1].value)),)
            else:
                factors = ((factor, 1.0),)
            for base, power in factors:
                entry = powers.setdefault(id(base), [base, Fraction(0), Fraction(0)])
                # Exact: float sums of powers round past 2^53, and x^(2^54 - 1), odd, became
                # x^(2^54), even, with the wrong sign at x = -1.
                entry[1 if power * k > 0 else 2] += abs(Fraction(power) * Fraction(k))
        factors = []
        for base, up, down in powers.values():
            if up and down and self._never_zero(base):
                up, down = max(up - down, Fraction(0)), max(down - up, Fraction(0))
            factors += [(base, p) for p in _exact_powers(up)]
            factors += [(base, -p) for p in _exact_powers(down)]
        return self._assemble(coef, tuple(factors))

    def _split(self, node: Node) -> tuple[float, tuple[tuple[Node, float], ...]]:
        """A node as coefficient · Π base^power."""
        if node in self.parts:
            return self.parts[node]
        if node.op == "const" and np.ndim(node.value) == 0:
            return float(node.value), ()
        if node.op == "pow" and _scalar_const(node.inputs[1]):
            return 1.0, ((node.inputs[0], float(node.inputs[1].value)),)
        return 1.0, ((node, 1.0),)

    def _assemble(self, coef: float, factors: tuple[tuple[Node, float], ...]) -> Node:
        """coef · Π base^power, written as a person would: -2*x^2/y, x/2, 1/(x*y)."""
        if coef == 0 and not factors:
            return self.graph.const(coef)
        # 0*x stays: its sign is x's (atan2(0*x, -1) is -π for x < 0), and inf*0 is nan. In a
        # sum with other terms it vanishes (see _sum).
        factors = tuple(sorted(factors, key=_rank))
        up = [self._power(b, k) for b, k in factors if k > 0]
        down = [self._power(b, -k) for b, k in factors if k < 0]
        negative, coef = coef < 0, abs(coef)
        if coef != 0 and coef != 1 and (1 / coef).is_integer() and coef < 1 and up:
            down.insert(0, self.graph.const(1 / coef))
        elif coef != 1 or not up:
            up.insert(0, self.graph.const(coef))
        if negative:
            up[0] = self._apply("neg", up[0])
        out = up[0]
        for f in up[1:]:
            out = self._apply("mul", out, f)
        if down:
            below = down[0]
            for f in down[1:]:
                below = self._apply("mul", below, f)
            out = self._apply("div", out, below)
        self.parts.setdefault(out, ((-1.0 if negative else 1.0) * coef, factors))
        return out

    def _power(self, base: Node, k: float) -> Node:
        return base if k == 1 else self._apply("pow", base, self.graph.const(k))

    def _never_zero(self, node: Node) -> bool:
        """Whether `node` cannot be 0 at any point: then x/x may cancel."""
        done = self.nonzero
        stack = [node]
        while stack:
            n = stack[-1]
            if n in done:
                stack.pop()
                continue
            if n.op == "const":
                done[n] = bool(np.all(np.asarray(n.value) != 0))
            elif n.op in ("exp", "cosh"):
                done[n] = True
            elif n.op in ("mul", "div", "neg", "pow"):
                parts = n.inputs if n.op != "pow" else n.inputs[:1]
                pending = [p for p in parts if p not in done]
                if pending:
                    stack.extend(pending)
                    continue
                done[n] = all(done[p] for p in parts)
            else:
                done[n] = False
            stack.pop()
        return done[node]

    # --- building nodes, keeping shapes ----------------------------------------------------

    def _apply(self, op: str, *inputs: Node, attrs: tuple = ()) -> Node:
        node = self.graph.apply(op, *inputs, attrs=attrs)
        self._shape(node)
        return node

    def _shape(self, node: Node) -> Shape:
        if node not in self.shapes:
            infer_shapes(toposort([node]), self.var_shapes, known=self.shapes)
        return self.shapes[node]

    def _fit(self, new: Node, old: Node) -> Node:
        """`new`, broadcast to the shape of `old` if cancelling terms made it smaller."""
        shape = self.shapes[old]
        if self._shape(new) == shape:
            return new
        return self._apply("broadcast_to", new, attrs=(shape,))


_RESHAPES = frozenset({"broadcast_to", "sum_to", "reshape"})


_SMALL = 64  # a constant reshaped or broadcast to at most this many elements is folded
_INLINE = 4  # a shared product of at most this many factors is merged into products using it


def _exact_powers(total: Fraction) -> list[float]:
    """`total` as floats that are each exactly what they stand for and sum to it: one where the
    power is a float already (x^2.5, x^(1/3) rounded as written), else whole parts of at most
    2^53 (x^(2^54 - 1) is x^(2^53)·x^(2^53 - 1))."""
    if total == 0:
        return []
    if Fraction(float(total)) == total or total.denominator != 1:
        return [float(total)]
    parts, left = [], total
    while left > 2**53:  # a bound: the powers come from at most 2^20 nodes, each below 2^1024
        parts.append(float(2**53))
        left -= 2**53
        if len(parts) > 64:
            return [float(total)]
    return [*parts, float(left)]


def _rank(factor: tuple[Node, float]) -> tuple[int, str]:
    """Variables and their powers first, by name, then the rest: 3*x^2*y*cos(x)."""
    base, _ = factor
    if base.op == "pow" and base.inputs[0].op == "variable":
        base = base.inputs[0]
    return (0, base.name) if base.op == "variable" else (1, "")


def _family(node: Node) -> str | None:
    """ "sum" for + and - (and a minus in front of a sum), "product" for *, / and other minuses."""
    if node.op in ("add", "sub"):
        return "sum"
    if node.op in ("mul", "div"):
        return "product"
    if node.op == "neg":
        return "sum" if node.inputs[0].op in ("add", "sub") else "product"
    return None


def _scalar_const(node: Node) -> bool:
    return node.op == "const" and np.ndim(node.value) == 0
