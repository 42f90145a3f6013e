"""Random scalar expressions, reproducible from a seed, as gradcli text and as Python callables.

A tree is made of tuples:

    ("var", name)           ("const", c)
    ("bin", op, a, b)       op in + - * /
    ("fn", name, a)         name in sin cos exp log tanh sqrt
    ("sq", a)               a^2

`log` and `sqrt` are only ever applied to a positive argument built for them, `1 + u^2` or
`exp(tanh(u))`, so they are defined everywhere. Division and `exp` can still misbehave at a given
point, so every case is evaluated at its point before it is kept: it is drawn again when a
divisor is small (|d| < 0.25), an argument of exp is large (|u| > 8), or any intermediate value
exceeds 1e4. What is kept is well conditioned, so any finite-difference checker should pass it.

The same tree becomes gradcli source (`text`) and a closure over any array library's functions
(`build`: torch, jax.numpy, numpy): the closures are composed from the tree, never from a string.
"""

from __future__ import annotations

import math
import operator
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Tree = tuple

VARIABLES = ("x", "y", "z", "w")
FUNCTIONS = ("sin", "cos", "exp", "log", "tanh", "sqrt")
OPERATORS = ("+", "-", "*", "/")
CONSTANTS = (0.5, 1.5, 2.0, 3.0, 0.25, 1.25)
BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


@dataclass(frozen=True)
class Case:
    name: str
    tree: Tree
    variables: tuple[str, ...]  # in the order the callables take them
    point: dict[str, float]

    @property
    def text(self) -> str:
        return text(self.tree)


def text(tree: Tree) -> str:
    """gradcli source for the tree, fully parenthesized (iterative: no recursion limit)."""
    out: list[str] = []
    stack: list[Tree | str] = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        kind = item[0]
        if kind == "var":
            out.append(item[1])
        elif kind == "const":
            out.append(repr(item[1]))
        elif kind == "bin":
            stack.extend([")", item[3], f" {item[1]} ", item[2], "("])
        elif kind == "fn":
            stack.extend([")", item[2], f"{item[1]}("])
        else:  # sq
            stack.extend([")^2", item[1], "("])
    return "".join(out)


def build(tree: Tree, names: Sequence[str], ops: Mapping[str, Callable]) -> Callable[..., Any]:
    """A function f(*args) computing the tree, args in the order of `names`.

    `ops` maps each function name (sin ... sqrt) to the library's function, and "const" to a
    maker of a constant (for torch, a float64 tensor). Arithmetic uses the Python operators.
    """
    position = {name: i for i, name in enumerate(names)}

    def compose(node: Tree) -> Callable[[Sequence[Any]], Any]:
        kind = node[0]
        if kind == "var":
            i = position[node[1]]
            return lambda args: args[i]
        if kind == "const":
            c = ops["const"](node[1])
            return lambda args: c
        if kind == "bin":
            op, left, right = BINARY[node[1]], compose(node[2]), compose(node[3])
            return lambda args: op(left(args), right(args))
        if kind == "fn":
            fn, inner = ops[node[1]], compose(node[2])
            return lambda args: fn(inner(args))
        inner = compose(node[1])
        return lambda args: inner(args) ** 2

    f = compose(tree)
    return lambda *args: f(args)


MATH_OPS = {name: getattr(math, name) for name in FUNCTIONS} | {"const": float}


def _generate(rng: random.Random, names: Sequence[str], depth: int) -> Tree:
    if depth == 0 or rng.random() < 0.2:
        if rng.random() < 0.8:
            return ("var", rng.choice(names))
        return ("const", rng.choice(CONSTANTS))
    if rng.random() < 0.55:
        op = rng.choice(OPERATORS)
        return ("bin", op, _generate(rng, names, depth - 1), _generate(rng, names, depth - 1))
    fn = rng.choice(FUNCTIONS)
    inner = _generate(rng, names, depth - 1)
    if fn in ("log", "sqrt"):
        if rng.random() < 0.7:
            inner = ("bin", "+", ("const", 1.0), ("sq", inner))
        else:
            inner = ("fn", "exp", ("fn", "tanh", inner))
    return ("fn", fn, inner)


def _uses(tree: Tree) -> set[str]:
    found, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if node[0] == "var":
            found.add(node[1])
        elif node[0] != "const":
            stack.extend(n for n in node[1:] if isinstance(n, tuple))
    return found


class _Rejected(Exception):
    pass


def _checked_value(tree: Tree, point: Mapping[str, float]) -> float:
    """The value at the point; `_Rejected` if the case is ill conditioned there."""
    kind = tree[0]
    if kind == "var":
        return point[tree[1]]
    if kind == "const":
        return tree[1]
    if kind == "bin":
        a, b = _checked_value(tree[2], point), _checked_value(tree[3], point)
        if tree[1] == "/" and abs(b) < 0.25:
            raise _Rejected
        value = BINARY[tree[1]](a, b)
    elif kind == "fn":
        a = _checked_value(tree[2], point)
        if tree[1] == "exp" and abs(a) > 8:
            raise _Rejected
        value = MATH_OPS[tree[1]](a)
    else:
        value = _checked_value(tree[1], point) ** 2
    if not math.isfinite(value) or abs(value) > 1e4:
        raise _Rejected
    return value


def cases(count: int, seed: int = 6) -> list[Case]:
    """`count` cases of two to four variables, each with a point where it is well conditioned."""
    rng = random.Random(seed)
    out: list[Case] = []
    while len(out) < count:
        names = VARIABLES[: rng.randint(2, 4)]
        tree = _generate(rng, names, rng.randint(3, 6))
        for name in names:  # every variable must appear: add a term with each missing one
            if name not in _uses(tree):
                leaf: Tree = ("var", name)
                if rng.random() < 0.5:
                    leaf = ("fn", rng.choice(("sin", "cos", "tanh")), leaf)
                tree = ("bin", rng.choice(("+", "-", "*")), tree, leaf)
        point = {name: round(rng.uniform(-2.0, 2.0), 3) for name in names}
        try:
            _checked_value(tree, point)
        except (_Rejected, ValueError, OverflowError, ZeroDivisionError):
            continue
        out.append(Case(f"case {len(out) + 1:04d}", tree, tuple(names), point))
    return out


def check_file(items: Sequence[Case]) -> str:
    """The cases as a gradcli check file (TOML): one [[case]] with expr and at each."""
    lines = [f"# {len(items)} generated scalar cases (benchmarks/exprgen.py)", ""]
    for case in items:
        at = ", ".join(f"{name} = {value!r}" for name, value in case.point.items())
        lines += ["[[case]]", f'name = "{case.name}"', f'expr = "{case.text}"']
        lines += [f"at = {{ {at} }}", ""]
    return "\n".join(lines)
