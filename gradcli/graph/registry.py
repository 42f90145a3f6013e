"""The registry of primitives: everything gradcli knows about an operation, in one entry.

An entry holds the numpy forward, the derivative rule written with graph operations, whether the
function is analytic (safe for the complex step), where it has kinks, its domain, and how it is
written. The parser, the differentiator, the evaluator and the printer all read this table, so a
new function is added here (registered in its family's module of `gradcli.primitives`) and
nowhere else.

Derivative rules come in two shapes, as in HIPS/autograd and JAX:

- `partials`: one function per input, `(ans, *inputs) -> ∂ans/∂input`, for elementwise
  primitives. The adjoint sent to input i is `adjoint * partial_i`; forward mode uses the same
  partials. A rule returning None means a symbolic zero.
- `vjp`: `(node, adjoint, shape_of) -> one adjoint contribution per input`, for primitives that are
  not elementwise (reductions, broadcasts, later array operations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .nodes import Node

Partial = Callable[..., "Node | float | None"]
Vjp = Callable[["Node", "Node", Callable[["Node"], tuple[int, ...]]], tuple["Node | None", ...]]
Shape = tuple[int, ...]


def as_shape(value: Any) -> Shape:
    """A shape attribute as a tuple: a program may write shape=3 as well as shape=[3]."""
    return (int(value),) if np.ndim(value) == 0 else tuple(int(v) for v in value)


@dataclass(frozen=True)
class Domain:
    """Where a primitive is defined over the reals, as text for people and a numpy predicate."""

    text: str
    contains: Callable[..., Any]
    fault: str | None = None  # what leaving the domain is called, if it has a common name


@dataclass(frozen=True)
class Operator:
    """How an operator primitive is written: its symbol, precedence and associativity."""

    symbol: str
    precedence: int
    assoc: str  # "left", "right", "prefix" or "none" (comparisons: a < b < c is a chain)


@dataclass(frozen=True)
class Primitive:
    name: str
    arity: int
    forward: Callable[..., Any] | None
    doc: str
    partials: tuple[Partial | None, ...] | None = None
    vjp: Vjp | None = None
    # |J|ᵀ g for a non-negative g, where J has negative entries: the scale of rounding errors.
    magnitude_vjp: Vjp | None = None
    # Forward mode: (node, input tangents (None: zero), shape_of) -> the output's tangent.
    # Needed by primitives that are not elementwise; elementwise ones use their partials unless
    # they state one (a rule of their own, or a wrong one injected to test the checker).
    jvp: Callable[..., Any] | None = None
    # |J|·e for a non-negative e, for primitives that are not elementwise and whose J has
    # negative entries (a product, softmax): how errors in the inputs reach the output (see
    # rounding.py). Without one, the jvp is used: right for sums, moves and other J ≥ 0.
    error_jvp: Callable[..., Any] | None = None
    # For primitives that are not elementwise: (args, batched flags, input item shapes, output
    # item shape, *attrs) -> the value over a batch; without one, evaluation loops over the batch.
    batch: Callable[..., Any] | None = None
    shape: Callable[..., Shape] | None = None  # default: inputs broadcast together
    analytic: bool = False  # extends to an analytic complex function: complex step is exact
    # The switching function, built with graph operations from the input nodes: the primitive is
    # not differentiable where it is 0 (a kink, or a jump).
    kink: Callable[..., Any] | None = None
    # Whether the value itself breaks where the switch is 0 (sign, heaviside, equal, the cut of
    # atan2), rather than only its derivative: at such a point, even times a factor of 0, the
    # function need not be regular, and one-sided directional rates judge no gradient as a whole.
    jump: bool = False
    # Whether every value is 0 or 1 (comparisons, logical operations): as a condition it changes
    # only where its own switch is 0, so `where` and the logical operations, which switch where a
    # condition is 0, add no switch of their own for it.
    boolean: bool = False
    domain: Domain | None = None
    # Built with graph operations from the input nodes, like `kink`: 0 at a pole or branch point
    # (y for x/y, x for log and sqrt), or the distance to a kink that the switch cannot show
    # (max over copies that tie for good: the gap to the next value). The function is smooth up
    # to it but curves on the scale of the distance to it, so the checker keeps stencils within
    # half of that distance.
    singular: Callable[..., Any] | None = None
    # The period in its (first) argument, for a periodic function: differences whose steps move
    # that argument by a large part of it alias (tan at 2.6e286, sampled every 1.9e283, looks
    # smooth with the wrong slope), so the checker keeps stencils within half of it. For the
    # steps of rounding it is the spacing of their jumps: beyond 2^52, where every float64 is an
    # integer, floor(x) sampled at floats looks like x, with slope 1.
    period: float | None = None
    operator: Operator | None = None
    variadic: bool = False  # accepts `arity` or more arguments, folded from the left
    # Its inputs are written as one list, as numpy takes them: concatenate([a, b], axis=0).
    listed: bool = False
    # The inputs from this one on are positions (whole numbers: indices, labels), which have
    # no derivative: a variable used only there is not differentiated.
    positions_from: int | None = None
    # Inputs whose nan or inf always reaches the output (x + y, x/y in x, sum): evaluation need
    # not look at such an input for one, as it will see it downstream. Others can hide one
    # (exp(-inf) is 0, x/inf is 0), so their inputs are checked where they are made.
    passes_nonfinite: tuple[int, ...] = ()
    # Whether its kinks are unknown (a user's Python function): the checker then looks for
    # kinks from the sides of every probe. A registered primitive names its kinks (`kink`, or
    # none), analytic or not.
    opaque: bool = False
    # The parameters that may be written as strings (einsum's subscripts, norm's ord): its
    # `lower` hook reads them. No other function's arguments may be strings.
    strings: tuple[str, ...] = ()
    public: bool = True  # callable by name from the language
    foldable: bool = True  # constant inputs may be folded when the graph is built
    params: tuple[str, ...] = field(default=())  # argument names, for messages and docs
    # Attributes given as trailing or keyword arguments, with their defaults: ("axis", None).
    attr_params: tuple[tuple[str, Any], ...] = ()
    written_as: str | None = None  # the name it is called by, if not its own (amax: max)
    # A custom way to build the node from a call (dispatch on the number of arguments, macros).
    lower: Callable[..., Any] | None = None
    # How `gradcli diff` writes it in LaTeX and in Python with numpy, with @0, @1 for the inputs
    # and @axis, @shape for the attributes; without one, a call by name (see formats.py).
    # A Python form may call gradcli's own numpy functions: `python_uses` are emitted with it.
    latex: str | None = None
    python: str | None = None
    python_uses: tuple[Callable[..., Any], ...] = ()

    def signature(self) -> str:
        names = list(self.params or tuple("xyzw"[: self.arity]))
        names += [f"{k}={'None' if v is None else v}" for k, v in self.attr_params]
        name = self.written_as or self.name
        return f"{name}({', '.join(names)}{', …' if self.variadic else ''})"

    def output_shape(self, *shapes: Shape, attrs: tuple = ()) -> Shape:
        if self.shape is not None:
            return self.shape(*shapes, *attrs)
        return tuple(np.broadcast_shapes(*shapes))


REGISTRY: dict[str, Primitive] = {}


def register(prim: Primitive) -> Primitive:
    if prim.name in REGISTRY:
        raise ValueError(f"primitive {prim.name!r} is registered twice")
    if prim.forward is not None and (prim.partials is None) == (prim.vjp is None):
        raise ValueError(f"primitive {prim.name!r} needs exactly one of partials or vjp")
    if prim.forward is None and prim.lower is None:
        raise ValueError(f"function {prim.name!r} needs a forward or a way to lower calls")
    if prim.partials is not None and len(prim.partials) != prim.arity:
        raise ValueError(f"primitive {prim.name!r} needs one partial per input")
    REGISTRY[prim.name] = prim
    return prim


def public_names() -> list[str]:
    return sorted(name for name, prim in REGISTRY.items() if prim.public)
