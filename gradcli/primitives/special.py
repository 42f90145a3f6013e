"""Special functions, from scipy.special: erf, erfc, lgamma (also gammaln), digamma and
polygamma(n, x).

scipy.special is the well-kept library for them, accurate over the whole float64 range; it is
imported the first time a program evaluates one of these, never at start-up. Their derivatives
are special functions again (erf′ = 2/√π·e^(−x²), lgamma′ = digamma, digamma′ = polygamma(1, ·),
polygamma(n, ·)′ = polygamma(n + 1, ·)), so derivatives of every order are graphs of this family.
They are not marked analytic: scipy's complex forwards are not held to a few ulps in an
imaginary part 1e-300 times the real one, so the checker uses differences through them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Domain, Primitive, register
from ._common import _apply, _polynomial, exp


def _scipy_special() -> Any:
    """scipy.special, imported when first used (later calls find it in sys.modules)."""
    import scipy.special

    return scipy.special


def _real(x: Any) -> Any:
    """The real part, in a precision scipy.special takes: its ufuncs have no longdouble loops,
    and the checker's wider evaluations (the exponent range of longdouble) pass one."""
    x = np.real(x)
    return x.astype(np.float64) if np.asarray(x).dtype == np.longdouble else x


def _scipy(name: str, pick: Any) -> Any:
    """The forward of scipy.special's function `pick(scipy.special)`, named `name`, on real
    parts in a precision scipy takes."""

    def forward(*args: Any) -> Any:
        return pick(_scipy_special())(*(_real(a) for a in args))

    forward.__name__ = f"_{name}"
    return forward


_erf = _scipy("erf", lambda s: s.erf)
_erfc = _scipy("erfc", lambda s: s.erfc)
_gammaln = _scipy("gammaln", lambda s: s.gammaln)


def _reflected(x: Any, function: Any, sign: float, pole: Any) -> Any:
    """function(x), through the reflection formula for x < 0: sign·function(1 − x) + pole(r),
    with r = x − round(x) exact, so that the term that carries the pole keeps its digits.
    scipy's own digamma loses them next to the poles (3.7e-11 relative at −2.999999, 6e-9 at
    −1 + 2^-30)."""
    x = _real(np.asarray(x))
    x = x.astype(np.result_type(x, np.float32))  # float32 stays float32
    out = np.array(function(x), dtype=x.dtype)
    negative = x < 0
    if np.any(negative):
        xn = x[negative]
        out[negative] = sign * function(1 - xn) + pole(xn - np.round(xn))
    return out


def _digamma(x: Any) -> Any:
    """ψ(x) = ψ(1 − x) − π/tan(πx) for x < 0."""
    return _reflected(x, _scipy_special().digamma, 1.0, lambda r: -np.pi / np.tan(np.pi * r))


def _polygamma(x: Any, n: int) -> Any:
    """ψ⁽ⁿ⁾(x); ψ′(x) = π²/sin²(πx) − ψ′(1 − x) for x < 0. Higher orders are scipy's alone."""
    special = _scipy_special()
    if n == 0:
        return _digamma(x)
    if n == 1:
        trigamma = lambda v: special.polygamma(1, v)  # noqa: E731
        return _reflected(x, trigamma, -1.0, lambda r: (np.pi / np.sin(np.pi * r)) ** 2)
    return special.polygamma(n, _real(x))


_TWO_OVER_ROOT_PI = 2 / math.sqrt(math.pi)


def _gaussian(x: Node, c: float, half: bool = False) -> Node:
    """c·e^(−x²) (c·e^(−x²/2) if `half`), with x² formed from min(|x|, 40): e^(−800) is 0 in
    float64 as the function is for every |x| ≥ 40, and x² would overflow beyond 1.3e154 into
    a spurious fault."""
    m = _apply("min", _apply("abs", x), 40.0)
    square = m * m
    return c * exp(-(square * 0.5 if half else square))


def _not_a_pole(x: Any) -> Any:
    """Γ has poles at 0, −1, −2, …: lgamma, digamma and polygamma are undefined there."""
    return ~((x <= 0) & (x == np.floor(x)))


def _to_pole(x: Node, *_: Any) -> Node:
    """The distance to the nearest pole of Γ (0 at one), which the checker's stencils keep
    within half of: x itself for x > 1/2, else x less the nearest integer."""
    near = _apply("abs", x - _apply("round", x))  # continuous across round's jumps
    return _apply("where", _apply("greater", x, 0.5), x, near)


_POLES = Domain("x not 0, −1, −2, …", _not_a_pole, fault="a pole of the gamma function")

register(
    Primitive(
        "erf",
        1,
        _erf,
        "the error function, 2/√π ∫₀ˣ e^(−t²) dt",
        partials=(lambda ans, x: _gaussian(x, _TWO_OVER_ROOT_PI),),
        latex=r"\operatorname{erf}\left(@0\right)",
        python="_scipy_special().erf(@0)",
        python_uses=(_scipy_special,),
    )
)
register(
    Primitive(
        "erfc",
        1,
        _erfc,
        "1 − erf(x), accurate where erf(x) is near 1",
        partials=(lambda ans, x: _gaussian(x, -_TWO_OVER_ROOT_PI),),
        latex=r"\operatorname{erfc}\left(@0\right)",
        python="_scipy_special().erfc(@0)",
        python_uses=(_scipy_special,),
    )
)
register(
    Primitive(
        "lgamma",
        1,
        _gammaln,
        "log |Γ(x)| (scipy's gammaln; also written gammaln)",
        partials=(lambda ans, x: _apply("digamma", x),),
        domain=_POLES,
        singular=_to_pole,
        latex=r"\log\left|\Gamma\left(@0\right)\right|",
        python="_scipy_special().gammaln(@0)",
        python_uses=(_scipy_special,),
    )
)
register(
    Primitive(
        "digamma",
        1,
        _digamma,
        "ψ(x) = Γ′(x)/Γ(x), the derivative of lgamma",
        partials=(lambda ans, x: _apply("polygamma", x, attrs=(1,)),),
        domain=_POLES,
        singular=_to_pole,
        latex=r"\psi\left(@0\right)",
        python="_scipy_special().digamma(@0)",
        python_uses=(_scipy_special,),
    )
)


def _lower_polygamma(call: Any) -> Node:
    """polygamma(n, x), as scipy writes it, or polygamma(x, n=…), as gradcli prints it
    (polygamma(x) is digamma, n = 0)."""
    if "n" in call.keywords:
        if len(call.args) != 1 or len(call.keywords) != 1:
            raise call.error("polygamma takes n and x, as in polygamma(1, x) or polygamma(x, n=1)")
        node, span = call.keywords["n"]
        x = call.args[0]
    elif len(call.args) == 2 and not call.keywords:
        (node, x), span = call.args, call.arg_spans[0]
    elif len(call.args) == 1 and not call.keywords:
        return call.graph.apply("polygamma", call.args[0], attrs=(0,), span=call.call.span)
    else:
        raise call.error("polygamma takes n and x, as in polygamma(1, x)")
    n = node.value if node.op == "const" else None
    if n is None or np.ndim(n) or not np.isfinite(n) or n < 0 or n % 1 != 0:
        raise call.error("polygamma's n is a whole number ≥ 0 written in the program", span)
    return call.graph.apply("polygamma", x, attrs=(int(n),), span=call.call.span)


register(Primitive(
    "polygamma", 1, _polygamma, "the n-th derivative of digamma: polygamma(n, x)",
    partials=(lambda ans, x: _apply("polygamma", x, attrs=(ans.attrs[0] + 1,)),),
    domain=_POLES,
        singular=_to_pole, attr_params=(("n", 0),), lower=_lower_polygamma, params=("x",),
    python="_scipy_special().polygamma(@n, @0)", python_uses=(_scipy_special,),
))  # fmt: skip


def _lower_gammaln(call: Any) -> Node:
    (x,) = call.positional(1)
    return call.graph.apply("lgamma", x, span=call.call.span)


register(Primitive("gammaln", 1, None, "scipy's name for lgamma", lower=_lower_gammaln))


# --- The error function's inverse and scaled form, and the normal distribution -------------
# erfcx(x) = e^(x²)·erfc(x) keeps the tail of erfc in range: log_ndtr's derivative φ/Φ is
# √(2/π)/erfcx(−x/√2) on the left, where φ and Φ both underflow (x = −1e5).

_ROOT_PI_OVER_2 = math.sqrt(math.pi) / 2
_ROOT_2PI = math.sqrt(2 * math.pi)
# erfcx′(x) = 2x·erfcx(x) − 2/√π cancels |x|² ulps for large x; beyond 26 it is
# (2/√π)·Σ (−1)ⁿ(2n − 1)!!·uⁿ, u = 1/(2x²), whose tenth term is 1e-19 of the first there.
_ERFCX_SERIES = tuple((-1) ** n * math.prod(range(1, 2 * n, 2)) for n in range(1, 10))


def _erfcx_partial(ans: Node, x: Node) -> Node:
    u = (0.5 / x) / x  # no x² to overflow beyond 1e154
    series = _polynomial(u, _ERFCX_SERIES)
    far = _apply("greater", x, 26.0)
    return _apply("where", far, _TWO_OVER_ROOT_PI * (u * series), 2 * x * ans - _TWO_OVER_ROOT_PI)


def _normal_density(x: Node) -> Node:
    """φ(x) = e^(−x²/2)/√(2π)."""
    return _gaussian(x, 1 / _ROOT_2PI, half=True)


def _log_ndtr_partial(ans: Node, x: Node) -> Node:
    """φ(x)/Φ(x); for x < 0 as √(2/π)/erfcx(−x/√2), where φ and Φ underflow together."""
    left = math.sqrt(2 / math.pi) / _apply("erfcx", x * (-1 / math.sqrt(2)))
    right = _normal_density(x) / _apply("ndtr", x)
    return _apply("where", _apply("less", x, 0.0), left, right)


_OPEN_UNIT = Domain("-1 < x < 1", lambda x: (x > -1) & (x < 1))
_PROBABILITY = Domain("0 < p < 1", lambda p: (p > 0) & (p < 1))


def _special(name: str, pick: Any, doc: str, partial: Any, latex: str, **more: Any) -> None:
    """A one-argument function of scipy.special, `pick(scipy.special)`, printed in Python as
    scipy writes it."""
    register(
        Primitive(
            name, 1, _scipy(name, pick), doc, partials=(partial,), latex=latex,
            python=f"_scipy_special().{name}(@0)", python_uses=(_scipy_special,), **more,
        )
    )  # fmt: skip


_special(
    "erfinv", lambda s: s.erfinv, "the inverse of erf, for −1 < x < 1",
    lambda ans, x: _ROOT_PI_OVER_2 * exp(ans * ans),
    r"\operatorname{erf}^{-1}\left(@0\right)",
    domain=_OPEN_UNIT, singular=lambda x: (1 - x) * (1 + x),
)  # fmt: skip
_special(
    "erfcx", lambda s: s.erfcx, "e^(x²)·erfc(x), the scaled complementary error function",
    _erfcx_partial, r"\operatorname{erfcx}\left(@0\right)",
)  # fmt: skip
_special(
    "ndtr", lambda s: s.ndtr, "Φ(x), the standard normal distribution function",
    lambda ans, x: _normal_density(x), r"\Phi\left(@0\right)",
)  # fmt: skip
_special(
    "log_ndtr", lambda s: s.log_ndtr, "log Φ(x), accurate far into both tails",
    _log_ndtr_partial, r"\log\Phi\left(@0\right)",
)  # fmt: skip
_special(
    "ndtri", lambda s: s.ndtri, "Φ⁻¹(p), the standard normal quantile, for 0 < p < 1",
    lambda ans, p: _ROOT_2PI * exp((ans * ans) * 0.5), r"\Phi^{-1}\left(@0\right)",
    domain=_PROBABILITY, singular=lambda p: p * (1 - p),
)  # fmt: skip

# --- Γ and B ----------------------------------------------------------------------------------
# B(a, b) = Γ(a)Γ(b)/Γ(a + b). Its partials hold ψ(a) − ψ(a + b), which loses digits where
# b ≪ a (ε·ψ(a) against b/a), as JAX's and autograd's do; the docs say so.


def _digamma_gap(a: Node, b: Node) -> Node:
    return _apply("digamma", a) - _apply("digamma", a + b)


def _pole_gap(a: Node, b: Node) -> Node:
    """The distance to the nearest pole of a, b or a + b."""
    near = _apply("min", _to_pole(a), _to_pole(b))
    return _apply("min", near, _to_pole(a + b))


_BETA_POLES = Domain(
    "a, b and a + b not 0, −1, −2, …",
    lambda a, b: _not_a_pole(a) & _not_a_pole(b) & _not_a_pole(a + b),
    fault="a pole of the gamma function",
)
_special(
    "gamma", lambda s: s.gamma, "Γ(x), the gamma function",
    lambda ans, x: ans * _apply("digamma", x), r"\Gamma\left(@0\right)",
    domain=_POLES, singular=_to_pole,
)  # fmt: skip
register(Primitive(
    "beta", 2, _scipy("beta", lambda s: s.beta), "B(a, b) = Γ(a)Γ(b)/Γ(a + b), the beta function",
    partials=(
        lambda ans, a, b: ans * _digamma_gap(a, b),
        lambda ans, a, b: ans * _digamma_gap(b, a),
    ),
    domain=_BETA_POLES, singular=_pole_gap, params=("a", "b"),
    latex=r"\mathrm{B}\left(@0, @1\right)",
    python="_scipy_special().beta(@0, @1)", python_uses=(_scipy_special,),
))  # fmt: skip
register(Primitive(
    "betaln", 2, _scipy("betaln", lambda s: s.betaln), "log |B(a, b)|",
    partials=(lambda ans, a, b: _digamma_gap(a, b), lambda ans, a, b: _digamma_gap(b, a)),
    domain=_BETA_POLES, singular=_pole_gap, params=("a", "b"),
    latex=r"\log\left|\mathrm{B}\left(@0, @1\right)\right|",
    python="_scipy_special().betaln(@0, @1)", python_uses=(_scipy_special,),
))  # fmt: skip

# --- Modified Bessel functions of the first kind, orders 0 and 1 ------------------------------
# I₀′ = I₁ and I₁′ = I₀ − I₁/x (½ at 0). The scaled forms e^(−|x|)·Iₙ(x) have a kink at 0 for
# n = 0 (slopes ∓1 on either side); their derivatives subtract two values that agree to 1/(2|x|),
# so they lose log₁₀|x| digits for large |x|, as JAX's do.


def _i1_over_x(ans: Node, x: Node) -> Node:
    """I₁(x)/x (or its scaled form), ½ where |x| < 2^-30 (its series is ½ + x²/16)."""
    tiny = _apply("less", _apply("abs", x), 2.0**-30)
    return _apply("where", tiny, 0.5, ans / x)


_special(
    "i0", lambda s: s.i0, "I₀(x), the modified Bessel function of order 0",
    lambda ans, x: _apply("i1", x), r"I_{0}\left(@0\right)",
)  # fmt: skip
_special(
    "i1", lambda s: s.i1, "I₁(x), the modified Bessel function of order 1",
    lambda ans, x: _apply("i0", x) - _i1_over_x(ans, x), r"I_{1}\left(@0\right)",
)  # fmt: skip
_special(
    "i0e", lambda s: s.i0e, "e^(−|x|)·I₀(x), without overflow",
    lambda ans, x: _apply("i1e", x) - _apply("sign", x) * ans, r"e^{-|@0|}I_{0}\left(@0\right)",
    kink=lambda x: x,
)  # fmt: skip
_special(
    "i1e", lambda s: s.i1e, "e^(−|x|)·I₁(x), without overflow",
    lambda ans, x: _apply("i0e", x) - _i1_over_x(ans, x) - _apply("sign", x) * ans,
    r"e^{-|@0|}I_{1}\left(@0\right)",
)  # fmt: skip
