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
from ._common import _apply, exp


def _scipy_special() -> Any:
    """scipy.special, imported when first used (later calls find it in sys.modules)."""
    import scipy.special

    return scipy.special


def _real(x: Any) -> Any:
    """The real part, in a precision scipy.special takes: its ufuncs have no longdouble loops,
    and the checker's wider evaluations (the exponent range of longdouble) pass one."""
    x = np.real(x)
    return x.astype(np.float64) if np.asarray(x).dtype == np.longdouble else x


def _erf(x: Any) -> Any:
    return _scipy_special().erf(_real(x))


def _erfc(x: Any) -> Any:
    return _scipy_special().erfc(_real(x))


def _gammaln(x: Any) -> Any:
    return _scipy_special().gammaln(_real(x))


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


def _gaussian(x: Node, c: float) -> Node:
    """c·e^(−x²), with x² formed from min(|x|, 40): e^(−1600) is 0 in float64 as e^(−x²) is
    for every |x| ≥ 40, and x² would overflow beyond 1.3e154 into a spurious fault."""
    m = _apply("min", _apply("abs", x), 40.0)
    return c * exp(-(m * m))


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


def _gammaln(call: Any) -> Node:
    (x,) = call.positional(1)
    return call.graph.apply("lgamma", x, span=call.call.span)


register(Primitive("gammaln", 1, None, "scipy's name for lgamma", lower=_gammaln))
