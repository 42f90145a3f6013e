"""Wrong derivative rules for every primitive of the registry, to show that the checker sees them.

A mutant changes one rule of one primitive, in one mode: the reverse-mode rule (`partials` of an
elementwise primitive, `vjp` of the others) or the forward-mode one (`jvp`, which forward.py uses
whenever it is set, and which elementwise primitives otherwise build from their `partials`). The
other mode keeps the right rule, so that each mode is tested on its own:

- a reverse mutant of an elementwise primitive replaces `partials` and sets `jvp` to the tangent
  built from the original partials, as forward.py would build it;
- a forward mutant of an elementwise primitive keeps `partials` and sets `jvp` from mutated ones;
- a reverse mutant of another primitive replaces `vjp` (and keeps the original `vjp` as the
  `magnitude_vjp`, the scale of rounding errors, when the primitive has no rule of its own for it);
- a forward mutant of another primitive uses the linearity of `jvp`: the tangent of input i is
  transformed on its own, jvp'(ts) = T(jvp(t_i only)) + jvp(the others).

Kinds: `scale` (×(1 + 1e-3)), `sign` (negated), `swap` (the rules of inputs 0 and 1 exchanged;
for a non-elementwise primitive only where the two inputs have the same shape), and a wrong value
at one kind of special point only: `zero` (where input i is 0), `tie` (where the two inputs of a
binary elementwise primitive are equal), `kink` (where the primitive's switching function is 0)
and `edge` (at an edge of the domain, see EDGES). The value added there, WRONG = 2, is outside
every set of valid subgradients at those points ([-1, 1] for abs, [0, 1] for relu, max and min,
the unit ball for norm, weights summing to 1 for max over an array). For a primitive that is not
elementwise it is added to ∂out_k/∂x_e for every output element k and every element e of input i
that is 0 (`zero`: the adjoint of x_e gets WRONG·Σg, so a program whose adjoint sums to 0 cannot
see it), or for the elements of each reduced group whose switching function is 0 (`kink`), the
same in both modes, so that the two mutants are the same wrong Jacobian.

`programs_for(name)` gives programs in gradcli's language, with points, that exercise a
primitive; `change` says how much a mutant moves the derivatives gradcli computes for a program
at each point, which is what a check's verdict must be compared with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from gradcli import api
from gradcli.api import wrt_names
from gradcli.checking.tolerances import DEFAULT_RTOL
from gradcli.evaluation.interpreter import evaluate
from gradcli.graph.nodes import Graph, Node, collector_paused
from gradcli.language.lower import Lowered
from gradcli.primitives import REGISTRY, Primitive, Shape
from gradcli.transforms.forward import TANGENT, jvp
from gradcli.transforms.reverse import grad

SCALE = 1.0 + 1e-3
WRONG = 2.0  # the value added to a rule at a special point
MODES = ("reverse", "forward")
KINDS = ("scale", "sign", "swap", "zero", "tie", "kink", "edge")

Point = dict[str, Any]
Program = tuple[str, list[Point]]
ShapeOf = Callable[[Node], tuple[int, ...]]


@dataclass(frozen=True)
class Mutant:
    """One wrong rule: of `primitive`, in `mode`, for input `argument` (for `swap`: 0, the
    rules of inputs 0 and 1 exchanged). `edge` is (input, value) for kind "edge"."""

    primitive: str
    mode: str
    argument: int
    kind: str
    description: str
    edge: tuple[int, float] | None = None

    @property
    def id(self) -> str:
        kind = self.kind
        if self.edge is not None:
            kind = f"edge({_param(REGISTRY[self.primitive], self.edge[0])}={self.edge[1]:g})"
        return f"{self.primitive}:{self.mode}:{self.argument}:{kind}"

    def __str__(self) -> str:
        return f"{self.id} ({self.description})"


# Domain edges, as (input, value): where a rule meets the end of its domain. Entries equal to a
# `zero` mutant (the rule of input i where input i is 0) are not made twice.
EDGES: dict[str, list[tuple[int, float]]] = {
    "sqrt": [(0, 0.0)],
    "log": [(0, 0.0)],
    "log2": [(0, 0.0)],
    "log10": [(0, 0.0)],
    "log1p": [(0, -1.0)],
    "asin": [(0, -1.0), (0, 1.0)],
    "acos": [(0, -1.0), (0, 1.0)],
    "pow": [(0, 0.0)],  # base 0
    "xlogy": [(0, 0.0)],  # x = 0, where y = 0 is allowed
    "div": [(1, 0.0)],
    "mod": [(1, 0.0)],
    "acosh": [(0, 1.0)],
    "atanh": [(0, -1.0), (0, 1.0)],
    "logit": [(0, 0.0), (0, 1.0)],
    "erfinv": [(0, -1.0), (0, 1.0)],
    "ndtri": [(0, 0.0), (0, 1.0)],
    "xlog1py": [(0, 0.0)],  # x = 0, where y = −1 is allowed
}
# Primitives with a domain but no edge that a float64 can reach.
NO_EDGE = {
    "tan": "cos x = 0 at no float64 x: tan's poles cannot be reached exactly",
    **dict.fromkeys(
        ("lgamma", "digamma", "polygamma", "gamma", "beta", "betaln"),
        "the edges are the poles of Γ (0, -1, -2, …), outside the domain: no program evaluates "
        "a rule there (the zero mutant's point, 0, is one)",
    ),
    **dict.fromkeys(
        ("inv", "solve", "logdet", "cholesky"),
        "the edge is a set of matrices (det A = 0, or ≤ 0; for cholesky, the smallest eigenvalue "
        "of the symmetric part 0), not one value of one input",
    ),
}
# Primitives without a derivative rule: each call is lowered into other primitives.
NO_RULES = {
    "dot": "lowered to mul and sum when the program is built; it has no node of its own",
    "maximum": "lowered to max of two values, whose rules are mutated",
    "minimum": "lowered to min of two values, whose rules are mutated",
    "clip": "lowered to min(max(x, lo), hi), whose rules are mutated",
    **dict.fromkeys(("eye", "ones", "zeros"), "a constant: no input, no rule"),
    "full": "lowered to broadcast_to, whose rules are mutated",
    "gammaln": "lowered to lgamma, whose rules are mutated",
    "log_softmax": "lowered to x - expand_dims(logsumexp(x)), whose rules are mutated",
    "one_hot": "its one input is a position (a label), which has no derivative: no rule",
    "arange": "a constant written in the program: no input, no rule",
    "linspace": "lowered to sub, div, mul, add and concatenate, whose rules are mutated",
    "take": "lowered to gather, whose rules are mutated",
    "inner": "lowered to tensordot over the last axes, whose rules are mutated",
    "cross": "lowered to products and differences of the components, whose rules are mutated",
    "solve_triangular": "lowered to solve of tril(A) or triu(A), whose rules are mutated",
}


def _param(prim: Primitive, i: int) -> str:
    names = prim.params or tuple("xyzw")
    return names[i] if i < len(names) else f"{names[-1]}{i}"


def in_scope(name: str) -> bool:
    """Primitives of gradcli itself: not Python functions registered at run time."""
    return not name.startswith("python ")


# Non-elementwise primitives whose nodes can have more inputs than `arity`: the rules mutated
# are those of the first inputs, up to this many (later inputs keep their rules).
# Elementwise variadic primitives (max, min) are folded into nodes of `arity` inputs.
# [x, y, z]; prod_pairs(x, t1, t2); concatenate([x, y, z]); stack([x, y, z]); x[i, j] and
# scatter_add(g, i, j), whose inputs after the first are positions, without derivative; and
# tensordot and norm, whose calls a hook lowers.
INPUTS = {
    "stack": 3,
    "prod_pairs": 3,
    "concatenate": 3,
    "stacked": 3,
    "gather": 1,
    "scatter_add": 1,
    "tensordot": 2,  # a call lowered by a hook (for its axes), with two inputs as ever
    "einsum": 3,  # any number of operands after its subscripts
    "norm": 1,  # a call lowered by a hook (for its ord), with one input as ever
}


def positions(prim: Primitive) -> range:
    """The inputs whose rules are mutated, one by one: not those that are positions (indices),
    which have no derivative and are never differentiated."""
    count = INPUTS.get(prim.name, prim.arity)
    return range(count if prim.positions_from is None else min(count, prim.positions_from))


def elementwise(prim: Primitive) -> bool:
    return prim.partials is not None


def _kink_duplicates(prim: Primitive) -> tuple[int | None, bool]:
    """Whether the switching function is an input itself (the input it is, for which the kink
    mutant is the zero mutant) or a - b (the tie mutant): such kink mutants are not made."""
    graph = Graph()
    xs = [graph.var(f"v{i}") for i in range(prim.arity)]
    defaults = () if elementwise(prim) else tuple(v for _, v in prim.attr_params)
    switch = prim.kink(*xs, *defaults)
    same = next((i for i, x in enumerate(xs) if switch is x), None)
    tie = prim.arity == 2 and switch is graph.apply("sub", xs[0], xs[1])
    return same, tie


def _special_kinds(prim: Primitive, i: int) -> list[tuple[str, tuple[int, float] | None]]:
    kinds: list[tuple[str, tuple[int, float] | None]] = [("zero", None)]
    binary = elementwise(prim) and prim.arity == 2
    if binary:
        kinds.append(("tie", None))
    if prim.kink is not None:
        axis_first = (prim.attr_params[:1] or (("axis", None),))[0][0] == "axis"
        if not elementwise(prim) and not axis_first:
            raise NotImplementedError(f"a kink mutant of {prim.name}: no axis")
        same, tie = _kink_duplicates(prim)
        if same != i and not (tie and binary):
            kinds.append(("kink", None))
    for j, value in EDGES.get(prim.name, []):
        if not (j == i and value == 0.0):
            kinds.append(("edge", (j, value)))
    return kinds


def _describe(prim: Primitive, mode: str, i: int, kind: str, edge: tuple[int, float] | None):
    rule = f"{mode}-mode ∂{prim.name}/∂{_param(prim, i)}"
    if kind == "swap":
        return f"{mode}-mode rules of {_param(prim, 0)} and {_param(prim, 1)} swapped"
    where = {
        "scale": "×(1 + 1e-3)",
        "sign": "negated",
        "zero": f"+ {WRONG:g} where {_param(prim, i)} = 0",
        "tie": f"+ {WRONG:g} where {_param(prim, 0)} = {_param(prim, 1)}",
        "kink": f"+ {WRONG:g} where the switching function is 0",
    }
    if edge is not None:
        return f"{rule} + {WRONG:g} where {_param(prim, edge[0])} = {edge[1]:g}"
    return f"{rule} {where[kind]}"


def mutants_of(name: str) -> list[Mutant]:
    """Every mutant of one primitive."""
    prim = REGISTRY[name]
    if prim.partials is None and prim.vjp is None:
        return []
    out = []
    for mode in MODES:
        for i in positions(prim):
            for kind in ("scale", "sign"):
                out.append(Mutant(name, mode, i, kind, _describe(prim, mode, i, kind, None)))
        if len(positions(prim)) >= 2:
            out.append(Mutant(name, mode, 0, "swap", _describe(prim, mode, 0, "swap", None)))
        for i in positions(prim):
            for kind, edge in _special_kinds(prim, i):
                out.append(Mutant(name, mode, i, kind, _describe(prim, mode, i, kind, edge), edge))
    return out


def all_mutants() -> list[Mutant]:
    """Every mutant of every primitive of gradcli (not of run-time Python functions)."""
    return [m for name in REGISTRY if in_scope(name) for m in mutants_of(name)]


# --- building the wrong rules ----------------------------------------------------------------


def _plus(a: Any, b: Any) -> Any:
    """a + b, with None for a symbolic zero."""
    if a is None:
        return b
    return a if b is None else a + b


def _transform(value: Any, change: Callable[[Any], Any]) -> Any:
    """`change` applied to a rule's value: None stays a symbolic zero for scale and sign."""
    return None if value is None else change(value)


def _equal(a: Node | float, b: Node | float) -> Node:
    graph = next(v for v in (a, b) if isinstance(v, Node)).graph
    return graph.apply("equal", a, b)


def _indicator(
    prim: Primitive, kind: str, i: int, edge: tuple[int, float] | None, inputs: Sequence[Node]
) -> Node:
    """1 at the special point of an elementwise rule, else 0."""
    if kind == "zero":
        return _equal(inputs[i], 0.0)
    if kind == "tie":
        return _equal(inputs[0], inputs[1])
    if kind == "kink":
        return _equal(prim.kink(*inputs), 0.0)
    assert kind == "edge" and edge is not None
    return _equal(inputs[edge[0]], edge[1])


def _mutated_partials(prim: Primitive, m: Mutant) -> tuple:
    partials = list(prim.partials)
    if m.kind == "swap":
        partials[0], partials[1] = partials[1], partials[0]
        return tuple(partials)
    rule = partials[m.argument]

    def wrong(ans: Node, *inputs: Node) -> Any:
        value = rule(ans, *inputs)
        if m.kind == "scale":
            return _transform(value, lambda v: v * SCALE)
        if m.kind == "sign":
            return _transform(value, lambda v: -v)
        return _plus(value, WRONG * _indicator(prim, m.kind, m.argument, m.edge, inputs))

    partials[m.argument] = wrong
    return tuple(partials)


def jvp_from_partials(partials: Sequence[Callable[..., Any]]) -> Callable[..., Any]:
    """The tangent Σ t_i·partial_i, spread over the output as forward.py spreads it."""

    def jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node | None:
        total = None
        for t, partial in zip(ts, partials, strict=True):
            local = None if t is None else partial(node, *node.inputs)
            if local is not None:
                term = t * local
                total = term if total is None else total + term
        smaller = any(
            t is not None and shape_of(i) != shape_of(node)
            for i, t in zip(node.inputs, ts, strict=True)
        )
        if total is not None and smaller:
            total = node.graph.apply("broadcast_to", total, attrs=(shape_of(node),))
        return total

    return jvp


def _kept(shape: tuple[int, ...], axis: int | None) -> tuple[int, ...]:
    if axis is None:
        return (1,) * len(shape)
    axis %= len(shape)
    return (*shape[:axis], 1, *shape[axis + 1 :])


# Matrix primitives whose switch is an array (eigenvalue gaps, singular value gaps and the
# smallest singular value): their kink mutants are wrong wherever one of its entries is 0.
_EIGEN = ("eigvalsh", "eigh_vectors", "svdvals", "svd_left", "svd_right", "pinv")


def _eigen_tie(prim: Primitive, node: Node, shape_of: ShapeOf, total: Node, like: Node) -> Node:
    """`total` (a number) spread over `like` where two eigenvalues of the input tie, else 0:
    the kink mutant of the eigen-primitives, whose switch is the gaps between eigenvalues."""
    switch = _equal(prim.kink(*node.inputs), 0.0)
    tie = _equal(_equal(node.graph.apply("sum", switch, attrs=(None,)), 0.0), 0.0)
    return node.graph.apply("broadcast_to", tie * total, attrs=(shape_of(like),))


def _tied(prim: Primitive, node: Node) -> Node:
    """1 along the axis where two elements tie (sort's switch, a gap of sorted neighbours, is
    0), else 0: where a kink mutant of a primitive that keeps its shape is wrong."""
    axis = node.attrs[0]
    ties = node.graph.apply("sum", _equal(prim.kink(*node.inputs, *node.attrs), 0.0), attrs=(axis,))
    return node.graph.apply("expand_dims", _equal(_equal(ties, 0.0), 0.0), attrs=(axis,))


def _expand(g: Node, shape: tuple[int, ...], axis: int | None) -> Node:
    """A reduced value spread back over the elements it was reduced from."""
    g = g.graph.apply("reshape", g, attrs=(_kept(shape, axis),))
    return g.graph.apply("broadcast_to", g, attrs=(shape,))


def _sum_to(v: Node, shape: tuple[int, ...]) -> Node:
    return v.graph.apply("sum_to", v, attrs=(shape,))


def _total(v: Node, shape: tuple[int, ...]) -> Node:
    return v if shape == () else v.graph.apply("sum", v, attrs=(None,))


def _mutated_vjp(prim: Primitive, m: Mutant) -> Callable[..., tuple]:
    original = prim.vjp

    def vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
        parts = list(original(node, g, shape_of))
        i, inputs = m.argument, node.inputs
        if m.kind == "swap":
            if len(inputs) > 1 and shape_of(inputs[0]) == shape_of(inputs[1]):
                parts[0], parts[1] = parts[1], parts[0]
            return tuple(parts)
        if i >= len(inputs):
            return tuple(parts)
        part = parts[i]

        def wrong(part: Any = part) -> Any:
            value = part() if callable(part) else part
            if m.kind == "scale":
                return _transform(value, lambda v: v * SCALE)
            if m.kind == "sign":
                return _transform(value, lambda v: -v)
            if m.kind == "zero":
                added = _equal(inputs[i], 0.0) * _total(g, shape_of(node))
            elif prim.name in _EIGEN:  # wrong where two eigenvalues tie
                added = _eigen_tie(prim, node, shape_of, _total(g, shape_of(node)), inputs[i])
            elif not node.attrs:  # the kink of an elementwise map with a vjp (where)
                switch = prim.kink(*inputs)
                if switch is None:  # the condition is a comparison: its own switch
                    return value
                added = _sum_to(_equal(switch, 0.0) * g, shape_of(inputs[i]))
            elif shape_of(node) == shape_of(inputs[i]):  # sort: wrong along a tie
                added = _tied(prim, node) * g
            else:  # kink of a reduction
                switch = _equal(prim.kink(*inputs, *node.attrs), 0.0)
                added = _expand(switch * g, shape_of(inputs[i]), node.attrs[0])
            return _plus(value, WRONG * added)

        parts[i] = wrong
        return tuple(parts)

    return vjp


def _linear_jvp(prim: Primitive, m: Mutant, original: Callable[..., Any]) -> Callable[..., Any]:
    """A forward mutant made from a correct jvp, which is linear in the tangents."""

    def call(node: Node, ts: list, shape_of: ShapeOf) -> Any:
        return original(node, ts, shape_of) if any(t is not None for t in ts) else None

    def jvp(node: Node, ts: list, shape_of: ShapeOf) -> Any:
        i, inputs = m.argument, node.inputs
        if m.kind == "swap":
            if len(inputs) > 1 and shape_of(inputs[0]) == shape_of(inputs[1]):
                return call(node, [ts[1], ts[0], *ts[2:]], shape_of)
            return call(node, ts, shape_of)
        if i >= len(inputs) or ts[i] is None:
            return call(node, ts, shape_of)
        if m.kind in ("scale", "sign"):
            only = [t if k == i else None for k, t in enumerate(ts)]
            rest = [None if k == i else t for k, t in enumerate(ts)]
            factor = SCALE if m.kind == "scale" else -1.0
            return _plus(
                _transform(call(node, only, shape_of), lambda v: v * factor),
                call(node, rest, shape_of),
            )
        if elementwise(prim):  # a forward rule of its own: the wrong value at each element
            added = _indicator(prim, m.kind, i, m.edge, inputs) * ts[i]
            if shape_of(inputs[i]) != shape_of(node):
                added = node.graph.apply("broadcast_to", added, attrs=(shape_of(node),))
        elif m.kind == "zero":
            added = _total(_equal(inputs[i], 0.0) * ts[i], shape_of(inputs[i]))
            if shape_of(node) != ():
                added = node.graph.apply("broadcast_to", added, attrs=(shape_of(node),))
        elif prim.name in _EIGEN:
            total = _total(ts[i], shape_of(inputs[i]))
            added = _eigen_tie(prim, node, shape_of, total, node)
        elif not node.attrs:  # the kink of an elementwise map with a vjp (where)
            switch = prim.kink(*inputs)
            if switch is None:
                return call(node, ts, shape_of)
            added = node.graph.apply(
                "broadcast_to", _equal(switch, 0.0) * ts[i], attrs=(shape_of(node),)
            )
        elif shape_of(node) == shape_of(inputs[i]):  # sort: wrong along a tie
            added = _tied(prim, node) * ts[i]
        else:  # kink of a reduction
            switch = _equal(prim.kink(*inputs, *node.attrs), 0.0)
            added = switch * node.graph.apply("sum", ts[i], attrs=node.attrs[:1])
        return _plus(call(node, ts, shape_of), WRONG * added)

    return jvp


def mutated(prim: Primitive, m: Mutant) -> Primitive:
    """The registry entry with the mutant's rule in place of the right one."""
    if elementwise(prim):
        if m.mode == "reverse":
            own = prim.jvp or jvp_from_partials(prim.partials)
            return dataclasses.replace(prim, partials=_mutated_partials(prim, m), jvp=own)
        if prim.jvp is not None:  # a forward rule of its own
            return dataclasses.replace(prim, jvp=_linear_jvp(prim, m, prim.jvp))
        return dataclasses.replace(prim, jvp=jvp_from_partials(_mutated_partials(prim, m)))
    if m.mode == "reverse":
        return dataclasses.replace(
            prim, vjp=_mutated_vjp(prim, m), magnitude_vjp=prim.magnitude_vjp or prim.vjp
        )
    return dataclasses.replace(prim, jvp=_linear_jvp(prim, m, prim.jvp))


@contextlib.contextmanager
def inject(m: Mutant) -> Iterator[None]:
    """The mutant in the registry for the duration of the block; the right rule after it."""
    original = REGISTRY[m.primitive]
    REGISTRY[m.primitive] = mutated(original, m)
    try:
        yield
    finally:
        REGISTRY[m.primitive] = original


# --- mutants that cannot change a derivative ------------------------------------------------

_NONE = "the rule is a symbolic zero (None): scaled or negated, it is still zero"
_OUTSIDE = "the point lies outside the domain: no program evaluates the rule there"


# Primitives that only the checker builds: kinks' switches, their normals, and watched values.
_CHECKER_ONLY = (
    "top_gap_max",
    "top_gap_min",
    "top_pair_max",
    "top_pair_min",
    "next_gaps_max",
    "next_gaps_min",
)


_COMPARISONS = ("less", "less_equal", "greater", "greater_equal", "not_equal")


def _equivalents() -> dict[str, str]:
    out: dict[str, str] = {}

    def both(prefix: str, kinds: Sequence[str], reason: str) -> None:
        for mode in MODES:
            for kind in kinds:
                out[f"{prefix.replace('MODE', mode)}:{kind}"] = reason

    for name, args in (("sign", (0,)), ("heaviside", (0,)), ("equal", (0, 1))):
        for i in args:
            both(f"{name}:MODE:{i}", ("scale", "sign"), _NONE)
    both("equal:MODE:0", ("swap",), "both rules are the symbolic zero None")
    for name in (*_COMPARISONS, "logical_and", "logical_or"):
        for i in (0, 1):
            both(f"{name}:MODE:{i}", ("scale", "sign"), _NONE)
        both(f"{name}:MODE:0", ("swap",), "both rules are the symbolic zero None")
    for name in ("logical_not", "floor", "ceil", "trunc", "round", "argsort"):
        both(f"{name}:MODE:0", ("scale", "sign"), _NONE)
    both("where:MODE:0", ("scale", "sign"), _NONE + ": the condition gets no adjoint")
    both("mod:MODE:1", ("zero",), _OUTSIDE + " (y ≠ 0)")
    for name in ("lgamma", "digamma", "polygamma", "gamma"):
        both(f"{name}:MODE:0", ("zero",), _OUTSIDE + " (0 is a pole of Γ)")
    for name in ("beta", "betaln"):
        for k in "01":
            both(f"{name}:MODE:{k}", ("zero",), _OUTSIDE + " (0 is a pole of Γ)")
    both("mod:MODE:0", ("edge(y=0)",), _OUTSIDE + " (y ≠ 0)")
    both("add:MODE:0", ("swap",), "both rules are the constant 1")
    unreachable = (
        "top_gap_*, top_pair_* and next_gaps_* exist only for the checker's kinks and the "
        "values it watches: no program can call them (public=False, no operator, not made by "
        "any rule), and no derivative of a program uses them (top_gap's jvp is the normal of "
        "a kink, which directions along it are taken from)"
    )
    for name in (*_CHECKER_ONLY,):
        both(f"{name}:reverse:0", ("scale", "sign"), _NONE)
        both(f"{name}:MODE:0", ("zero",), unreachable)
    for name in ("top_pair_max", "top_pair_min", "next_gaps_max", "next_gaps_min"):
        both(f"{name}:forward:0", ("scale", "sign"), _NONE)
    for name in ("top_gap_max", "top_gap_min"):
        both(f"{name}:forward:0", ("scale", "sign"), unreachable)
    for name in ("log", "log2", "log10"):
        both(f"{name}:MODE:0", ("zero",), _OUTSIDE + " (x > 0)")
    both("log1p:MODE:0", ("edge(x=-1)",), _OUTSIDE + " (x > -1)")
    both("div:MODE:1", ("zero",), _OUTSIDE + " (y ≠ 0)")
    both("acosh:MODE:0", ("zero",), _OUTSIDE + " (x ≥ 1)")
    both("atanh:MODE:0", ("edge(x=-1)", "edge(x=1)"), _OUTSIDE + " (-1 < x < 1)")
    both("logit:MODE:0", ("zero", "edge(x=1)"), _OUTSIDE + " (0 < x < 1)")
    both("ndtri:MODE:0", ("zero", "edge(x=1)"), _OUTSIDE + " (0 < p < 1)")
    both("erfinv:MODE:0", ("edge(x=-1)", "edge(x=1)"), _OUTSIDE + " (-1 < x < 1)")
    both("div:MODE:0", ("edge(y=0)",), _OUTSIDE + " (y ≠ 0)")
    infinite = "the rule is ±inf at the point, and ±inf + 2 is ±inf: no value changes"
    both("acosh:MODE:0", ("edge(x=1)",), infinite + " (1/(sqrt(0)·sqrt(2)))")
    both("sqrt:MODE:0", ("zero",), infinite + " (0.5/sqrt(0))")
    both("cbrt:MODE:0", ("zero",), infinite + " (1/(3·cbrt(0)²))")
    for name in ("asin", "acos"):
        both(f"{name}:MODE:0", ("edge(x=-1)", "edge(x=1)"), infinite + " (1/sqrt(0))")
    return out


EQUIVALENT: dict[str, str] = _equivalents()


# --- programs that exercise each primitive ---------------------------------------------------

W23 = "[[1, -2, 3], [0.5, 4, -1]]"
W32 = "[[1, 2], [3, -4], [5, 6]]"
W222 = "[[[1, 2], [3, -4]], [[5, 6], [-7, 8]]]"
X23 = [[0.0, 1.5, -2.0], [1.5, 0.0, 3.0]]
X222 = [[[0.0, 1.0], [2.0, -3.0]], [[4.0, 0.5], [-1.0, 2.0]]]
ORDINARY = (0.7, -2.5)
TINY = (1e-300, -1e-300)
HUGE = (1e300, -1e300)


def _pts(name: str, values: Sequence[Any]) -> list[Point]:
    return [{name: v} for v in values]


def _unary(
    call: str, values: Sequence[float], inner: str = "sin(x)", inner_at: Sequence[float] = (0.0,)
) -> list[Program]:
    """A unary elementwise primitive: alone, composed, times another variable, used twice, and
    on an array with a repeated element. `call` has {} for the argument."""
    first = list(values[:3])
    array = [values[0], values[-1], values[-1]]
    return [
        (call.format("x"), _pts("x", values)),
        (call.format(inner), _pts("x", [*inner_at, 0.5, -1.0])),
        (f"{call.format('x')} * y", [{"x": v, "y": -1.5} for v in first]),
        (f"t = {call.format('x')}; t*t + t", _pts("x", first)),
        (f"sum({call.format('x')} * [1, -2, 3])", _pts("x", [array])),
    ]


def _binary(
    call: str, pairs: Sequence[tuple[float, float]], inner: str = "sin(x)"
) -> list[Program]:
    """A binary elementwise primitive: alone, composed, times another variable, used twice, and
    on arrays, elementwise and broadcast both ways. `call` has {a} and {b} for the arguments."""
    first = list(pairs[:4])
    xs, ys = [[p[k] for p in pairs[:3]] for k in (0, 1)]
    (x0, y0) = pairs[0]
    f = call.format(a="x", b="y")
    return [
        (f, [{"x": a, "y": b} for a, b in pairs]),
        (call.format(a=inner, b="y"), [{"x": a, "y": b} for a, b in first]),
        (f"{f} * z", [{"x": a, "y": b, "z": -1.5} for a, b in first]),
        (f"t = {f}; t*t + t", [{"x": a, "y": b} for a, b in first]),
        (f"sum({f} * [1, -2, 3])", [{"x": xs, "y": ys}, {"x": xs, "y": y0}, {"x": x0, "y": ys}]),
    ]


def _reduction(name: str, vectors: Sequence[list[float]], arrays: Sequence[Any]) -> list[Program]:
    """A reduction: over a vector, along each axis of a matrix, times a variable, used twice,
    and of a composition."""
    return [
        (f"{name}(x)", _pts("x", vectors)),
        (f"sum({name}(x, axis=0) * [1, -2, 3])", _pts("x", arrays)),
        (f"sum({name}(x, axis=1) * [2, -1])", _pts("x", arrays)),
        (f"{name}(x) * y", [{"x": v, "y": -1.5} for v in vectors[:2]]),
        (f"t = {name}(x); t*t + t", _pts("x", vectors[:2])),
        (f"{name}(sin(x))", _pts("x", vectors[:2])),
    ]


def _two_args(huge: tuple[float, float] = (1e300, -1e300)) -> list[tuple[float, float]]:
    """Pairs for a binary primitive defined everywhere: zeros of each, ties, tiny, huge."""
    common = [(0.0, 2.0), (2.0, 0.0), (0.0, 0.0), (1.5, 1.5), (-2.0, 3.0), (3.0, -0.5)]
    return [*common, (1e-300, -1e-300), huge]


def _table() -> dict[str, list[Program]]:
    t: dict[str, list[Program]] = {}
    everywhere = [0.0, *TINY, *HUGE, *ORDINARY]
    for name in ("atan", "tanh", "sech", "sigmoid", "softplus", "abs", "relu", "sign"):
        t[name] = _unary(f"{name}({{}})", everywhere)
    t["neg"] = _unary("-({})", everywhere)
    finite = [0.0, *TINY, *ORDINARY]
    for name in ("sin", "cos"):
        t[name] = _unary(f"{name}({{}})", [*finite, *HUGE])
    t["exp"] = _unary("exp({})", [0.0, *TINY, *ORDINARY, 50.0, -1e300])
    t["expm1"] = _unary("expm1({})", [0.0, *TINY, *ORDINARY, 50.0, -1e300])
    for name in ("sinh", "cosh"):
        t[name] = _unary(f"{name}({{}})", [*finite, 700.0])
    t["tan"] = _unary("tan({})", [*finite, 1.5])
    for name in ("asin", "acos"):
        t[name] = _unary(f"{name}({{}})", [0.0, *TINY, 0.7, -0.5, 0.999999, -0.999999])
    t["log1p"] = _unary("log1p({})", [0.0, *TINY, 1e300, 0.5, -0.5, -1 + 2.0**-40])
    positive = [1e-300, 1e300, 0.5, 1.0, 3.7]
    for name in ("log", "log2", "log10", "sqrt"):
        t[name] = _unary(f"{name}({{}})", positive, inner="x*x + 1", inner_at=(0.0, 2.0))

    for name, symbol in (("add", "+"), ("sub", "-")):
        t[name] = _binary(f"({{a}}) {symbol} ({{b}})", _two_args())
    t["mul"] = _binary("({a}) * ({b})", _two_args(huge=(1e300, -1e-300)))
    for name in ("min", "max", "hypot", "heaviside", "equal", *_COMPARISONS):
        t[name] = _binary(f"{name}({{a}}, {{b}})", _two_args())
    _conditionals(t, everywhere)
    t["heaviside"] += [("heaviside(x, h)", [{"x": 0.0, "h": 0.25}, {"x": 0.5, "h": 0.5}])]
    t["div"] = _binary(
        "({a}) / ({b})",
        [(0.0, 2.0), (1.5, -0.5), (2.0, 2.0), (-3.0, 7.0), (1e-300, 1e-300), (1e300, 1e300)],
    )
    pow_pairs = [(1.5, 2.5), (0.0, 2.0), (2.0, 0.0), (0.0, 3.0), (0.5, -1.5), (2.0, 2.0)]
    t["pow"] = [
        *_binary("({a}) ^ ({b})", [*pow_pairs, (0.0, 1.0), (1e300, 0.5), (1e-300, 2.0)], "x*x + 1"),
        # a negative base: only at an integer y, so y is a constant (x^y has no ∂y there)
        ("x ^ 3 + x ^ -2", _pts("x", [-2.0, -1e-3, 1.5])),
        ("2 ^ x", _pts("x", [0.0, -1.5, 3.0])),
    ]
    t["xlogy"] = _binary(
        "xlogy({a}, {b})",
        [
            (0.0, 2.0),
            (1.5, 0.5),
            (-1.0, 3.0),
            (2.0, 2.0),
            (1.0, 1e-300),
            (1e-300, 1e300),
            (0.0, 0.0),
        ],
    )
    cut = [(1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (2.0, -3.0), (-2.0, -3.0)]
    t["atan2"] = _binary("atan2({a}, {b})", [*cut, (1e-300, 1e-300), (1e300, -1e300)])

    vectors = [[0.0, 1.5, -2.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1e-300, -1e300, 3.0]]
    for name in ("sum", "mean"):
        t[name] = _reduction(name, vectors, [X23])
    t["logsumexp"] = _reduction(
        "logsumexp", [[0.0, 1.5, -2.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1e3, 1e3, 0.0]], [X23]
    )
    t["prod"] = _reduction(
        "prod", [[0.0, 2.0, 3.0], [1.5, -2.0, 0.5], [0.0, 0.0, 2.0], [1.0, 1.0, 1.0]], [X23]
    )
    ties = [[1.0, 1.0, 0.0], [3.0, 1.0, 2.0], [0.0, 0.0, 0.0], [-1.0, 5.0, 5.0], [2.0, 0.0, -1.0]]
    tied = [[[1.0, 1.0, 0.0], [1.0, 2.0, 0.0]], X23]
    t["amax"] = _reduction("max", ties, tied)
    t["amin"] = _reduction("min", [[-v for v in x] for x in ties], tied)
    spreads = [[0.0, 1.5, -2.0], [1.0, 1.0, 1.0], [1e-300, 2e-300, 0.0], [1e150, -1e150, 3e150]]
    for name in ("var", "std"):
        t[name] = [
            *_reduction(name, spreads, [X23]),
            (f"{name}(x, ddof=1) + sum({name}(x, 1, 2) * [1, -3])", _pts("x", [X23])),
            (f"sum(x / {name}(x, axis=-1, keepdims=True) * [[1, -2, 3]])", _pts("x", [X23])),
        ]
    t["norm"] = _reduction(
        "norm",
        [[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [1e-300, 2e-300, 0.0], [1e300, 1e300, 0.0]],
        [[[0.0, 1.5, -2.0], [0.0, 0.0, 3.0]]],
    )
    t["prod_except"] = [
        ("sum(prod_except(x) * [1, -2, 3])", _pts("x", [[0.0, 2.0, 3.0], [1.5, -2.0, 0.5]])),
        ("sum(prod_except(x) * [1, -2, 3])", _pts("x", [[0.0, 0.0, 2.0], [1.0, 1.0, 1.0]])),
        (f"sum(prod_except(x, axis=0) * {W23})", _pts("x", [X23])),
        (f"sum(prod_except(x, axis=1) * {W23})", _pts("x", [X23])),
        ("sum(prod_except(x)) * y", [{"x": [0.0, 2.0, 3.0], "y": -1.5}]),
    ]
    pairs = [
        {"x": [0.0, 2.0, 3.0], "t": [1.0, -1.0, 0.5]},
        {"x": [1.5, 1.5, -2.0], "t": [1.5, 0.0, -2.0]},
        {"x": [1.0, 2.0, 3.0], "t": [1.0, 2.0, 3.0]},
    ]
    t["prod_pairs"] = [
        ("sum(prod_pairs(x, t) * [1, -2, 3])", pairs),
        (f"sum(prod_pairs(x, t, axis=1) * {W23})", [{"x": X23, "t": [[1.0, 0.0, 2.0]] * 2}]),
        (
            "sum(prod_pairs(x, t, u) * [1, -2, 3, 0.5])",
            [{"x": [0.0, 1.0, 2.0, 3.0], "t": [1.0, 2.0, 0.0, 1.0], "u": [2.0, 0.0, 1.0, -1.0]}],
        ),
        ("sum(prod_pairs(x, sin(t)) * [1, -2, 3])", pairs[:1]),
    ]
    t["softmax"] = [
        ("sum(softmax(x) * [1, -2, 3])", _pts("x", [*vectors[:3], [1e3, 1e3, 0.0]])),
        (f"sum(softmax(x, axis=0) * {W23})", _pts("x", [X23])),
        (f"sum(softmax(x) * {W23})", _pts("x", [X23])),
        ("sum(softmax(x) * y)", [{"x": [0.0, 1.5, -2.0], "y": [1.0, 0.0, -1.0]}]),
        ("s = softmax(x); sum(s * s * [1, -2, 3])", _pts("x", vectors[:2])),
    ]
    t["transpose"] = [
        (f"sum(transpose(x) * {W32})", _pts("x", [X23])),
        ("sum(transpose(x) * y)", [{"x": X23, "y": [[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]]}]),
        (f"sum(transpose(x, axes=[1, 2, 0]) * {W222})", _pts("x", [X222])),
        (f"sum(transpose(x) * {W222})", _pts("x", [X222])),
        (f"sum(transpose(sin(x)) * {W32})", _pts("x", [X23])),
    ]
    t["reshape"] = [
        (f"sum(reshape(x, shape=[3, 2]) * {W32})", _pts("x", [X23])),
        ("sum(reshape(x, shape=[4, 2]) * [[1, 2], [3, -4], [5, 6], [-7, 8]])", _pts("x", [X222])),
        ("sum(reshape(x, shape=[6]) * y)", [{"x": X23, "y": [1.0, 0.0, -1.0, 2.0, 3.0, 0.5]}]),
        (f"sum(reshape(sin(x), shape=[3, 2]) * {W32})", _pts("x", [X23])),
    ]
    t["reshape"].append(("sum(reshape(x, [-1, 2]) @ [1, -3]) * y", [{"x": X23, "y": 2.0}]))
    t["cumprod"] = [
        ("sum(cumprod(x) * [1, -2, 3, 0.5]) * y", [{"x": [1.5, 0.0, -2.0, 0.5], "y": 2.0}]),
        (
            "sum(cumprod(x) * [1, -2, 3, 0.5])",
            _pts("x", [[1.5, -2.0, 0.5, 3.0], [0.0, 2.0, 0.0, 3.0]]),
        ),
        (f"sum(cumprod(x, axis=1) * {X23}) + sum(cumprod(x, 0) * {X23})", _pts("x", [X23])),
    ]
    t["argsort"] = [
        ("sum(argsort(x) * [1, -2, 3]) * y", [{"x": [1.5, 0.0, -2.0], "y": 2.0}]),
        (
            "sum(argsort(x, axis=0) * [[1, -2], [3, 0.5]]) + sum(x)",
            _pts("x", [[[0.0, 1.5], [2.0, -1.0]]]),
        ),
    ]
    t["sort"] = [
        ("sum(sort(x) * [1, -2, 3]) * y", [{"x": [1.5, 0.0, -2.0], "y": 2.0}]),
        ("sum(sort(x) * [1, -2, 3])", _pts("x", [[1.5, 1.5, -2.0], [0.0, 0.0, 0.0]])),
        (f"sum(sort(x, axis=0) * {X23})", _pts("x", [X23])),
    ]
    spd = "[[4, 1, 0.5], [1, 3, 0], [0.5, 0, 2]]"
    t["cholesky"] = [
        (
            f"sum(cholesky(x) * {spd}) * y",
            [{"x": [[4.0, 1.0, 0.5], [1.0, 3.0, 0.0], [0.5, 0.0, 2.0]], "y": 2.0}],
        ),
        (
            "2*sum(log(diag(cholesky(x))))",
            _pts("x", [[[4.0, 1.0], [1.0, 3.0]], [[2.0, 0.0], [0.0, 5.0]]]),
        ),
    ]
    t["tensordot"] = [
        (
            f"sum(tensordot(x, {X23}, axes=[[0, 1], [1, 0]]) * [1, -2]) * y",
            [{"x": [[0.0, 1.5], [2.0, -1.0], [0.5, 3.0]], "y": 2.0}],
        ),
        (
            "sum(tensordot(x, x, 0) * [[1, -2], [3, 0.5]]) + inner(x, [2, -1])",
            _pts("x", [[0.0, 1.5], [2.0, -1.0]]),
        ),
    ]
    t["einsum"] = [
        (
            "sum(einsum('ij,jk->ik', x, y) * [[1, -2], [3, 0.5]])",
            [{"x": [[0.0, 1.5], [2.0, -1.0]], "y": [[1.0, 0.0], [-0.5, 3.0]]}],
        ),
        (
            "einsum('ii', x) * 3 + sum(einsum('ii->i', x) * [1, -2]) + sum(einsum('ij->j', x) * "
            "[0.5, 2])",
            _pts("x", [[[0.5, 1.5], [0.0, -1.0]]]),
        ),
        (
            "sum(einsum('i,ij,...j->...i', x, y, z) * [1, -3])",
            [{"x": [0.0, -2.0], "y": [[1.0, 0.0], [-0.5, 3.0]], "z": [[2.0, 0.0]]}],
        ),
    ]
    t["kron"] = [
        ("sum(kron(x, y) * [1, -2, 3, 0.5])", [{"x": [0.0, 1.5], "y": [2.0, -1.0]}]),
        (
            "sum(kron(x, [[1, -2], [3, 0.5]]) * y)",
            [{"x": [[0.0, 1.5]], "y": [[1.0, 2.0, -1.0, 0.5], [3.0, 0.0, 2.0, -2.0]]}],
        ),
        (
            "sum(kron([2, -1], x) * [1, 2, 3, 4, 5, 6]) + sum(kron(x, x))",
            _pts("x", [[0.0, 1.5, -2.0]]),
        ),
    ]
    sym = [[2.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, -1.0]]
    t["eigvalsh"] = [
        ("sum(eigvalsh(x) * [1, -2, 3]) * y", [{"x": sym, "y": 2.0}]),
        (
            "sum(eigvalsh(x) * [1, 3])",
            _pts("x", [[[0.0, 1.5], [1.5, 0.0]], [[1.0, 0.0], [0.0, 1.0]]]),
        ),
    ]
    t["eigh_vectors"] = [
        (
            "sum(eigh_vectors(x) * [[1, -2, 3], [0.5, 2, -1], [1, 1, 2]]) * y",
            [{"x": sym, "y": 2.0}],
        ),
        (
            "sum(eigh_vectors(x) * [[1, 3], [-2, 0.5]])",
            _pts("x", [[[0.0, 1.5], [1.5, 2.0]], [[1.0, 0.0], [0.0, 1.0]]]),
        ),
    ]
    tall = [[1.0, 2.0], [0.0, 4.5], [0.5, -1.0]]
    t["svdvals"] = [
        ("sum(svdvals(x) * [1, -3]) * y", [{"x": tall, "y": 2.0}]),
        (  # a tie (the identity) and a singular value at 0 (rank 1)
            "sum(svdvals(x) * [1, 3])",
            _pts(
                "x", [[[0.0, 1.5], [2.0, -1.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [0.5, 1.0]]]
            ),
        ),
    ]
    square, narrow = "[[1, -2], [3, 0.5]]", "[[1, -2], [3, 0.5], [2, 1]]"
    for name, weights in (("svd_left", (narrow, square)), ("svd_right", (square, narrow))):
        t[name] = [
            (f"sum({name}(x) * {weights[0]}) * y", [{"x": tall, "y": 2.0}]),
            (f"sum({name}(transpose(x)) * {weights[1]}) * y", [{"x": tall, "y": 2.0}]),
            (  # a tie, where the vectors of the tied values are any rotation of each other
                f"sum({name}(x) * {weights[0]})",
                _pts("x", [[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]),
            ),
        ]
    t["pinv"] = [
        ("sum(pinv(x) * [[1, -2, 3], [0.5, 2, -1]]) * y", [{"x": tall, "y": 2.0}]),
        (
            "sum(pinv(x) * [[1, 3], [-2, 0.5]])",
            _pts("x", [[[0.0, 1.5], [2.0, -1.0]], [[1.0, 2.0], [0.5, 1.0]]]),
        ),
    ]
    t["polyval"] = [
        (
            "sum(polyval(p, x) * [1, -2, 3]) * y",
            [{"p": [0.0, 1.5, -2.0], "x": [0.0, 1.5, -2.0], "y": 2.0}],
        ),
        ("polyval([1, -7, 21, -35, 35, -21, 7, -1], x)", _pts("x", [0.0, 0.5, 1.5, 2.0])),
        (
            "sum(polyval(p, [2.5, -1]) * [1, -2]) + polyval([2], x)",
            [{"p": [0.0, 1.0, 1.5], "x": 0.5}],
        ),
    ]
    t["gather"] = [
        ("sum(x[[0, 2, 2]] * [1, -2, 3]) * y", [{"x": [0.0, 1.5, -2.0], "y": 2.0}]),
        ("sum(x[:, [1, 0, 1]] * [[1, -2, 3], [0.5, 2, -1]])", _pts("x", [X23])),
        (
            "sum(x[[0, 1, 1], [2, 0, 2]] * [1, -2, 3]) + sum(take(x, [4, 0]) * [2, -1])",
            _pts("x", [X23]),
        ),
    ]
    t["scatter_add"] = [
        (
            "sum(scatter_add(x, [1, 1, 0], shape=[3]) * [1, -2, 3]) * y",
            [{"x": [0.0, 1.5, -2.0], "y": 2.0}],
        ),
        (f"sum(scatter_add(x, [0, 1], [2, 2], shape=[2, 3]) * {X23})", _pts("x", [[0.0, 1.5]])),
    ]
    t["take_along_axis"] = [
        (
            "sum(take_along_axis(x, [[2, 0], [1, 1]], axis=1) * [[1, -2], [3, 0.5]]) * y",
            [{"x": X23, "y": 2.0}],
        ),
        ("sum(take_along_axis(x, [[1, 0, 1]], 0) * [[1, -2, 3]])", _pts("x", [X23])),
    ]
    t["squeeze"] = [
        ("sum(squeeze(x[None, :, None]) * [1, -2, 3]) * y", [{"x": X23[0], "y": 2.0}]),
        (f"sum(squeeze(reshape(x, [2, 1, 3]), 1) * {X23})", _pts("x", [X23])),
    ]
    three = [{"x": [0.0, 1.5], "y": [2.0, 0.0, -1.0], "z": [0.5, 0.0]}]
    two = [{"x": [0.0, 1.5], "z": [0.5, 0.0]}]
    t["concatenate"] = [
        ("sum(concatenate([x, y, z]) * [1, -2, 3, 0.5, 2, -1, 4])", three),
        ("sum(concatenate([x, x*z, z], axis=0) * [1, -2, 3, 0.5, 2, -1]) * y[0]", three),
        (
            "sum(concatenate([x[:, None], z[:, None], (x*z)[:, None]], axis=1) * "
            "[[1, -2, 3], [0.5, 2, -1]])",
            two,
        ),
    ]
    t["stacked"] = [
        ("sum(stack([x, z, x*z]) * [[1, -2], [3, 0.5], [2, -1]])", two),
        ("sum(stack([x, z, x - z], axis=1) * [[1, -2, 3], [0.5, 2, -1]]) * y[1]", three),
    ]
    t["tile"] = [
        (
            "sum(tile(x, [2, 2]) * [[1, -2, 3, 0.5], [2, -1, 4, 1]]) * y",
            [{"x": [0.0, 1.5], "y": 2.0}],
        ),
        (f"sum(tile(x, [2, 1, 1]) * [{X23}, {X23}])", _pts("x", [X23])),
    ]
    t["repeat"] = [
        ("sum(repeat(x, 2) * [1, -2, 3, 0.5]) * y", [{"x": [0.0, 1.5], "y": 2.0}]),
        (f"sum(repeat(x, 2, axis=0) * [{X23[0]}, {X23[1]}, {X23[0]}, {X23[1]}])", _pts("x", [X23])),
        (
            "sum(repeat(x, 3, 1) * [[1, -2, 3, 0.5, 2, -1, 0.25, 4, -3]])",
            _pts("x", [[[0.0, 1.5, -2.0]]]),
        ),
    ]
    t["stack"] = [
        ("sum([x, y] * [2, -3])", [{"x": 0.0, "y": 1.5}, {"x": 1.5, "y": 1.5}]),
        ("sum([x*y, sin(x)] * [1.5, -2])", [{"x": 0.0, "y": 2.0}, {"x": 0.7, "y": -1.0}]),
        (
            "sum([x, y, z] * [1, 2, -4])",
            [{"x": 0.0, "y": 0.0, "z": 1.0}, {"x": 1.0, "y": 2.0, "z": 0.0}],
        ),
        (f"sum([x, y] * {W23})", [{"x": [0.0, 1.0, 2.0], "y": [1.0, 0.0, 2.0]}]),
        ("sum([x, y] * [[1, 2, 3], [4, -5, 6]])", [{"x": 0.0, "y": [1.0, 0.0, 2.0]}]),
    ]
    t["index"] = [
        ("x[1]", _pts("x", [[1.0, 0.0, 2.0], [1.0, 2.0, 3.0]])),
        ("sum(x[0, 1:] * [2, -3])", _pts("x", [X23])),
        ("sum(x[::2] * [1, -2])", _pts("x", [[0.0, 1.0, 2.0], [1.0, 0.0, 3.0]])),
        ("x[-1] * x[0]", _pts("x", [[0.0, 1.0, 2.0], [1.5, 0.0, -2.0]])),
        ("x[1, 0, 1] * y", [{"x": X222, "y": 2.0}]),
    ]
    t["unindex"] = [
        (
            "sum(unindex(x, shape=[4], start=[1], stop=[3], step=[1]) * [1, 2, -3, 4])",
            _pts("x", [[0.0, 2.0], [1.5, -1.0]]),
        ),
        (
            "sum(unindex(x, shape=[3], start=[1], stop=[2], step=[0]) * [1, 2, 3])",
            _pts("x", [0.0, 2.0]),
        ),
        (
            f"sum(unindex(x, shape=[2, 3], start=[0, 1], stop=[2, 3], step=[1, 1]) * {W23})",
            _pts("x", [[[0.0, 1.0], [2.0, -1.0]]]),
        ),
    ]
    square = [[1.0, 2.0], [0.0, -1.0]]
    t["matmul"] = [
        ("sum((a @ b) * [[1, 2], [3, -4]])", [{"a": square, "b": [[0.5, 0.0], [2.0, 3.0]]}]),
        ("sum((a @ b) * [[1, 2], [3, -4]])", [{"a": square, "b": square}]),
        ("sum((a @ v) * [1, -2])", [{"a": X23, "v": [1.0, 0.0, 2.0]}]),
        ("sum((v @ a) * [1, -2, 3])", [{"v": [0.0, 2.0], "a": X23}]),
        ("sum((a @ a) * [[1, 2], [3, -4]])", [{"a": square}]),
        ("sum(a @ b) * c", [{"a": square, "b": [[0.5, 0.0], [2.0, 3.0]], "c": -1.5}]),
    ]
    _matrices(t)
    m34 = [[0.0, 1.5, -2.0, 0.5], [1.5, 0.0, 3.0, -1.0], [2.0, -0.5, 1.0, 4.0]]
    w34 = "[[1, -2, 3, 0.5], [0.25, 4, -1, 2], [-3, 1, 2, -0.5]]"
    t["flip"] = [
        (f"sum(flip(x, 0) * {w34}) + sum(flip(x) * {w34}) * y", [{"x": m34, "y": 2.0}]),
        (f"sum(flip(x, [0, 1]) * {w34})", _pts("x", [m34])),
    ]
    t["roll"] = [
        (f"sum(roll(x, 1, axis=1) * {w34}) + sum(roll(x, -5) * {w34}) * y", [{"x": m34, "y": 2.0}]),
        (f"sum(roll(x, [1, 2], axis=[0, 1]) * {w34})", _pts("x", [m34])),
    ]
    for name in ("tril", "triu"):
        t[name] = [
            (f"sum({name}(x) * {w34}) + sum({name}(x, 1) * {w34}) * y", [{"x": m34, "y": 2.0}]),
            (f"sum({name}(x, -1) @ [1, -2, 3, 0.5])", _pts("x", [m34])),
        ]
    t["cumsum"] = [
        (f"sum(cumsum(x, axis=1) * {w34}) + sum(cumsum(x, 0) * {w34}) * y", [{"x": m34, "y": 2.0}]),
        ("sum(cumsum(x) * [1, -2, 3, 0.5, 2, -1, 0.25, 4, -3, 1, 2, -0.5])", _pts("x", [m34])),
    ]
    t["diff"] = [
        (
            f"sum(diff(x) * {w34}[:, :3]) + sum(diff(x, axis=0) * {w34}[:2]) * y",
            [{"x": m34, "y": 2.0}],
        ),
        (f"sum(diff(x, 2) * {w34}[:, :2])", _pts("x", [m34])),
    ]
    t["expand_dims"] = [
        ("sum(expand_dims(x, axis=1) * [[1, -2, 3]])", _pts("x", [[0.0, 1.5, -2.0]])),
        (
            "sum(x[:, None] * [[1, -2], [3, 4], [0.5, 1]]) + sum(x[None] * [[2, 1, -1]])",
            _pts("x", [[0.0, 1.5, -2.0]]),
        ),
        ("sum(expand_dims(x, axis=[0, 2]) * [[[1], [-2]]]) * y", [{"x": X23[0][:2], "y": 2.0}]),
    ]
    t["asinh"] = _unary("asinh({})", [0.0, *TINY, *ORDINARY, *HUGE])
    t["acosh"] = _unary("acosh({})", [1.5, 1 + 2.0**-30, 30.0, 1e300], inner="x*x + 1.5")
    t["atanh"] = _unary("atanh({})", [0.0, *TINY, 0.7, -0.5, 0.999999, -0.999999])
    t["logaddexp"] = _binary("logaddexp({a}, {b})", _two_args())
    t["cbrt"] = _unary("cbrt({})", [0.7, -2.5, *TINY, 27.0, 1e300], inner="x*x + 1")
    t["square"] = _unary("square({})", [0.0, *TINY, *ORDINARY, 1e150])
    t["exp2"] = _unary("exp2({})", [0.0, *TINY, *ORDINARY, 1000.0, -1070.0])
    t["log_sigmoid"] = _unary("log_sigmoid({})", [0.0, *TINY, *ORDINARY, 800.0, -800.0])
    t["logit"] = _unary("logit({})", [0.5, 0.3, 1e-300, 0.999999, 0.75], inner="sigmoid(x)")
    t["sinc"] = _unary("sinc({})", [0.0, *TINY, *ORDINARY, 0.05, 1e6 + 0.25, 1e300])
    t["xlog1py"] = _binary(
        "xlog1py({a}, {b})",
        [(0.0, 2.0), (1.5, 0.5), (-1.0, 3.0), (2.0, 2.0), (1.0, 1e-300), (0.7, 0.0), (0.0, -1.0)],
    )
    t["erfinv"] = _unary("erfinv({})", [0.0, *TINY, 0.7, -0.5, 0.999999, -0.999999], "tanh(x)")
    t["erfcx"] = _unary("erfcx({})", [0.0, *TINY, *ORDINARY, 30.0, 1e300, -20.0])
    t["ndtr"] = _unary("ndtr({})", [0.0, *TINY, *ORDINARY, 8.0, -30.0])
    t["log_ndtr"] = _unary("log_ndtr({})", [0.0, *TINY, *ORDINARY, 8.0, -30.0, -1e5])
    t["ndtri"] = _unary("ndtri({})", [0.5, 0.3, 1e-300, 0.999999, 0.75], inner="sigmoid(x)")
    for name in ("i0", "i1", "i0e", "i1e"):
        t[name] = _unary(name + "({})", [0.0, *TINY, *ORDINARY, 30.0, -700.0])
    beta_pairs = [(0.5, 0.5), (2.0, 3.0), (1.5, 0.25), (30.0, 40.0), (-0.5, 0.7), (1e-8, 1.0)]
    t["beta"] = _binary("beta({a}, {b})", beta_pairs, "x*x + 1")
    t["betaln"] = _binary("betaln({a}, {b})", beta_pairs, "x*x + 1")
    t["erf"] = _unary("erf({})", [0.0, *TINY, *ORDINARY, 3.5, 1e300, -6.0])
    t["erfc"] = _unary("erfc({})", [0.0, *TINY, *ORDINARY, 3.5, 1e300, 10.0])
    near_poles = [0.5, 2.5, 1e-8, 1e6, -0.5, -2.25, 30.0]
    t["lgamma"] = _unary("lgamma({})", near_poles, inner="x*x + 1", inner_at=(0.0, 2.0))
    t["digamma"] = _unary("digamma({})", near_poles, inner="x*x + 1", inner_at=(0.0, 2.0))
    gamma_points = [0.5, 2.5, 1e-8, 30.0, -0.5, -2.25, 100.0]  # Γ(1e6) overflows
    t["gamma"] = _unary("gamma({})", gamma_points, inner="x*x + 1", inner_at=(0.0, 2.0))
    t["polygamma"] = [
        *_unary("polygamma(1, {})", near_poles, inner="x*x + 1", inner_at=(0.0, 2.0)),
        ("polygamma(3, x) * y", [{"x": 1.5, "y": -2.0}, {"x": -0.5, "y": 1.0}]),
    ]
    t["sum_to"] = [
        ("sum(sum_to(x, shape=[3]) * [1, -2, 3])", _pts("x", [X23])),
        ("sum(sum_to(x, shape=[2, 1]) * [[1], [-2]])", _pts("x", [X23])),
        ("sum_to(x) * y", [{"x": [0.0, 2.0], "y": 2.0}, {"x": [1.0, -1.0], "y": 0.0}]),
    ]
    t["broadcast_to"] = [
        (f"sum(broadcast_to(x, shape=[2, 3]) * {W23})", _pts("x", [[0.0, 1.5, -2.0]])),
        ("sum(broadcast_to(x, shape=[3]) * [1, -2, 3])", _pts("x", [0.0, 2.0])),
        (f"sum(broadcast_to(x, shape=[2, 3]) * {W23})", _pts("x", [[[0.0], [2.0]]])),
    ]
    return t


_NOT_WRITABLE = {*_CHECKER_ONLY, *NO_RULES}


def _matrices(t: dict[str, list[Program]]) -> None:
    """Programs of the matrix functions: matrices with zeros in them (for the zero mutants),
    invertible, with a positive determinant for logdet, a stack, and a vector and a matrix b."""
    a = [[2.0, 0.0], [1.0, 3.0]]
    b = [[0.5, -1.0], [0.0, 2.0]]
    stack = [a, [[1.0, 0.5], [0.0, -2.0]]]
    w = "[[1, 2], [3, -4]]"
    t["trace"] = [
        ("trace(a) * c", [{"a": a, "c": -1.5}]),
        ("trace(a @ b)", [{"a": a, "b": b}]),
        ("sum(trace(a) * [1, -2])", [{"a": stack}]),
    ]
    t["diag"] = [
        (f"sum(diag(v) * {w})", [{"v": [0.0, 1.5]}]),
        ("sum(diag(a) * [1, -2])", [{"a": X23}, {"a": a}]),
    ]
    t["outer"] = [
        (f"sum(outer(u, v) * {w})", [{"u": [0.0, 1.5], "v": [2.0, 0.0]}]),
        ("sum(outer(u, v) * [[1, 2, 3], [3, -4, 5]])", [{"u": [0.0, 1.5], "v": [2.0, 0.0, -1.0]}]),
        ("sum(outer(a, v) * [1, -1])", [{"a": a, "v": [2.0, 0.5]}]),
    ]
    t["inv"] = [
        (f"sum(inv(a) * {w})", [{"a": a}, {"a": b}]),
        ("sum(inv(a) @ b)", [{"a": a, "b": b}]),
        (f"sum(inv(a) * {w})", [{"a": stack}]),
    ]
    t["solve"] = [
        ("sum(solve(a, v) * [1, -2])", [{"a": a, "v": [0.0, 1.5]}, {"a": b, "v": [2.0, 0.0]}]),
        (f"sum(solve(a, b) * {w})", [{"a": a, "b": b}, {"a": b, "b": a}]),
        ("sum(solve(a, v) * [[1, -2], [3, 1]])", [{"a": stack, "v": [0.0, 1.5]}]),
    ]
    t["det"] = [
        ("det(a) * c", [{"a": a, "c": -1.5}, {"a": b, "c": 2.0}]),
        ("sum(det(a) * [1, -2])", [{"a": stack}]),
    ]
    t["logdet"] = [
        ("logdet(a)", [{"a": a}, {"a": [[1.0, 0.5], [0.0, 2.0]]}]),
        ("logdet(a) * c + sum(a)", [{"a": a, "c": -1.5}]),
    ]


def _conditionals(t: dict[str, list[Program]], everywhere: list[float]) -> None:
    """Programs of the logical operations, where, the rounding steps and mod."""
    t["less"] += [
        ("(x < y) * z + x", [{"x": 1.0, "y": 2.0, "z": 3.0}, {"x": 2.0, "y": 2.0, "z": 1.0}])
    ]
    for name in ("logical_and", "logical_or"):
        t[name] = _binary(f"{name}({{a}}, {{b}})", _two_args())
    t["logical_and"] += [("(x > 0 and y < 1) * x", [{"x": 1.0, "y": 0.0}, {"x": 0.0, "y": 1.0}])]
    t["logical_or"] += [("(x > 0 or y < 1) * y", [{"x": -1.0, "y": 2.0}, {"x": 0.0, "y": 1.0}])]
    t["logical_not"] = _unary("logical_not({})", everywhere)
    steps = [0.0, *TINY, 2.0, 2.5, -0.5, 0.7, 1e300]
    for name in ("floor", "ceil", "trunc", "round"):
        t[name] = _unary(f"{name}({{}})", steps)
        t[name] += [(f"{name}(x) * x", _pts("x", [2.0, 2.5, -1.0, 0.7]))]
    pairs = [
        (7.5, 2.0),
        (0.0, 2.0),
        (2.0, 2.0),
        (-3.0, 2.5),
        (1.5, -4.0),
        (5.0, 3.0),
        (1e-300, 3.0),
    ]
    t["mod"] = _binary("mod({a}, {b})", pairs, inner="sin(x) + 4")
    conditions = [
        {"x": 1.5, "y": 2.0, "z": -1.0},
        {"x": 0.0, "y": 2.0, "z": -1.0},
        {"x": 0.0, "y": 3.0, "z": 3.0},
        {"x": -2.0, "y": 0.0, "z": 0.5},
    ]
    t["where"] = [
        ("where(x, y, z)", conditions),
        ("where(x, y*y, z*y) + x*z", conditions),
        (
            "where(x > y, x*y, x - y)",
            [{"x": 3.0, "y": 2.0}, {"x": 1.0, "y": 2.0}, {"x": 2.0, "y": 2.0}],
        ),
        ("where(x > 0, sqrt(x), 2*x)", _pts("x", [-1.0, 4.0, 0.0])),
        ("t = where(x < 1, x, y); t*t + t", [{"x": 0.5, "y": 2.0}, {"x": 1.5, "y": -2.0}]),
        ("sum(where(x, [1, -2, 3] * y, x*x))", [{"x": [0.0, 1.5, -2.0], "y": 2.0}]),
        ("sum(where(x > y, y, x) * [1, -2, 3])", [{"x": [0.0, 1.5, -2.0], "y": [1.0, 1.0, 1.0]}]),
        ("sum(where(x, y, 0))", [{"x": [1.0, 0.0, 2.0], "y": [0.5, 0.0, 1.5]}]),
    ]


@cache
def _programs() -> dict[str, list[Program]]:
    return _table()


def programs_for(name: str) -> list[Program]:
    """(program text, points) that exercise primitive `name`: empty for the primitives that no
    program can contain (`top_gap_*`, `top_pair_*`, `next_gaps_*`) and for those without
    rules."""
    if name in _NOT_WRITABLE:
        return []
    return _programs()[name]


def writable() -> list[str]:
    """The primitives a program can contain, which `programs_for` must cover."""
    return [n for n in REGISTRY if in_scope(n) and n not in _NOT_WRITABLE]


# --- what a mutant does ----------------------------------------------------------------------


ROUNDING = 1e3 * np.finfo(float).eps  # × the size of the chain-rule terms: rounding, not a change


@dataclass
class _Nodes:
    """The derivatives a check compares with finite differences, as nodes: for each output (f,
    or at order 2 each component of its gradient), the gradient in every variable, beside the
    magnitude (the sum of |chain-rule terms|, the scale of its rounding), and one tangent."""

    reverse: list[Node]
    magnitude: list[Node]
    forward: list[Node]


def _derivative_nodes(
    program: Lowered, shapes: dict[str, Shape], names: Sequence[str], order: int
) -> _Nodes:
    """The derivatives that a check of `order` in the variables `names` computes."""
    graph = program.graph
    wrt = [program.variables[n] for n in names]
    tangents = {program.variables[n]: graph.var(n + TANGENT) for n in names}
    every = {**shapes, **{n + TANGENT: shapes[n] for n in names}}
    outputs = [program.output]
    if order == 2:
        outputs = []
        for name, g in zip(names, grad(program.output, wrt, shapes), strict=True):
            outputs += [
                graph.apply("index", g, attrs=(k,)) if k else g for k in np.ndindex(shapes[name])
            ]
    nodes = _Nodes([], [], [])
    for out in outputs:
        nodes.reverse += grad(out, wrt, shapes)
        nodes.magnitude += grad(out, wrt, shapes, magnitude=True)
        nodes.forward.append(jvp(out, tangents, every))
    return nodes


def _rows(values: list[Any], count: int) -> np.ndarray:
    """Values as (count, elements): one row per point (a value shared by the points repeated)."""
    parts = []
    for v in values:
        v = np.asarray(v, dtype=float)
        v = v if v.ndim and v.shape[0] == count else np.broadcast_to(v, (count, *np.shape(v)))
        parts.append(v.reshape(count, -1))
    return np.concatenate(parts, axis=1) if parts else np.zeros((count, 0))


def _gap(a: np.ndarray, b: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Per row, the largest |a - b| that is beyond both the checker's relative tolerance and
    the rounding `floor` (a sum may round differently in the mutant's graph): inf where one is
    finite and the other not, or nan; 0 where they agree."""
    floor = np.where(np.isfinite(floor), floor, 0.0)
    with np.errstate(all="ignore"):
        gap = np.abs(a - b)
        material = (gap > DEFAULT_RTOL["float64"] * np.fmax(np.abs(a), np.abs(b))) & (gap > floor)
        same = (a == b) | (np.isnan(a) & np.isnan(b)) | ~(material | np.isnan(gap))
    gap = np.where(same, 0.0, np.where(np.isnan(gap), math.inf, gap))
    return gap.max(axis=1, initial=0.0)


@dataclass(frozen=True)
class Change:
    """How far a mutant moves the derivatives gradcli computes, per point: the largest
    difference of the reverse-mode derivatives and of the forward-mode ones, beyond the
    checker's relative tolerance and beyond rounding."""

    reverse: np.ndarray
    forward: np.ndarray

    @property
    def changed(self) -> np.ndarray:
        return (self.reverse > 0) | (self.forward > 0)

    def describe(self, k: int = 0) -> str:
        return f"Δreverse = {self.reverse[k]:.3g}, Δforward = {self.forward[k]:.3g}"


def change(
    m: Mutant,
    program: Lowered,
    points: Mapping[str, Any],
    order: int = 1,
    wrt: Sequence[str] | None = None,
) -> Change:
    """What the mutant does to the derivatives of `program` at each point (values with a leading
    point axis, of length 1 for a value shared by all): it is this, not gradcli's verdict, that
    says whether a check should fail. Forward mode is along a fixed random direction."""
    arrays = {n: np.asarray(v, dtype=float) for n, v in points.items()}
    count = max(len(a) for a in arrays.values())
    shapes = {n: a.shape[1:] for n, a in arrays.items()}
    names = wrt_names(program, wrt)
    rng = np.random.default_rng(7)
    direction = {n + TANGENT: rng.standard_normal((count, *shapes[n])) for n in names}
    env = {**arrays, **direction}

    def derivatives(magnitude: bool) -> list[np.ndarray]:
        with collector_paused():
            nodes = _derivative_nodes(program, shapes, names, order)
        parts = [nodes.reverse, nodes.forward, nodes.magnitude if magnitude else []]
        with np.errstate(all="ignore"):
            values, _, _ = evaluate([n for part in parts for n in part], env, batched=True)
        out, start = [], 0
        for part in parts:
            out.append(_rows(values[start : start + len(part)], count))
            start += len(part)
        return out

    reverse, forward, magnitude = derivatives(magnitude=True)
    with inject(m):
        wrong_reverse, wrong_forward, _ = derivatives(magnitude=False)
    # The forward tangent of output o is Σ_e d_e ∂o/∂x_e: its rounding scales with Σ |d_e|·|J|_e.
    size = magnitude.shape[1] // max(1, forward.shape[1])
    along = np.abs(_rows(list(direction.values()), count))
    terms = magnitude.reshape(count, forward.shape[1], size) * along[:, None, :]
    return Change(
        _gap(reverse, wrong_reverse, ROUNDING * magnitude),
        _gap(forward, wrong_forward, ROUNDING * terms.sum(axis=2)),
    )


def change_at(m: Mutant, text: str, point: Point) -> Change:
    """`change` for a program text at one point."""
    program = api.compile_program(text)
    return change(m, program, {n: np.asarray(v, dtype=float)[None] for n, v in point.items()})
