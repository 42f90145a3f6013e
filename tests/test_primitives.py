"""Every public primitive and every operator, checked against mpmath at 50 significant digits.

For each (function, point) the value gradcli computes is compared with mpmath's own function, and
each partial derivative from reverse mode with `mpmath.diff` of that function or, for the
non-smooth functions, with the closed form of the convention gradcli documents. A point is a
float64, which mpmath converts exactly, so the oracle is evaluated at the very point gradcli sees.

Tolerances (`assert_close`: `|got - want| <= rtol * max(|want|, scale)`):

- value: rtol 1e-13, scale TINY. Every point is an exact float64, so the only error is the
  rounding of the float64 function itself (numpy's are within a few ulp, 2.2e-16 each).
- derivative: rtol 1e-12, scale TINY. TINY is the smallest normal float64 (2.2e-308): below it a
  result is subnormal, carries fewer than 53 bits, and only an absolute bound makes sense.
- The points include the places where the textbook form of a rule loses accuracy (1 - x^2 near
  ±1 for asin and acos, 1 - tanh^2, s(1 - s) and expm1 + 1 in their tails, x^2 + y^2 for tiny or
  huge atan2 arguments, 0 * log 0 in d/dy 0^y): the registry uses forms that do not, and these
  points hold it to the same tolerance as everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mpmath
import numpy as np
import pytest
import references
from mpmath import mp, mpf

from gradcli import evaluate
from gradcli.primitives import REGISTRY, public_names

DPS = 50
VALUE_RTOL = 1e-13
GRAD_RTOL = 1e-12
TINY = float(np.finfo(np.float64).tiny)  # 2.2e-308, the smallest normal float64


# --- The oracle ------------------------------------------------------------------------------


def mp_partial(f: Callable[..., mpf], args: Sequence[mpf], i: int) -> mpf:
    """∂f/∂args[i] by a central difference (mpmath.diff), at whatever precision it needs.

    The step is relative to the point (mpmath's own `relative=True` scales it the wrong way for
    tiny arguments), or 2^-1200 at 0, so it stays inside the domain at 1e-300 or 0.999999 and its
    O(h^2) error is far below any float64 tolerance. The working precision is raised by twice the
    step's exponent, so that f(x + h) - f(x - h) is resolved even when f' is tiny next to f (cos
    at 1e-300, exp at 0).
    """
    x = args[i]
    h = mpmath.ldexp(abs(x), -(mp.prec + 10)) if x else mpmath.ldexp(1, -1200)

    def along(t: mpf) -> mpf:
        return f(*args[:i], t, *args[i + 1 :])

    with mp.workprec(mp.prec + 2 * abs(int(mpmath.mag(h)))):
        return mpmath.diff(along, x, h=h)


def _sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def _softplus(x):
    return mpmath.log1p(mpmath.exp(x))


def _heaviside(x, h0):
    return mpf(0) if x < 0 else mpf(1) if x > 0 else h0


def _wins(a, b):
    """∂max(a, b)/∂a under gradcli's convention: 1 if a wins, 0 if it loses, 1/2 on a tie."""
    return mpf(1) if a > b else mpf(0) if a < b else mpf(0.5)


def _loses(a, b):
    """∂min(a, b)/∂a, the same convention."""
    return _wins(b, a)


def _scaled_bessel(n):
    return lambda x: references.scaled_bessel(n, x)[0]


def _beta_partials(log: bool):
    def gap(a, b):
        return mpmath.digamma(a) - mpmath.digamma(a + b)

    if log:
        return (gap, lambda a, b: gap(b, a))
    return (lambda a, b: mpmath.beta(a, b) * gap(a, b), lambda a, b: mpmath.beta(a, b) * gap(b, a))


# --- The table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """A point of a case; `rtol`/`scale` widen the derivative tolerance where `why` says."""

    args: tuple[float, ...]
    rtol: float = GRAD_RTOL
    scale: float = TINY
    why: str = ""
    xfail: str = ""  # a known bug: the reason of a strict xfail
    value_rtol: float = VALUE_RTOL  # wider only where `why` says


def p(
    *args: float,
    rtol: float = GRAD_RTOL,
    scale: float = TINY,
    why: str = "",
    xfail: str = "",
    value_rtol: float = VALUE_RTOL,
):
    return Point(tuple(float(a) for a in args), rtol, scale, why, xfail, value_rtol)


@dataclass(frozen=True)
class Case:
    """A program over `params`, the primitive it exercises, its mpmath oracle and its points.

    `partials`, when given, is the closed form of each partial derivative (for the non-smooth
    primitives: a finite difference straddling a kink is meaningless); otherwise the derivatives
    are `mp_partial` of `oracle`.
    """

    prim: str
    expr: str
    params: tuple[str, ...]
    oracle: Callable[..., mpf]
    points: tuple[Point, ...]
    partials: tuple[Callable[..., mpf], ...] | None = None


def unary(prim: str, oracle, *points: Point, partial=None) -> Case:
    return Case(prim, f"{prim}(x)", ("x",), oracle, points, None if partial is None else (partial,))


def binary(prim: str, expr: str, oracle, *points: Point, params=("x", "y"), partials=None) -> Case:
    return Case(prim, expr, params, oracle, points, partials)


# Zero, ordinary, negative and tiny arguments, for functions defined on the whole line; each
# function adds its own large arguments, as far out as its value stays finite.
SMALL = (p(0), p(0.5), p(-1.25), p(1e-8), p(-1e-8), p(1e-300))
# For x > 0: near 1, tiny down to 1e-300 (1/x must stay finite for the log derivatives), large.
POSITIVE = (p(1), p(2), p(0.1), p(1 + 2**-30), p(1e-8), p(1e-300), p(30), p(1e6), p(1e300))

CASES: list[Case] = [
    # Trigonometric functions; at 1e22 they need an exact argument reduction.
    unary("sin", mpmath.sin, *SMALL, p(3.141592653589793), p(-30), p(1e3), p(1e6), p(1e22)),
    unary("cos", mpmath.cos, *SMALL, p(1.5707963267948966), p(-30), p(1e3), p(1e6), p(1e22)),
    unary("tan", mpmath.tan, *SMALL, p(1.5707963), p(-1.5707963267), p(-30), p(1e3), p(1e6)),
    *(
        unary(
            name,
            oracle,
            *(p(0), p(0.5), p(-0.75), p(1e-8), p(-1e-300)),
            # Domain edges, where 1 - x^2 would cancel.
            p(0.999999),
            p(-0.999999),
            p(1 - 2**-40),
            p(-(1 - 2**-53)),
        )
        for name, oracle in [("asin", mpmath.asin), ("acos", mpmath.acos)]
    ),
    unary(
        "atan",
        mpmath.atan,
        *(*SMALL, p(30), p(-1e3), p(1e6), p(-1e150)),
        # The derivative 1e-400 underflows to 0, without x^2 overflowing (and a fault) on the way.
        p(1e200),
    ),
    binary(
        "atan2",
        "atan2(y, x)",
        mpmath.atan2,
        *(p(1, 2), p(-1, 2), p(1, -2), p(-1, -2), p(0, 1), p(2, 0), p(1e-8, 1), p(1, 1e-8)),
        *(p(-3e6, -4e6), p(30, -1e3), p(1e-300, 1), p(1e-150, 2e-150), p(1e150, -1e150)),
        # x^2 + y^2 would underflow to 0 or overflow here.
        *(p(1e-200, 1e-200), p(3e-170, -4e-170), p(1e200, 1e200)),
        params=("y", "x"),
    ),
    binary(
        "hypot",
        "hypot(x, y)",
        mpmath.hypot,
        *(p(3, 4), p(-3, 4), p(0, 2), p(-2, 0), p(1e-8, 1), p(1e6, -1e-6), p(30, 1e3)),
        # Subnormal: hypot is 1.4e-310, still with 14 significant digits, enough for x/hypot.
        *(p(1e-300, 1e-300), p(-1e300, 1e300), p(1e-310, -1e-310)),
    ),
    # Hyperbolic functions; cosh and sinh are finite up to 710.
    unary("sinh", mpmath.sinh, *SMALL, p(30), p(-30), p(700), p(-710)),
    unary("cosh", mpmath.cosh, *SMALL, p(30), p(-30), p(-700), p(710)),
    unary(
        "tanh",
        mpmath.tanh,
        *(*SMALL, p(5), p(1e3), p(1e6)),
        # 1 - tanh^2 would lose these: 8e-9 at 10, 1.7e-17 at 20, 3.5e-26 at 30.
        *(p(10), p(-20), p(30), p(-300)),
        # Closed form: at -300 a difference of tanh would need 260 digits to see 1e-260.
        partial=lambda x: mpmath.sech(x) ** 2,
    ),
    unary("sech", lambda x: 1 / mpmath.cosh(x), *SMALL, p(20), p(-300), p(710), p(-745)),
    # Exponentials and logarithms.
    unary("exp", mpmath.exp, *SMALL, p(1), p(30), p(-30), p(709), p(-700), p(-745)),
    unary("log", mpmath.log, *POSITIVE),
    unary("log2", lambda x: mpmath.log(x, 2), *POSITIVE),
    unary("log10", mpmath.log10, *POSITIVE),
    unary(
        "log1p",
        mpmath.log1p,
        *(p(0), p(1e-8), p(-1e-8), p(1e-300), p(-0.5), p(-0.999999), p(-(1 - 2**-53))),
        *(p(30), p(1e6), p(1e300)),
    ),
    unary(
        "expm1",
        mpmath.expm1,
        *(*SMALL, p(-1), p(30), p(700)),
        # expm1(x) + 1 would lose these: 9e-14 at -30, 4e-18 at -40.
        *(p(-30), p(-40)),
    ),
    unary("sqrt", mpmath.sqrt, *POSITIVE, p(5e-324)),
    # Activation functions.
    unary(
        "sigmoid",
        _sigmoid,
        *(*SMALL, p(1), p(-1), p(-30), p(-700), p(-1e3)),
        # s(1 - s) would lose these: 9e-14 at 30, 4e-18 at 40.
        *(p(30), p(40), p(700)),
        partial=lambda x: _sigmoid(x) * _sigmoid(-x),  # closed form: see tanh
    ),
    unary("softplus", _softplus, *SMALL, p(30), p(-30), p(700), p(-1e3), p(1e6)),
    # Non-smooth functions: closed-form derivatives, with gradcli's conventions at the kinks.
    unary(
        "abs",
        mpmath.fabs,
        *(p(2), p(-2), p(1e-300), p(-1e-300), p(5e-324), p(-1e6), p(0), p(-0.0)),
        partial=mpmath.sign,  # abs'(0) = 0
    ),
    unary(
        "relu",
        lambda x: max(x, mpf(0)),
        *(p(2), p(-2), p(1e-300), p(-1e-300), p(-1e6), p(1e6), p(0), p(-0.0)),
        partial=lambda x: mpf(x > 0),  # relu'(0) = 0
    ),
    unary(
        "sign",
        mpmath.sign,
        *(p(2), p(-2), p(1e-300), p(-5e-324), p(1e6), p(0)),
        partial=lambda x: mpf(0),
    ),
    binary(
        "equal",
        "equal(x, y)",
        lambda x, y: mpf(x == y),
        *(p(1, 1), p(1, 2), p(0, -0.0), p(1e-300, 0), p(-3, -3), p(5e-324, 0)),
        partials=(lambda x, y: mpf(0), lambda x, y: mpf(0)),  # a step function: flat off a = b
    ),
    binary(
        "heaviside",
        "heaviside(x, h)",
        _heaviside,
        *(p(2, 0.5), p(-2, 0.5), p(1e-300, 0.3), p(-1e-300, 0.3), p(1e6, -7)),
        *(p(0, 0.5), p(0, -7), p(0, 0), p(-0.0, 1)),
        params=("x", "h"),
        # ∂/∂h0 is 1 exactly where x == 0, where the value is h0 itself.
        partials=(lambda x, h: mpf(0), lambda x, h: mpf(x == 0)),
    ),
    *(
        binary(
            name,
            expr,
            oracle,
            *(p(1, 2), p(2, 1), p(-3, -5), p(1e-300, -1e-300), p(1e6, 1e6 + 1), p(0, 5e-324)),
            # Ties: the derivative is split 1/2, 1/2, whichever argument comes first.
            *(p(2, 2), p(-0.0, 0.0), p(-1e300, -1e300)),
            partials=(lambda x, y, w=win: w(x, y), lambda x, y, w=win: w(y, x)),
        )
        for name, win, pick in [("max", _wins, max), ("min", _loses, min)]
        for expr, oracle in [
            (f"{name}(x, y)", lambda x, y, f=pick: f(x, y)),
            (f"{name}(y, x)", lambda x, y, f=pick: f(y, x)),
        ]
    ),
    binary(
        "pow",
        "pow(x, y)",
        mpmath.power,
        *(p(2, 3), p(2, 0.5), p(0.5, -2.5), p(3, -1), p(7, 0), p(1e-8, 2), p(1e-300, 0.5)),
        *(p(1e6, 1.5), p(10, 300), p(1.5, 1e3), p(1 + 2**-30, 1e6), p(30, 1e-8)),
        p(0.999999, -1e6),
    ),
    # Operators, with variables on both sides.
    binary(
        "add",
        "x + y",
        lambda x, y: x + y,
        *(p(1, 2), p(0.1, 0.2), p(1e-300, -1e-300), p(1e300, 1e300), p(-30, 1e-8)),
    ),
    binary(
        "sub",
        "x - y",
        lambda x, y: x - y,
        *(p(1, 2), p(0.3, 0.1), p(1e-300, 1e-300), p(-1e300, 1e300), p(1e6, 1e-8)),
    ),
    binary(
        "mul",
        "x * y",
        lambda x, y: x * y,
        *(p(3, 4), p(-0.1, 0.3), p(1e-300, 1e-8), p(1e150, -1e150), p(0, 1e6)),
    ),
    binary(
        "div",
        "x / y",
        lambda x, y: x / y,
        *(p(1, 3), p(-2, 7), p(1e-300, 1e-8), p(1e6, -1e-6), p(0, 30), p(1e-150, 1e150)),
    ),
    Case("neg", "-x", ("x",), lambda x: -x, (p(2), p(-1e-300), p(1e300), p(0))),
    binary(
        "pow",
        "x ^ y",
        mpmath.power,
        *(p(2, 3), p(2, -0.5), p(1e-8, 1.5), p(1e3, 30), p(0.5, 1e3), p(4, 1e-8), p(5, -300)),
        # x^y = 0 for every y > 0 at x = 0, so ∂/∂y is 0, not 0 * log(0) = nan.
        p(0, 2),
    ),
    binary(
        "xlogy",
        "xlogy(x, y)",
        lambda x, y: mpf(0) if x == 0 else x * mpmath.log(y),
        *(p(2, 3), p(-0.5, 0.25), p(1e-300, 1e300), p(3, 1e-300), p(1e6, 1 + 2**-30)),
        *(p(0, 2), p(0, 1e-300)),
        # Closed forms: at x = 0 the value is 0 for every y, so ∂/∂x is log y and ∂/∂y is 0.
        partials=(lambda x, y: mpmath.log(y), lambda x, y: x / y),
    ),
    binary("pow", "x ** y", mpmath.power, p(2, 3), p(9, 0.5), p(1e6, -2)),
    # Comparisons and logical operations: 0 or 1, flat off their jumps (the jumps themselves are
    # the checker's: tests/test_conditionals.py).
    *(
        binary(
            name,
            f"x {symbol} y",
            lambda x, y, t=test: mpf(t(x, y)),
            *(p(1, 2), p(2, 1), p(-3, -3 + 2**-40), p(1e-300, -1e-300), p(5e-324, 0), p(1e300, 0)),
            partials=(lambda x, y: mpf(0), lambda x, y: mpf(0)),
        )
        for name, symbol, test in [
            ("less", "<", lambda a, b: a < b),
            ("less_equal", "<=", lambda a, b: a <= b),
            ("greater", ">", lambda a, b: a > b),
            ("greater_equal", ">=", lambda a, b: a >= b),
            ("not_equal", "!=", lambda a, b: a != b),
            ("logical_and", "and", lambda a, b: a != 0 and b != 0),
            ("logical_or", "or", lambda a, b: a != 0 or b != 0),
        ]
    ),
    Case(
        "logical_not",
        "not x",
        ("x",),
        lambda x: mpf(x == 0),
        (p(1), p(-2), p(5e-324), p(1e300)),
        (lambda x: mpf(0),),
    ),
    # The steps of rounding, flat between jumps; round halves to even, as numpy and Python do.
    *(
        unary(
            name,
            oracle,
            *(p(0.5), p(-0.5), p(2.7), p(-2.7), p(1.5), p(-2.5), p(1e-300), p(-1e-300)),
            *(p(4503599627370495.5), p(-1e15 - 0.25)),
            partial=lambda x: mpf(0),
        )
        for name, oracle in [
            ("floor", mpmath.floor),
            ("ceil", mpmath.ceil),
            ("trunc", lambda x: mpmath.floor(x) if x >= 0 else mpmath.ceil(x)),
            ("round", lambda x: mpf(round(x))),  # Python's round: halves to even
        ]
    ),
    # Inverse hyperbolic functions and logaddexp: huge, tiny, and next to the domain's edges.
    unary("asinh", mpmath.asinh, *SMALL, p(30), p(-1e6), p(1e154), p(1e300), p(-1e300)),
    unary(
        "acosh",
        mpmath.acosh,
        *(p(1 + 2**-40), p(1 + 2**-52), p(1.5), p(2), p(30), p(1e6), p(1e154), p(1e300)),
    ),
    unary(
        "atanh",
        mpmath.atanh,
        *(p(0), p(0.5), p(-0.75), p(1e-8), p(-1e-8), p(1e-300)),
        *(p(0.999999), p(-0.999999), p(1 - 2**-40), p(-(1 - 2**-53))),
    ),
    binary(
        "logaddexp",
        "logaddexp(x, y)",
        lambda a, b: mpmath.log(mpmath.exp(a) + mpmath.exp(b)),
        *(p(0, 0), p(1, 2), p(-3, 5), p(1e-300, -1e-300), p(800, 799), p(-1000, -1001)),
        *(p(700, -700), p(30, 1e-8), p(1e300, 0)),
    ),
    # Powers, roots, logistic forms and sinc.
    unary(
        "cbrt",
        lambda x: mpmath.sign(x) * mpmath.cbrt(abs(x)),
        *(p(0.5), p(-1.25), p(1e-8), p(-1e-8), p(1e-300), p(27), p(-1e6), p(1e300), p(-1e300)),
        # cbrt(x)² is 1.7e-216 here, so 1/(3·cbrt(x)²) is still a normal number.
        p(5e-324, rtol=1e-12, why="subnormal x: cbrt is exact to the half-ulp of its input"),
    ),
    unary("square", lambda x: x * x, *SMALL, p(1e154), p(-1e-154), p(3e-160)),
    unary("exp2", lambda x: mpf(2) ** x, *SMALL, p(30), p(1023.5), p(-1022.5), p(-1074)),
    unary(
        "log_sigmoid",
        lambda x: -mpmath.log1p(mpmath.exp(-x)),
        *(*SMALL, p(30), p(-30), p(800), p(-800), p(1e300), p(-1e300)),
    ),
    unary(
        "logit",
        lambda x: mpmath.log(x / (1 - x)),
        *(p(0.5), p(0.5 + 2**-40), p(0.5 - 2**-41), p(0.3), p(0.75), p(0.25), p(0.7)),
        *(p(1e-8), p(1e-300), p(1 - 2**-53), p(0.999999)),
    ),
    unary(
        "sinc",
        mpmath.sincpi,
        *(*SMALL, p(0.05), p(-0.0999), p(0.1), p(0.3), p(-0.5), p(1), p(2.5), p(3 + 2**-40)),
        *(p(1e6 + 0.25), p(-1e6 - 0.5 - 2**-30), p(1e15 + 0.5), p(2.0**52 + 1), p(1e300)),
        partial=references.sinc_slope,
    ),
    binary(
        "xlog1py",
        "xlog1py(x, y)",
        lambda x, y: x * mpmath.log1p(y),
        *(p(2, 0.5), p(-3, 1e-8), p(1e-300, -0.5), p(0, 3), p(1.5, -1 + 2**-40), p(7, 1e300)),
        *(p(0.25, 1e-300), p(-1e300, 1e-300)),
        partials=(lambda x, y: mpmath.log1p(y), lambda x, y: x / (1 + y)),
    ),
    # The error function's inverse and scaled form, and the normal distribution.
    unary(
        "erfinv",
        mpmath.erfinv,
        *(p(0), p(0.5), p(-0.3), p(1e-8), p(1e-300), p(0.9), p(0.999999)),
        *(p(-(1 - 2**-40)), p(1 - 2**-53)),
        partial=lambda x: mpmath.sqrt(mpmath.pi) / 2 * mpmath.exp(mpmath.erfinv(x) ** 2),
    ),
    unary(
        "erfcx",
        references.erfcx,
        *(*SMALL, p(5), p(-5), p(-26), p(25.9), p(26.1), p(30), p(1e3), p(1e6), p(1e150)),
        p(1e300),  # the derivative −1/(√π·x²) underflows to 0 here, without x² overflowing
        partial=references.erfcx_slope,
    ),
    unary(
        "ndtr",
        mpmath.ncdf,
        # Down to Φ(−37) = 5.7e-300: scipy's Φ is 0 where it would be subnormal (below −37.5).
        *(*SMALL, p(3), p(-3), p(8), p(-8), p(-30), p(38.5), p(1e10), p(-1e10)),
        p(-37, value_rtol=2e-13, why="scipy's Φ rounds x/√2 first: a relative error of x²·ε"),
        partial=mpmath.npdf,
    ),
    unary(
        "log_ndtr",
        lambda x: mpmath.log1p(-mpmath.ncdf(-x)) if x > 0 else mpmath.log(mpmath.ncdf(x)),
        *(*SMALL, p(3), p(-3), p(10), p(-10), p(-40), p(-1e5), p(-1e10)),
        p(37, value_rtol=2e-13, why="log Φ(x) ≈ −Φ(−x) here, and scipy's Φ rounds x/√2 first"),
        partial=lambda x: mpmath.npdf(x) / mpmath.ncdf(x),
    ),
    unary(
        "ndtri",
        references.ndtri,
        *(p(0.5), p(0.3), p(0.975), p(1e-8), p(1e-100), p(1 - 2**-53), p(0.999999)),
        # ∂ = √(2π)·e^(y²/2) carries y² ≈ 1400 times the rounding of y = ndtri(p) at 1e-300.
        p(1e-300, rtol=1e-11, why="e^(y²/2) multiplies the rounding of y by y² = 1372"),
        partial=lambda x: mpmath.sqrt(2 * mpmath.pi) * mpmath.exp(references.ndtri(x) ** 2 / 2),
    ),
    # Γ and B, near poles and far out.
    unary(
        "gamma",
        mpmath.gamma,
        # Γ′ ≈ −1/x² overflows below 1e-154, and Γ′(171.5) is 4.9e308: both inf, as they are.
        *(p(0.5), p(1), p(2.5), p(1e-8), p(1e-150), p(30), p(171), p(5)),
        *(p(-0.5), p(-2.999999), p(-1 + 2**-30), p(-170.5), p(-1e-8)),
        partial=lambda x: mpmath.gamma(x) * mpmath.digamma(x),
    ),
    *(
        binary(
            name,
            f"{name}(x, y)",
            oracle,
            *(p(0.5, 0.5), p(2, 3), p(30, 40), p(-0.5, 0.7), p(0.3, 2)),
            *(p(100, 200), p(1e-150, 2.5), p(-2.5, 1.25)),
            # ψ(a) − ψ(a + b) for b ≪ a (and ψ(b) − ψ(a + b) for a ≪ b) cancels: ε·ψ against
            # b/a, as in JAX and autograd. The values are scipy's: its log B for large
            # arguments is a difference of lgammas, 2e-10 off at (1e5, 3.5).
            p(
                1e3,
                1e-3,
                rtol=1e-8,
                value_rtol=1e-12,
                why="ψ(a) − ψ(a + b) cancels to b/a = 1e-6; scipy's value is 2.2e-13 off",
            ),
            p(1e5, 3.5, rtol=1e-8, value_rtol=1e-9, why="scipy's log B is 2e-10 off here"),
            p(1e-8, 1, rtol=1e-7, why="ψ(b) − ψ(a + b) cancels to 1.6e-8"),
            partials=_beta_partials(log),
        )
        for name, oracle, log in [
            ("beta", mpmath.beta, False),
            ("betaln", lambda a, b: mpmath.log(abs(mpmath.beta(a, b))), True),
        ]
    ),
    # Modified Bessel functions of the first kind, and their scaled forms.
    unary("i0", lambda x: mpmath.besseli(0, x), *SMALL, p(5), p(-30), p(700), p(-700)),
    unary("i1", lambda x: mpmath.besseli(1, x), *SMALL, p(5), p(-30), p(700), p(-700)),
    *(
        unary(
            name,
            _scaled_bessel(n),
            *(p(0.5), p(-1.25), p(1e-8), p(-1e-8), p(1e-300), p(5), p(-30), p(700)),
            # iₙe′ subtracts two values that agree to 1/(2|x|): log₁₀|x| digits are lost.
            p(1e6, rtol=1e-9, why="iₙe(x)′ cancels to 1/(2x) of iₙe(x): 6 digits lost"),
        )
        for name, n in [("i0e", 0), ("i1e", 1)]
    ),
    # Special functions (scipy.special): tiny, huge and near-pole arguments.
    unary(
        "erf",
        mpmath.erf,
        *(*SMALL, p(1), p(-2), p(3.5), p(5.8), p(-6), p(26), p(1e10), p(1e200)),
        partial=lambda x: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-(x**2)),
    ),
    unary(
        "erfc",
        mpmath.erfc,
        *(*SMALL, p(1), p(-2), p(3.5), p(10), p(26), p(-1e10), p(1e5)),
        partial=lambda x: -2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-(x**2)),
    ),
    unary(
        "lgamma",
        lambda x: mpmath.log(abs(mpmath.gamma(x))),
        *(p(0.5), p(1), p(2), p(2.5), p(1e-8), p(1e-300), p(30), p(1e6), p(1e300)),
        # Near the poles at 0, -1, -2: log|Γ| of a negative argument, as scipy's gammaln.
        *(p(-0.5), p(-1.5), p(-2.999999), p(-1 + 2**-30), p(-1e-8), p(-170.5)),
        partial=mpmath.digamma,
    ),
    unary(
        "digamma",
        mpmath.digamma,
        *(p(0.5), p(1), p(1.4616321449683622), p(2.5), p(1e-8), p(30), p(1e6), p(1e15)),
        *(p(-0.5), p(-1.5), p(-2.999999), p(-1e-8)),
        partial=lambda x: mpmath.psi(1, x),
        # ψ(1.4616…) = 0, ψ's root, where only an absolute bound makes sense: |ψ| ≈ 1e-16 ψ′
    ),
    Case(
        "polygamma",
        "polygamma(1, x)",
        ("x",),
        lambda x: mpmath.psi(1, x),
        (p(0.5), p(1e-8), p(1e6), p(-0.5), p(-2.999999), p(-1 + 2**-30), p(-1e-8)),
        (lambda x: mpmath.psi(2, x),),
        # ψ″ near a pole is scipy's polygamma(2, ·): no reflection, so those points test ψ′ only
    ),
    Case(
        "polygamma",
        "polygamma(2, x)",
        ("x",),
        lambda x: mpmath.psi(2, x),
        (p(0.5), p(1), p(3.5), p(1e-5), p(1e6), p(-0.5), p(-2.25)),
        (lambda x: mpmath.psi(3, x),),
    ),
    binary(
        "mod",
        "mod(x, y)",
        lambda x, y: x - y * mpmath.floor(x / y),
        *(p(7.5, 2), p(-7.5, 2), p(7.5, -2), p(-7.5, -2), p(1e-300, 3), p(-1e-300, 3)),
        *(p(5, 0.3), p(1e15 + 0.5, 7), p(0.1, 1e-3)),
        # Closed forms: 1 and -floor(x/y), off the jumps at the multiples of y.
        partials=(lambda x, y: mpf(1), lambda x, y: -mpmath.floor(x / y)),
    ),
    # A constant on one side: `b - 1` and `log(b)` are folded into constants.
    Case("pow", "x ^ 3", ("x",), lambda x: x**3, (p(2), p(-1.5), p(1e-8), p(1e100), p(0))),
    Case("pow", "x ^ -2", ("x",), lambda x: x**-2, (p(2), p(-1.5), p(1e-8), p(1e100))),
    Case("pow", "2 ^ x", ("x",), lambda x: mpf(2) ** x, (p(3), p(-1.5), p(1e-8), p(1e3))),
]


def _params():
    for case in CASES:
        for point in case.points:
            where = ",".join(f"{n}={a!r}" for n, a in zip(case.params, point.args, strict=True))
            marks = [pytest.mark.xfail(strict=True, reason=point.xfail)] if point.xfail else []
            yield pytest.param(case, point, id=f"{case.expr}[{where}]", marks=marks)


def assert_close(got, want: mpf, rtol: float, scale: float, what: str) -> None:
    got = float(got)
    bound = rtol * max(abs(want), mpf(scale))
    err = abs(mpf(got) - want)  # nan compares False: a nan result fails
    assert err <= bound, (
        f"{what}: got {got!r}, want {mpmath.nstr(want, 20)}, error {mpmath.nstr(err, 3)}"
        f" > bound {mpmath.nstr(bound, 3)}"
        + (f" (relative {mpmath.nstr(err / abs(want), 3)})" if want else "")
    )


@pytest.mark.parametrize(("case", "point"), list(_params()))
def test_value_and_gradient_match_mpmath(case: Case, point: Point) -> None:
    r = evaluate(case.expr, dict(zip(case.params, point.args, strict=True)))
    with mp.workdps(DPS):
        args = [mpf(a) for a in point.args]
        what = f"value of {case.expr}" + (f" ({point.why})" if point.why else "")
        assert_close(r.value, case.oracle(*args), point.value_rtol, TINY, what)
        for i, name in enumerate(case.params):
            if case.partials is not None:
                want = case.partials[i](*args)
            else:
                want = mp_partial(case.oracle, args, i)
            why = f" ({point.why})" if point.why else ""
            assert_close(r.gradient[name], want, point.rtol, point.scale, f"∂/∂{name}{why}")
    # Every point is inside the domain, with a finite value and gradient: nothing to report.
    assert [f.message for f in r.faults] == []


def test_every_public_primitive_and_operator_has_an_oracle() -> None:
    """Fails when a primitive is added to the registry without a row in CASES."""
    elementwise = {name for name, prim in REGISTRY.items() if prim.partials is not None}
    public = set(public_names()) | {name for name, prim in REGISTRY.items() if prim.operator}
    wanted = public & elementwise  # the array primitives: tests/test_array_primitives.py
    covered = {case.prim for case in CASES}
    assert wanted - covered == set(), "primitives without an mpmath oracle in CASES"
    assert covered - wanted == set(), "CASES names a primitive neither public nor an operator"


def test_the_oracle_differentiates_accurately() -> None:
    """mp_partial against closed forms, where a naive central difference would fail.

    Its error must be far below anything a float64 can show: 1e-40 relative, or below 1e-400.
    """
    with mp.workdps(DPS):
        for f, x, want in [
            (mpmath.cos, mpf(1e-300), -mpmath.sin(mpf(1e-300))),
            (mpmath.exp, mpf(0), mpf(1)),
            (lambda t: t**3, mpf(0), mpf(0)),
            (mpmath.log, mpf(1e-300), 1 / mpf(1e-300)),
            (mpmath.asin, mpf(0.999999), 1 / mpmath.sqrt(1 - mpf(0.999999) ** 2)),
        ]:
            got = mp_partial(f, [x], 0)
            assert abs(got - want) <= mpf(10) ** -40 * max(abs(want), mpf(10) ** -360)


# --- Conventions at kinks, and the non-smooth corners -------------------------------------------


def at(expr: str, values: dict, *expected, xfail: str = ""):
    """A pytest.param of a program at a point, named like the table's: `expr[x=0.0,...]`."""
    where = ",".join(f"{k}={v!r}" for k, v in values.items())
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(expr, values, *expected, id=f"{expr}[{where}]", marks=marks)


@pytest.mark.parametrize(
    ("expr", "values", "value", "gradient"),
    [
        at("abs(x)", {"x": 0.0}, 0.0, {"x": 0.0}),
        at("relu(x)", {"x": 0.0}, 0.0, {"x": 0.0}),
        at("max(x, y)", {"x": 3.0, "y": 3.0}, 3.0, {"x": 0.5, "y": 0.5}),
        at("max(y, x)", {"x": 3.0, "y": 3.0}, 3.0, {"x": 0.5, "y": 0.5}),
        at("min(x, y)", {"x": -3.0, "y": -3.0}, -3.0, {"x": 0.5, "y": 0.5}),
        at("min(y, x)", {"x": -3.0, "y": -3.0}, -3.0, {"x": 0.5, "y": 0.5}),
        at("max(x, 0)", {"x": 0.0}, 0.0, {"x": 0.5}),
        at("min(0, x)", {"x": 0.0}, 0.0, {"x": 0.5}),
        at("sign(x)", {"x": 0.0}, 0.0, {"x": 0.0}),
        at("heaviside(x, h)", {"x": 0.0, "h": 0.25}, 0.25, {"x": 0.0, "h": 1.0}),
        at("heaviside(x, h)", {"x": 1e-300, "h": 0.25}, 1.0, {"x": 0.0, "h": 0.0}),
        # 0·log(1 + y) is 0 along y at y = −1 too: both partials 0, as for xlogy at y = 0.
        at("xlog1py(x, y)", {"x": 0.0, "y": -1.0}, 0.0, {"x": 0.0, "y": 0.0}),
        # e^(−|x|)·I₀(x) has slopes ∓1 on either side of 0: 0 there, their mean, as abs has.
        at("i0e(x)", {"x": 0.0}, 1.0, {"x": 0.0}),
    ],
)
def test_kink_conventions(expr, values, value, gradient) -> None:
    r = evaluate(expr, values)
    assert float(r.value) == value
    assert {k: float(g) for k, g in r.gradient.items()} == gradient
    assert r.faults == []


def test_the_infinite_slope_of_cbrt_at_0_is_reported() -> None:
    """cbrt is defined at 0 and its derivative is +inf there (the tangent is vertical): the
    gradient says so, and the fault names the division that made it."""
    r = evaluate("cbrt(x)", {"x": 0.0})
    assert float(r.value) == 0.0 and r.gradient["x"] == np.inf
    assert r.faults and "derivative of cbrt(x) is inf" in r.faults[0].message


@pytest.mark.parametrize(
    ("x", "y"),
    [(-2.0, 3.0), (-1.5, -2.0), (-2.0, 0.0), (-1e3, 31.0), (-0.5, 1e3)],
    ids=lambda v: repr(v),
)
def test_pow_negative_base_integer_exponent(x: float, y: float) -> None:
    """x^y is real for a negative base and an integer exponent, and so is ∂/∂x = y x^(y-1); but
    ∂/∂y = x^y log(x) is not, so it is nan and reported, at the log."""
    r = evaluate("x^y", {"x": x, "y": y})
    with mp.workdps(DPS):
        assert_close(r.value, mpmath.power(x, y), VALUE_RTOL, TINY, "x^y")
        assert_close(r.gradient["x"], y * mpmath.power(x, y - 1), GRAD_RTOL, TINY, "∂/∂x")
    assert np.isnan(r.gradient["y"])
    assert r.faults, "a nan derivative must be reported"
    message = r.faults[0].message
    assert "derivative of x^y" in message and "log" in message


@pytest.mark.parametrize(
    ("expr", "values", "gradient"),
    [
        at("max(x, y, z)", {"x": 1.0, "y": 5.0, "z": -2.0}, {"x": 0, "y": 1, "z": 0}),
        at("max(x, y, z)", {"x": 1.0, "y": -5.0, "z": 1e-300}, {"x": 1, "y": 0, "z": 0}),
        at("min(x, y, z)", {"x": 1.0, "y": 5.0, "z": -2.0}, {"x": 0, "y": 0, "z": 1}),
        at("min(a, b, c, d)", dict(a=4.0, b=3.0, c=2.0, d=1.0), dict(a=0, b=0, c=0, d=1)),
        at("max(a, b, c, d)", dict(a=4.0, b=3.0, c=2.0, d=1.0), dict(a=1, b=0, c=0, d=0)),
        # Two-way ties among three, in every position: split 1/2, 1/2.
        at("max(x, y, z)", {"x": 3.0, "y": 3.0, "z": 1.0}, {"x": 0.5, "y": 0.5, "z": 0}),
        at("max(x, y, z)", {"x": 3.0, "y": 1.0, "z": 3.0}, {"x": 0.5, "y": 0, "z": 0.5}),
        at("max(x, y, z)", {"x": 1.0, "y": 3.0, "z": 3.0}, {"x": 0, "y": 0.5, "z": 0.5}),
        at("min(x, y, z)", {"x": 1.0, "y": 3.0, "z": 1.0}, {"x": 0.5, "y": 0, "z": 0.5}),
        # More arguments fold from the left, max(x, y, z) = max(max(x, y), z), as documented:
        # a three-way tie splits 1/4, 1/4, 1/2.
        at("max(x, y, z)", {"x": 2.0, "y": 2.0, "z": 2.0}, {"x": 0.25, "y": 0.25, "z": 0.5}),
    ],
)
def test_min_max_with_more_arguments(expr, values, gradient) -> None:
    r = evaluate(expr, values)
    pick = max if expr.startswith("max") else min
    assert float(r.value) == pick(values.values())
    assert {k: float(g) for k, g in r.gradient.items()} == pytest.approx(gradient, abs=1e-15)
    assert r.faults == []


def test_three_way_tie_gives_a_subgradient() -> None:
    """Whatever the split, a tie of all arguments must give weights >= 0 summing to 1."""
    for expr in ["max(x, y, z)", "min(x, y, z)", "max(z, x, y)"]:
        r = evaluate(expr, {"x": 2.0, "y": 2.0, "z": 2.0})
        weights = [float(g) for g in r.gradient.values()]
        assert all(w >= 0 for w in weights) and sum(weights) == 1.0


# --- Leaving the domain ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "values", "mention"),
    [
        at("log(x)", {"x": -1.0}, "log(x) is nan"),
        at("log2(x)", {"x": -1.0}, "log2(x) is nan"),
        at("log10(x)", {"x": -1e-300}, "log10(x) is nan"),
        at("log1p(x)", {"x": -2.0}, "log1p(x) is nan"),
        at("sqrt(x)", {"x": -1.0}, "sqrt(x) is nan"),
        at("asin(x)", {"x": 2.0}, "asin(x) is nan"),
        at("acos(x)", {"x": -1.000001}, "acos(x) is nan"),
        at("x/y", {"x": 1.0, "y": 0.0}, "division by zero"),
        at("pow(x, y)", {"x": -8.0, "y": 1 / 3}, "pow(x, y) is nan"),
    ],
)
def test_outside_the_domain_is_reported(expr: str, values: dict, mention: str) -> None:
    r = evaluate(expr, values)
    assert not np.isfinite(r.value)
    assert r.faults, f"{expr} at {values} gives {float(r.value)} without a fault"
    first = r.faults[0].message
    assert mention in first
    assert first.startswith(expr), "the first fault is the value's, not a derivative's"
