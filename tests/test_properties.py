"""Property-based tests: random well-formed programs print and parse back to the same graph, and
their gradients agree with an independent reference wherever they are smooth and finite.

Programs are drawn as small syntax trees of the scalar language (the variables x, y and z,
numbers, `pi` and `e`, + - * / ^ and their other spellings, unary minus and plus, every
elementwise function of the registry, extra parentheses and `name = expr` bindings) and
written out with as few parentheses as the precedence table in the README allows, so that the
parser's precedence and associativity are under test too.

The reference for the gradient is mpmath: the same tree is evaluated by an interpreter of its
own that maps each function name to an mpmath function (never by evaluating text), at 30
digits, and differentiated by `mpmath.diff` (central differences at far higher precision, with a
step of about 1e-33). Points are skipped where the reference is not real and finite, within 1e-6
of a kink or a jump, where a value underflows or overflows float64, or where the gradient is
badly conditioned; conditioning is measured, not guessed: every operation's result is perturbed
by a relative 1e-10 with random signs, and the change in the gradient says how much float64
rounding (about 1e-16 per operation) can move it.

Hypothesis runs derandomized and without a database, so each run draws the same examples.
"""

from __future__ import annotations

import math
import operator
import random
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np
import pytest
import references
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gradcli import compile_program, evaluate
from gradcli.graph.nodes import Node, toposort
from gradcli.language.printer import to_source
from gradcli.primitives import REGISTRY
from gradcli.transforms.reverse import grad

# --- the reference: each elementwise function in mpmath --------------------------------------


def _real(value):
    if isinstance(value, mpmath.mpc):
        raise _Reject("complex")
    return value


def _xlogy(x, y):
    return mpmath.mpf(0) if x == 0 else x * _real(mpmath.log(y))


def _heaviside(x, h0):
    return mpmath.mpf(0) if x < 0 else mpmath.mpf(1) if x > 0 else h0


def _reject(why: str):
    raise _Reject(why)


def _small_derivative(x):
    """digamma′(x) ≈ 1/x² overflows float64 for |x| < 1e-154: a local derivative out of range,
    skipped as values out of range are."""
    if abs(x) < mpmath.mpf("1e-150"):
        raise _Reject("digamma's derivative overflows float64")
    return x


def _steps(distance):
    """The kink function of floor, ceil, trunc and round: 0 (on a jump) beyond 2^52, where
    every float64 is a whole number and the jumps are closer than float64 can resolve."""

    def kink(x):
        return mpmath.mpf(0) if abs(x) >= 2**52 else distance(x)

    return kink


def _not_pole(x):
    if x <= 0 and x == mpmath.floor(x):
        raise _Reject("a pole of the gamma function")
    return x


def _inside(x, low, high, name: str):
    """x, if low < x < high: else a skip, outside the domain of `name`."""
    if not low < x < high:
        raise _Reject(f"{name} outside ({low}, {high})")
    return x


def _logit(x):
    x = _inside(x, 0, 1, "logit")
    return mpmath.log(x / (1 - x))


def _beta_args(a, b):
    """a and b, unless a, b or a + b is a pole of Γ (B is undefined or 0 there)."""
    _not_pole(a + b)
    return _not_pole(a), _not_pole(b)


def _gamma(x):
    return mpmath.gamma(_not_pole(x))


def _mod(x, y):
    if y == 0:
        raise _Reject("mod by zero")
    return x - y * mpmath.floor(x / y)


# name -> (mpmath function, the kinks: a function of the arguments that is 0 where the
# function is not differentiable, or None)
MPMATH: dict[str, tuple[Callable, Callable | None]] = {
    "sin": (mpmath.sin, None),
    "cos": (mpmath.cos, None),
    "tan": (mpmath.tan, None),
    "asin": (mpmath.asin, lambda x: 1 - abs(x)),  # not differentiable at ±1, its edges
    "acos": (mpmath.acos, lambda x: 1 - abs(x)),
    "atan": (mpmath.atan, None),
    # the angle jumps across the negative x axis, and the origin is a kink
    "atan2": (mpmath.atan2, lambda y, x: min(abs(y) if x < 0 else 1, mpmath.hypot(x, y))),
    "hypot": (mpmath.hypot, lambda x, y: mpmath.hypot(x, y)),
    "sinh": (mpmath.sinh, None),
    "cosh": (mpmath.cosh, None),
    "tanh": (mpmath.tanh, None),
    "sech": (mpmath.sech, None),
    "exp": (mpmath.exp, None),
    "expm1": (mpmath.expm1, None),
    "log": (mpmath.log, None),
    "log2": (lambda x: mpmath.log(x, 2), None),
    "log10": (mpmath.log10, None),
    "log1p": (mpmath.log1p, None),
    # at y ≤ 0 only x = 0 is in the domain: the edge, where no derivative in x exists
    "xlogy": (_xlogy, lambda x, y: mpmath.mpf(y > 0)),
    "sqrt": (mpmath.sqrt, lambda x: x),  # not differentiable at 0, the edge of its domain
    # a base of 0 is the edge of the domain for an exponent that is not whole (0^0.5), and a
    # jump in the exponent at 0 (0^y is 0 for y > 0, 1 at y = 0)
    "pow": (mpmath.power, lambda x, y: x if y != mpmath.floor(y) or y <= 0 else mpmath.mpf(1)),
    "sigmoid": (lambda x: 1 / (1 + mpmath.exp(-x)), None),
    "softplus": (lambda x: mpmath.log1p(mpmath.exp(x)), None),
    "abs": (mpmath.fabs, lambda x: x),
    "relu": (lambda x: max(x, mpmath.mpf(0)), lambda x: x),
    "min": (min, lambda a, b: a - b),
    "max": (max, lambda a, b: a - b),
    "sign": (mpmath.sign, lambda x: x),
    "heaviside": (_heaviside, lambda x, h0: x),
    "equal": (lambda a, b: mpmath.mpf(a == b), lambda a, b: a - b),
    "not_equal": (lambda a, b: mpmath.mpf(a != b), lambda a, b: a - b),
    "less": (lambda a, b: mpmath.mpf(a < b), lambda a, b: a - b),
    "less_equal": (lambda a, b: mpmath.mpf(a <= b), lambda a, b: a - b),
    "greater": (lambda a, b: mpmath.mpf(a > b), lambda a, b: a - b),
    "greater_equal": (lambda a, b: mpmath.mpf(a >= b), lambda a, b: a - b),
    # a number as a condition jumps where it crosses 0
    "logical_and": (lambda a, b: mpmath.mpf(bool(a) and bool(b)), lambda a, b: a * b),
    "logical_or": (lambda a, b: mpmath.mpf(bool(a) or bool(b)), lambda a, b: a * b),
    "logical_not": (lambda a: mpmath.mpf(not a), lambda a: a),
    "floor": (mpmath.floor, _steps(lambda x: x - mpmath.nint(x))),
    "ceil": (mpmath.ceil, _steps(lambda x: x - mpmath.nint(x))),
    "trunc": (
        lambda x: mpmath.floor(x) if x >= 0 else mpmath.ceil(x),
        _steps(lambda x: x - mpmath.nint(x)),
    ),
    "round": (mpmath.nint, _steps(lambda x: x - mpmath.floor(x) - mpmath.mpf(0.5))),
    "asinh": (mpmath.asinh, None),
    "acosh": (
        lambda x: _real(mpmath.acosh(x)) if x >= 1 else _reject("acosh below 1"),
        lambda x: x - 1,  # not differentiable at 1, its edge
    ),
    "atanh": (lambda x: mpmath.atanh(_inside(x, -1, 1, "atanh")), None),
    "logaddexp": (lambda a, b: mpmath.log(mpmath.exp(a) + mpmath.exp(b)), None),
    "cbrt": (lambda x: mpmath.sign(x) * mpmath.cbrt(abs(x)), lambda x: x),  # vertical at 0
    "square": (lambda x: x * x, None),
    "exp2": (lambda x: mpmath.power(2, x), None),
    "log_sigmoid": (lambda x: -mpmath.log1p(mpmath.exp(-x)), None),
    "logit": (_logit, None),
    "sinc": (mpmath.sincpi, None),
    "xlog1py": (
        lambda x, y: mpmath.mpf(0) if x == 0 else x * _real(mpmath.log1p(y)),
        lambda x, y: mpmath.mpf(y > -1),  # as xlogy's, at y ≤ −1
    ),
    "erfinv": (lambda x: mpmath.erfinv(_inside(x, -1, 1, "erfinv")), None),
    "erfcx": (references.erfcx, None),
    "ndtr": (references.ndtr, None),
    "log_ndtr": (references.log_ndtr, None),
    "ndtri": (lambda p: references.ndtri(_inside(p, 0, 1, "ndtri")), None),
    "gamma": (_gamma, None),
    "beta": (lambda a, b: mpmath.beta(*_beta_args(a, b)), None),
    "betaln": (lambda a, b: mpmath.log(abs(mpmath.beta(*_beta_args(a, b)))), None),
    "i0": (lambda x: mpmath.besseli(0, x), None),
    "i1": (lambda x: mpmath.besseli(1, x), None),
    "i0e": (lambda x: references.scaled_bessel(0, x)[0], lambda x: x),  # a kink at 0
    "i1e": (lambda x: references.scaled_bessel(1, x)[0], None),
    "erf": (mpmath.erf, None),
    "erfc": (mpmath.erfc, None),
    "lgamma": (lambda x: mpmath.log(abs(_gamma(x))), None),
    "digamma": (lambda x: mpmath.digamma(_small_derivative(_not_pole(x))), None),
    "mod": (_mod, lambda x, y: x / y - mpmath.nint(x / y) if y else mpmath.mpf(0)),
}

ELEMENTWISE = sorted(
    name
    for name, prim in REGISTRY.items()
    if prim.public and prim.partials is not None and not prim.attr_params
)

# Arguments that keep a function inside its domain most of the time, so that few points are
# skipped: an argument is wrapped in one of these with probability 1/2.
POSITIVE = ("log", "log2", "log10", "sqrt", "log1p")
UNIT = ("asin", "acos")


def test_every_elementwise_primitive_has_a_reference() -> None:
    assert ELEMENTWISE, "no elementwise primitives found in the registry"
    assert set(ELEMENTWISE) <= set(MPMATH), set(ELEMENTWISE) - set(MPMATH)


# --- programs as trees -------------------------------------------------------------------------
# ("num", text) | ("name", id) | ("unary", op, x) | ("binary", op, x, y) | ("call", f, args)
# | ("paren", x); a program is (bindings, expression), bindings a tuple of (name, tree).

VARIABLES = ("x", "y", "z")
BOUND_NAMES = ("a", "b", "c", "x", "e", "α", "w_1")  # x and e shadow a variable and a constant
NUMBERS = ("0", "1", "2", "3", "10", "0.5", ".25", "2.5", "7.", "1e-3", "1E2", "0.1")
_BINARY_SPELLINGS = {"+": ("+",), "-": ("-", "−"), "*": ("*",), "/": ("/",), "^": ("^", "**")}
_PRECEDENCE = {"+": 1, "-": 1, "−": 1, "*": 2, "/": 2, "^": 4, "**": 4}
_ATOM = 10


def _leaf(draw, names: tuple[str, ...]):
    kind = draw(st.integers(0, 19))
    if kind < 12:
        return ("name", draw(st.sampled_from(names)))
    if kind < 17:
        return ("num", draw(st.sampled_from(NUMBERS)))
    if kind < 18:
        return ("name", draw(st.sampled_from(("pi", "e"))))
    value = draw(st.floats(0, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False))
    return ("num", repr(value))


def _positive(draw, u):
    """An expression in u that is positive: exp(u), u^2 + 0.5, hypot(u, 1), sigmoid(u)."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return ("call", "exp", (u,))
    if kind == 1:
        return ("binary", "+", ("binary", "^", u, ("num", "2")), ("num", "0.5"))
    if kind == 2:
        return ("call", "hypot", (u, ("num", "1")))
    return ("call", "sigmoid", (u,))


def _tree(draw, depth: int, names: tuple[str, ...]):
    if depth == 0:
        return _leaf(draw, names)
    kind = draw(st.integers(0, 19))
    if kind < 2:
        return _leaf(draw, names)
    if kind < 10:
        op = draw(st.sampled_from(sorted(_BINARY_SPELLINGS)))
        left, right = _tree(draw, depth - 1, names), _tree(draw, depth - 1, names)
        if op == "^" and draw(st.booleans()):  # a whole exponent, or a positive base
            if draw(st.booleans()):
                right = ("num", draw(st.sampled_from(("2", "3", "1", "0", "4"))))
            else:
                left = _positive(draw, left)
        if op == "^" and draw(st.booleans()):
            right = ("unary", "-", right)  # 2^-x
        return ("binary", draw(st.sampled_from(_BINARY_SPELLINGS[op])), left, right)
    if kind < 12:
        return ("unary", draw(st.sampled_from(("-", "-", "+", "−"))), _tree(draw, depth - 1, names))
    if kind < 13:
        return ("paren", _tree(draw, depth - 1, names))
    name = draw(st.sampled_from(ELEMENTWISE))
    prim = REGISTRY[name]
    count = prim.arity + (draw(st.integers(0, 1)) if prim.variadic else 0)
    args = [_tree(draw, depth - 1, names) for _ in range(count)]
    if draw(st.booleans()):
        if name in POSITIVE:
            args[0] = _positive(draw, args[0])
        elif name in UNIT:
            args[0] = ("call", draw(st.sampled_from(("tanh", "sin", "sigmoid"))), (args[0],))
        elif name == "xlogy":
            args[1] = _positive(draw, args[1])
    return ("call", name, tuple(args))


@st.composite
def programs(draw, max_depth: int = 4):
    """(bindings, expression): up to three bindings, each visible to what follows it."""
    names = VARIABLES
    bindings = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(BOUND_NAMES))
        bindings.append((name, _tree(draw, draw(st.integers(0, max_depth - 1)), names)))
        names = tuple(dict.fromkeys((*names, name)))
    return tuple(bindings), _tree(draw, max_depth, names)


@st.composite
def texts(draw, max_depth: int = 4):
    """A program and its text, with a random choice of spacing and statement separators."""
    program = draw(programs(max_depth))
    spaced = draw(st.booleans())
    separator = draw(st.sampled_from(("; ", ";", "\n", " ;\n")))
    return program, source(program, spaced, separator)


def source(program, spaced: bool = True, separator: str = "; ") -> str:
    bindings, expr = program
    lines = [f"{name} = {_text(tree, spaced)}" for name, tree in bindings]
    return separator.join([*lines, _text(expr, spaced)])


def _text(tree, spaced: bool) -> str:
    return _render(tree, spaced)[0]


def _render(tree, spaced: bool) -> tuple[str, int]:
    """The text of a tree and its precedence, with the parentheses the grammar needs."""
    kind = tree[0]
    if kind in ("num", "name"):
        return tree[1], _ATOM
    if kind == "paren":
        return f"({_text(tree[1], spaced)})", _ATOM
    if kind == "call":
        return f"{tree[1]}({', '.join(_text(a, spaced) for a in tree[2])})", _ATOM
    if kind == "unary":
        inner, prec = _render(tree[2], spaced)
        return tree[1] + (inner if prec >= 3 else f"({inner})"), 3
    _, op, left, right = tree
    p = _PRECEDENCE[op]
    (lt, lp), (rt, rp) = _render(left, spaced), _render(right, spaced)
    if p == 4:  # right-associative, and its right operand may be unary: 2^-x
        wrap_left, wrap_right = lp <= 4, rp < 3
    else:
        wrap_left, wrap_right = lp < p, rp <= p
    lt = f"({lt})" if wrap_left else lt
    rt = f"({rt})" if wrap_right else rt
    symbol = f" {op} " if spaced else op
    return lt + symbol + rt, p


def used_variables(program) -> set[str]:
    """The free variables the program's value depends on, through its bindings."""
    bindings, expr = program
    scope: dict[str, set[str]] = {}

    def free(tree) -> set[str]:
        kind = tree[0]
        if kind == "name":
            name = tree[1]
            if name in scope:
                return scope[name]
            return set() if name in ("pi", "e") else {name}
        if kind == "num":
            return set()
        children = tree[2] if kind == "call" else tree[1:] if kind == "paren" else tree[2:]
        return set().union(*(free(c) for c in children))

    for name, tree in bindings:
        scope[name] = free(tree)
    return free(expr)


# --- the same graph ----------------------------------------------------------------------------


def structure(output: Node, table: dict) -> int:
    """The node's number in `table`, a hash-consing table shared by the graphs compared: nodes
    of two graphs get the same number exactly when they have the same structure."""
    number: dict[Node, int] = {}
    for node in toposort([output]):
        if node.op == "const":
            value = node.value
            leaf = float(value).hex() if np.ndim(value) == 0 else (np.shape(value), value.tobytes())
            key = ("const", leaf)
        elif node.op == "variable":
            key = ("var", node.name)
        else:
            key = (node.op, node.attrs, tuple(number[i] for i in node.inputs))
        number[node] = table.setdefault(key, len(table))
    return number[output]


def assert_same_graph(a: Node, b: Node, context: str) -> None:
    table: dict = {}
    assert structure(a, table) == structure(b, table), context
    assert len(toposort([a])) == len(toposort([b])), context


_RUN = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@settings(_RUN, max_examples=500)
@given(texts())
def test_programs_print_and_parse_back_to_the_same_graph(drawn) -> None:
    program, text = drawn
    lowered = compile_program(text)
    assert set(lowered.variables) == used_variables(program), text
    hints = {node: name for name, node in lowered.bindings.items()}
    for printed in (
        to_source(lowered.output),
        to_source(lowered.output, reserved=lowered.variables, compact=True, hints=hints),
    ):
        again = compile_program(printed)
        assert_same_graph(lowered.output, again.output, f"{text!r} printed as {printed!r}")
        assert set(again.variables) == set(lowered.variables)
        # and printing is a fixed point: the reparsed graph prints as the same text
        assert to_source(again.output) == to_source(lowered.output)


@settings(_RUN, max_examples=300)
@given(texts(max_depth=3))
def test_gradient_graphs_print_and_parse_back_to_the_same_graph(drawn) -> None:
    _, text = drawn
    lowered = compile_program(text)
    wrt = list(lowered.variables.values())
    for g in grad(lowered.output, wrt):
        printed = to_source(g)
        again = compile_program(printed)
        assert_same_graph(g, again.output, f"a gradient of {text!r} printed as {printed!r}")


# --- gradients against mpmath ------------------------------------------------------------------


class _Reject(Exception):
    """The reference is not real and finite here, or the point is too close to a kink."""


def _div(a, b):
    if b == 0:
        raise _Reject("division by zero")
    return a / b


def _negative_base(base, exponent: tuple) -> None:
    """x^y at x < 0 is defined only at whole y: with a y that can move, it has no derivative in
    y, and a chain rule through it has none either, even where y stays whole (y = relu(x)·x at
    x < 0). Such points are outside the smooth domain, like kinks."""
    value = base[0] if isinstance(base, tuple) else base
    if value < 0 and _names(exponent) - {"pi", "e"}:
        raise _Reject("a negative base with a moving exponent")


def _names(tree: tuple) -> set[str]:
    out, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            if len(node) == 2 and node[0] == "name":
                out.add(node[1])
            else:
                stack.extend(node)
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _pow(a, b):
    if a == 0 and b < 0:
        raise _Reject("0 to a negative power")
    return mpmath.power(a, b)


_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": _div, "^": _pow}
_BINARY |= {"−": operator.sub, "**": _pow}
_UNARY = {"-": operator.neg, "−": operator.neg, "+": operator.pos}


def _diff(function: Callable, at):
    """mpmath.diff, with a step far below |at|: it steps by 2^-(precision + addprec) whatever
    the size of `at` (and works at twice the bits, so nothing is lost)."""
    tiny = max(0, -int(mpmath.mag(at))) if at else 0
    return mpmath.diff(function, at, addprec=10 + tiny)


@dataclass
class _Run:
    """How the reference interpreter evaluates a tree, one operation at a time.

    `signs`: perturb the k-th result by a relative 1e-10 · signs[k], to see how rounding errors
    in the values would move the result. `margins`: collect the distance of every kink's
    argument to the kink, and the size of every result. `magnitude`: values are pairs (v, m),
    where m is the sum over the paths from the variable to v of |the product of the partial
    derivatives along the path|, the scale of the rounding errors of reverse mode.
    """

    signs: list[int] | None = None
    margins: list | None = None
    magnitude: bool = False
    count: int = 0

    def apply(self, function: Callable, args: list, kink: Callable | None = None):
        values = [a[0] for a in args] if self.magnitude else args
        if any(abs(v) >= LARGE for v in values):
            # Skipped anyway (a value beyond float64's range), and rejected before mpmath spends
            # hours on it: sin(1e10000) reduces by pi to ten thousand digits.
            raise _Reject("overflow")
        if kink is not None and self.margins is not None:
            self.margins.append(("kink", abs(kink(*values))))
        try:
            value = _real(function(*values))
        except (ZeroDivisionError, ValueError, OverflowError) as exc:  # mpmath: 0^-1, 2^(1e36)
            raise _Reject(str(exc)) from None
        if not mpmath.isfinite(value):
            raise _Reject("not finite")
        if self.margins is not None:
            self.margins.append(("magnitude", abs(value)))
        if self.signs is not None:
            value *= 1 + mpmath.mpf(1e-10) * self.signs[self.count % len(self.signs)]
        self.count += 1
        if not self.magnitude:
            return value
        paths = mpmath.mpf(0)
        for i, (at, m) in enumerate(args):
            if m:

                def partial(t, i=i):
                    return _real(function(*values[:i], t, *values[i + 1 :]))

                paths += abs(_diff(partial, at)) * m
        return value, paths


_PI, _E = mpmath.mpf(math.pi), mpmath.mpf(math.e)  # the float64 constants gradcli uses


def interpret(program, env: dict, run: _Run):
    """The value of a program tree; the variables' values in `env` (pairs, for magnitudes)."""
    bindings, expr = program
    scope = dict(env)
    for name, tree in bindings:
        scope[name] = _interpret(tree, scope, run)
    return _interpret(expr, scope, run)


def _interpret(tree, scope, run: _Run):
    kind = tree[0]
    if kind == "value":  # an argument already evaluated (min and max of three, folded)
        return tree[1]
    if kind in ("num", "name") and tree[1] not in scope:
        number = mpmath.mpf(float(tree[1])) if kind == "num" else {"pi": _PI, "e": _E}[tree[1]]
        return (number, 0) if run.magnitude else number
    if kind == "name":
        return scope[tree[1]]
    if kind == "paren":
        return _interpret(tree[1], scope, run)
    if kind == "unary":
        return run.apply(_UNARY[tree[1]], [_interpret(tree[2], scope, run)])
    if kind == "binary":
        args = [_interpret(tree[2], scope, run), _interpret(tree[3], scope, run)]
        if tree[1] in ("^", "**"):
            _negative_base(args[0], tree[3])
            return run.apply(_BINARY[tree[1]], args, MPMATH["pow"][1])
        return run.apply(_BINARY[tree[1]], args)
    name, args = tree[1], tree[2]
    if name == "pow":
        _negative_base(_interpret(args[0], scope, run), args[1])
    if name in ("min", "max") and len(args) > 2:  # folded from the left, as gradcli does
        first = _interpret(("call", name, args[:2]), scope, run)
        return _interpret(("call", name, (("value", first), *args[2:])), scope, run)
    function, kink = MPMATH[name]
    return run.apply(function, [_interpret(a, scope, run) for a in args], kink)


def reference(program, values: dict[str, float], wrt, signs: list[int] | None = None):
    """The value, and the gradient in each variable of `wrt`, from mpmath."""
    env = {n: mpmath.mpf(v) for n, v in values.items()}
    value = interpret(program, env, _Run(signs))
    gradient = {}
    for name in wrt:

        def along(t, name=name):
            return interpret(program, {**env, name: t}, _Run(signs))

        gradient[name] = _diff(along, env[name])
    return value, gradient


def magnitudes(program, values: dict[str, float], wrt) -> dict[str, mpmath.mpf]:
    """For each variable of `wrt`: the sum over paths of |product of partial derivatives|."""
    out = {}
    for name in wrt:
        env = {n: (mpmath.mpf(v), int(n == name)) for n, v in values.items()}
        out[name] = interpret(program, env, _Run(magnitude=True))[1]
    return out


SMALL, LARGE = 1e-250, 1e250  # magnitudes float64 holds without underflow or overflow
KINK_MARGIN = 1e-6

point_values = st.one_of(
    st.sampled_from((0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 0.1, 3.0, -1.5, 0.75, 0.0)),
    st.floats(-5, 5, allow_nan=False, allow_infinity=False, allow_subnormal=False),
)


@settings(_RUN, max_examples=500)
@given(texts(max_depth=4), st.fixed_dictionaries({v: point_values for v in VARIABLES}))
def test_gradients_agree_with_mpmath_where_smooth_and_finite(drawn, values) -> None:
    program, text = drawn
    lowered = compile_program(text)
    point = {n: values[n] for n in lowered.variables}
    # No assume(result.finite): a nan or inf from gradcli where mpmath's value and gradient are
    # finite, at a point none of the skips below (all computed from mpmath) rejects, is exactly
    # the regression this test is for, and fails it.
    result = evaluate(lowered, point)
    with mpmath.workdps(30):
        try:
            margins: list = []
            interpret(program, {n: mpmath.mpf(v) for n, v in values.items()}, _Run(None, margins))
            sizes = [m for kind, m in margins if kind == "magnitude"]
            assume(all(m > KINK_MARGIN for kind, m in margins if kind == "kink"))
            assume(all(m == 0 or SMALL < m < LARGE for m in sizes))
            ref_value, ref_grad = reference(program, values, point)
            rng = random.Random(text)
            perturbed = [
                reference(program, values, point, [rng.choice((-1, 1)) for _ in range(64)])
                for _ in range(2)
            ]
            paths = magnitudes(program, values, point)
        except _Reject:
            assume(False)
            return
    # mpmath.diff's step is below 1e-33·min(1, |variable|), and it evaluates with twice the bits
    # of 1/step more: it resolves a derivative to 1e-40 of the largest value computed.
    resolution = mpmath.mpf(1e-30) * max([1, *sizes])
    checks = [("value", result.value, ref_value, [p[0] for p in perturbed], 0)]
    checks += [
        (f"∂/∂{n}", result.gradient[n], ref_grad[n], [p[1][n] for p in perturbed], paths[n])
        for n in point
    ]
    for label, got, want, shaken, scale in checks:
        assume(mpmath.isfinite(want) and (want == 0 or SMALL < abs(want) < LARGE))
        # How far float64 rounding (1e-16 per operation) can move the result: in the values,
        # the change under perturbations of 1e-10; in the sums of reverse mode, 1e-13 of the
        # sum of the absolute values of its terms. Far more than 1% of the result: skipped.
        sensitivity = max(abs(s - want) for s in shaken)
        assume(sensitivity <= 1e-2 * abs(want) + 1e-12)
        assume(1e-13 * scale <= 1e-2 * abs(want) + 1e-12)
        tolerance = 1e-9 * abs(want) + 1e-4 * sensitivity + 1e-13 * scale + resolution
        assert math.isfinite(float(got)), (
            f"{label} of {text!r} at {point}: gradcli {float(got)!r}, mpmath "
            f"{mpmath.nstr(want, 17)} (finite, well conditioned, away from kinks); "
            f"gradcli's faults: {[f.message for f in result.faults]}"
        )
        error = abs(mpmath.mpf(float(got)) - want)
        assert error <= tolerance, (
            f"{label} of {text!r} at {point}: gradcli {float(got)!r}, "
            f"mpmath {mpmath.nstr(want, 17)}, error {mpmath.nstr(error, 3)} "
            f"> tolerance {mpmath.nstr(tolerance, 3)}"
        )


# Examples the property above found with other seeds (its own derandomized run does not draw
# them), shrunk by hypothesis and then simplified by hand: gradcli's gradient is nan or inf where
# mpmath's value and gradient are finite and no skip applies. Known gradcli bugs, kept as strict
# xfails so that a fix is noticed; the expected gradients are closed forms. Two kinds:
# - a local partial that is inf or nan multiplied by a derivative of exactly 0, where the input
#   is locally constant (relu(x) at x < 0, 0*x, 1^-x, equal(...)*x, min(0, ...)): pow's
#   y·x^(y-1) at x = 0 with 0 < y < 1 or x^y·log(x) at x <= 0, sqrt's and asin's at the domain
#   edge (x^0 at 0, whose partial was 0·0^-1 itself, is fixed and stays here as a test);
# - a product of the chain rule that overflows though the gradient is finite: ∂/∂z atan(1/z) is
#   (-1/z²)·1/(1 + 1/z²) = -inf·0 at z = 1e-200, where it is -1/(1 + z²) = -1. Fixed: such
#   gradients are evaluated again in longdouble, and stay here as tests.
_ZERO = pytest.mark.xfail(strict=True, reason="gradcli bug: an inf/nan partial times a zero")
KNOWN_NONFINITE = [
    # Fixed: ∂(x^y)/∂x is 0 where y = 0 (x^0 is 1 for every x), not 0·0^-1.
    pytest.param("x^0", {"x": 0.0}, {"x": 0.0}),
    pytest.param("abs(abs(y)*x^0)*x", {"x": 0.0, "y": 0.5}, {"x": 0.5, "y": 0.0}),
    pytest.param("sqrt(relu(x))", {"x": -1.0}, {"x": 0.0}, marks=_ZERO),
    pytest.param("pow(x*0, x)", {"x": 0.5}, {"x": 0.0}),
    pytest.param("-(x*pow(0, 0*x))", {"x": 0.5}, {"x": -1.0}),
    pytest.param("x^(0*x)", {"x": -0.5}, {"x": 0.0}),
    # Fixed with them: a rule that is the constant 0 is no path, whatever the adjoint holds.
    pytest.param("xlogy(0*x, -x)*x*x", {"x": 0.5}, {"x": 0.0}),
    pytest.param("(-x)^(equal(x, x*x)*x)", {"x": 0.5}, {"x": 0.0}, marks=_ZERO),
    pytest.param("(x--x)^log1p(min(0, x*x))", {"x": -0.5}, {"x": 0.0}, marks=_ZERO),
    pytest.param("asin(1^-x)", {"x": 0.5}, {"x": 0.0}, marks=_ZERO),
    pytest.param("atan(1/z)", {"z": 1e-200}, {"z": -1.0}),
    pytest.param("log(z^y)", {"z": 1e-163, "y": -1.5}, {"z": -1.5e163}),
    pytest.param("1/(x*log1p(z))", {"x": 0.5, "z": 1e-190}, {"x": -4e190}),
    # -(x/eˣ)/eˣ overflows on its way to ∂/∂x = (1 − x)e⁻ˣ·(∂x/∂x₀), with x = −3(117 + x₀).
    pytest.param(
        "x = (y + y)*(117 + x); x/exp(x)",
        {"x": 0.5, "y": -1.5},
        {"x": float(-3 * (1 + 352.5) * mpmath.exp(352.5))},
    ),
]


@pytest.mark.parametrize(("text", "point", "gradient"), KNOWN_NONFINITE)
def test_known_nonfinite_gradients_where_the_function_is_smooth(
    text: str, point: dict[str, float], gradient: dict[str, float]
) -> None:
    result = evaluate(text, point)
    for name, want in gradient.items():
        got = float(result.gradient[name])
        assert got == pytest.approx(want, rel=1e-14, abs=0.0), (
            text,
            point,
            name,
            got,
            [f.message for f in result.faults],
        )
    if result.finite:  # ∂/∂z of 1/(x·log1p(z)) overflows for good, and is reported
        assert not result.faults, [f.message for f in result.faults]


def test_the_reference_and_the_renderer_on_known_programs() -> None:
    """The test's own parts, on programs whose text and gradient are known in closed form."""
    x, y, z = ("name", "x"), ("name", "y"), ("name", "z")
    cases = [
        (((), ("binary", "^", x, ("num", "3"))), False, "x^3", {"x": 2.0}, {"x": 12.0}),
        (
            (
                (("a", ("call", "sin", (x,))),),
                ("binary", "+", ("binary", "*", ("name", "a"), ("name", "a")), y),
            ),
            False,
            "a = sin(x); a*a+y",
            {"x": 0.5, "y": 1.0},
            {"x": math.sin(1.0), "y": 1.0},
        ),
        (
            ((), ("call", "max", (x, y, ("num", "0.5")))),
            True,
            "max(x, y, 0.5)",
            {"x": 0.25, "y": 0.75},
            {"x": 0.0, "y": 1.0},
        ),
        (
            ((), ("call", "max", (x, y, ("num", "0.5")))),
            True,
            "max(x, y, 0.5)",
            {"x": 0.25, "y": 0.3},
            {"x": 0.0, "y": 0.0},
        ),
        (
            ((), ("binary", "^", ("num", "2"), ("unary", "-", x))),
            False,
            "2^-x",
            {"x": 1.0},
            {"x": -math.log(2) / 2},
        ),
        (
            ((), ("unary", "-", ("binary", "^", x, ("num", "2")))),
            False,
            "-x^2",
            {"x": 3.0},
            {"x": -6.0},
        ),
        (
            ((), ("binary", "^", ("unary", "-", x), ("num", "2"))),
            False,
            "(-x)^2",
            {"x": 3.0},
            {"x": 6.0},
        ),
        (
            ((), ("binary", "−", ("binary", "−", x, y), z)),
            True,
            "x − y − z",
            {"x": 1.0, "y": 2.0, "z": 3.0},
            {"x": 1.0, "y": -1.0, "z": -1.0},
        ),
        (
            ((), ("binary", "−", x, ("binary", "−", y, z))),
            True,
            "x − (y − z)",
            {"x": 1.0, "y": 2.0, "z": 3.0},
            {"x": 1.0, "y": -1.0, "z": 1.0},
        ),
        (
            ((), ("binary", "^", x, ("binary", "^", y, ("num", "2")))),
            False,
            "x^y^2",
            {"x": 2.0, "y": 1.0},
            {"x": 1.0, "y": 4 * math.log(2)},
        ),
    ]
    for program, spaced, text, point, gradient in cases:
        assert source(program, spaced) == text
        assert used_variables(program) == set(point)
        with mpmath.workdps(30):
            _, got = reference(program, point, point)
        result = evaluate(text, point)
        for name, want in gradient.items():
            assert float(got[name]) == pytest.approx(want, rel=1e-14, abs=1e-300), (text, name)
            assert float(result.gradient[name]) == pytest.approx(want, rel=1e-14), (text, name)
