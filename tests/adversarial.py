"""Adversarial programs over the whole language, an independent mpmath reference, and the
classification of gradcli's gradient-check verdicts against it. A library: it holds no tests.

Programs are syntax trees drawn by `Generator`: every public elementwise function of the
registry (the list is read from `REGISTRY`, so a new function is drawn as soon as it is
registered, and `require_references` raises for one that this module cannot interpret), the
operators + - * / ^ @, unary minus, bindings that may shadow a variable or a constant, and array
programs: variables of shape (2,), (3,) or (2, 2), literals, indexing and slicing, reductions
with and without an axis, softmax, transpose, reshape, dot, broadcast_to, sum_to and
prod_except. Three kinds are drawn: "scalar" and "array" programs over the whole language, and
"scale-free" ones built only from operations whose values stay in float64's range wherever
their inputs are (homogeneous or bounded functions of them), so that points spread over 1e-300
to 1e300 are not all trivially out of range.

The reference is an mpmath interpreter of the same trees (it never reads gradcli's graph, rules
or text): forward mode with dual numbers, one tangent per variable element, every local
derivative written here from calculus. Why that is exact enough:

- Each operation's value and local derivatives are computed by mpmath to the working precision
  (relative error 2^-p). Sums and differences are carried at p + 4096 bits, which is exact for
  any two numbers within 2^4096 of each other's size: cancellation, the one way rounding errors
  grow without bound, cannot lose what float64 keeps (1e300 + 1e-300 - 1e300 is 1e-300).
- Every result is computed twice, at 100 and at 160 bits (48 digits). All remaining errors are
  roundings proportional to 2^-p, so agreement of the two to 2^-90 of the derivative's own path
  magnitude (the sum over chain-rule paths of |product of local derivatives|, the scale of
  float64's rounding in reverse mode) bounds the 160-bit error far below any float64 tolerance.
  Where they disagree, 320 and 640 bits are tried; where those disagree too, the point is
  skipped as unstable.
- A kink (abs, relu, max, min, a tie of max/min over an array, norm or hypot at 0) is active when
  its switching argument is 0, or within 2^-40 of the rounding scale of the float64 evaluation
  (so float64 may sit on either side). There the one-sided derivatives in each coordinate are
  taken by directional forward mode, exact for compositions of smooth and Lipschitz piecewise-
  smooth functions: max(a, b)' along d is max(a', b') at a tie, |a|' is |a'| at a = 0, and so on.
- Jumps (sign, heaviside, equal, the cut of atan2) are not differentiable in the value itself: a
  coordinate that moves one sitting exactly on its jump is skipped, and a point within rounding
  of one (where float64 may see the other side) is skipped whole. A switching argument below
  2^-1060, where float64 holds under 14 bits or 0, counts as within rounding.
- At a single active kink, the gradient of each smooth piece is computed too (forward mode with
  the kink forced onto that piece): their convex hull is the generalized gradient, so that a
  gradient can be judged as a whole, not only element by element.
- How float64's rounding of the intermediate values moves the exact derivative is measured by
  evaluating again with every result rounded by 2^-52 (all upwards, then with random signs), and
  below float64's normal range to its subnormal grid (so that a value that underflows to 0 in
  float64, and makes float64 compute another function, shows).
  Where that moves it by more than 1e-8 of itself (plus 4ε of its path magnitude), even a
  correct rule cannot be expected to match mpmath: such an element ("ill-conditioned") is not
  judged for false passes.
- Before a verdict is called false, the derivative is computed a second way, by differences of
  mpmath's values alone (`numeric_derivative`: steps of 2^-150, at up to 40,000 bits), which
  uses none of the derivative rules above; where the two disagree the verdict is not judged.

Skips are decided from mpmath alone, each with a reason: the value is not real (outside a
function's domain), a value or derivative overflows float64, an intermediate exceeds 1e1000,
a derivative is infinite or 0·∞ (sqrt at 0), a jump, or an unstable reference.

Judgement (`judge_point`), with gradcli's reported tolerance t: a failing verdict ("fail",
"non-finite", "not differentiable, not a subgradient") is a false failure where the gradient g
is within t of mpmath's derivative (at a kink: within the one-sided derivatives ± t, and inside
the hull of the pieces ± t); a passing one ("pass", "not differentiable") is a false pass where
g is not (at a kink: outside [min(left, right) - t, max(left, right) + t], or, as a whole,
outside the hull). False failures are judged with the correct registry only; false passes in
every run.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import mpmath
import numpy as np
import references
from mpmath import mpf
from timer import Overran, time_limit

from gradcli import compile_program
from gradcli.checking.engine import FAILING, KINK, NONFINITE, PASS, CheckOptions, check
from gradcli.primitives import REGISTRY

Tree = tuple
Shape = tuple[int, ...]
Slot = tuple[str, int]  # a variable and the flat index of one of its elements
Rule = Callable[..., tuple[Any, tuple]]  # mpmath values -> (value, partial derivatives)

# --- what the registry holds, and what this module can interpret ---------------------------


def elementwise_names() -> list[str]:
    """Every public elementwise function of the registry: the ones drawn by name."""
    return sorted(
        name
        for name, prim in REGISTRY.items()
        if prim.public and prim.partials is not None and not prim.attr_params
    )


def operator_names() -> list[str]:
    """The registry's primitives written as operators (+ - * / ^ @ and unary minus)."""
    return sorted(name for name, prim in REGISTRY.items() if prim.operator is not None)


# Public functions that are not elementwise, by how they are drawn; the rest are excluded with a
# reason, and a new one in the registry that is in neither table makes `require_references` raise.
ARRAY_FUNCTIONS = (
    "sum",
    "mean",
    "prod",
    "norm",
    "logsumexp",
    "softmax",
    "transpose",
    "reshape",
    "dot",
    "broadcast_to",
    "sum_to",
    "prod_except",
    "where",
    "maximum",
    "minimum",
    "clip",
    "trace",
    "diag",
    "outer",
    "eye",
    "ones",
    "zeros",
    "full",
    "gammaln",
    "polygamma",
    "expand_dims",
    "log_softmax",
    "flip",
    "roll",
    "tril",
    "triu",
    "cumsum",
    "diff",
    "var",
    "std",
    "concatenate",
    "stack",
    "tile",
    "repeat",
    "squeeze",
    "take",
    "take_along_axis",
    "one_hot",
    "polyval",
    "arange",
    "linspace",
    "cumprod",
    "sort",
    "argsort",
    "tensordot",
    "inner",
    "kron",
    "cross",
    "einsum",
)
EXCLUDED = {
    **dict.fromkeys(
        (
            "inv",
            "solve",
            "det",
            "logdet",
            "cholesky",
            "solve_triangular",
            "eigvalsh",
            "eigh_vectors",
            "svdvals",
            "svd_left",
            "svd_right",
            "pinv",
        ),
        "no dual-number reference here yet: checked against the Matrix Cookbook's closed forms "
        "(tests/test_matrices.py), mpmath matrices (test_array_primitives.py), rule mutation "
        "and samples",
    ),
    "unindex": "written by gradcli diff for the adjoint of indexing; indexing itself is drawn",
    "scatter_add": "written by gradcli diff for the adjoint of take and x[idx]; take is drawn",
    "prod_pairs": "written by gradcli diff for second derivatives of prod; prod is drawn",
}


class MissingReference(LookupError):
    """A function of the registry has no mpmath reference here: add one, never skip it."""


def require_references() -> None:
    """Raise unless every function and operator of the registry can be interpreted."""
    missing = [n for n in elementwise_names() if n not in SMOOTH and n not in PIECEWISE]
    missing += [n for n in operator_names() if n not in OPERATOR_SYMBOLS]
    others = {n for n, p in REGISTRY.items() if p.public and n not in elementwise_names()}
    missing += sorted(others - set(ARRAY_FUNCTIONS) - set(EXCLUDED))
    if missing:
        raise MissingReference(f"no mpmath reference for {', '.join(missing)}")


OPERATOR_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^", "matmul": "@"}
OPERATOR_SYMBOLS["neg"] = "-"
OPERATOR_SYMBOLS.update({"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">="})
OPERATOR_SYMBOLS.update({"equal": "==", "not_equal": "!=", "logical_and": "and"})
OPERATOR_SYMBOLS.update({"logical_or": "or", "logical_not": "not"})

# --- programs as trees -------------------------------------------------------------------------
# ("num", text) | ("name", id) | ("unary", "-", x) | ("binary", op, x, y) | ("paren", x)
# | ("call", f, args, keywords) with keywords a tuple of (name, value, positional)
# | ("array", elements) | ("index", x, key) with key a tuple of ints and ("slice", a, b, c)

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "^": 4, "and": -2, "or": -3}
_COMPARISONS = {
    "<": "less",
    "<=": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
    "==": "equal",
    "!=": "not_equal",
}
_PRECEDENCE.update(dict.fromkeys(_COMPARISONS, 0))
_ATOM = 10


def render(tree: Tree) -> str:
    """The text of a tree, with the parentheses the grammar needs (and only those)."""
    return _render(tree)[0]


def _attribute(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _key_text(item: Any) -> str:
    if isinstance(item, int):
        return str(item)
    _, start, stop, step = item
    text = ("" if start is None else str(start)) + ":" + ("" if stop is None else str(stop))
    return text + ("" if step is None else f":{step}")


def _render(tree: Tree) -> tuple[str, int]:
    """The text and the precedence of a tree (10 for atoms, calls, indexing and literals)."""
    kind = tree[0]
    if kind in ("num", "name"):
        return tree[1], _ATOM
    if kind == "paren":
        return f"({render(tree[1])})", _ATOM
    if kind == "array":
        return "[" + ", ".join(render(e) for e in tree[1]) + "]", _ATOM
    if kind == "call":
        _, name, args, keywords = tree
        parts = [render(a) for a in args]
        if name == "einsum":  # the subscripts first, as a string
            return f"einsum('{_keywords(tree)['subscripts']}', {', '.join(parts)})", _ATOM
        for key, value, positional in keywords:
            parts.append(_attribute(value) if positional else f"{key}={_attribute(value)}")
        return f"{name}({', '.join(parts)})", _ATOM
    if kind == "index":
        base, prec = _render(tree[1])
        base = base if prec >= _ATOM else f"({base})"
        return f"{base}[{', '.join(_key_text(k) for k in tree[2])}]", _ATOM
    if kind == "unary":
        inner, prec = _render(tree[2])
        if tree[1] == "not":
            return "not " + (inner if prec >= -1 else f"({inner})"), -1
        return "-" + (inner if prec >= 3 else f"({inner})"), 3
    _, op, left, right = tree
    p = _PRECEDENCE[op]
    (lt, lp), (rt, rp) = _render(left), _render(right)
    if p == 4:  # right-associative; the left operand must be a postfix expression, 2^-x is fine
        wrap_left, wrap_right = lp <= 4, rp < 3
    elif p == 0:  # a comparison: a < b < c would be a chain
        wrap_left, wrap_right = lp <= 0, rp <= 0
    else:
        wrap_left, wrap_right = lp < p, rp <= p
    lt = f"({lt})" if wrap_left else lt
    rt = f"({rt})" if wrap_right else rt
    return f"{lt} {op} {rt}", p


def shape_of(tree: Tree, scope: Mapping[str, Shape]) -> Shape:
    """The shape of a tree's value, by numpy's rules: to check that the generator draws what it
    means to (a wrong shape would be a bug of this module, not of gradcli)."""
    kind = tree[0]
    if kind == "num":
        return ()
    if kind == "name":
        return scope.get(tree[1], ())
    if kind == "paren":
        return shape_of(tree[1], scope)
    if kind == "unary":
        return shape_of(tree[2], scope)
    if kind == "array":
        parts = {shape_of(e, scope) for e in tree[1]}
        if len(parts) != 1:
            raise ValueError(f"ragged array literal {render(tree)}")
        return (len(tree[1]), *parts.pop())
    if kind == "index":
        probe = np.zeros(shape_of(tree[1], scope))
        key = tuple(k if isinstance(k, int) else slice(*k[1:]) for k in tree[2])
        return np.shape(probe[key])
    if kind == "binary":
        a, b = shape_of(tree[2], scope), shape_of(tree[3], scope)
        if tree[1] == "@":
            if not a or not b:
                raise ValueError(f"@ of a number in {render(tree)}")
            return np.shape(np.zeros(a) @ np.zeros(b))
        return tuple(np.broadcast_shapes(a, b))
    name, args, keywords = tree[1], tree[2], {k: v for k, v, _ in tree[3]}
    if name in ("concatenate", "stack"):  # a list of arrays, not a literal broadcast together
        parts = [np.zeros(shape_of(e, scope)) for e in args[0][1]]
        join = np.concatenate if name == "concatenate" else np.stack
        return np.shape(join(parts, axis=keywords.get("axis", 0)))
    shapes = [shape_of(a, scope) for a in args]
    x = np.zeros(shapes[0])
    axis = keywords.get("axis")
    if name in ("sum", "mean", "prod", "norm", "logsumexp", "var", "std") or (
        name in ("max", "min") and len(args) == 1
    ):
        return np.shape(np.sum(x, axis=axis))
    if name in ("softmax", "prod_except", "log_softmax"):
        return shapes[0]
    if name == "transpose":
        return np.shape(np.transpose(x, keywords.get("axes")))
    if name == "reshape":  # a -1 worked out
        return np.shape(np.reshape(x, keywords["shape"]))
    if name == "broadcast_to":
        return tuple(keywords["shape"])
    if name in ("take", "take_along_axis", "one_hot"):
        positions = np.array(_whole_numbers(args[-1] if name == "one_hot" else args[1]))
        if name == "one_hot":
            return (*positions.shape, keywords["n"])
        if name == "take":
            return np.shape(np.take(x, positions, keywords.get("axis")))
        return np.shape(np.take_along_axis(x, positions, keywords["axis"]))
    if name == "tile":
        return np.shape(np.tile(x, keywords["reps"]))
    if name == "repeat":
        return np.shape(np.repeat(x, keywords["repeats"], keywords.get("axis")))
    if name == "squeeze":
        return np.shape(np.squeeze(x, keywords.get("axis")))
    if name == "sum_to":
        return tuple(keywords.get("shape", ()))
    if name == "dot":
        return np.shape(np.sum(x * np.zeros(shapes[1]), axis=-1))
    if name == "expand_dims":
        return np.shape(np.expand_dims(x, keywords["axis"]))
    if name in ("flip", "roll", "tril", "triu"):
        return np.shape(x)
    if name in ("cumsum", "cumprod"):
        return np.shape(np.cumsum(x, keywords.get("axis")))
    if name in ("sort", "argsort"):
        return np.shape(x)
    if name == "diff":
        return np.shape(np.diff(x))
    if name in ("trace", "diag", "outer"):
        matrix = {"trace": np.trace, "diag": np.diag, "outer": np.outer}[name]
        return np.shape(matrix(x, *(np.zeros(s) for s in shapes[1:])))
    if name == "arange":
        return np.shape(np.arange(*(json.loads(a[1]) for a in args)))
    if name == "linspace":
        return (json.loads(args[2][1]),)
    if name == "polyval":
        return shape_of(args[1], scope)
    if name == "einsum":
        return np.shape(np.einsum(keywords["subscripts"], *(np.zeros(s) for s in shapes)))
    if name in ("tensordot", "inner", "kron", "cross"):
        y = np.zeros(shapes[1])
        if name == "tensordot":
            return np.shape(np.tensordot(x, y, keywords.get("axes", 2)))
        return np.shape({"inner": np.inner, "kron": np.kron, "cross": np.cross}[name](x, y))
    if name in ("eye", "ones", "zeros", "full"):  # sizes written as a number or a list
        size = json.loads(args[0][1])
        return (size, size) if name == "eye" else tuple(np.atleast_1d(size))
    return tuple(np.broadcast_shapes(*shapes))


def _whole_numbers(tree: Tree) -> Any:
    """A literal of whole numbers (indices), as nested lists of ints."""
    if tree[0] == "num":
        return int(json.loads(tree[1]))
    return [_whole_numbers(e) for e in tree[1]]


def _positions(rows: Any) -> Tree:
    """A literal of whole numbers: the indices of take, take_along_axis and one_hot."""
    if isinstance(rows, int):
        return _num(str(rows))
    return ("array", tuple(_positions(r) for r in rows))


def free_variables(bindings: Sequence[tuple[str, Tree]], expr: Tree) -> set[str]:
    """The free variables the program's value depends on, through its bindings."""
    scope: dict[str, set[str]] = {}

    def free(tree: Tree) -> set[str]:
        kind = tree[0]
        if kind == "name":
            name = tree[1]
            if name in scope:
                return scope[name]
            return set() if name in ("pi", "e") else {name}
        if kind == "num":
            return set()
        if kind in ("paren",):
            return free(tree[1])
        if kind == "unary":
            return free(tree[2])
        if kind == "binary":
            return free(tree[2]) | free(tree[3])
        if kind == "call":
            return set().union(*(free(a) for a in tree[2]))
        if kind == "array":
            return set().union(*(free(e) for e in tree[1]))
        return free(tree[1])  # index

    for name, tree in bindings:
        scope[name] = free(tree)
    return free(expr)


@dataclass(frozen=True)
class Program:
    """A drawn program: its tree, its text, and the shapes of the variables it may use."""

    bindings: tuple[tuple[str, Tree], ...]
    expr: Tree
    shapes: Mapping[str, Shape]  # every variable in scope, used or not
    kind: str  # "scalar", "array" or "scale-free"

    @property
    def text(self) -> str:
        return "; ".join([*(f"{n} = {render(t)}" for n, t in self.bindings), render(self.expr)])

    def used(self) -> set[str]:
        return free_variables(self.bindings, self.expr)

    def spec(self) -> str:
        """The program as a Python literal, to rebuild it exactly (`Program.from_spec`)."""
        return repr((self.bindings, self.expr, dict(self.shapes), self.kind))

    @classmethod
    def from_spec(cls, spec: str) -> Program:
        import ast

        bindings, expr, shapes, kind = ast.literal_eval(spec)
        return cls(bindings, expr, shapes, kind)


# --- drawing programs --------------------------------------------------------------------------

NUMBERS = ("0.5", "1", "2", "3", "0.25", "1.5", "2.5", "10", "0.1", "1e-3", "4", "0.75")
SHAPES: tuple[Shape, ...] = ((2,), (3,), (2, 2))
_POSITIVE = ("log", "log2", "log10", "sqrt", "log1p")  # arguments often made positive
_UNIT = ("asin", "acos")  # arguments often put in [-1, 1]
_BOUND_NAMES = ("a", "b", "c", "h", "e", "x")  # e shadows the constant, x a variable


# einsum's subscripts the generator draws, by the shape they make: products, traces, diagonals,
# sums, outer products, and three operands at once.
_EINSUMS: dict[Shape, list[tuple[str, tuple[Shape, ...]]]] = {
    (): [("ii->", ((2, 2),)), ("i,i->", ((2,), (2,))), ("ij,ij->", ((2, 2), (2, 2)))],
    (2,): [("ii->i", ((2, 2),)), ("ij->j", ((2, 2),)), ("ij,kj,k->i", ((2, 2), (2, 2), (2,)))],
    (2, 2): [("ij,jk->ik", ((2, 2), (2, 2))), ("ij,kj->ik", ((2, 2), (2, 2))),
             ("i,j->ij", ((2,), (2,)))],
}  # fmt: skip


def _num(text: str) -> Tree:
    return ("num", text)


def _call(name: str, *args: Tree, **keywords: Any) -> Tree:
    return ("call", name, tuple(args), tuple((k, v, False) for k, v in keywords.items()))


def _size(shape: Shape) -> int:
    return math.prod(shape)


class Generator:
    """Random programs from `random.Random(seed)`: the same seed draws the same programs."""

    def __init__(self, rng: random.Random):
        require_references()
        self.rng = rng
        names = elementwise_names()
        self.unary = [n for n in names if REGISTRY[n].arity == 1]
        self.binary = [n for n in names if REGISTRY[n].arity == 2]
        self.scope: dict[str, Shape] = {}

    # -- the general grammar

    def program(self, kind: str) -> Program:
        """A program of `kind`: "scalar", "array" or "scale-free"."""
        rng = self.rng
        if kind == "scalar":
            variables = {n: () for n in rng.sample(("x", "y", "z"), rng.randint(1, 3))}
        else:
            variables = {n: () for n in rng.sample(("x", "y"), rng.randint(0, 2))}
            for name in rng.sample(("u", "v", "W"), rng.randint(1, 3)):
                variables[name] = rng.choice(SHAPES)
        self.scope = dict(variables)
        arrays = kind != "scalar"
        bindings = []
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            shape = self._shape(arrays)
            tree = self._draw(kind, shape, rng.randint(1, 2))
            self._expect(tree, shape)
            name = rng.choice(_BOUND_NAMES)
            bindings.append((name, tree))
            self.scope[name] = shape
        out_shape = () if rng.random() < 0.6 or not arrays else self._shape(arrays)
        expr = self._draw(kind, out_shape, rng.randint(2, 4) if kind != "scale-free" else 3)
        self._expect(expr, out_shape)
        shapes = {n: s for n, s in variables.items()}
        return Program(tuple(bindings), expr, shapes, kind)

    def _expect(self, tree: Tree, shape: Shape) -> None:
        found = shape_of(tree, self.scope)
        if found != shape:
            raise AssertionError(f"drew shape {found} for {shape}: {render(tree)}")

    def _draw(self, kind: str, shape: Shape, depth: int) -> Tree:
        if kind == "scale-free":
            return self.scaled(shape, depth)
        return self.expr(shape, depth, kind == "array")

    def _shape(self, arrays: bool) -> Shape:
        if not arrays:
            return ()
        return self.rng.choice(((), (), (2,), (3,), (2, 2), (4,)))

    def _names(self, shape: Shape) -> list[str]:
        return [n for n, s in self.scope.items() if s == shape]

    def leaf(self, shape: Shape) -> Tree:
        """A variable or bound name of the shape, a number, or an element or slice of one."""
        rng = self.rng
        names = self._names(shape)
        roll = rng.random()
        if names and roll < 0.7:
            return ("name", rng.choice(names))
        if shape == ():
            arrays = [n for n, s in self.scope.items() if s != ()]
            if arrays and roll < 0.85:
                name = rng.choice(arrays)
                return ("index", ("name", name), self._element_key(self.scope[name]))
            if roll < 0.93 or not names:
                return _num(rng.choice(NUMBERS)) if rng.random() < 0.9 else ("name", "pi")
            return ("name", rng.choice(names))
        sliced = self._slice_of(shape)
        if sliced is not None and roll < 0.85:
            return sliced
        return self.literal(shape, lambda s: self.leaf(s))

    def _element_key(self, shape: Shape) -> tuple:
        return tuple(
            self.rng.choice((0, 1, -1)) if n == 2 else self.rng.randint(-n, n - 1) for n in shape
        )

    def _slice_of(self, shape: Shape) -> Tree | None:
        """A slice of a name in scope with the given shape, if one can be cut."""
        rng = self.rng
        options = []
        for name, s in self.scope.items():
            base = ("name", name)
            if s == (2, 2) and shape == (2,):
                options += [("index", base, (rng.choice((0, 1, -1)),))]
                options += [("index", base, (("slice", None, None, None), rng.choice((0, 1))))]
            if s == (3,) and shape == (2,):
                options += [("index", base, (("slice", 1, 3, None),))]
                options += [("index", base, (("slice", None, None, 2),))]
                options += [("index", base, (("slice", None, -1, None),))]
            if s == (4,) and shape == (2,):
                options += [("index", base, (("slice", 1, 3, None),))]
            if s == (4,) and shape == (3,):
                options += [("index", base, (("slice", 1, None, None),))]
        return rng.choice(options) if options else None

    def literal(self, shape: Shape, part: Callable[[Shape], Tree]) -> Tree:
        """An array literal of the shape: [a, b], [a, b, c], [[a, b], [c, d]] or [row, row]."""
        if len(shape) == 2 and self.rng.random() < 0.5:
            return ("array", (part(shape[1:]), part(shape[1:])))
        if len(shape) == 2:
            return ("array", tuple(("array", (part(()), part(()))) for _ in range(2)))
        return ("array", tuple(part(()) for _ in range(shape[0])))

    def expr(self, shape: Shape, depth: int, arrays: bool) -> Tree:
        """Any expression of the whole language with the given shape."""
        rng = self.rng
        if depth <= 0:
            return self.leaf(shape)
        roll = rng.random()
        sub = depth - 1
        if roll < 0.08:
            return self.leaf(shape)
        if roll < 0.33:
            return self._unary_call(rng.choice(self.unary), shape, sub, arrays)
        if roll < 0.43:
            return self._binary_call(rng.choice(self.binary), shape, sub, arrays)
        if roll < 0.68:
            return self._operator(shape, sub, arrays)
        if roll < 0.73:
            return ("unary", "-", self.expr(shape, sub, arrays))
        if roll < 0.75:
            return ("paren", self.expr(shape, sub, arrays))
        if roll < 0.78:
            name = rng.choice(("max", "min"))
            args = [self.expr(s, sub, arrays) for s in self._operand_shapes(shape, 3)]
            return _call(name, *args)
        if arrays:
            tree = self._array_op(shape, sub)
            if tree is not None:
                return tree
        return self._operator(shape, sub, arrays)

    def _operand_shapes(self, shape: Shape, count: int) -> list[Shape]:
        """Shapes of operands that broadcast to `shape`, at least one of them `shape` itself."""
        smaller: list[Shape] = [()] + ([shape[1:]] if len(shape) == 2 else [])
        shapes = [
            shape if self.rng.random() < 0.6 else self.rng.choice(smaller) for _ in range(count)
        ]
        if shape not in shapes:
            shapes[self.rng.randrange(count)] = shape
        return shapes

    def _positive(self, u: Tree) -> Tree:
        """An expression in u that is positive: exp(u), u^2 + 0.5, hypot(u, 1), sigmoid(u)."""
        kind = self.rng.randrange(4)
        if kind == 0:
            return _call("exp", u)
        if kind == 1:
            return ("binary", "+", ("binary", "^", u, _num("2")), _num("0.5"))
        if kind == 2:
            return _call("hypot", u, _num("1"))
        return _call("sigmoid", u)

    def _unary_call(self, name: str, shape: Shape, depth: int, arrays: bool) -> Tree:
        arg = self.expr(shape, depth, arrays)
        if self.rng.random() < 0.5:
            if name in _POSITIVE:
                arg = self._positive(arg)
            elif name in _UNIT:
                arg = _call(self.rng.choice(("tanh", "sin", "sigmoid")), arg)
            elif name in ("logit", "ndtri"):
                arg = _call("sigmoid", arg)
            elif name == "erfinv":
                arg = _call("tanh", arg)
        return _call(name, arg)

    def _binary_call(self, name: str, shape: Shape, depth: int, arrays: bool) -> Tree:
        a, b = (self.expr(s, depth, arrays) for s in self._operand_shapes(shape, 2))
        if name in ("xlogy", "xlog1py") and self.rng.random() < 0.5:
            b = self._positive(b)
        if name in ("beta", "betaln") and self.rng.random() < 0.5:
            a, b = self._positive(a), self._positive(b)
        if name == "pow" and self.rng.random() < 0.5:
            a = self._positive(a)
        return _call(name, a, b)

    def _operator(self, shape: Shape, depth: int, arrays: bool) -> Tree:
        rng = self.rng
        op = rng.choice(("+", "-", "*", "/", "^", "*", "+"))
        sa, sb = self._operand_shapes(shape, 2)
        left, right = self.expr(sa, depth, arrays), self.expr(sb, depth, arrays)
        if op == "^":
            if rng.random() < 0.5:  # a number for an exponent: the base takes the whole shape
                left = self.expr(shape, depth, arrays)
                right = _num(rng.choice(("2", "3", "1", "0", "4", "0.5")))
            elif rng.random() < 0.6:
                left = self._positive(left)
            if rng.random() < 0.25:
                right = ("unary", "-", right)
        return ("binary", op, left, right)

    def _array_op(self, shape: Shape, depth: int) -> Tree | None:
        """An operation that makes `shape` out of arrays: a reduction, product, reshaping…"""
        rng = self.rng

        def sub(s: Shape) -> Tree:
            return self.expr(s, depth, True)

        options: list[Callable[[], Tree]] = []
        reductions = ("sum", "mean", "prod", "max", "min", "norm", "logsumexp", "var", "std")
        if shape == ():
            options += [lambda: _call(rng.choice(reductions), sub(rng.choice(SHAPES)))] * 3
            options += [lambda: _call(rng.choice(("var", "std")), sub(rng.choice(SHAPES)), ddof=1)]
            options += [lambda: ("index", sub(s := rng.choice(SHAPES)), self._element_key(s))]
            n = rng.choice((2, 3))
            options += [lambda: ("binary", "@", sub((n,)), sub((n,)))]
            options += [lambda: _call("dot", sub((n,)), sub((n,)))]
            options += [lambda: _call("sum_to", sub(rng.choice(SHAPES)))]
        if shape == (2,):
            options += [lambda: self._reduce_axis(rng.choice(reductions), sub((2, 2)))] * 3
            options += [lambda: ("index", sub((2, 2)), (rng.choice((0, 1, -1)),))]
            options += [lambda: ("index", sub((2, 2)), (("slice", None, None, None), 1))]
            options += [lambda: ("index", sub((3,)), (("slice", None, None, 2),))]
            options += [lambda: ("binary", "@", sub((2, 2)), sub((2,)))]
            options += [lambda: ("binary", "@", sub((2,)), sub((2, 2)))]
            options += [lambda: _call("dot", sub((2, 2)), sub(rng.choice(((2,), (2, 2)))))]
            options += [lambda: _call("sum_to", sub((2, 2)), shape=(2,))]
        if shape == (2, 2):
            options += [lambda: ("binary", "@", sub((2, 2)), sub((2, 2)))]
            options += [lambda: _call("transpose", sub((2, 2)))]
            options += [lambda: _call("transpose", sub((2, 2)), axes=(1, 0))]
            options += [lambda: _call("reshape", sub((4,)), shape=(2, 2))]
            options += [
                lambda: _call("broadcast_to", sub(rng.choice(((), (2,)))), shape=(2, 2))
            ] * 3
            options += [lambda: self.literal((2, 2), sub)]
            options += [lambda: self._joined(sub)] * 3
            options += [lambda: _call("tile", sub(()), reps=(2, 2))]
            options += [lambda: _call("tile", sub((2,)), reps=(2, 1))]
            options += [
                lambda: _call("repeat", _call("expand_dims", sub((2,)), axis=1), repeats=2, axis=1)
            ]
        if shape == (4,):
            options += [lambda: _call("reshape", sub((2, 2)), shape=(4,))]
            options += [lambda: _call("reshape", sub((2, 2)), shape=(-1,))]
            options += [lambda: self.literal((4,), sub)]
            options += [lambda: _call("tile", sub((2,)), reps=2)]
            options += [lambda: _call("repeat", sub((2,)), repeats=2)]
        if shape == (3,):
            options += [lambda: _call("concatenate", ("array", (sub((2,)), ("array", (sub(()),)))))]
        options += [lambda: _call("polyval", sub(rng.choice(((2,), (3,)))), sub(shape))]
        if shape == (2, 2):  # products of arrays
            options += [lambda: _call("tensordot", sub((2, 2)), sub((2, 2)), axes=1)] * 3
        if shape == (4,):
            options += [lambda: _call("kron", sub((2,)), sub((2,)))] * 2
        for subscripts, shapes in _EINSUMS.get(shape, ()):
            options += [
                lambda t=subscripts, ss=shapes: _call("einsum", *map(sub, ss), subscripts=t)
            ]
        if shape == ():
            options += [lambda: _call("inner", sub((3,)), sub((3,)))]
        if shape == (3,):
            options += [lambda: _call("cross", sub((3,)), sub((3,)))]
        if shape == (4,):
            options += [
                lambda: (
                    "binary",
                    "*",
                    _call("arange", _num("1"), _num("3"), _num("0.5")),
                    sub(shape),
                )
            ]
        if shape == (3,):
            options += [lambda: _call("linspace", sub(()), sub(()), _num("3"))]
        if shape == (2,):  # picked by indices
            options += [
                lambda: _call("take", sub((3,)), _positions([rng.randrange(3), rng.randrange(3)])),
                lambda: _call(
                    "take", sub((2, 2)), _positions([rng.randrange(4), rng.randrange(4)])
                ),
            ]
        if shape == (2, 2):
            pairs = [[rng.randrange(2), rng.randrange(2)] for _ in range(2)]
            options += [
                lambda: _call("take_along_axis", sub((2, 2)), _positions(pairs), axis=-1),
                lambda: _call("take", sub((2, 2)), _positions(pairs[0]), axis=rng.choice((0, 1))),
                lambda: (
                    "binary", "*", _call("one_hot", _positions([1, rng.randrange(2)]), n=2),
                    sub((2, 2)),
                ),
            ] * 2  # fmt: skip
        if shape == (2,):
            options += [lambda: _call("squeeze", _call("expand_dims", sub((2,)), axis=0))]
            options += [lambda: _call("repeat", sub(()), repeats=2)]
        if shape in ((2,), (3,)):
            options += [lambda: self.literal(shape, sub)]
            options += [lambda: _call("transpose", sub(shape))]
        if shape != ():
            options += [lambda: self._softmax(sub(shape), shape)] * 2
            options += [lambda: self._prod_except(sub(shape), shape)]
        return rng.choice(options)() if options else None

    def _joined(self, sub: Callable[[Shape], Tree]) -> Tree:
        """A (2, 2) array joined from two vectors, or from a matrix's rows."""
        axis = self.rng.choice((0, 1, -1))
        if self.rng.random() < 0.5:
            return _call("stack", ("array", (sub((2,)), sub((2,)))), axis=axis)
        rows = [_call("expand_dims", sub((2,)), axis=0) for _ in range(2)]
        return _call("concatenate", ("array", tuple(rows)))

    def _reduce_axis(self, name: str, x: Tree) -> Tree:
        """A reduction of a (2, 2) array along an axis, given by position or by name."""
        axis = self.rng.choice((0, 1, -1))
        positional = name not in ("max", "min", "norm") and self.rng.random() < 0.4
        return ("call", name, (x,), (("axis", axis, positional),))

    def _softmax(self, x: Tree, shape: Shape) -> Tree:
        if self.rng.random() < 0.5:
            return _call("softmax", x)
        return _call("softmax", x, axis=self.rng.randrange(-len(shape), len(shape)))

    def _prod_except(self, x: Tree, shape: Shape) -> Tree:
        if len(shape) == 2 and self.rng.random() < 0.5:
            return _call("prod_except", x, axis=self.rng.choice((0, 1)))
        return _call("prod_except", x)

    # -- the scale-free grammar: values stay in range wherever the inputs are

    def scaled(self, shape: Shape, depth: int) -> Tree:
        """An expression homogeneous of degree about 1 in the variables: |value| is within a
        modest factor of the largest input, whatever its scale (x·tanh(y), hypot, max, …)."""
        rng = self.rng
        if depth <= 0:
            names = self._names(shape)
            if names and rng.random() < 0.85:
                return ("name", rng.choice(names))
            sliced = self._slice_of(shape) if shape else None
            if sliced is not None:
                return sliced
            if shape == ():
                arrays = [n for n, s in self.scope.items() if s != ()]
                if arrays:
                    name = rng.choice(arrays)
                    return ("index", ("name", name), self._element_key(self.scope[name]))
                return _num(rng.choice(NUMBERS))
            return self.literal(shape, lambda s: self.scaled(s, 0))
        sub = depth - 1

        def s(sh: Shape = shape) -> Tree:
            return self.scaled(sh, sub)

        def b(sh: Shape = shape) -> Tree:
            return self.bounded(sh, sub)

        options: list[Callable[[], Tree]] = [
            lambda: ("binary", rng.choice("+-"), s(), s()),
            lambda: ("binary", "*", _num(rng.choice(NUMBERS)), s()),
            lambda: ("binary", "*", s(), b()),
            lambda: ("binary", "*", b(), s()),
            lambda: ("binary", "/", s(), self.away_from_zero(shape, sub)),
            lambda: ("unary", "-", s()),
            lambda: _call(rng.choice(("abs", "relu")), s()),
            lambda: _call(rng.choice(("max", "min", "hypot")), s(), s()),
            lambda: _call(rng.choice(("max", "min")), s(), s(), s()),
            lambda: _call("softplus", s()),
            # gelu-like: 0.5·s·(1 + tanh(c·s)), whose value cancels for s ≪ 0
            lambda: (
                "binary",
                "*",
                ("binary", "*", _num("0.5"), s()),
                (
                    "paren",
                    ("binary", "+", _num("1"), _call("tanh", ("binary", "*", _num("0.75"), s()))),
                ),
            ),
            lambda: (
                "binary",
                "*",
                _call("sqrt", _call("abs", s())),
                _call("sqrt", _call("abs", s())),
            ),
            lambda: _call("heaviside", s(), b()) if rng.random() < 0.2 else _call("sign", s()),
            lambda: _call("where", self.condition(shape, sub), s(), s()),
            lambda: _call(rng.choice(("maximum", "minimum")), s(), s()),
            lambda: _call("clip", s(), _num("-1"), _num("0.5")),
        ]
        if shape == ():
            options += [
                lambda: _call(
                    rng.choice(("sum", "mean", "max", "min", "norm", "logsumexp")),
                    s(rng.choice(SHAPES)),
                )
            ] * 3
            options += [lambda: _call("dot", s((n := rng.choice((2, 3)),)), b((n,)))]
            options += [lambda: ("binary", "@", b((2,)), s((2,)))]
            options += [lambda: ("index", s(sh := rng.choice(SHAPES)), self._element_key(sh))]
        if shape == (2,):
            options += [
                lambda: self._reduce_axis(
                    rng.choice(("sum", "max", "min", "norm", "mean", "logsumexp")), s((2, 2))
                )
            ] * 2
            options += [lambda: ("binary", "@", b((2, 2)), s((2,)))]
            options += [lambda: ("index", s((2, 2)), (rng.choice((0, 1)),))]
        if shape == ():
            options += [lambda: _call("trace", s((2, 2)))]
        if shape == (2,):
            options += [lambda: _call("diag", s((2, 2))), lambda: _call("full", _num("[2]"), s(()))]
            options += [lambda: ("binary", "*", _call("ones", _num("2")), s())]
        if shape == (2, 2):  # an outer product by new axes
            options += [
                lambda: (
                    "binary",
                    "*",
                    _call("expand_dims", s((2,)), axis=1),
                    _call("expand_dims", b((2,)), axis=0),
                )
            ]
        if shape == (2, 2):
            options += [lambda: _call("outer", s((2,)), b((2,))), lambda: _call("diag", s((2,)))]
            options += [
                lambda: ("binary", "*", _call("eye", _num("2")), s()),
                lambda: ("binary", "*", _call("ones", _num("[2, 2]")), s()),
                lambda: ("binary", "+", _call("zeros", _num("[2, 2]")), s()),
            ] * 2
            options += [lambda: _call("transpose", s())]
            options += [lambda: _call("reshape", s((4,)), shape=(2, 2))]
        if shape == (4,):
            options += [lambda: _call("reshape", s((2, 2)), shape=(4,))]
            options += [lambda: _call("cumsum", s((2, 2)))]  # the flattened running sums
        if shape in ((2,), (2, 2)):  # rearranged and accumulated
            axis = len(shape) - 1
            options += [
                lambda: _call("cumprod", s(), axis=axis),
                lambda: _call("sort", s(), axis=rng.choice((0, -1))),
                lambda: ("binary", "*", _call("argsort", s()), b()),
                lambda: _call("flip", s(), axis=axis),
                lambda: _call("roll", s(), shift=1, axis=axis),
                lambda: _call("cumsum", s(), axis=axis),
            ]
        if shape == (2,):  # the shapes drawn are (2,), (3,) and (2, 2)
            options += [lambda: _call("diff", s((3,)))]
        if shape == (2, 2):
            options += [lambda: _call(rng.choice(("tril", "triu")), s(), k=rng.choice((0, 1, -1)))]
        if shape != ():
            options += [lambda: ("binary", "*", s(), self._softmax(s(), shape))]
            options += [lambda: _call("log_softmax", s())]
            options += [lambda: self.literal(shape, lambda sh: self.scaled(sh, sub))]
        return rng.choice(options)()

    def condition(self, shape: Shape, depth: int) -> Tree:
        """A condition: a comparison of two expressions, sometimes combined or negated."""
        rng = self.rng
        comparisons = ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")

        def compare() -> Tree:
            a, b = self.scaled(shape, depth), self.scaled(shape, 0)
            if rng.random() < 0.5:
                return ("binary", rng.choice(list(_COMPARISONS)), a, b)
            return _call(rng.choice(comparisons), a, b)

        options: list[Callable[[], Tree]] = [
            compare,
            compare,
            lambda: _call(rng.choice(("logical_and", "logical_or")), compare(), compare()),
            lambda: ("binary", rng.choice(("and", "or")), compare(), compare()),
            lambda: _call("logical_not", compare()),
            lambda: ("unary", "not", compare()),
            lambda: self.scaled(shape, depth),  # a number as a condition: true where nonzero
        ]
        return rng.choice(options)()

    def bounded(self, shape: Shape, depth: int) -> Tree:
        """An expression whose value is bounded (|v| ≤ about 750) wherever its inputs are."""
        rng = self.rng
        sub = max(depth - 1, 0)

        def s(sh: Shape = shape) -> Tree:
            return self.scaled(sh, sub)

        def b(sh: Shape = shape) -> Tree:
            return self.bounded(sh, sub) if depth > 0 else _call("tanh", self.scaled(sh, 0))

        options: list[Callable[[], Tree]] = [
            lambda: _call(rng.choice(("tanh", "sigmoid", "atan", "sin", "cos", "sech")), s()),
            lambda: _call("atan2", s(), s()),
            lambda: _call(rng.choice(("log", "log2", "log10")), _call("abs", s())),
            lambda: _call("log1p", _call("abs", s())),
            lambda: _call("log", _call("hypot", s(), s())),
            lambda: _call(rng.choice(("asin", "acos")), _call(rng.choice(("tanh", "sin")), s())),
            lambda: _call("exp", ("unary", "-", _call("abs", s()))),
            lambda: _call("expm1", ("unary", "-", _call("abs", s()))),
            lambda: _call(
                rng.choice(("sinh", "cosh", "tan", "exp")),
                ("binary", "*", _num("0.5"), _call("tanh", s())),
            ),
            lambda: ("binary", rng.choice("+-*"), b(), b()),
            lambda: ("binary", rng.choice("+-"), _num(rng.choice(("1", "0.5"))), b()),
            lambda: ("binary", "^", self.away_from_zero(shape, sub), b()),
            lambda: _call("pow", self.away_from_zero(shape, sub), _num(rng.choice(("2", "0.5")))),
            lambda: _call("xlogy", b(), self.away_from_zero(shape, sub)),
            lambda: _call("sqrt", _call("sigmoid", s())),
            lambda: _call("equal", _call("sign", s()), _call("sign", s())),
            lambda: _call("heaviside", s(), _num("0.5")),
            lambda: _call(
                "polygamma", _num(rng.choice(("1", "2"))), self.away_from_zero(shape, sub)
            ),
            lambda: _call("gammaln", self.away_from_zero(shape, sub)),
        ]
        if shape != ():
            options += [lambda: self._softmax(s(), shape)]
        return rng.choice(options)()

    def away_from_zero(self, shape: Shape, depth: int) -> Tree:
        """A bounded expression that is at least 1/2: 1 + b^2, 2 + sin(s), cosh(b), exp(b)…"""
        rng = self.rng
        b = self.bounded(shape, max(depth - 1, 0))
        options = [
            ("binary", "+", _num("1"), ("binary", "^", b, _num("2"))),
            ("binary", "+", _num("2"), _call("sin", self.scaled(shape, max(depth - 1, 0)))),
            ("binary", "+", _num("0.5"), _call("sigmoid", self.scaled(shape, max(depth - 1, 0)))),
            _call("cosh", _call("tanh", b)),
            _call("exp", _call("tanh", b)),
            _call("hypot", b, _num("1")),
        ]
        return rng.choice(options)


# --- the reference: an mpmath interpreter with dual numbers ------------------------------------

ZERO, ONE = mpf(0), mpf(1)
NAN, INF = mpf("nan"), mpf("inf")
MAX_FLOAT = mpf(np.finfo(np.float64).max)
HUGE = mpf(10) ** 1000  # an intermediate beyond this is far outside float64: the point is skipped
EXP_LIMIT = 2400  # exp(2400) > 1e1000
NEAR = mpf(2) ** -40  # a switching argument this close to 0 (relative to rounding) is on the kink
AGREE = mpf(2) ** -90  # two precisions agree when they differ by less than this, relatively
PRECISIONS = ((100, 160), (320, 640))
_PI, _E = mpf(math.pi), mpf(math.e)  # the float64 constants gradcli uses


class Skip(Exception):
    """mpmath says the point cannot be compared with float64: `reason` is a short class name,
    `detail` the numbers."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


class D:
    """A dual number: value v, tangents t (slot -> ∂v/∂slot; a missing slot is a structural
    zero), path magnitudes m (slot -> sum over paths of |product of local derivatives|) and e,
    the scale of float64's rounding error in v (|v| plus the propagated scales of the inputs),
    in units of the machine epsilon. Never mutated once made, so results may share inputs."""

    __slots__ = ("e", "m", "t", "v")

    def __init__(self, v: mpf, t: dict, m: dict, e: mpf):
        self.v, self.t, self.m, self.e = v, t, m, e

    def __repr__(self) -> str:
        return f"D({mpmath.nstr(self.v, 8)}, {self.t})"


@dataclass
class _Context:
    """The state of one evaluation: precision, mode and what it met on the way.

    Modes: "multi" (a tangent per slot; at an active kink the tangent is arbitrary and the
    slots that move it are noted, to be redone), "directional" (one tangent, under the key
    `direction`; each kink takes its one-sided rule) and "forced" (at the i-th active kink, the
    tangent of piece force[i]: the gradient of one smooth piece of the function)."""

    prec: int
    direction: int | None = None  # directional mode: the key of the one tangent
    force: tuple[int, ...] | None = None  # forced mode: the piece taken at each active kink
    record: bool = False  # record every kink's arguments (for solving for kinks)
    perturb: random.Random | None = None  # round every result by ±2^-52, as float64 might
    events: list = field(default_factory=list)
    kinks: dict = field(default_factory=dict)  # slot -> name of an active kink it moves
    jumps: dict = field(default_factory=dict)  # slot -> name of a jump it sits on
    reasons: dict = field(default_factory=dict)  # slot -> why its tangent is not finite
    active: list = field(default_factory=list)  # the active kinks, in order, and their pieces
    jumped: list = field(default_factory=list)  # the jumps sat on, in order
    overflows: str = ""  # an intermediate beyond float64's range, if one was met
    # A periodic function of a computed argument whose float64 rounding exceeds a radian:
    # float64 computes it at an arbitrary phase, so no derivative of it can be judged.
    phase_lost: bool = False

    @property
    def addprec(self) -> int:
        return self.prec + 4096


_CTX = _Context(100)
_ROUNDING = mpf(2) ** -52


_SUBNORMAL = mpf(2) ** -1074  # the spacing of float64's subnormal numbers
_NORMAL = mpf(2) ** -1022


def _rounded(v: mpf) -> mpf:
    """v, or v as float64 might round it, when measuring how that rounding moves the result:
    times 1 ± 2^-52 (the sign drawn by `perturb`), and below the normal range to a multiple of
    2^-1074, as float64 does (to 0 under 2^-1075: underflow changes the function itself)."""
    if _CTX.perturb is None:
        return v
    if abs(v) < _NORMAL:
        return mpmath.nint(v / _SUBNORMAL) * _SUBNORMAL
    return v * (1 + _ROUNDING) if _CTX.perturb.random() < 0.5 else v * (1 - _ROUNDING)


class _Upward(random.Random):
    """Every result rounded up: random signs can cancel exactly ((1 + ε)(1 - ε) is 1 to 100
    bits), consistent ones cannot."""

    def random(self) -> float:
        return 0.0


def _add_mpf(a: mpf, b: mpf) -> mpf:
    """a + b at 4096 bits more than the working precision: exact for float64 magnitudes."""
    return mpmath.mp.fadd(a, b, prec=_CTX.addprec)


def _const(value: float | mpf) -> D:
    return D(mpf(value), {}, {}, ZERO)


def _finite(x: mpf) -> bool:
    return mpmath.isfinite(x)


def _chain(name: str, v: mpf, args: Sequence[D], partials: Sequence[mpf]) -> D:
    """The result v of `args` whose local derivatives are `partials` (possibly infinite)."""
    if type(v) is mpmath.mpc and abs(v.imag) <= 1e-20 * max(1, abs(v.real)):
        # asin at 1 to within the working precision: on the edge of the real domain
        raise _domain(name, *(a.v for a in args))
    if type(v) is not mpf:
        raise TypeError(f"{name} gave {v!r}: a rule of this module left the reals")
    if abs(v) > HUGE:
        raise Skip("an intermediate value exceeds 1e1000", f"{name} = {mpmath.nstr(v, 5)}")
    if abs(v) > MAX_FLOAT and not _CTX.overflows:
        _CTX.overflows = f"{name} = {mpmath.nstr(v, 5)}"
    v = _rounded(v)
    t: dict = {}
    m: dict = {}
    e = abs(v)
    for a, p in zip(args, partials, strict=True):
        if a.e and _finite(p):
            e += abs(p) * a.e
        elif a.e:
            e = INF
        if not a.t:
            continue
        ap = abs(p)
        for k, ta in a.t.items():
            term = ta * p
            if not _finite(term) and k not in _CTX.reasons:
                _CTX.reasons[k] = f"an infinite or undefined derivative ({name})"
            if k in t:
                t[k] = _add_mpf(t[k], term)
                m[k] = m[k] + ap * a.m[k]
            else:
                t[k] = term
                m[k] = ap * a.m[k]
    return D(v, t, m, e)


def _add(a: D, b: D, sign: int = 1) -> D:
    """a + b (or a - b): carried at 4096 bits more than the working precision."""
    v = _rounded(_add_mpf(a.v, b.v if sign > 0 else -b.v))
    t = dict(a.t)
    m = dict(a.m)
    for k, tb in b.t.items():
        tb = tb if sign > 0 else -tb
        if k in t:
            t[k] = _add_mpf(t[k], tb)
            m[k] = m[k] + b.m[k]
        else:
            t[k], m[k] = tb, b.m[k]
    return D(v, t, m, abs(v) + a.e + b.e)


def _neg(a: D) -> D:
    return D(-a.v, {k: -x for k, x in a.t.items()}, a.m, a.e)


def _mul(a: D, b: D) -> D:
    return _chain("*", a.v * b.v, (a, b), (b.v, a.v))


def _div(a: D, b: D) -> D:
    if b.v == 0:
        raise Skip("division by zero")
    v = a.v / b.v
    return _chain("/", v, (a, b), (1 / b.v, -v / b.v))


def _domain(name: str, *args: mpf) -> Skip:
    """The skip for a function outside its real domain, naming the arguments."""
    text = ", ".join(mpmath.nstr(a, 6) for a in args)
    return Skip("outside the real domain", f"{name}({text})")


def _exp_guard(name: str, x: mpf) -> None:
    """Refuse exp-like functions whose value would exceed 1e1000 before computing them."""
    if x > EXP_LIMIT:
        raise Skip("an intermediate value exceeds 1e1000", f"{name}({mpmath.nstr(x, 6)})")


def _pow(x: mpf, y: mpf) -> tuple[mpf, tuple[mpf, mpf]]:
    """x^y with its partials; the exponent's partial is 0 where x = 0 < y (0^y is 0 there)."""
    if x > 0:
        size = y * mpmath.log(x, 2)
        if size > 3400:
            raise Skip("an intermediate value exceeds 1e1000", f"pow({x}, {y})")
        p = mpmath.power(x, y)
        return p, (y * mpmath.power(x, y - 1), p * mpmath.log(x))
    if x == 0:
        if y > 0:
            return ZERO, ((ZERO if y > 1 else ONE if y == 1 else INF), ZERO)
        if y == 0:
            return ONE, (ZERO, NAN)  # 0^y jumps at y = 0
        raise Skip("division by zero", f"0^{mpmath.nstr(y, 6)}")
    if y != mpmath.floor(y):
        raise _domain("pow", x, y)
    p = mpmath.power(x, y)
    return p, (y * mpmath.power(x, y - 1), NAN)  # no real x^y near a negative x but at integers


def _sigmoid(x: mpf) -> tuple[mpf, tuple[mpf]]:
    """1/(1 + e^-x) from e^-|x|, so that no intermediate exceeds 1 (x may be 1e300)."""
    t = mpmath.exp(-abs(x))
    s = 1 / _add_mpf(ONE, t)
    return (s if x >= 0 else t * s), (t * s * s,)


def _softplus(x: mpf) -> tuple[mpf, tuple[mpf]]:
    """log(1 + e^x) as max(x, 0) + log1p(e^-|x|): no intermediate beyond e^0."""
    t = mpmath.exp(-abs(x))
    value = mpmath.log1p(t) + (x if x > 0 else 0)
    return value, (_sigmoid(x)[0],)


def _unit(name: str, x: mpf) -> mpf:
    """1/sqrt(1 - x^2) for asin and acos, infinite at ±1."""
    if abs(x) > 1:
        raise _domain(name, x)
    if abs(x) == 1:
        return INF
    return 1 / mpmath.sqrt(_add_mpf(ONE, -x) * _add_mpf(ONE, x))


def _positive(name: str, x: mpf, strict: bool = True) -> None:
    if x < 0 or (strict and x == 0):
        raise _domain(name, x)


def _log(x: mpf, base: mpf | None = None) -> tuple[mpf, tuple[mpf]]:
    _positive("log", x)
    scale = ONE if base is None else mpmath.log(base)
    return mpmath.log(x) / scale, (1 / (x * scale),)


def _acosh(x: mpf) -> tuple[mpf, tuple[mpf]]:
    """acosh, for x ≥ 1; its derivative 1/√((x − 1)(x + 1)) is infinite at 1."""
    if x < 1:
        raise _domain("acosh", x)
    if x == 1:
        return mpf(0), (INF,)
    return mpmath.acosh(x), (1 / mpmath.sqrt(_add_mpf(x, -ONE) * _add_mpf(x, ONE)),)


def _below_one(name: str, x: mpf) -> None:
    """Skip an argument that float64 rounds onto the edge 1 of an open domain (tanh(29.5) is
    1 − 5e-26, and 1 in float64): there the float64 function is infinite where the exact one is
    not. Within 2^-54 of 1, the half-ulp below 1, every number rounds to 1."""
    if 0 < 1 - abs(x) <= mpf(2) ** -54:
        raise Skip("float64 rounds the argument onto the domain's edge", name)


def _atanh(x: mpf) -> tuple[mpf, tuple[mpf]]:
    """atanh, for |x| < 1, with the derivative 1/((1 − x)(1 + x))."""
    if abs(x) >= 1:
        raise _domain("atanh", x)
    _below_one("atanh", x)
    return mpmath.atanh(x), (1 / (_add_mpf(ONE, -x) * _add_mpf(ONE, x)),)


def _cbrt(x: mpf) -> tuple[mpf, tuple[mpf]]:
    """The real cube root; its derivative is infinite at 0, where the tangent is vertical."""
    r = mpmath.sign(x) * mpmath.cbrt(abs(x))
    return r, ((INF if x == 0 else 1 / (3 * r * r)),)


def _logit(x: mpf) -> tuple[mpf, tuple[mpf]]:
    if not 0 < x < 1:
        raise _domain("logit", x)
    _below_one("logit", x)
    rest = _add_mpf(ONE, -x)
    return mpmath.log(x / rest), (1 / (x * rest),)


def _sinc(x: mpf) -> tuple[mpf, tuple[mpf]]:
    if abs(x) > MAX_FLOAT:  # mpmath's reduction of π·1e999 runs out of integer digits
        raise Skip("an argument beyond float64", "sinc")
    if x and abs(x) < mpf(2) ** -600:  # the series: the slope's cancellation needs no digits
        return ONE - (mpmath.pi * x) ** 2 / 6, (-(mpmath.pi**2) * x / 3,)
    return (mpmath.sincpi(x) if x else ONE), (references.sinc_slope(x),)


def _xlog1py(x: mpf, y: mpf) -> tuple[mpf, tuple[mpf, mpf]]:
    """x·log(1 + y), and 0 where x = 0 whatever y is (as gradcli defines it)."""
    if x == 0:
        return ZERO, ((mpmath.log1p(y) if y > -1 else -INF if y == -1 else NAN), ZERO)
    if y <= -1:
        raise _domain("xlog1py", x, y)
    return x * mpmath.log1p(y), (mpmath.log1p(y), x / _add_mpf(ONE, y))


def _exp2(x: mpf) -> tuple[mpf, tuple[mpf]]:
    _exp_guard("exp2", x * mpmath.log(2))
    v = mpmath.power(2, x)
    return v, (v * mpmath.log(2),)


def _erfinv(x: mpf) -> tuple[mpf, tuple[mpf]]:
    if not -1 < x < 1:
        raise _domain("erfinv", x)
    _below_one("erfinv", x)
    v = mpmath.erfinv(x)
    return v, (mpmath.sqrt(mpmath.pi) / 2 * mpmath.exp(v * v),)


def _erfcx(x: mpf) -> tuple[mpf, tuple[mpf]]:
    _exp_guard("erfcx", -x * abs(x))
    return references.erfcx(x), (references.erfcx_slope(x),)


def _log_ndtr(x: mpf) -> tuple[mpf, tuple[mpf]]:
    """log Φ and φ/Φ, the latter as √(2/π)/erfcx(−x/√2) on the left, where both underflow."""
    slope = (
        mpmath.sqrt(2 / mpmath.pi) / references.erfcx(-x / mpmath.sqrt(2))
        if x < 0
        else mpmath.npdf(x) / references.ndtr(x)
    )
    return references.log_ndtr(x), (slope,)


def _ndtri(p: mpf) -> tuple[mpf, tuple[mpf]]:
    if not 0 < p < 1:
        raise _domain("ndtri", p)
    _below_one("ndtri", p)
    v = references.ndtri(p)
    return v, (mpmath.sqrt(2 * mpmath.pi) * mpmath.exp(v * v / 2),)


def _gamma(x: mpf) -> tuple[mpf, tuple[mpf]]:
    _exp_guard("gamma", x * mpmath.log(abs(x) + 1))  # Γ(x) < x^x
    v = mpmath.gamma(_off_poles("gamma", x))
    return v, (v * mpmath.digamma(x),)


def _beta(a: mpf, b: mpf, log: bool) -> tuple[mpf, tuple[mpf, mpf]]:
    """B(a, b) (or log |B|) and its partials B·(ψ(a) − ψ(a + b)), B·(ψ(b) − ψ(a + b))."""
    name = "betaln" if log else "beta"
    for v in (a, b, a + b):
        _off_poles(name, v)
    scale = ONE if log else mpmath.beta(a, b)
    value = mpmath.log(abs(mpmath.beta(a, b))) if log else scale
    gap = mpmath.digamma(a + b)
    return value, (scale * (mpmath.digamma(a) - gap), scale * (mpmath.digamma(b) - gap))


def _pair(value_and_slope: tuple[mpf, mpf]) -> tuple[mpf, tuple[mpf]]:
    value, slope = value_and_slope
    return value, (slope,)


def _bessel(n: int) -> Rule:
    """Iₙ, with Iₙ′ = I₁ for n = 0 and I₀ − I₁/x (½ at 0) for n = 1."""

    def rule(x: mpf) -> tuple[mpf, tuple[mpf]]:
        _exp_guard(f"i{n}", abs(x))
        if n == 0:
            return mpmath.besseli(0, x), (mpmath.besseli(1, x),)
        slope = mpmath.besseli(0, x) - mpmath.besseli(1, x) / x if x else mpf(0.5)
        return mpmath.besseli(1, x), (slope,)

    return rule


def _log_gamma(x: mpf) -> mpf:
    """log |Γ(x)|, also for x < 0 (mpmath's loggamma is complex there)."""
    return mpmath.re(mpmath.loggamma(x))


def _off_poles(name: str, x: mpf) -> mpf:
    """x, unless it is a pole of Γ (0, -1, -2, …), outside the domain of lgamma and digamma.
    Below −2^52 every float64 is a whole number, so float64 can only be on a pole there (and
    mpmath's reflection at −6.8e139 runs for minutes)."""
    if x <= 0 and (x == mpmath.floor(x) or x <= -(2**52)):
        raise _domain(name, x)
    return x


def _log1p(x: mpf) -> tuple[mpf, tuple[mpf]]:
    if x <= -1:
        raise _domain("log1p", x)
    return mpmath.log1p(x), (1 / _add_mpf(ONE, x),)


def _sqrt(x: mpf) -> tuple[mpf, tuple[mpf]]:
    _positive("sqrt", x, strict=False)
    r = mpmath.sqrt(x)
    return r, ((INF if x == 0 else 1 / (2 * r)),)


def _xlogy(x: mpf, y: mpf) -> tuple[mpf, tuple[mpf, mpf]]:
    """x·log y, and 0 where x = 0 whatever y is (as gradcli defines it)."""
    if x == 0:  # 0 for every y: the y partial is 0; the x partial is log y
        return ZERO, ((mpmath.log(y) if y > 0 else -INF if y == 0 else NAN), ZERO)
    _positive("xlogy", y)
    return x * mpmath.log(y), (mpmath.log(y), x / y)


def _bounded_exp(
    name: str, f: Callable[[mpf], mpf], df: Callable[[mpf], mpf], symmetric: bool
) -> Rule:
    def rule(x: mpf) -> tuple[mpf, tuple[mpf]]:
        _exp_guard(name, abs(x) if symmetric else x)
        return f(x), (df(x),)

    return rule


def _simple(f: Callable[[mpf], mpf], df: Callable[[mpf], mpf]) -> Rule:
    return lambda x: (f(x), (df(x),))


# The smooth elementwise functions: name -> (values) -> (value, partials), written from calculus.
SMOOTH: dict[str, Callable[..., tuple[mpf, tuple]]] = {
    "sin": _simple(mpmath.sin, mpmath.cos),
    "cos": _simple(mpmath.cos, lambda x: -mpmath.sin(x)),
    "tan": _simple(mpmath.tan, lambda x: 1 / mpmath.cos(x) ** 2),
    "asin": lambda x: (mpmath.asin(x), (_unit("asin", x),)),
    "acos": lambda x: (mpmath.acos(x), (-_unit("acos", x),)),
    "atan": _simple(mpmath.atan, lambda x: 1 / _add_mpf(ONE, x * x)),
    "sinh": _bounded_exp("sinh", mpmath.sinh, mpmath.cosh, True),
    "cosh": _bounded_exp("cosh", mpmath.cosh, mpmath.sinh, True),
    "tanh": _simple(mpmath.tanh, lambda x: mpmath.sech(x) ** 2),
    "sech": _simple(mpmath.sech, lambda x: -mpmath.sech(x) * mpmath.tanh(x)),
    "exp": _bounded_exp("exp", mpmath.exp, mpmath.exp, False),
    "expm1": _bounded_exp("expm1", mpmath.expm1, mpmath.exp, False),
    "log": _log,
    "log2": lambda x: _log(x, mpf(2)),
    "log10": lambda x: _log(x, mpf(10)),
    "log1p": _log1p,
    "sqrt": _sqrt,
    "pow": _pow,
    "xlogy": _xlogy,
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "asinh": _simple(mpmath.asinh, lambda x: 1 / mpmath.sqrt(_add_mpf(ONE, x * x))),
    "acosh": lambda x: _acosh(x),
    "atanh": lambda x: _atanh(x),
    "logaddexp": lambda a, b: (
        mpmath.log(mpmath.exp(a) + mpmath.exp(b)),
        (1 / (1 + mpmath.exp(b - a)), 1 / (1 + mpmath.exp(a - b))),
    ),
    "cbrt": _cbrt,
    "square": lambda x: (x * x, (2 * x,)),
    "exp2": _exp2,
    "log_sigmoid": lambda x: (-_softplus(-x)[0], (_sigmoid(-x)[0],)),
    "logit": _logit,
    "sinc": _sinc,
    "xlog1py": _xlog1py,
    "erfinv": _erfinv,
    "erfcx": _erfcx,
    "ndtr": lambda x: (references.ndtr(x), (mpmath.npdf(x),)),
    "log_ndtr": _log_ndtr,
    "ndtri": _ndtri,
    "gamma": _gamma,
    "beta": lambda a, b: _beta(a, b, log=False),
    "betaln": lambda a, b: _beta(a, b, log=True),
    "i0": _bessel(0),
    "i1": _bessel(1),
    "i1e": lambda x: _pair(references.scaled_bessel(1, x)),
    # i0e(x) = g(|x|): the kink at 0 is abs's; g(t) = e^(−t)·I₀(t) is smooth for t ≥ 0.
    "i0e_even": lambda t: _pair(references.scaled_bessel(0, t)),
    "erf": _simple(mpmath.erf, lambda x: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x)),
    "erfc": _simple(references.erfc, lambda x: -2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x)),
    "lgamma": lambda x: (
        mpmath.log(abs(mpmath.gamma(_off_poles("lgamma", x)))),
        (mpmath.digamma(x),),
    ),
    "digamma": lambda x: (mpmath.digamma(_off_poles("digamma", x)), (mpmath.psi(1, x),)),
}


_PERIODIC = frozenset({"sin", "cos", "tan"})


def _smooth(name: str, *args: D) -> D:
    """A smooth elementwise function of dual numbers, by its rule in `SMOOTH`."""
    if name in _PERIODIC and args[0].e * _ROUNDING > 1:
        # sin(norm(W)) at |W| = 1e190: rounding the norm by an ulp moves it by 1e174 radians.
        # The rounding runs of `_sensitivity` see that only when the sign they land on differs.
        _CTX.phase_lost = True
    with _poles(name):
        value, partials = SMOOTH[name](*(a.v for a in args))
    return _chain(name, value, args, partials)


@contextmanager
def _poles(name: str) -> Iterator[None]:
    """mpmath's Γ, ψ and B refuse an argument within their working precision of a pole (−3 +
    1e-200), which `_off_poles` lets through: such a point is skipped, as one on the pole."""
    try:
        yield
    except ValueError as exc:
        if "pole" not in str(exc):
            raise
        raise Skip("within the working precision of a pole", name) from None


def _polygamma(n: int, d: D) -> D:
    """ψ⁽ⁿ⁾ of a dual number, with the derivative ψ⁽ⁿ⁺¹⁾."""
    x = _off_poles("polygamma", d.v)
    with _poles("polygamma"):
        return _chain("polygamma", mpmath.psi(n, x), (d,), (mpmath.psi(n + 1, x),))


def _power(a: D, b: D) -> D:
    """a^b: a negative base needs an integer exponent, which a computed one (rounded on the
    way, e > 0) may be only by rounding: such a point is outside the real domain, or nearly."""
    if a.v < 0 and b.e != 0:
        raise _domain("pow", a.v, b.v)
    return _smooth("pow", a, b)


UNDERFLOW = mpf(2) ** -1060  # below this float64 keeps under 14 bits, or rounds to 0


def _near(a: D) -> bool:
    """Whether a switching argument is 0, or so close that float64 may see either side: within
    its rounding (2^-40 of the rounding scale), or below float64's normal range."""
    return a.v == 0 or abs(a.v) <= NEAR * a.e or abs(a.v) < UNDERFLOW


def _near2(a: D, b: D) -> bool:
    """`_near` for the difference of two arguments: a tie of max or min."""
    gap = abs(a.v - b.v)
    return a.v == b.v or gap <= NEAR * (a.e + b.e) or gap < UNDERFLOW


def _switch(
    name: str, value: mpf, pieces: Sequence[D], convex: bool, default: int, gap: mpf = ZERO
) -> D:
    """An active kink with smooth `pieces` (relu: 0 and a; max: a and b; ...): the value, and
    the tangent that the mode asks for. A convex kink's one-sided derivative is the largest of
    its pieces' (relu, abs, max), a concave one's the smallest (min).

    `gap` is the switching argument's distance from 0. A kink that is not exactly at the point
    (nor below float64's normal range) is active only because the rounding scale of its
    argument reaches it: float64 is on one side, which the reference cannot tell (u·g with g
    exactly 0 in float64, u = 1e160, bounds the rounding of a sum at 1e144 though float64's is
    1e-91), so the point is skipped, as within rounding of a jump."""
    if gap != 0 and gap >= UNDERFLOW:
        raise Skip("within rounding of a kink", name)
    _CTX.active.append((name, len(pieces)))
    for piece in pieces:
        for k in piece.t:
            _CTX.kinks.setdefault(k, name)
    index = len(_CTX.active) - 1
    if _CTX.force is not None and index < len(_CTX.force):
        chosen = pieces[_CTX.force[index]]
    elif _CTX.direction is not None:
        key = _CTX.direction
        slopes = [p.t.get(key, ZERO) for p in pieces]
        best = max(slopes) if convex else min(slopes)
        chosen = pieces[slopes.index(best)]
    else:
        chosen = pieces[default]
    return D(value, chosen.t, chosen.m, max(p.e for p in pieces))


def _round_kink(name: str, value: mpf, parts: Sequence[D], tangent: Callable[[list], mpf]) -> D:
    """The kink of norm or hypot at the origin: a cone, not a choice of pieces. Its one-sided
    derivative along a direction is the norm of the tangents."""
    _CTX.active.append((name, 0))
    keys = set().union(*(d.t for d in parts))
    for k in keys:
        _CTX.kinks.setdefault(k, name)
    if _CTX.direction is None:
        return D(value, {}, {}, sum(d.e for d in parts))
    t = {k: tangent([d.t.get(k, ZERO) for d in parts]) for k in keys}
    m = {k: sum(d.m.get(k, ZERO) for d in parts) for k in keys}
    return D(value, t, m, sum(d.e for d in parts))


def _jump(name: str, exact: bool, *args: D) -> None:
    """A jump at its switch: exactly on it, the coordinates that move it are skipped; within
    rounding of it (float64 may be on either side, with another value) the point is skipped."""
    if not exact:
        raise Skip("within rounding of a jump", name)
    _CTX.jumped.append(name)
    for a in args:
        for k in a.t:
            _CTX.jumps.setdefault(k, name)


def _event(name: str, *args: Any) -> None:
    """Record a kink's arguments, in evaluation order, for `solve_kink`."""
    if _CTX.record:
        _CTX.events.append((name, args))


def _abs(a: D) -> D:
    """|a|: a kink at 0, with the pieces -a and a."""
    _event("abs", a)
    if _near(a) and a.t:
        return _switch("abs", abs(a.v), (_neg(a), a), True, int(a.v >= 0), abs(a.v))
    return _neg(a) if a.v < 0 else a


def _relu(a: D) -> D:
    """max(a, 0): a kink at 0, with the pieces 0 and a."""
    _event("relu", a)
    if _near(a) and a.t:
        return _switch("relu", max(a.v, ZERO), (_const(0), a), True, int(a.v > 0), abs(a.v))
    return a if a.v > 0 else _const(0)


def _extreme(name: str, a: D, b: D) -> D:
    """max(a, b) or min(a, b): at a tie, the one-sided derivative is the max (min) of the two."""
    _event(name, a, b)
    pick = max if name == "max" else min
    if _near2(a, b) and (a.t or b.t):
        first = 0 if pick(a.v, b.v) == a.v else 1
        return _switch(name, pick(a.v, b.v), (a, b), name == "max", first, abs(a.v - b.v))
    if name == "max":
        return a if a.v >= b.v else b
    return a if a.v <= b.v else b


def _sign(a: D) -> D:
    """sign(a): locally constant (no tangent), a jump at 0."""
    _event("sign", a)
    if _near(a):
        _jump("sign", a.v == 0 and a.e == 0, a)
    return _const(mpmath.sign(a.v))


def _heaviside(a: D, h0: D) -> D:
    """0, 1, or h0 at a = 0 (where its tangent is h0's): a jump at 0."""
    _event("heaviside", a)
    if _near(a):
        _jump("heaviside", a.v == 0 and a.e == 0, a)
    if a.v == 0:
        return h0
    return _const(1 if a.v > 0 else 0)


def _equal(a: D, b: D) -> D:
    """1 where a = b, else 0: a jump on the tie."""
    _event("equal", a, b)
    if _near2(a, b):
        _jump("equal", a.v == b.v and a.e == 0 and b.e == 0, a, b)
    return _const(1 if a.v == b.v else 0)


def _comparison(name: str, test: Callable[[mpf, mpf], bool]) -> Callable[[D, D], D]:
    """a < b, a == b, …: 1 or 0, a jump on the tie."""

    def rule(a: D, b: D) -> D:
        _event(name, a, b)
        if _near2(a, b):
            _jump(name, a.v == b.v and a.e == 0 and b.e == 0, a, b)
        return _const(1 if test(a.v, b.v) else 0)

    return rule


def _logical(name: str, combine: Callable[..., bool]) -> Callable[..., D]:
    """and, or, not of conditions that are true where nonzero: a jump where one crosses 0."""

    def rule(*args: D) -> D:
        _event(name, *args)
        for a in args:
            if _near(a):
                _jump(name, a.v == 0 and a.e == 0, a)
        return _const(1 if combine(*(a.v != 0 for a in args)) else 0)

    return rule


def _trunc(x: mpf) -> mpf:
    return mpmath.floor(x) if x >= 0 else mpmath.ceil(x)


def _rounding(name: str, f: Callable[[mpf], mpf]) -> Callable[[D], D]:
    """floor, ceil, trunc and round: constant between jumps at the integers (round: halfway
    between them; trunc is continuous at 0)."""

    def rule(a: D) -> D:
        _event(name, a)
        nearest = mpmath.floor(a.v) + mpf(0.5) if name == "round" else mpmath.nint(a.v)
        gap = a.v - nearest
        continuous = name == "trunc" and mpmath.nint(a.v) == 0
        if not continuous and _near(D(gap, a.t, a.m, a.e)):
            _jump(name, gap == 0 and a.e == 0, a)
        return _const(f(a.v))

    return rule


def _mod(a: D, b: D) -> D:
    """x - y·floor(x/y), a jump where x/y is an integer, with the partials 1 and -floor(x/y)."""
    _event("mod", a, b)
    if b.v == 0:
        raise _domain("mod", a.v, b.v)
    extra = max(0, int(mpmath.mag(a.v) - mpmath.mag(b.v))) + 64 if a.v else 64
    with mpmath.workprec(mpmath.mp.prec + extra):  # the quotient's whole digits, and more
        q, k = mpmath.floor(a.v / b.v), mpmath.nint(a.v / b.v)
        gap, value = a.v - b.v * k, a.v - b.v * q
    if _near(D(gap, {}, {}, a.e + abs(k) * b.e)):
        _jump("mod", gap == 0 and a.e == 0 and b.e == 0, a, b)
    return _chain("mod", value, (a, b), (mpf(1), -q))


def _where(c: D, a: D, b: D) -> D:
    """a where c is nonzero, else b: a jump where c crosses 0."""
    _event("where", c)
    if _near(c):
        _jump("where", c.v == 0 and c.e == 0, c)
    return a if c.v != 0 else b


def _atan2(y: D, x: D) -> D:
    """The angle of (x, y), with the partials x/r² and -y/r² (r² carried exactly)."""
    _event("atan2", y, x)
    if _near(y) and (x.v < 0 or _near(x)):
        # the value jumps by 2π across the negative x axis, where float64's signed zeros pick
        # the side, and has no limit at the origin
        raise Skip("on the cut of atan2 or at its origin")
    r2 = _add_mpf(x.v * x.v, y.v * y.v)
    return _chain("atan2", mpmath.atan2(y.v, x.v), (y, x), (x.v / r2, -y.v / r2))


def _hypot(a: D, b: D) -> D:
    """sqrt(a² + b²) without overflow; a cone-shaped kink at the origin."""
    _event("hypot", a, b)
    v = mpmath.hypot(a.v, b.v)
    if _near(a) and _near(b) and (a.t or b.t):
        return _round_kink("hypot", v, (a, b), lambda ts: mpmath.sqrt(sum(t * t for t in ts)))
    if v == 0:
        return _const(0)
    return _chain("hypot", v, (a, b), (a.v / v, b.v / v))


PIECEWISE: dict[str, Callable[..., D]] = {
    "abs": _abs,
    "relu": _relu,
    "max": lambda a, b: _extreme("max", a, b),
    "min": lambda a, b: _extreme("min", a, b),
    "sign": _sign,
    "heaviside": _heaviside,
    "equal": _equal,
    "atan2": _atan2,
    "hypot": _hypot,
    "less": _comparison("less", lambda a, b: a < b),
    "less_equal": _comparison("less_equal", lambda a, b: a <= b),
    "greater": _comparison("greater", lambda a, b: a > b),
    "greater_equal": _comparison("greater_equal", lambda a, b: a >= b),
    "not_equal": _comparison("not_equal", lambda a, b: a != b),
    "logical_and": _logical("logical_and", lambda p, q: p and q),
    "logical_or": _logical("logical_or", lambda p, q: p or q),
    "logical_not": _logical("logical_not", lambda p: not p),
    "floor": _rounding("floor", mpmath.floor),
    "ceil": _rounding("ceil", mpmath.ceil),
    "trunc": _rounding("trunc", _trunc),
    "round": _rounding("round", mpmath.nint),  # halves to even, as numpy
    "mod": _mod,
    "i0e": lambda a: _smooth("i0e_even", _abs(a)),
}

# --- arrays of dual numbers -------------------------------------------------------------------

Array = np.ndarray  # an object array of D (0-d for a number)


def _scalar(d: D) -> Array:
    out = np.empty((), dtype=object)
    out[()] = d
    return out


def _as_array(x: Any) -> Array:
    return x if isinstance(x, np.ndarray) else _scalar(x)


def _map(f: Callable[..., D], *xs: Array) -> Array:
    """f elementwise over arrays that broadcast together, as numpy broadcasts."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    parts = [np.broadcast_to(x, shape) for x in xs]
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        out[idx] = f(*(p[idx] for p in parts))
    return out


def _along(x: Array, axis: int | None, f: Callable[[list[D]], Any]) -> Array:
    """f of the elements along `axis` (all of them for None), for each position of the rest."""
    if axis is None:
        return _as_array(f(list(x.flat)))
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = f(list(moved[idx]))
    return out


def _same_along(x: Array, axis: int | None, f: Callable[[list[D]], list[D]]) -> Array:
    """f maps the elements along `axis` to as many (softmax, prod_except), for each position."""
    if axis is None:
        flat = np.empty(x.size, dtype=object)
        for j, d in enumerate(f(list(x.flat))):
            flat[j] = d
        return flat.reshape(x.shape)
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape, dtype=object)
    for idx in np.ndindex(moved.shape[:-1]):
        for j, d in enumerate(f(list(moved[idx]))):
            out[(*idx, j)] = d
    return np.moveaxis(out, -1, axis)


def _running(ds: list[D]) -> list[D]:
    """The running sums of ds: cumsum."""
    out = [ds[0]]
    for d in ds[1:]:
        out.append(_add(out[-1], d))
    return out


def _products(name: str, x: Array, y: Array, axes: int) -> Array:
    """tensordot (the last `axes` axes of x with the first of y), inner (the last with the
    last), kron of vectors and cross of 3-vectors, element by element with dual numbers."""
    if name == "cross":
        out = np.empty(3, dtype=object)
        for k, (i, j) in enumerate(((1, 2), (2, 0), (0, 1))):
            out[k] = _add(_mul(x[i], y[j]), _mul(x[j], y[i]), -1)
        return out
    if name == "kron":
        out = np.empty(x.size * y.size, dtype=object)
        for k, (a, b) in enumerate(itertools.product(x, y)):
            out[k] = _mul(a, b)
        return out
    if name == "inner":
        return _as_array(_sum([_mul(a, b) for a, b in zip(x, y, strict=True)]))
    free_x, free_y = x.shape[: x.ndim - axes], y.shape[axes:]
    out = np.empty(free_x + free_y, dtype=object)
    for i in np.ndindex(free_x):
        for j in np.ndindex(free_y):
            out[i + j] = _sum([_mul(x[i + k], y[k + j]) for k in np.ndindex(y.shape[:axes])])
    return out


def _einsum(subscripts: str, xs: list[Array]) -> Array:
    """einsum of explicit subscripts without '...', element by element with dual numbers."""
    inputs, out = subscripts.split("->")
    terms = inputs.split(",")
    sizes = {c: n for t, x in zip(terms, xs, strict=True) for c, n in zip(t, x.shape, strict=True)}
    summed = sorted(set(inputs) - set(out) - {","})
    result = np.empty(tuple(sizes[c] for c in out), dtype=object)
    for at in np.ndindex(result.shape):
        terms_sum = []
        for more in itertools.product(*(range(sizes[c]) for c in summed)):
            where = dict(zip(out, at, strict=True)) | dict(zip(summed, more, strict=True))
            factors = [x[tuple(where[c] for c in t)] for t, x in zip(terms, xs, strict=True)]
            terms_sum.append(_product(factors))
        result[at] = _sum(terms_sum)
    return result


def _running_product(ds: list[D]) -> list[D]:
    """The running products of ds: cumprod."""
    out = [ds[0]]
    for d in ds[1:]:
        out.append(_mul(out[-1], d))
    return out


def _sorted(name: str, ds: list[D]) -> list[D]:
    """sort's elements, or argsort's positions (constants). Where two elements tie within
    rounding, float64 may order them either way: a kink of sort, a jump of argsort; skipped."""
    for a, b in itertools.combinations(ds, 2):
        if _near2(a, b):
            raise Skip("a tie within rounding: the order is float64's", name)
    order = sorted(range(len(ds)), key=lambda k: ds[k].v)
    return [ds[k] for k in order] if name == "sort" else [_const(k) for k in order]


def _along_to(x: Array, f: Callable[[list[D]], list[D]]) -> Array:
    """f maps the elements along the last axis to a list of any length (diff: one fewer)."""
    rows = [f(list(x[idx])) for idx in np.ndindex(x.shape[:-1])]
    out = np.empty((*x.shape[:-1], len(rows[0])), dtype=object)
    for idx, row in zip(np.ndindex(x.shape[:-1]), rows, strict=True):
        for j, d in enumerate(row):
            out[(*idx, j)] = d
    return out


def _sum(ds: list[D]) -> D:
    total = ds[0]
    for d in ds[1:]:
        total = _add(total, d)
    return total


def _product(ds: list[D]) -> D:
    total = ds[0]
    for d in ds[1:]:
        total = _mul(total, d)
    return total


def _top(name: str, ds: list[D]) -> D:
    """max or min over elements: at a tie, the one-sided derivative is that of the extreme."""
    _event("a" + name, *ds)
    pick = max if name == "max" else min
    best = pick(d.v for d in ds)
    first = next(d for d in ds if d.v == best)
    tied = [d for d in ds if _near2(d, first)]
    if len(tied) > 1 and any(d.t for d in tied):
        return _switch("a" + name, best, tied, name == "max", tied.index(first))
    return first


def _norm(ds: list[D]) -> D:
    """sqrt(Σx²); at 0, the one-sided derivative along d is the norm of the tangents."""
    _event("norm", *ds)
    if all(_near(d) for d in ds) and any(d.t for d in ds):
        value = mpmath.sqrt(sum(d.v**2 for d in ds))
        return _round_kink("norm", value, ds, lambda ts: mpmath.sqrt(sum(t * t for t in ts)))
    squares = _sum([_mul(d, d) for d in ds])
    if squares.v == 0:
        return _const(0)
    return _smooth("sqrt", squares)


def _spread(name: str, ds: list[D], ddof: int) -> D:
    """var, Σ(x − mean)²/(n − ddof), or std, its root: the norm of the deviations over
    √(n − ddof), with norm's kink where they are all 0."""
    mean = _div(_sum(ds), _const(len(ds)))
    deviations = [_add(d, mean, -1) for d in ds]
    if name == "var":
        return _div(_sum([_mul(e, e) for e in deviations]), _const(len(ds) - ddof))
    return _div(_norm(deviations), _const(mpmath.sqrt(len(ds) - ddof)))


def _weights_resolved(name: str, ds: list[D]) -> None:
    """Skip where float64's rounding of the arguments decides the weights e^(x − max): a gap
    that rounding can move by more than 1e-8, on an element whose weight is not negligible.
    Float64 may then tie what differs exactly (3.17e43 + 5e22 and 3.17e43 are one float64: the
    weights ½, ½ against 1, 0), and a random draw of rounding signs misses it half the time."""
    first = max(ds, key=lambda d: d.v)
    for d in ds:
        if d is first:  # its own weight is e^0 = 1 exactly
            continue
        slack = _ROUNDING * (d.e + first.e)
        if slack > mpf(1e-8) and d.v - first.v > -(40 + slack) and (d.t or first.t):
            raise Skip("float64's rounding of the arguments decides the weights", name)


def _logsumexp(ds: list[D]) -> D:
    """log Σ e^x, shifted by the largest element so that no e^x exceeds 1."""
    _weights_resolved("logsumexp", ds)
    top = _const(max(d.v for d in ds))  # any shift gives the same exact value and derivative
    return _add(top, _smooth("log", _sum([_smooth("exp", _add(d, top, -1)) for d in ds])))


def _softmax(ds: list[D]) -> list[D]:
    """e^x / Σ e^x, shifted by the largest element."""
    _weights_resolved("softmax", ds)
    top = _const(max(d.v for d in ds))
    es = [_smooth("exp", _add(d, top, -1)) for d in ds]
    total = _sum(es)
    return [_div(e, total) for e in es]


def _prod_except(ds: list[D]) -> list[D]:
    """For each element, the product of the others (by multiplication: exact with zeros)."""
    return [
        _product([d for j, d in enumerate(ds) if j != i] or [_const(1)]) for i in range(len(ds))
    ]


def _matmul(a: Array, b: Array) -> Array:
    """The matrix product of 1-d and 2-d arrays, as numpy's @ (vectors promoted and dropped)."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    out = np.empty((a2.shape[0], b2.shape[1]), dtype=object)
    for i in range(a2.shape[0]):
        for j in range(b2.shape[1]):
            out[i, j] = _sum([_mul(a2[i, k], b2[k, j]) for k in range(a2.shape[1])])
    if a.ndim == 1:
        out = out[0]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def _sum_to(x: Array, shape: Shape) -> Array:
    """Sum leading axes away down to `shape` (the forms the generator draws)."""
    while x.ndim > len(shape):
        x = _along(x, 0, _sum)
    return x


def _keywords(tree: Tree) -> dict[str, Any]:
    """A call's attributes (axis, shape, axes) by name, however they were written."""
    return {k: v for k, v, _ in tree[3]}


def _interpret(tree: Tree, scope: Mapping[str, Array]) -> Array:
    """The value of a tree as an array of dual numbers (0-d for a number)."""
    kind = tree[0]
    if kind == "num":
        return _scalar(_const(float(tree[1])))
    if kind == "name":
        if tree[1] in scope:
            return scope[tree[1]]
        return _scalar(_const({"pi": _PI, "e": _E}[tree[1]]))
    if kind == "paren":
        return _interpret(tree[1], scope)
    if kind == "unary":
        if tree[1] == "not":
            return _map(PIECEWISE["logical_not"], _interpret(tree[2], scope))
        return _map(_neg, _interpret(tree[2], scope))
    if kind == "binary":
        _, op, left, right = tree
        a, b = _interpret(left, scope), _interpret(right, scope)
        if op == "@":
            return _as_array(_matmul(a, b))
        if op in _COMPARISONS or op in ("and", "or"):
            return _map(PIECEWISE[_COMPARISONS.get(op) or f"logical_{op}"], a, b)
        binary = {"+": _add, "-": lambda x, y: _add(x, y, -1), "*": _mul, "/": _div, "^": _power}
        return _map(binary[op], a, b)
    if kind == "array":
        parts = [_interpret(e, scope) for e in tree[1]]
        return np.stack(parts)
    if kind == "index":
        x = _interpret(tree[1], scope)
        key = tuple(k if isinstance(k, int) else slice(*k[1:]) for k in tree[2])
        return _as_array(x[key])
    return _call_function(tree, scope)


def _call_function(tree: Tree, scope: Mapping[str, Array]) -> Array:
    """A call: elementwise functions by their rules, array functions element by element."""
    name = tree[1]
    if name == "arange":
        return _const_array(np.arange(*(json.loads(a[1]) for a in tree[2])))
    if name == "linspace":  # k·step + start, and stop exactly, as numpy (and gradcli) make it
        start, stop = (_interpret(a, scope)[()] for a in tree[2][:2])
        n = json.loads(tree[2][2][1])
        step = _div(_add(stop, start, -1), _const(n - 1))
        out = np.empty(n, dtype=object)
        for k in range(n - 1):
            out[k] = _add(_mul(_const(k), step), start)
        out[n - 1] = stop
        return out
    if name == "einsum":
        xs = [_as_array(_interpret(a, scope)) for a in tree[2]]
        return _einsum(_keywords(tree)["subscripts"], xs)
    if name in ("tensordot", "inner", "kron", "cross"):  # sums of products of dual numbers
        x, y = (_as_array(_interpret(a, scope)) for a in tree[2])
        return _products(name, x, y, _keywords(tree).get("axes", 2))
    if name == "polyval":  # Horner's rule
        p, x = (_interpret(a, scope) for a in tree[2])
        total = _map(lambda d: _mul(d, _const(0)), x)
        for c in p:
            total = _map(lambda t, d, c=c: _add(_mul(t, d), c), total, x)
        return total
    if name in ("eye", "ones", "zeros", "full"):  # sizes written in the program
        size = json.loads(tree[2][0][1])
        if name == "eye":
            return _const_array(np.eye(size))
        shape = tuple(np.atleast_1d(size))
        if name == "full":
            return np.broadcast_to(_interpret(tree[2][1], scope), shape)
        return _const_array(np.full(shape, 1.0 if name == "ones" else 0.0))
    if name == "polygamma":  # polygamma(n, x), n written in the program
        n = int(json.loads(tree[2][0][1]))
        x = _interpret(tree[2][1], scope)
        return _map(lambda d: _polygamma(n, d), x)
    if name == "gammaln":
        name = "lgamma"
    if name in ("take", "take_along_axis"):  # positions written in the program
        x, positions = _interpret(tree[2][0], scope), np.array(_whole_numbers(tree[2][1]))
        if name == "take":
            return _as_array(np.take(x, positions, _keywords(tree).get("axis")))
        return np.take_along_axis(x, positions, _keywords(tree)["axis"])
    if name == "one_hot":
        n = _keywords(tree)["n"]
        return _const_array(np.eye(n)[np.array(_whole_numbers(tree[2][0]))])
    if name in ("concatenate", "stack"):  # the elements of the list, one by one
        parts = [_as_array(_interpret(e, scope)) for e in tree[2][0][1]]
        join = np.concatenate if name == "concatenate" else np.stack
        return join(parts, axis=_keywords(tree).get("axis", 0))
    args = [_interpret(a, scope) for a in tree[2]]
    keywords = _keywords(tree)
    axis = keywords.get("axis")
    if name in ("max", "min") and len(args) == 1:
        return _along(args[0], axis, lambda ds: _top(name, ds))
    if name in ("maximum", "minimum"):
        name = name[:3]
    if name == "clip":
        low = _map(PIECEWISE["max"], args[0], args[1])
        return _map(PIECEWISE["min"], low, args[2])
    if name == "where":
        return _map(_where, *args)
    if name in PIECEWISE:
        f = PIECEWISE[name]
        result = args[0]
        if name in ("max", "min"):  # two or more arguments, folded from the left
            for other in args[1:]:
                result = _map(f, result, other)
            return result
        return _map(f, *args)
    if name == "pow":
        return _map(_power, *args)
    if name in SMOOTH:
        return _map(lambda *ds: _smooth(name, *ds), *args)
    x = args[0]
    if name == "sum":
        return _along(x, axis, _sum)
    if name == "mean":
        count = x.size if axis is None else x.shape[axis]
        return _map(lambda d: _div(d, _const(count)), _along(x, axis, _sum))
    if name == "prod":
        return _along(x, axis, _product)
    if name == "norm":
        return _along(x, axis, _norm)
    if name == "logsumexp":
        return _along(x, axis, _logsumexp)
    if name in ("var", "std"):
        ddof = keywords.get("ddof", 0)
        return _along(x, axis, lambda ds: _spread(name, ds, ddof))
    if name == "softmax":
        return _same_along(x, keywords.get("axis", -1), _softmax)
    if name == "prod_except":
        return _same_along(x, axis, _prod_except)
    if name == "transpose":
        return np.transpose(x, keywords.get("axes"))
    if name == "tile":
        return np.tile(x, keywords["reps"])
    if name == "repeat":
        return np.repeat(x, keywords["repeats"], keywords.get("axis"))
    if name == "squeeze":
        return np.squeeze(x, keywords.get("axis"))
    if name == "reshape":
        return np.reshape(x, keywords["shape"])
    if name == "broadcast_to":
        return np.broadcast_to(x, keywords["shape"])
    if name == "sum_to":
        return _sum_to(x, keywords.get("shape", ()))
    if name == "dot":
        return _along(_map(_mul, x, args[1]), -1, _sum)
    if name in ("trace", "diag", "outer"):
        return _matrix_function(name, args)
    if name == "expand_dims":
        return np.expand_dims(x, keywords["axis"])
    if name == "flip":
        return np.flip(x, keywords.get("axis"))
    if name == "roll":
        return np.roll(x, keywords["shift"], keywords.get("axis"))
    if name in ("tril", "triu"):
        k = keywords.get("k", 0)
        keep = (
            np.tri(*x.shape[-2:], k, dtype=bool)
            if name == "tril"
            else ~np.tri(*x.shape[-2:], k - 1, dtype=bool)
        )
        return np.where(keep, x, _const_array(np.zeros(x.shape)))
    if name in ("cumsum", "cumprod"):
        axis = keywords.get("axis")
        running = _running if name == "cumsum" else _running_product
        return _same_along(x.reshape(-1) if axis is None else x, axis or 0, running)
    if name in ("sort", "argsort"):
        return _same_along(x, keywords.get("axis", -1), lambda ds: _sorted(name, ds))
    if name == "diff":
        return _along_to(x, lambda ds: [_add(b, a, -1) for a, b in itertools.pairwise(ds)])
    if name == "log_softmax":  # x - logsumexp(x) along the axis, as gradcli defines it
        axis = keywords.get("axis", -1)
        total = np.expand_dims(_along(x, axis, _logsumexp), axis)
        return _map(lambda a, b: _add(a, b, -1), x, total)
    raise MissingReference(f"no mpmath reference for {name}")


def _matrix_function(name: str, args: list[Array]) -> Array:
    """trace, diag and outer of dual numbers: linear, so sums and products carry them."""
    x = args[0]
    if name == "trace":
        return _as_array(_sum([x[i, i] for i in range(min(x.shape))]))
    if name == "diag" and x.ndim == 2:
        return np.array([x[i, i] for i in range(min(x.shape))], dtype=object)
    if name == "diag":
        out = np.empty((len(x), len(x)), dtype=object)
        for i, j in np.ndindex(out.shape):
            out[i, j] = x[i] if i == j else _const(0)
        return out
    a, b = (np.ravel(v) for v in args)
    return _map(_mul, a[:, None], b[None, :])


def _const_array(values: np.ndarray) -> Array:
    out = np.empty(values.shape, dtype=object)
    for idx in np.ndindex(values.shape):
        out[idx] = _const(values[idx])
    return out


def interpret(program: Program, env: Mapping[str, Array]) -> D:
    """The sum of the program's value over its elements (what the check differentiates)."""
    scope = dict(env)
    for name, tree in program.bindings:
        scope[name] = _interpret(tree, scope)
    out = _interpret(program.expr, scope)
    for d in out.flat:
        if abs(d.v) > MAX_FLOAT:
            raise Skip("the exact value overflows float64", mpmath.nstr(d.v, 5))
    total = _sum(list(out.flat))
    if abs(total.v) > MAX_FLOAT:  # each element fits, their sum (the function checked) does not
        raise Skip("the exact value overflows float64", mpmath.nstr(total.v, 5))
    return total


# --- the reference at a point -----------------------------------------------------------------


@dataclass
class ElementReference:
    """mpmath's answer for one element: "smooth" with its derivative, "kink" with the one-sided
    derivatives, or "skip" with the reason. `ill`: float64's rounding of the intermediate values
    (each by ±2^-52) moves the derivative by more than 1e-8 of it (beyond 4ε of its path
    magnitude), so that even a correct rule can be off by the tolerance: not judged for false
    passes (a failure of a gradient that agrees with mpmath is still a false failure)."""

    status: str
    derivative: mpf | None = None
    left: mpf | None = None
    right: mpf | None = None
    reason: str = ""
    detail: str = ""
    ill: bool = False
    magnitude: mpf = ZERO  # the sum over chain-rule paths of |product of local derivatives|

    def interval(self) -> tuple[mpf, mpf]:
        if self.status == "smooth":
            return self.derivative, self.derivative
        return min(self.left, self.right), max(self.left, self.right)


@dataclass
class PointReference:
    """mpmath's answer at one point: the value and each element's reference."""

    value: mpf | None  # the exact value (summed over elements), None where skipped
    elements: dict[tuple[str, int], ElementReference]
    reason: str = ""  # why the whole point is skipped, if it is
    detail: str = ""
    # With a single active kink: the gradient of each of its smooth pieces, over the elements
    # that move it. The generalized gradient there is their convex hull: a gradient is a valid
    # subgradient as a whole exactly when it lies in it (within tolerance).
    pieces: list[dict[tuple[str, int], mpf]] | None = None
    # An intermediate value beyond float64's range (0.5/x at x = 1e-310): float64 cannot
    # compute the function there, so a "non-finite" verdict is its right answer.
    overflows: str = ""


def slots(shapes: Mapping[str, Shape], names: Sequence[str]) -> list[tuple[str, int]]:
    """The (variable, flat element) pairs that are checked, in order: one tangent slot each."""
    return [(n, e) for n in names for e in range(_size(shapes[n]))]


def _environment(
    shapes: Mapping[str, Shape],
    point: Mapping[str, Any],
    slot_of: Mapping[tuple[str, int], int],
    seeds: Mapping[int, tuple[int, mpf]] | None,
    shift: tuple[int, mpf] | None = None,
) -> dict[str, Array]:
    """The variables as arrays of dual numbers: each element's tangent is its own slot, or,
    with `seeds` (slot -> (key, value)), only the seeded elements have one. `shift` moves one
    slot's value by an exact amount (for differences in mpmath)."""
    env = {}
    for name, shape in shapes.items():
        values = np.asarray(point[name], dtype=np.float64).reshape(shape)
        out = np.empty(shape, dtype=object)
        for e, idx in enumerate(np.ndindex(shape)):
            k = slot_of.get((name, e))
            seed = None if k is None else (k, ONE) if seeds is None else seeds.get(k)
            tangent = {} if seed is None else {seed[0]: mpf(seed[1])}
            magnitude = {} if seed is None else {seed[0]: abs(mpf(seed[1]))}
            value = mpf(float(values[idx]))
            if shift is not None and shift[0] == k:
                value = mpmath.mp.fadd(value, shift[1], exact=True)
            out[idx] = D(value, tangent, magnitude, ZERO)
        env[name] = out
    return env


@dataclass
class _Pass:
    """One evaluation of a program at one precision."""

    out: D | None
    skip: Skip | None
    context: _Context


def _evaluate(
    program: Program,
    point: Mapping[str, Any],
    slot_of: Mapping[tuple[str, int], int],
    prec: int,
    direction: tuple[int, int] | None = None,
    record: bool = False,
    force: tuple[int, ...] | None = None,
    perturb: random.Random | None = None,
) -> _Pass:
    """Multi mode, or directional mode along ±slot (`direction` = (slot, ±1)), or forced."""
    global _CTX
    key = None if direction is None else direction[0]
    context = _Context(prec, key, force, record, perturb)
    saved, _CTX = _CTX, context
    seeds = None if direction is None else {direction[0]: direction}
    try:
        with mpmath.workprec(prec):
            env = _environment(program.shapes, point, slot_of, seeds)
            return _Pass(interpret(program, env), None, context)
    except Skip as skip:
        return _Pass(None, skip, context)
    except ZeroDivisionError as exc:  # a partial derivative's own division by zero
        return _Pass(None, Skip("division by zero", str(exc)), context)
    finally:
        _CTX = saved


FLOOR = mpf(2) ** -1100  # below float64's smallest subnormal: both are 0 to float64


def _agree(a: mpf, b: mpf, scale: mpf) -> bool:
    """Two precisions agree: to 2^-90 of max(|b|, scale), or both below float64's range."""
    if not (_finite(a) and _finite(b)):
        return not _finite(a) and not _finite(b)
    if max(abs(a), abs(b)) < FLOOR:
        return True
    return a == b or abs(a - b) <= AGREE * max(abs(b), scale)


def _stable(first: _Pass, second: _Pass, keys: Sequence[int]) -> bool:
    """Whether two precisions tell the same story: the same skip, kinks and jumps, and values
    and tangents that agree to 2^-90 of their magnitude."""
    if (first.skip is None) != (second.skip is None):
        return False
    if first.skip is not None:
        return first.skip.reason == second.skip.reason
    a, b = first.context, second.context
    if a.active != b.active or a.jumped != b.jumped or a.kinks.keys() != b.kinks.keys():
        return False
    if a.jumps != b.jumps:
        return False
    x, y = first.out, second.out
    if not _agree(x.v, y.v, y.e * mpf(2) ** -53):
        return False
    for k in keys:
        if k in b.kinks or k in b.jumps:  # arbitrary here: redone in directional mode
            continue
        if (k in x.t) != (k in y.t):
            return False
        if k in y.t and not _agree(x.t[k], y.t[k], y.m[k]):
            return False
    return True


def _stable_pass(
    program: Program,
    point: Mapping[str, Any],
    slot_of: Mapping[Slot, int],
    keys: Sequence[int],
    **mode: Any,
) -> _Pass | None:
    """The evaluation at 160 bits, confirmed at 100 (or at 640, confirmed at 320)."""
    for low, high in PRECISIONS:
        first = _evaluate(program, point, slot_of, low, **mode)
        second = _evaluate(program, point, slot_of, high, **mode)
        if _stable(first, second, keys):
            return second
    return None


def _sensitivity(
    program: Program,
    point: Mapping[str, Any],
    slot_of: Mapping[Slot, int],
    k: int | None,
    base: _Pass,
    **mode: Any,
) -> dict[int, mpf]:
    """How far rounding every intermediate by ±2^-52 (all upwards, and with random signs) moves
    each tangent: slot -> the largest change (inf where the perturbed evaluation takes another
    path). Done at the precision of `base`, whose own rounding is far below 2^-52."""
    keys = list(base.out.t) if k is None else [k]
    if base.context.phase_lost:
        return dict.fromkeys(keys, INF)
    moved = dict.fromkeys(keys, ZERO)
    for pattern in (_Upward(), random.Random(1)):
        run = _evaluate(program, point, slot_of, base.context.prec, perturb=pattern, **mode)
        same = run.skip is None and run.context.active == base.context.active
        for key in keys:
            if not same or key not in run.out.t:
                moved[key] = INF
                continue
            change = abs(run.out.t[key] - base.out.t[key])
            moved[key] = max(moved[key], change) if _finite(change) else INF
    return moved


def _ill(change: mpf, derivative: mpf, magnitude: mpf) -> bool:
    """Whether float64-sized rounding moves the derivative by more than 1e-8 of it."""
    return not change <= mpf(1e-8) * abs(derivative) + 4 * _ROUNDING * magnitude


def _directional(
    program: Program, point: Mapping[str, Any], slot_of: Mapping[Slot, int], k: int
) -> tuple[mpf, mpf, bool] | Skip | None:
    """The left and right derivatives in slot k, and whether rounding makes them ill-conditioned
    (None where the precisions disagree)."""
    sides, ill = [], False
    for sign in (1, -1):
        run = _stable_pass(program, point, slot_of, [k], direction=(k, sign))
        if run is None:
            return None
        if run.skip is not None:
            return run.skip
        reason = run.context.reasons.get(k) or run.context.jumps.get(k)
        if reason:
            return Skip("an infinite or undefined derivative", str(reason))
        slope = run.out.t.get(k, ZERO)
        with mpmath.workprec(run.context.prec):  # outside it, even -slope rounds to 53 bits
            sides.append(slope if sign > 0 else -slope)
        if k in run.out.t:
            moved = _sensitivity(program, point, slot_of, k, run, direction=(k, sign))
            ill = ill or _ill(moved[k], slope, run.out.m[k])
    right, left = sides
    return left, right, ill


def numeric_derivative(
    program: Program,
    point: Mapping[str, Any],
    names: Sequence[str],
    slot: tuple[str, int],
    scale: mpf = ONE,
) -> tuple[mpf, mpf, mpf] | None:
    """The left, right and central derivatives in one element by differences of values alone:
    a check of the dual numbers' rules that uses none of them (None where a value is not
    defined). The step is 2^-150·min(1, |x|) (2^-1200 at 0), below the scale on which any of
    the functions curves, even tan at x = 1e108; the values are computed with enough bits that
    f(x + h) - f(x) keeps 300 of them for a derivative of size `scale`."""
    order = slots(program.shapes, names)
    slot_of = {s: k for k, s in enumerate(order)}
    k = slot_of[slot]
    x = mpf(float(np.asarray(point[slot[0]]).reshape(-1)[slot[1]]))

    def value(shift: mpf, prec: int) -> mpf | None:
        global _CTX
        saved, _CTX = _CTX, _Context(prec)
        try:
            with mpmath.workprec(prec):
                env = _environment(program.shapes, point, slot_of, {}, (k, shift))
                return interpret(program, env).v
        except (Skip, ZeroDivisionError):
            return None
        finally:
            _CTX = saved

    h = min(abs(x), ONE) * mpf(2) ** -150 if x else mpf(2) ** -1200
    rough = value(ZERO, 200)
    if rough is None:
        return None
    size = mpmath.mag(rough) if rough else -10000
    change = mpmath.mag(max(abs(scale), FLOOR) * h)
    prec = min(300 + (abs(int(mpmath.mag(x))) if x else 0) + max(0, int(size - change)), 40000)
    f0, right, left = value(ZERO, prec), value(h, prec), value(-h, prec)
    if f0 is None or right is None or left is None:
        return None
    with mpmath.workprec(prec):
        return (f0 - left) / h, (right - f0) / h, (right - left) / (2 * h)


def _pieces(
    program: Program,
    point: Mapping[str, Any],
    slot_of: Mapping[Slot, int],
    order: Sequence[Slot],
    active: Sequence[tuple[str, int]],
    kink_slots: Sequence[int],
) -> list[dict[Slot, mpf]] | None:
    """The gradients of the smooth pieces at a single active kink (None for anything else:
    several kinks, or the cone of norm and hypot at 0, whose hull is not of finitely many)."""
    if len(active) != 1 or active[0][1] < 2:
        return None
    out = []
    for piece in range(active[0][1]):
        run = _stable_pass(program, point, slot_of, kink_slots, force=(piece,))
        if run is None or run.skip is not None or run.context.active != list(active):
            return None  # a piece can make another kink active: abs(relu(x)) at 0
        if any(k in run.context.reasons for k in kink_slots):
            return None
        out.append({order[k]: run.out.t.get(k, ZERO) for k in kink_slots})
    return out


def reference(program: Program, point: Mapping[str, Any], names: Sequence[str]) -> PointReference:
    """mpmath's value and derivatives of `program` at `point`, for the variables `names`."""
    order = slots(program.shapes, names)
    slot_of = {s: k for k, s in enumerate(order)}
    keys = list(range(len(order)))
    result = _stable_pass(program, point, slot_of, keys)
    if result is None:
        skip = ElementReference("skip", reason="the mpmath reference is unstable")
        return PointReference(None, dict.fromkeys(order, skip), skip.reason)
    if result.skip is not None:
        skip = ElementReference("skip", reason=result.skip.reason, detail=result.skip.detail)
        return PointReference(None, dict.fromkeys(order, skip), skip.reason, skip.detail)
    out, context = result.out, result.context
    moved = _sensitivity(program, point, slot_of, None, result)
    elements = {}
    kink_slots = []
    for k, s in enumerate(order):
        if k in context.jumps:
            elements[s] = ElementReference("skip", reason="on a jump", detail=context.jumps[k])
        elif k in context.kinks:
            sides = _directional(program, point, slot_of, k)
            if sides is None:
                elements[s] = ElementReference("skip", reason="the mpmath reference is unstable")
            elif isinstance(sides, Skip):
                elements[s] = ElementReference("skip", reason=sides.reason, detail=sides.detail)
            elif max(abs(sides[0]), abs(sides[1])) > MAX_FLOAT:
                elements[s] = ElementReference("skip", reason="the exact derivative overflows")
            else:
                left, right, ill = sides
                elements[s] = ElementReference("kink", left=left, right=right, ill=ill)
                kink_slots.append(k)
        else:
            d = out.t.get(k, ZERO)
            if k in context.reasons or not _finite(d):
                detail = context.reasons.get(k, "")
                elements[s] = ElementReference(
                    "skip", reason="an infinite or undefined derivative", detail=detail
                )
            elif abs(d) > MAX_FLOAT:
                elements[s] = ElementReference("skip", reason="the exact derivative overflows")
            else:
                ill = k in out.t and _ill(moved.get(k, INF), d, out.m[k])
                magnitude = out.m.get(k, ZERO)
                elements[s] = ElementReference("smooth", derivative=d, ill=ill, magnitude=magnitude)
    pieces = None
    if kink_slots:
        pieces = _pieces(program, point, slot_of, order, context.active, kink_slots)
    return PointReference(out.v, elements, pieces=pieces, overflows=context.overflows)


# --- points -------------------------------------------------------------------------------------

SUBNORMAL = (5e-324, 1e-310, 2.2250738585072014e-308, 4e-320)


def coordinate(rng: random.Random, scale: str) -> float:
    """One coordinate: log-uniform over 1e-300…1e300 ("wide") or 1e-3…1e3 ("moderate"), either
    sign, with exact zeros, ±1 and, rarely, subnormal or smallest-normal numbers."""
    roll = rng.random()
    sign = rng.choice((-1.0, 1.0))
    if roll < 0.06:
        return 0.0
    if roll < 0.08:
        return sign * rng.choice(SUBNORMAL)
    if roll < 0.11:
        return sign * rng.choice((1.0, 0.5, 2.0))
    top = 300 if scale == "wide" else 3
    return sign * 10 ** rng.uniform(-top, top)


Point = dict[str, np.ndarray]


def draw_point(program: Program, rng: random.Random, scale: str) -> Point:
    """Every element of every variable drawn by `coordinate`."""
    return {
        name: np.array([coordinate(rng, scale) for _ in range(_size(shape))]).reshape(shape)
        for name, shape in program.shapes.items()
    }


def tie(program: Program, point: Point, rng: random.Random) -> Point:
    """Two variables of the same shape made equal, or two elements of one array."""
    point = {n: v.copy() for n, v in point.items()}
    names = list(point)
    same = [(a, b) for a in names for b in names if a < b and point[a].shape == point[b].shape]
    arrays = [n for n in names if point[n].size > 1]
    if same and (not arrays or rng.random() < 0.5):
        a, b = rng.choice(same)
        point[b] = point[a].copy()
    elif arrays:
        name = rng.choice(arrays)
        flat = point[name].reshape(-1)
        i, j = rng.sample(range(flat.size), 2)
        flat[j] = flat[i]
    return point


def zero_variable(point: Point, rng: random.Random) -> Point:
    """One whole variable at 0: the kink of norm and hypot at the origin, 0^y, sqrt(0)."""
    point = {n: v.copy() for n, v in point.items()}
    point[rng.choice(list(point))][...] = 0.0
    return point


_SINGLE = ("relu", "abs", "sign", "heaviside", "atan2")  # switched by their first argument


def _switching(run: _Pass, index: int, pair: Sequence[int], k: int) -> tuple[mpf, mpf] | None:
    """The switching argument of the index-th recorded kink and its derivative in slot k."""
    if run.skip is not None or len(run.context.events) <= index:
        return None
    name, args = run.context.events[index]
    if name in _SINGLE:
        return args[0].v, args[0].t.get(k, ZERO)
    a, b = args[pair[0]], args[pair[1]]
    return a.v - b.v, a.t.get(k, ZERO) - b.t.get(k, ZERO)


def solve_kink(program: Program, point: Point, rng: random.Random) -> Point | None:
    """Move one coordinate so that a kink or jump of the program sits exactly at the point:
    Newton's method on its switching argument (in mpmath, on the same trees), then the float64
    neighbours of the root, keeping the one closest to the kink. None if it does not converge."""
    order = slots(program.shapes, sorted(program.shapes))
    slot_of = {s: k for k, s in enumerate(order)}
    first = _evaluate(program, point, slot_of, 64, record=True)
    if first.skip is not None:
        return None
    events = [(i, ev) for i, ev in enumerate(first.context.events) if len(ev[1]) >= 1]
    events = [(i, ev) for i, ev in events if ev[0] not in ("hypot", "norm")]
    if not events:
        return None
    index, (name, args) = rng.choice(events)
    pair = [0] if name in _SINGLE else rng.sample(range(len(args)), 2) if len(args) > 1 else None
    if pair is None:
        return None
    depends = set().union(*(args[i].t for i in pair))
    if not depends:
        return None
    k = rng.choice(sorted(depends))
    var, element = order[k]
    point = {n: v.copy() for n, v in point.items()}
    flat = point[var].reshape(-1)
    with mpmath.workprec(64):
        x = mpf(float(flat[element]))
        for _ in range(40):
            flat[element] = float(x)
            found = _switching(_evaluate(program, point, slot_of, 64, (k, 1), True), index, pair, k)
            if found is None or not _finite(found[0]) or not _finite(found[1]) or found[1] == 0:
                return None
            g, dg = found
            if g == 0:
                break
            step = g / dg
            x = x - step
            if not abs(x) < 1e300:
                return None
            if abs(step) <= abs(x) * 2.0**-60:
                break
    best, size = None, None
    for candidate in (float(x), *np.nextafter(float(x), [np.inf, -np.inf])):
        flat[element] = candidate
        run = _evaluate(program, point, slot_of, 100, (k, 1), True)
        found = _switching(run, index, pair, k)
        if found is not None and (size is None or abs(found[0]) < size):
            best, size = float(candidate), abs(found[0])
    if best is None:
        return None
    flat[element] = best
    return point


def draw_points(program: Program, rng: random.Random, count: int) -> list[Point]:
    """Points for one program: spread over the whole range (and, for programs over the whole
    language, over moderate values too), with zeros, ties and kinks mixed in."""
    points = []
    wide = 0.85 if program.kind == "scale-free" else 0.4
    while len(points) < count:
        roll = rng.random()
        point = draw_point(program, rng, "wide" if rng.random() < wide else "moderate")
        if roll < 0.12:
            point = tie(program, point, rng)
        elif roll < 0.17:
            point = zero_variable(point, rng)
        elif roll < 0.32:
            point = solve_kink(program, point, rng) or point
        points.append(point)
    return points


# --- running the checker and judging its verdicts ----------------------------------------------


def _precise(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run `function` at 1200 bits: outside `workprec`, mpmath rounds every result to 53 bits,
    and lo - t would lose the digits that separate a float64 gradient from the bound."""

    def run(*args: Any, **kwargs: Any) -> Any:
        with mpmath.workprec(1200):
            return function(*args, **kwargs)

    run.__name__, run.__doc__ = function.__name__, function.__doc__
    return run


@dataclass
class Record:
    """One element check that went wrong (a false verdict or a hang), with everything needed to
    reproduce and judge it."""

    kind: str  # "false pass", "false failure", "hang", "error"
    program: str
    point: dict[str, Any]
    variable: str = ""
    element: int = 0
    verdict: str = ""
    autograd: float = math.nan
    reference: float = math.nan
    tolerance: float = math.nan
    left: float = math.nan
    right: float = math.nan
    how: str = ""
    message: str = ""
    exact: str = ""  # mpmath's derivative, or [left, right] at a kink
    value: str = ""  # mpmath's value
    mutant: str = ""  # the injected rule, if any
    baseline: float = math.nan  # the correct registry's autograd value, in a mutant run
    spec: str = ""  # the program's tree (`Program.from_spec`)

    def describe(self) -> str:
        point = ", ".join(f"{n}={_show(v)}" for n, v in self.point.items())
        lines = [
            f"{self.kind}: {self.program}" + (f"   [mutant: {self.mutant}]" if self.mutant else "")
        ]
        lines.append(f"    at {point}")
        if self.kind in ("hang", "error"):
            lines.append(f"    {self.message}")
            return "\n".join(lines)
        where = f"{self.variable}[{self.element}]" if self.element else self.variable
        lines.append(
            f"    ∂/∂{where}: verdict {self.verdict!r} ({self.how}); autograd {self.autograd!r}, "
            f"reference {self.reference!r}, tolerance {self.tolerance:.3g}"
        )
        if not math.isnan(self.left):
            lines.append(f"    gradcli's one-sided: left {self.left!r}, right {self.right!r}")
        lines.append(f"    mpmath: derivative {self.exact}, value {self.value}")
        if not math.isnan(self.baseline):
            lines.append(f"    the correct rule's autograd: {self.baseline!r}")
        if self.message:
            lines.append(f"    gradcli says: {self.message}")
        return "\n".join(lines)


def _show(v: Any) -> str:
    """A coordinate or an array, with every digit (the point can be typed back)."""
    a = np.asarray(v)
    return repr(float(a)) if a.ndim == 0 else repr(a.tolist())


@dataclass
class Tally:
    """Counts over many cases, and the records of everything that went wrong."""

    checks: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    judged: int = 0
    false_passes: int = 0
    false_failures: int = 0
    hangs: int = 0
    errors: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    unjudged: dict[str, int] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    seconds_check: float = 0.0
    seconds_reference: float = 0.0

    def add(self, other: Tally) -> None:
        for name in ("checks", "judged", "false_passes", "false_failures", "hangs", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("verdicts", "skipped", "unjudged"):
            mine = getattr(self, name)
            for k, v in getattr(other, name).items():
                mine[k] = mine.get(k, 0) + v
        self.records += other.records
        self.seconds_check += other.seconds_check
        self.seconds_reference += other.seconds_reference


def _number(x: mpf | None) -> str:
    """An mpmath number to 17 digits."""
    return "None" if x is None else mpmath.nstr(x, 17)


@_precise
def _within(g: float, tol: float, lo: mpf, hi: mpf) -> bool:
    """lo - tol ≤ g ≤ hi + tol, compared exactly (False for a non-finite g)."""
    if not (math.isfinite(g) and not math.isnan(tol)):
        return False
    t = mpf(tol)
    return lo - t <= mpf(g) <= hi + t


@_precise
def in_hull(
    pieces: Sequence[Mapping[Any, mpf]], g: Mapping[Any, float], tol: Mapping[Any, float]
) -> bool | None:
    """Whether g lies in the convex hull of the pieces' gradients, within the tolerance of each
    element: exact for one or two pieces; for more, True if it lies on an edge, else None."""

    def on_segment(a: Mapping[Any, mpf], b: Mapping[Any, mpf]) -> bool:
        lo, hi = mpf(0), mpf(1)
        for key in a:
            if not math.isfinite(g[key]) or math.isnan(tol[key]):
                return False
            if tol[key] == math.inf:
                continue
            d, r, t = b[key] - a[key], mpf(g[key]) - a[key], mpf(tol[key])
            if d == 0:
                if abs(r) > t:
                    return False
                continue
            ends = sorted(((r - t) / d, (r + t) / d))
            lo, hi = max(lo, ends[0]), min(hi, ends[1])
            if lo > hi:
                return False
        return True

    if len(pieces) == 1:
        return on_segment(pieces[0], pieces[0])
    if len(pieces) == 2:
        return on_segment(pieces[0], pieces[1])
    pairs = [(a, b) for i, a in enumerate(pieces) for b in pieces[i + 1 :]]
    return True if any(on_segment(a, b) for a, b in pairs) else None


@dataclass
class Entry:
    """gradcli's check of one element."""

    verdict: str
    autograd: float
    tolerance: float


def judge_point(
    ref: PointReference, entries: Mapping[tuple[str, int], Entry]
) -> tuple[dict[tuple[str, int], str], dict[str, int]]:
    """The false verdicts at one point ("false pass", "false failure", "false pass (as a
    whole)"), and counts of the elements that could not be judged and why.

    A failing verdict is false where gradcli's gradient agrees with mpmath within the reported
    tolerance: with the derivative at a smooth point; at a kink, with the one-sided derivatives
    of its element and, as a whole, with the convex hull of the pieces' gradients (gradcli
    judges kinks as a whole, so a gradient whose elements are each fine but that is no
    subgradient as a whole is rightly failed; where the hull is not known, as with several
    kinks at once, a failure is not judged). A passing verdict ("pass" or "not differentiable")
    is false where the gradient is outside those bounds, unless rounding makes the exact
    derivative out of float64's reach (`ill`)."""
    found: dict[tuple[str, int], str] = {}
    notes: dict[str, int] = {}

    def note(text: str) -> None:
        notes[text] = notes.get(text, 0) + 1

    kinks = [s for s, r in ref.elements.items() if r.status == "kink" and s in entries]
    whole = None
    if kinks and ref.pieces is not None:
        g = {s: entries[s].autograd for s in kinks}
        tol = {s: entries[s].tolerance for s in kinks}
        whole = in_hull(ref.pieces, g, tol)
    for s, entry in entries.items():
        r = ref.elements[s]
        if r.status == "skip":
            continue
        within = _within(entry.autograd, entry.tolerance, *r.interval())
        if entry.verdict == NONFINITE and ref.overflows:
            note("non-finite where an intermediate overflows float64 (not judged)")
        elif entry.verdict in FAILING and within:
            if r.status == "kink" and whole is None:
                note("a failure at several kinks at once (not judged)")
            elif r.status == "smooth" or whole:
                found[s] = "false failure"
        elif entry.verdict in (PASS, KINK) and not within:
            if r.ill:
                note("ill-conditioned in float64 (a pass not judged)")
            else:
                found[s] = "false pass"
    passing = all(entries[s].verdict in (PASS, KINK) for s in kinks)
    if whole is False and passing and not any(s in found for s in kinks):
        if any(ref.elements[s].ill for s in kinks):
            note("ill-conditioned in float64 (a pass not judged)")
        else:
            found[kinks[0]] = "false pass (as a whole)"
    return found, notes


def stack_points(points: Sequence[Point], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The points as the checker takes them: each variable with a leading point axis."""
    return {n: np.stack([np.asarray(p[n], dtype=np.float64) for p in points]) for n in names}


def run_check(text: str, points: Sequence[Point], seconds: float) -> Any:
    """gradcli's check of `text` at the points, within a wall-clock bound."""
    program = compile_program(text)
    batch = stack_points(points, list(program.variables))
    with time_limit(seconds), np.errstate(all="ignore"):
        return check(program, batch, CheckOptions())


def tally_case(
    program: Program,
    points: Sequence[Point],
    references: Sequence[PointReference] | None,
    seconds: float = 60.0,
    mutant: str = "",
    baseline: Any = None,
) -> tuple[Tally, Any]:
    """Check `program` at `points` and judge every element check against the references
    (computed here if None). A batch that times out is redone one point at a time, so that
    each hang is pinned to its point. Returns the tally and gradcli's result (None on a hang)."""
    tally = Tally()
    names = list(compile_program(program.text).variables)
    unknown = set(names) - program.used()
    if unknown:
        raise AssertionError(f"{program.text}: gradcli sees variables {unknown} it should not")
    if references is None:
        start = time.perf_counter()
        references = [reference(program, p, names) for p in points]
        tally.seconds_reference += time.perf_counter() - start
    start = time.perf_counter()
    try:
        result = run_check(program.text, points, seconds)
        tally.seconds_check += time.perf_counter() - start
    except Overran:
        tally.seconds_check += time.perf_counter() - start
        if len(points) == 1:
            tally.hangs += 1
            message = f"no verdict after {seconds} s"
            tally.records.append(
                Record(
                    "hang",
                    program.text,
                    _plain(points[0]),
                    message=message,
                    mutant=mutant,
                    spec=program.spec(),
                )
            )
            return tally, None
        for i, point in enumerate(points):
            sub_baseline = None if baseline is None else _select(baseline, i)
            part, _ = tally_case(program, [point], [references[i]], seconds, mutant, sub_baseline)
            tally.add(part)
        return tally, None
    except Exception as exc:  # a GradcliError or worse: reported, never a verdict
        tally.errors += 1
        tally.records.append(
            Record(
                "error",
                program.text,
                _plain(points[0]),
                message=f"{type(exc).__name__}: {exc}",
                mutant=mutant,
                spec=program.spec(),
            )
        )
        return tally, None
    columns = {vc.name: vc for vc in result.variables}
    bases = {} if baseline is None else {vc.name: vc for vc in baseline.variables}
    for vc in result.variables:
        for verdict in vc.verdict.flat:
            tally.checks += 1
            tally.verdicts[str(verdict)] = tally.verdicts.get(str(verdict), 0) + 1
    for p, ref in enumerate(references):
        entries = {}
        for (name, e), r in ref.elements.items():
            vc = columns[name]
            if r.status == "skip":
                tally.skipped[r.reason] = tally.skipped.get(r.reason, 0) + 1
                continue
            tally.judged += 1
            entries[name, e] = Entry(
                str(vc.verdict[p, e]), float(vc.autograd[p, e]), float(vc.tolerance[p, e])
            )
        found, notes = judge_point(ref, entries)
        for text, count in notes.items():
            tally.unjudged[text] = tally.unjudged.get(text, 0) + count
        for (name, e), kind in found.items():
            if mutant and kind == "false failure":
                # a wrong rule may fail by a criterion that its tolerance does not show (the
                # gradient as a whole at a kink): only false passes are judged with one
                continue
            vc, r = columns[name], ref.elements[name, e]
            if not _confirmed(program, points[p], list(columns), (name, e), r):
                tally.unjudged["mpmath's differences dispute its dual numbers (not judged)"] = (
                    tally.unjudged.get(
                        "mpmath's differences dispute its dual numbers (not judged)", 0
                    )
                    + 1
                )
                continue
            if kind.startswith("false pass"):
                tally.false_passes += 1
            else:
                tally.false_failures += 1
            exact = (
                _number(r.derivative)
                if r.status == "smooth"
                else f"kink: left {_number(r.left)}, right {_number(r.right)}"
            )
            if kind == "false pass (as a whole)":
                exact += "; pieces " + "; ".join(
                    "(" + ", ".join(_number(v) for v in piece.values()) + ")"
                    for piece in ref.pieces
                )
            base = bases.get(name)
            tally.records.append(
                Record(
                    kind,
                    program.text,
                    _plain(points[p]),
                    name,
                    e,
                    str(vc.verdict[p, e]),
                    float(vc.autograd[p, e]),
                    float(vc.reference[p, e]),
                    float(vc.tolerance[p, e]),
                    float(vc.left[p, e]),
                    float(vc.right[p, e]),
                    str(vc.how[p, e]),
                    vc.messages.get((p, e), ""),
                    exact,
                    _number(ref.value),
                    mutant,
                    math.nan if base is None else float(base.autograd[p, e]),
                    program.spec(),
                )
            )
    return tally, result


@_precise
def _confirmed(
    program: Program, point: Point, names: Sequence[str], slot: tuple[str, int], r: Any
) -> bool:
    """Whether differences of mpmath's values agree with the dual numbers on an element whose
    verdict is about to be called false: a second, independent opinion before accusing."""
    lo, hi = r.interval()
    scale = max(abs(lo), abs(hi), r.magnitude)
    sides = numeric_derivative(program, point, names, slot, scale)
    if sides is None:
        return False
    slack = mpf(2) ** -60 * scale + FLOOR
    left, right, central = sides
    if r.status == "smooth":
        return abs(central - lo) <= slack
    return min(left, right) >= lo - slack and max(left, right) <= hi + slack


def _plain(point: Point) -> dict[str, Any]:
    """A point as lists of floats, for records and JSON."""
    return {n: np.asarray(v).tolist() for n, v in point.items()}


def _select(result: Any, index: int) -> Any:
    """The baseline of one point, for a batch redone point by point."""
    return _OnePoint(
        [_OneVariable(vc.name, vc.autograd[index : index + 1]) for vc in result.variables]
    )


@dataclass
class _OneVariable:
    name: str
    autograd: np.ndarray


@dataclass
class _OnePoint:
    variables: list[_OneVariable]


# --- wrong rules -------------------------------------------------------------------------------

MUTATIONS = ("scale", "flip", "swap")


def mutable(text: str) -> list[str]:
    """The elementwise primitives of a program whose rules can be made wrong: those with a
    partial derivative that is not always a symbolic zero."""
    program = compile_program(text)
    from gradcli.graph.nodes import toposort

    ops = {n.op for n in toposort([program.output])}
    return sorted(
        op
        for op in ops
        if op in REGISTRY and REGISTRY[op].partials is not None and not _all_zero_rules(op)
    )


def _all_zero_rules(name: str) -> bool:
    """Whether every partial of `name` is a symbolic zero (sign, the comparisons, floor): a
    mutant of those changes nothing, so it is not drawn."""
    from gradcli.graph.nodes import Graph

    prim = REGISTRY[name]
    graph = Graph()
    xs = [graph.var(f"v{i}") for i in range(prim.arity)]
    node = graph.apply(name, *xs, attrs=tuple(default for _, default in prim.attr_params))
    return all(rule(node, *xs) is None for rule in prim.partials)


@contextmanager
def injected(name: str, mutation: str, argument: int) -> Iterator[str]:
    """The registry with one rule made wrong for this block: the partial in `argument` times
    (1 + 1e-3) ("scale"), negated ("flip"), or the two partials exchanged ("swap")."""
    prim = REGISTRY[name]
    partials = list(prim.partials)
    right = partials[argument]

    def scaled(factor: float) -> Callable[..., Any]:
        def rule(ans: Any, *xs: Any) -> Any:
            value = right(ans, *xs)
            return None if value is None else factor * value

        return rule

    if mutation == "scale":
        partials[argument] = scaled(1 + 1e-3)
        label = f"∂{name}/∂arg{argument} × (1 + 1e-3)"
    elif mutation == "flip":
        partials[argument] = scaled(-1.0)
        label = f"∂{name}/∂arg{argument} × -1"
    else:
        partials.reverse()
        label = f"∂{name} with its two partials swapped"
    REGISTRY[name] = replace(prim, partials=tuple(partials))
    try:
        yield label
    finally:
        REGISTRY[name] = prim


def draw_mutation(names: Sequence[str], rng: random.Random) -> tuple[str, str, int] | None:
    """A primitive of the program, a kind of wrong rule and the argument it applies to."""
    if not names:
        return None
    name = rng.choice(list(names))
    arity = REGISTRY[name].arity
    kinds = MUTATIONS if arity == 2 else MUTATIONS[:2]
    return name, rng.choice(kinds), rng.randrange(arity)


# --- a whole sweep -----------------------------------------------------------------------------

KINDS = ("scalar", "array", "scale-free")


def draw_case(rng: random.Random, points: int) -> tuple[Program, list[Point]]:
    """A program that compiles, with points for it."""
    generator = Generator(rng)
    while True:
        program = generator.program(rng.choice(KINDS))
        if not program.used():
            continue
        try:
            compile_program(program.text)
        except Exception as exc:
            raise AssertionError(
                f"the generator drew an invalid program: {program.text}: {exc}"
            ) from exc
        return program, draw_points(program, rng, points)


def sweep(
    seed: int,
    checks: int,
    mutants: int = 1,
    points: int = 32,
    seconds: float = 60.0,
    progress: Callable[[Tally, Tally], None] | None = None,
) -> tuple[Tally, Tally]:
    """Random cases until `checks` element checks with the correct registry, each followed by
    `mutants` runs with a wrong rule injected. Returns the tallies of both."""
    rng = random.Random(seed)
    correct, wrong = Tally(), Tally()
    while correct.checks < checks:
        program, drawn = draw_case(rng, points)
        names = list(compile_program(program.text).variables)
        start = time.perf_counter()
        refs = [reference(program, p, names) for p in drawn]
        spent = time.perf_counter() - start
        tally, result = tally_case(program, drawn, refs, seconds)
        tally.seconds_reference += spent
        correct.add(tally)
        candidates = mutable(program.text)
        for _ in range(mutants):
            mutation = draw_mutation(candidates, rng)
            if mutation is None or result is None:
                break
            with injected(*mutation) as label:
                part, _ = tally_case(program, drawn, refs, seconds, label, result)
            wrong.add(part)
        if progress is not None:
            progress(correct, wrong)
    return correct, wrong
