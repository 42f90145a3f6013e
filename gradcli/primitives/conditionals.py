"""Comparisons, logical operations, `where`, and the steps of rounding (floor, ceil, round,
trunc, mod).

Their values change only by jumps, so their derivatives are 0 (mod's is 1 in x) away from a
switch the checker knows: a - b for a comparison, the nearest integer for the steps. A condition
is true where it is nonzero, as in numpy; comparisons and logical operations give 0 or 1
(`boolean`), so `where`, `and`, `or` and `not` switch only where a condition that is a plain
number crosses 0: a condition that is a comparison brings its own switch.

`where(c, a, b)` sends the adjoint to the branch chosen at each element and 0 to the other, as
`where(c, g, 0)`: reverse mode keeps that mask outside every product along the branch not taken,
so that an inf or nan derivative there (sqrt's at a negative x in `where(x > 0, sqrt(x), 0)`) is
never multiplied by the 0 into a nan, and evaluation does not report a nan that the branch not
taken made (see transforms/reverse.py and evaluation/interpreter.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import REGISTRY, Domain, Operator, Primitive, register
from ._common import ShapeOf, _apply

# --- comparisons and logical operations --------------------------------------------------------


def _boolean(node: Node) -> bool:
    """Whether `node` holds only 0s and 1s that change at switches of their own."""
    if node.op == "const":
        return bool(np.all((np.asarray(node.value) == 0) | (np.asarray(node.value) == 1)))
    prim = REGISTRY.get(node.op)
    return prim is not None and prim.boolean


def _truth_switch(*conditions: Node) -> Node | None:
    """Where some condition that is a plain number is 0: the product of those (None: none)."""
    plain = [c for c in conditions if not _boolean(c)]
    if not plain:
        return None
    out = plain[0]
    for c in plain[1:]:
        out = out * c
    return out


def _truth(x: Any) -> Any:
    return np.real(x) != 0


def _as_number(truth: Any, *inputs: Any) -> Any:
    """0s and 1s in the inputs' float type: float32 stays float32."""
    kind = np.result_type(*(np.real(np.asarray(i)) for i in inputs), np.float32)
    return np.asarray(truth).astype(kind)


def _comparison(name: str, symbol: str, test: Any, doc: str, latex: str) -> None:
    register(Primitive(
        name, 2, lambda a, b: _as_number(test(np.real(a), np.real(b)), a, b), doc,
        partials=(lambda ans, a, b: None, lambda ans, a, b: None), params=("a", "b"),
        kink=lambda a, b: a - b, jump=True, boolean=True, analytic=True,
        operator=Operator(symbol, 0, "none"), python=f"np.{name}(@0, @1).astype(float)",
        latex=rf"\left[@0 {latex} @1\right]",  # Iverson's bracket: 1 where it holds
    ))  # fmt: skip


# fmt: off
_comparison("less", "<", np.less, "1 where a < b, else 0 (derivative 0; a jump where a = b)",
            "<")
_comparison("less_equal", "<=", np.less_equal, "1 where a ≤ b, else 0 (a jump where a = b)",
            r"\le")
_comparison("greater", ">", np.greater, "1 where a > b, else 0 (a jump where a = b)", ">")
_comparison("greater_equal", ">=", np.greater_equal, "1 where a ≥ b, else 0 (a jump at a = b)",
            r"\ge")
_comparison("not_equal", "!=", np.not_equal, "1 where a ≠ b, else 0 (a jump where a = b)",
            r"\ne")
# fmt: on
# equal (==) is registered with the piecewise functions, where derivatives use it.


def _logical(name: str, combine: Any, doc: str, symbol: str, precedence: int, latex: str) -> None:
    """and, or: 1 where combine(truth of a, truth of b), else 0; a jump where a number used as
    a condition crosses 0."""
    register(Primitive(
        f"logical_{name}", 2, lambda a, b: _as_number(combine(_truth(a), _truth(b)), a, b), doc,
        partials=(lambda ans, a, b: None, lambda ans, a, b: None), params=("a", "b"),
        kink=_truth_switch, jump=True, boolean=True, analytic=True,
        operator=Operator(symbol, precedence, "left"),
        python=f"np.logical_{name}(@0, @1).astype(float)", latex=rf"\left[@0 {latex} @1\right]",
    ))  # fmt: skip


_logical("and", np.logical_and, "1 where a and b are both true (nonzero), else 0 (also written "
         "a and b)", "and", -2, r"\land")  # fmt: skip
_logical("or", np.logical_or, "1 where a or b is true (nonzero), else 0 (also written a or b)",
         "or", -3, r"\lor")  # fmt: skip
register(Primitive(
    "logical_not", 1, lambda a: _as_number(~_truth(a), a),
    "1 where a is false (0), else 0 (also written not a)",
    partials=(lambda ans, a: None,), params=("a",),
    kink=_truth_switch, jump=True, boolean=True, analytic=True,
    operator=Operator("not", -1, "prefix"), python="np.logical_not(@0).astype(float)",
    latex=r"\left[\lnot @0\right]",
))  # fmt: skip

# --- where ---------------------------------------------------------------------------------


def _where(c: Any, a: Any, b: Any) -> Any:
    return np.where(_truth(c), a, b)


def _where_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    c, a, b = node.inputs
    out = shape_of(node)
    sent = []
    for branch, taken in ((a, _apply("where", c, g, 0.0)), (b, _apply("where", c, 0.0, g))):
        if shape_of(branch) != out:
            taken = _apply("sum_to", taken, attrs=(shape_of(branch),))
        sent.append(taken)
    return (None, *sent)


def _where_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    c, a, b = node.inputs
    _, ta, tb = ts
    tangent = _apply("where", c, 0.0 if ta is None else ta, 0.0 if tb is None else tb)
    moved = [
        shape_of(c),
        shape_of(a) if ta is not None else (),
        shape_of(b) if tb is not None else (),
    ]
    if np.broadcast_shapes(*moved) != shape_of(node):  # a tangent of a broadcast branch
        tangent = _apply("broadcast_to", tangent, attrs=(shape_of(node),))
    return tangent


def _where_batched(args, flags, items, out):
    """The batch rule of an elementwise function: each batched input as (b, 1, …, *item)."""
    aligned = []
    for x, batched, item in zip(args, flags, items, strict=True):
        x = np.asarray(x)
        if batched:
            x = x.reshape(x.shape[:1] + (1,) * (len(out) - len(item)) + tuple(item))
        aligned.append(x)
    return _where(*aligned)


register(Primitive(
    "where", 3, _where,
    "a where the condition c is true (nonzero), else b; the derivative flows to the branch chosen",
    vjp=_where_vjp, jvp=_where_jvp, batch=_where_batched, params=("c", "a", "b"),
    kink=lambda c, a, b, *_: _truth_switch(c), jump=True, analytic=True, passes_nonfinite=(1, 2),
    python="np.where(np.asarray(@0) != 0, @1, @2)",
    latex=r"\begin{cases} @1 & \text{if } @0 \ne 0 \\ @2 & \text{otherwise} \end{cases}",
))  # fmt: skip

# --- rounding ----------------------------------------------------------------------------------


def _steps_at_integers(x: Node) -> Node:
    """0 at the integers, where floor, ceil and trunc jump (trunc is continuous at 0)."""
    return x - _apply("round", x)


def _steps_at_halves(x: Node) -> Node:
    """0 halfway between integers, where round jumps."""
    return x - _apply("floor", x) - 0.5


def _step(name: str, function: Any, switch: Any, doc: str, latex: str | None = None) -> None:
    register(Primitive(
        name, 1, lambda x: function(np.real(x)), doc, partials=(lambda ans, x: None,),
        kink=switch, jump=True, analytic=True, latex=latex, period=1.0,
    ))  # fmt: skip


# fmt: off
_step("floor", np.floor, _steps_at_integers, "the largest integer ≤ x (jumps at integers)",
      r"\left\lfloor @0 \right\rfloor")
_step("ceil", np.ceil, _steps_at_integers, "the smallest integer ≥ x (jumps at integers)",
      r"\left\lceil @0 \right\rceil")
_step("trunc", np.trunc, _steps_at_integers, "x rounded toward 0 (jumps at nonzero integers)")
_step("round", np.round, _steps_at_halves,
      "the nearest integer, halves to even as numpy has it (jumps halfway between integers)")
# fmt: on


def _mod(x: Any, y: Any) -> Any:
    if not (np.iscomplexobj(x) or np.iscomplexobj(y)):
        return np.mod(x, y)
    return x - y * np.floor(np.real(x) / np.real(y))  # analytic in x and y between the jumps


register(Primitive(
    "mod", 2, _mod, "x - y·floor(x/y): the remainder with the sign of y, as numpy's mod",
    partials=(lambda ans, x, y: 1.0, lambda ans, x, y: -_apply("floor", x / y)),
    params=("x", "y"), kink=lambda x, y: x - y * _apply("round", x / y), jump=True,
    analytic=True, domain=Domain("y ≠ 0", lambda x, y: y != 0, fault="division by zero"),
))  # fmt: skip

# --- spelled as numpy spells them ----------------------------------------------------------


def _elementwise(name: str) -> Any:
    def lower(call: Any) -> Node:
        a, b = call.positional(2)
        return call.graph.apply(name, a, b, span=call.call.span)

    return lower


def _clip(call: Any) -> Node:
    """clip(x, lo, hi) = min(max(x, lo), hi), as numpy computes it."""
    x, lo, hi = call.positional(3)
    span = call.call.span
    return call.graph.apply("min", call.graph.apply("max", x, lo, span=span), hi, span=span)


for _name, _of in (("maximum", "max"), ("minimum", "min")):
    register(Primitive(
        _name, 2, None, f"elementwise {_of} of two arrays, as numpy's {_name}",
        lower=_elementwise(_of), params=("a", "b"),
    ))  # fmt: skip
register(Primitive(
    "clip", 3, None, "x limited to [lo, hi]: min(max(x, lo), hi) (ties split the derivative)",
    lower=_clip, params=("x", "lo", "hi"),
))  # fmt: skip
