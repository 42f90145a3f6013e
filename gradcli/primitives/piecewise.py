"""The piecewise functions: kinks (abs, relu, the smaller or larger of values), steps (sign,
heaviside) and comparisons (equal).

Each names its switch (`kink`), a function that is 0 where the primitive is not differentiable:
the derivative shown there is a subgradient, and for a step (`jump`) the value itself breaks.
Off their switches they are analytic, so the complex step can run through them. The other
comparisons and the conditionals are in conditionals.py. min and max of one array lower to the
reductions amin and amax.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import REGISTRY, Operator, Primitive, register
from ._common import _pack, _real_or_complex, heaviside, sign


def _heaviside(x, h0):
    step = np.heaviside(np.real(x), np.real(h0))
    if not np.iscomplexobj(h0):
        return step
    # At x = 0 the value is h0 itself, analytic in h0.
    return _pack(step, np.where(np.real(x) == 0, np.imag(h0), 0.0))


def _fold_or_reduce(name: str) -> Callable[..., Node]:
    """max(a, b, …) is elementwise, folded from the left; max(x) and max(x, axis=k) reduce x."""

    def lower(call) -> Node:
        if len(call.args) == 1:
            return call.apply(REGISTRY[f"a{name}"], call.args)
        if call.keywords:
            span = next(iter(call.keyword_spans.values()))
            raise call.error(f"axis is for {name} over one array, as in {name}(x, axis=0)", span)
        if not call.args:
            raise call.error(f"{name} takes one array, or two or more values")
        graph = call.graph
        return reduce(lambda a, b: graph.apply(name, a, b, span=call.call.span), call.args)

    return lower


# The table below is laid out by hand, one entry per primitive, so the formatter leaves it alone.
# fmt: off

# Non-smooth functions: each names its kink, where the derivative shown is a subgradient.
# Off their kinks they are analytic, each piece chosen by the real parts as the real function
# chooses it, so the complex step can check a program through them away from the kinks (sin of
# 1e6 inside relu, where differences cannot resolve it); on a kink, differences take over.
register(Primitive(
    "abs", 1, _real_or_complex(np.abs, lambda x: np.where(np.real(x) >= 0, x, -x)),
    "absolute value (derivative 0 at 0)",
    partials=(lambda ans, x: sign(x),), kink=lambda x: x, analytic=True,
    latex=r"\left|@0\right|",
))
register(Primitive(
    "relu", 1,
    _real_or_complex(lambda x: np.maximum(x, 0.0), lambda x: np.where(np.real(x) > 0, x, 0)),
    "max(x, 0) (derivative 0 at 0)",
    partials=(lambda ans, x: heaviside(x, 0.0),), kink=lambda x: x, analytic=True,
    python="np.maximum(@0, 0.0)",
))
register(Primitive(
    "min", 2,
    _real_or_complex(np.minimum, lambda a, b: np.where(np.real(a) <= np.real(b), a, b)),
    "the smaller argument (derivative split evenly on a tie)",
    partials=(lambda ans, a, b: heaviside(b - a, 0.5), lambda ans, a, b: heaviside(a - b, 0.5)),
    kink=lambda a, b: a - b, variadic=True, lower=_fold_or_reduce("min"), analytic=True,
    latex=r"\min\left(@0, @1\right)", python="np.minimum(@0, @1)",
))
register(Primitive(
    "max", 2,
    _real_or_complex(np.maximum, lambda a, b: np.where(np.real(a) >= np.real(b), a, b)),
    "the larger argument (derivative split evenly on a tie)",
    partials=(lambda ans, a, b: heaviside(a - b, 0.5), lambda ans, a, b: heaviside(b - a, 0.5)),
    kink=lambda a, b: a - b, variadic=True, lower=_fold_or_reduce("max"), analytic=True,
    latex=r"\max\left(@0, @1\right)", python="np.maximum(@0, @1)",
))
# The step functions are constant on each side of their jump, so they are analytic there (on
# the real part of a complex step): derivatives of derivatives can still use the complex step.
register(Primitive(
    "sign", 1, lambda x: np.sign(np.real(x)), "-1, 0 or 1 (derivative 0 away from the jump at 0)",
    partials=(lambda ans, x: None,), kink=lambda x: x, analytic=True, jump=True,
    latex=r"\operatorname{sgn}\left(@0\right)",
))
register(Primitive(
    "heaviside", 2, _heaviside,
    "step function: 0 for x < 0, 1 for x > 0, h0 at x = 0",
    partials=(
        lambda ans, x, h0: None,
        lambda ans, x, h0: heaviside(x, 1.0) - heaviside(x, 0.0),  # 1 exactly where x = 0
    ),
    kink=lambda x, h0: x, params=("x", "h0"), analytic=True, jump=True,
))
register(Primitive(
    "equal", 2, lambda a, b: (np.real(a) == np.real(b)).astype(float),
    "1 where a = b, else 0 (appears in derivatives: ties, division by a norm of 0)",
    partials=(lambda ans, a, b: None, lambda ans, a, b: None), params=("a", "b"),
    kink=lambda a, b: a - b, analytic=True, jump=True,  # a step function, as sign is
    boolean=True, operator=Operator("==", 0, "none"),
    latex=r"\left[@0 = @1\right]", python="np.equal(@0, @1).astype(float)",
))
# fmt: on
