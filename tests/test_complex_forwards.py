"""The complex forwards of the analytic primitives, against mpmath at the same complex points.

The complex step takes d/dx f(x) ≈ Im f(x + iy)/y, so a primitive registered `analytic=True` must
return, for complex input, the analytic continuation of its function: both parts, each to a few
ulps, over the whole float64 range. Every such primitive in the registry is checked here (one
without a reference below fails), at the points z = x + iy the checker uses:

- x on a grid: 0, tiny (1e-300, 1e-30), small, unit, large, huge (1e30, 1e300), both signs, and
  each function's domain edges (log1p near -1, asin near ±1, tan near π/2, ...); for two arguments
  a grid of pairs, with ties and with arguments of very different size.
- y ∈ {2^-1022, 2^-1000, c|x|, 10^6·c|x|, -c|x|, min(2^-900/|f'(x)|, c·max(1, |x|))}, with
  c = ε^(5/4) = 2^-65 and each relative step rounded down to a power of two, at least 2^-1022:
  the checker's two steps, its step safe from underflow, its smallest step, and a negative step
  (a random direction in fast mode). A two-argument function gets y in each argument alone and
  the same y in both at once (what `x*x` or `atan2(x, x)` sees), with |x| then the smaller of
  the two, so that the step is small next to each.

The reference is the same analytic function written with mpmath. Its parts can differ in size by
2^2000 (Im cos(1e-300 + i·2^-1022) ≈ 1e-300·2^-1022 next to Re ≈ 1), and mpmath may be accurate
relative to |f| rather than to each part, so a reference starts at 192 bits plus the span of the
binary exponents at hand, is computed again 64 bits higher, and the precision is doubled until
the two agree to 2^-80 in each part: then every part carries more than 50 correct digits (a
reference that never settles fails the test: the reference, not the forward, would be in doubt).

Tolerance for each part: |got - want| ≤ 8·ε·s + 4·2^-1074, where
- ε = 2^-52, and 8ε·s is 8 to 16 ulps of s: a forward is a handful of correctly rounded numpy
  operations (each ≤ 1/2 ulp) on well-conditioned formulas, so a few ulps; a part lost to
  cancellation or underflow is off by far more (numpy's log1p loses all of Re at x = 1e-16).
- s is |want| for one argument stepped. With both stepped, each part is the sum of what each
  argument's step contributes, each good to a few ulps; where they cancel (Im of x/x, Re of
  xlogy(2 + iy, 1 + iy) = -y⁴/6) only the sum's rounding bound holds: s is the larger of |want|
  and the part with one argument stepped (for Im, the sum of the two). Array primitives sum and
  multiply many terms: s is the same sum with every term made positive (the function of
  |Re z| + i|Im z| for the multilinear ones), the standard bound of a sum's rounding; for
  logsumexp and softmax it also carries the rounding of x - max x, which the real forward (kept
  as it is) exponentiates.
- 4·2^-1074, four subnormal units: below 2^-1022 a result has fewer than 53 bits, and a formula
  that rounds into that range can be off by a couple of units there.

Points are skipped only by these rules, stated where they are applied:
- outside the open set where the real function is analytic in the stepped arguments (log at
  x ≤ 0, asin at |x| ≥ 1, the exponent of pow at a negative base, atan2 on its cut, ...): the
  checker never takes a complex step there, and the continuation there is a branch choice;
- a reference part beyond the largest float64: float64 cannot represent it.
Never because a result disagrees. Every primitive must keep at least MIN_COMPARED points.

The step functions (sign, heaviside, equal) are constant on each side of their jump: their
reference is the real value of the real parts, with imaginary part 0 (heaviside(0, h0) is h0,
analytic in h0).

Array primitives get small arrays with mixed magnitudes, chosen so that every partial product of
their elements is a normal number (the real forward multiplies in order, and a complex forward
cannot be more accurate than the real path it must keep); a step in every element at once (signs
alternating, each relative to its element) and in each element alone, at each y of the grid (the
last as c·max(1, |x|), its value where the derivative is small).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import pytest
from mpmath import mp, mpc, mpf

from gradcli.primitives import REGISTRY

EPS = 2.0**-52
TINY = 2.0**-1022  # the smallest normal float64
HUGE = float(np.finfo(np.float64).max)
ULPS = 8
FLOOR = 4 * 2.0**-1074
STEP = 2.0**-65  # the checker's complex step relative to |x|: ε^(5/4)
SECOND = 1e6  # the checker's second complex step, relative to its first
SAFE = 2.0**-900  # the checker's step safe from underflow: h·|f'| ≈ 2^-900
GUARD = 192  # bits beyond the span of exponents, for the reference
CHECK = 64  # the reference's second precision is this much higher
AGREE = 2.0**-80  # ... and the two must agree to this, relative to each part
MAX_BITS = 40000
ZERO_BITS = 2600  # 2^2600 exceeds the ratio of any two float64 magnitudes, with room to spare
MIN_COMPARED = 40

Ref = Callable[..., Any]


# --- The reference ---------------------------------------------------------------------------


def _mag(v: float) -> int:
    return math.frexp(v)[1] if v else 0


def _bits(values: Sequence[complex]) -> int:
    """Working precision to start a reference at: see the module docstring."""
    mags = [_mag(part) for v in values for part in (v.real, v.imag)]
    return GUARD + max(0, *mags) - min(0, *mags)


def _to_mp(v: complex) -> mpc:
    return mpc(float(v.real), float(v.imag))


def _agrees(a: mpf, b: mpf) -> bool:
    return abs(a - b) <= AGREE * abs(b) + mpf(2) ** -1100


def reference(f: Ref, args: Sequence[Any], bits: int) -> Any:
    """f(*args) (mpc, or object arrays of mpc, exact), at the first precision from `bits` up
    (doubling) at which it agrees with itself computed CHECK bits higher, part by part. A part
    that is exactly 0 may be one lost below 2^-bits (Im atan(-1e150 + 8e28i) ≈ 8e-272 is, at 700
    bits): it stands only once confirmed at ZERO_BITS, beyond any float64 part next to any
    float64 value."""
    while bits <= MAX_BITS:
        results = []
        for prec in (bits, bits + CHECK):
            with mp.workprec(prec):
                results.append(f(*args))
        low, high = (
            [mpmath.mpmathify(v) for v in np.asarray(r, dtype=object).ravel()] for r in results
        )
        if not all(
            _agrees(mpmath.re(a), mpmath.re(b)) and _agrees(mpmath.im(a), mpmath.im(b))
            for a, b in zip(low, high, strict=True)
        ):
            bits *= 2
        elif bits < ZERO_BITS and any(not mpmath.re(v) or not mpmath.im(v) for v in high):
            bits = ZERO_BITS
        else:
            return results[1]
    raise AssertionError(f"the reference is not stable in precision at {args}")


def ulp(v: mpf) -> mpf:
    """The spacing of float64 numbers at v (2^-1074 below the normal range)."""
    e = int(mpmath.floor(mpmath.log(abs(v), 2))) if v else -1074
    return mpf(2) ** (max(e, -1022) - 52)


@dataclass
class Miss:
    """One part of one result, compared: `err` and `allowed` are absolute."""

    where: str
    part: str
    got: float
    want: mpf
    scale: mpf  # the size s of the tolerance: max(|want|, its condition scale)
    err: mpf
    allowed: mpf

    @property
    def ulps(self) -> float:
        """The error in ulps of s: what the tolerance is in units of (8 to 16 of them)."""
        return float(self.err / ulp(self.scale))

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.part} {self.got!r}, want {mpmath.nstr(self.want, 17)} "
            f"({self.ulps:.3g} ulp)"
        )


@dataclass
class Outcome:
    compared: int
    skipped: int
    parts: list[Miss]  # every compared part, good or bad

    @property
    def failures(self) -> list[Miss]:
        return [m for m in self.parts if not m.err <= m.allowed]

    def worst(self, part: str) -> float:
        return max((m.ulps for m in self.parts if m.part == part), default=0.0)


def _compare(where: str, got: complex, want: Any, scales: tuple[mpf, mpf]) -> list[Miss]:
    want = mpmath.mpmathify(want)
    out = []
    for part, g, w, s in (
        ("Re", got.real, mpmath.re(want), scales[0]),
        ("Im", got.imag, mpmath.im(want), scales[1]),
    ):
        scale = max(abs(w), s)
        err = abs(mpf(g) - w) if math.isfinite(g) else mpf("inf")
        out.append(Miss(where, part, float(g), w, scale, err, ULPS * EPS * scale + FLOOR))
    return out


def _representable(want: Any) -> bool:
    """Skip rule: float64 cannot hold a part beyond its largest number."""
    return all(
        abs(mpmath.re(w)) <= HUGE and abs(mpmath.im(w)) <= HUGE
        for w in (mpmath.mpmathify(v) for v in np.asarray(want, dtype=object).ravel())
    )


# --- Elementwise primitives ------------------------------------------------------------------


def _p2(v: Any) -> float:
    """v rounded down to a power of two, at least 2^-1022 (as the checker rounds its steps)."""
    if not v > 0:
        return TINY
    return math.ldexp(1.0, max(int(mpmath.floor(mpmath.log(mpf(v), 2))), -1022))


def steps(scale: float, slope: Any) -> list[float]:
    """The imaginary steps of the module docstring, at a point of size `scale` where the
    derivative along the step has size `slope` (None: not needed)."""
    rel = _p2(STEP * scale)
    ys = [TINY, 2.0**-1000, rel, SECOND * rel, -rel]
    if slope is not None:
        ys.append(_p2(min(SAFE / slope if slope else math.inf, STEP * max(1.0, scale))))
    return list(dict.fromkeys(ys))


@dataclass(frozen=True)
class Elementwise:
    """`ref` is the analytic function of mpc arguments; `modes(*x)` names the arguments in which
    it is analytic at the real point x, as the tuples of arguments that may be stepped."""

    ref: Ref
    points: tuple[tuple[float, ...], ...]
    modes: Callable[..., tuple[tuple[int, ...], ...]]

    def run(self, forward: Callable[..., Any]) -> Outcome:
        compared = skipped = 0
        parts: list[Miss] = []
        wants: dict[tuple[complex, ...], Any] = {}

        def want_at(z: tuple[complex, ...]) -> Any:
            if z not in wants:
                wants[z] = mpmath.mpmathify(reference(self.ref, [_to_mp(v) for v in z], _bits(z)))
            return wants[z]

        for x in self.points:
            modes = self.modes(*x)
            if not modes:
                skipped += 1  # skip rule: outside the domain of analyticity
                continue
            slopes = {k: self._slope(x, k) for k in {k for m in modes for k in m}}
            for mode in modes:
                scale = min(abs(x[k]) for k in mode)  # small next to each argument
                for y in steps(scale, sum(abs(slopes[k]) for k in mode)):
                    z = tuple(complex(v, y) if k in mode else complex(v) for k, v in enumerate(x))
                    want = want_at(z)
                    if not _representable(want):
                        skipped += 1  # skip rule: float64 cannot represent it
                        continue
                    args = [
                        np.array([z[k]]) if k in mode else np.array([x[k]]) for k in range(len(x))
                    ]
                    with np.errstate(all="ignore"):
                        got = complex(np.asarray(forward(*args)).ravel()[0])
                    re_scale, im_scale = abs(mpmath.re(want)), abs(mpmath.im(want))
                    if len(mode) > 1:  # a sum of each argument's contribution: see the docstring
                        alone = [
                            want_at(tuple(v if i == k else complex(x[i]) for i, v in enumerate(z)))
                            for k in mode
                        ]
                        re_scale = max(re_scale, *(abs(mpmath.re(w)) for w in alone))
                        im_scale = max(im_scale, sum(abs(mpmath.im(w)) for w in alone))
                    label = f"x={x}, step y={y!r} in {mode}"
                    parts += _compare(label, got, want, (re_scale, im_scale))
                    compared += 1
        return Outcome(compared, skipped, parts)

    def _slope(self, x: tuple[float, ...], k: int) -> mpf:
        """∂f/∂x_k at x, from the reference (a complex step far below any rounding)."""
        t = _p2(STEP * abs(x[k])) * 2.0**-40
        z = [complex(v, t) if i == k else complex(v) for i, v in enumerate(x)]
        return (
            mpmath.im(mpmath.mpmathify(reference(self.ref, [_to_mp(v) for v in z], _bits(z)))) / t
        )


def everywhere(*x: float) -> tuple[tuple[int, ...], ...]:
    return ((0,),) if len(x) == 1 else ((0,), (1,), (0, 1))


def where(test: Callable[..., bool]) -> Callable[..., tuple[tuple[int, ...], ...]]:
    return lambda *x: everywhere(*x) if test(*x) else ()


def _grid(*values: float) -> tuple[float, ...]:
    return tuple(sorted({float(s * v) for v in values for s in (1, -1)}))


GENERAL = _grid(
    0, 1e-300, 1e-200, 1e-30, 1e-12, 1e-5, 0.1, 0.5, 1, 1.5, 2, 3, 10, 20, 25, 30, 40, 100,
    355, 700, 709, 745, 1e5, 1e15, 1e30, 1e300,
)  # fmt: skip
PI = 3.141592653589793
HALF_PI = 1.5707963267948966
NEAR_ONE = (1 - 2**-53, 1 - 1e-10, 0.999999, 1 + 2**-52, 1 + 1e-10)
LOG1P_EDGES = (-1 + 2**-52, -1 + 1e-10, -0.999999, 2**-52, 1e-16, 1e-8)
PAIRS = _grid(0, 1e-300, 1e-30, 0.5, 1, 3, 1e30, 1e300)


def unary(ref: Ref, *extra: float, domain: Callable[[float], bool] | None = None) -> Elementwise:
    points = tuple((x,) for x in sorted({*GENERAL, *_grid(*extra)}))
    return Elementwise(ref, points, everywhere if domain is None else where(domain))


def binary(ref: Ref, modes=everywhere, values: Sequence[float] = PAIRS) -> Elementwise:
    return Elementwise(ref, tuple(itertools.product(values, values)), modes)


def _atan2(y: mpc, x: mpc) -> mpc:
    """The continuation of the real atan2 near a real point off its cut, with the branch the
    real function takes there: atan(y/x) (plus ±π for x < 0) where |x| ≥ |y|, else
    ±π/2 - atan(x/y), so that atan's argument stays near the real segment [-1, 1]."""
    yr, xr = mpmath.re(y), mpmath.re(x)
    if abs(xr) >= abs(yr):
        turn = 0 if xr > 0 else mpmath.pi if yr > 0 else -mpmath.pi
        return mpmath.atan(y / x) + turn
    return (mpmath.pi / 2 if yr > 0 else -mpmath.pi / 2) - mpmath.atan(x / y)


def _log_1_plus(w: mpc) -> mpc:
    """log(1 + w), by its series for tiny |w|: mpmath cannot add 1 to e^-1e300 (nor should it
    try: 1 + w would need 10^300 bits)."""
    if abs(w) > mpf(2) ** -64:
        return mpmath.log(1 + w)
    total, term, k = mpc(0), w, 1
    while abs(term) > mpf(2) ** -(mp.prec + 10) * abs(w):
        total += term / k
        term, k = -term * w, k + 1
    return total


def _softplus(z: mpc) -> mpc:
    """log(1 + e^z), written as z + log(1 + e^-z) for Re z > 0 (so that e^z stays small)."""
    if mpmath.re(z) > 0:
        return z + _log_1_plus(mpmath.exp(-z))
    return _log_1_plus(mpmath.exp(z))


def _pow(a: mpc, b: mpc) -> mpc:
    """x^y: exp(y log x) for x > 0; a polynomial in x for an integer y (x ≤ 0 included)."""
    ar, br = mpmath.re(a), mpmath.re(b)
    if ar > 0:
        return mpmath.exp(b * mpmath.log(a))
    if mpmath.im(b) == 0 and br == int(br):
        return a ** int(br)
    return mpc(0)  # 0^y for y > 0 (x = 0 with y stepped)


def _pow_modes(a: float, b: float) -> tuple[tuple[int, ...], ...]:
    """Steps in both at x > 0; at x < 0 only in x, for an integer y (x^y is not defined next to
    it); at x = 0 in x for an integer y ≥ 0 (a polynomial), in y for y > 0 (0^y = 0)."""
    if a > 0:
        return everywhere(a, b)
    integer = b == round(b)
    if a < 0:
        return ((0,),) if integer else ()
    return (((0,),) if integer and b >= 0 else ()) + (((1,),) if b > 0 else ())


POW_BASES = (0, 1e-300, 1e-30, 1e-5, 0.5, *NEAR_ONE, 1, 2, 10, 1e30, 1e300, -2, -0.5, -1e10)
POW_EXPONENTS = (0, 1, 2, 3, 7, -1, -2, 0.5, 2.5, -1.5, 1e-10, 1.0000001, 100, -300, 1000, 1e5)


def _off_integers(x: float) -> bool:
    return x != round(x)


def _off_halves(x: float) -> bool:
    return x - math.floor(x) != 0.5 and abs(x) < 2**52


def _trunc(x: mpf) -> mpf:
    return mpmath.floor(x) if x >= 0 else mpmath.ceil(x)


ELEMENTWISE: dict[str, Elementwise] = {
    "add": binary(lambda a, b: a + b),
    "sub": binary(lambda a, b: a - b),
    "mul": binary(lambda a, b: a * b),
    "div": binary(lambda a, b: a / b, where(lambda a, b: b != 0)),
    "neg": unary(lambda z: -z),
    "pow": Elementwise(_pow, tuple(itertools.product(POW_BASES, POW_EXPONENTS)), _pow_modes),
    "exp": unary(mpmath.exp, -744, 709.5),
    "log": unary(mpmath.log, *NEAR_ONE, domain=lambda x: x > 0),
    "log2": unary(lambda z: mpmath.log(z) / mpmath.log(2), *NEAR_ONE, domain=lambda x: x > 0),
    "log10": unary(lambda z: mpmath.log(z) / mpmath.log(10), *NEAR_ONE, domain=lambda x: x > 0),
    "log1p": unary(lambda z: mpmath.log(1 + z), *LOG1P_EDGES, domain=lambda x: x > -1),
    "expm1": unary(lambda z: mpmath.exp(z) - 1, 1e-16, 1e-8, 0.7, 709.5),
    "xlogy": binary(
        lambda a, b: a * mpmath.log(b), where(lambda a, b: b > 0), (*PAIRS, *NEAR_ONE, 2)
    ),
    "sqrt": unary(mpmath.sqrt, 2**-1022, 2**-1074, domain=lambda x: x > 0),
    "sin": unary(mpmath.sin, PI, HALF_PI, 1e22),
    "cos": unary(mpmath.cos, PI, HALF_PI, 1e22),
    "tan": unary(mpmath.tan, PI, HALF_PI, 1.5707963),
    "asin": unary(mpmath.asin, *NEAR_ONE, domain=lambda x: -1 < x < 1),
    "acos": unary(mpmath.acos, *NEAR_ONE, domain=lambda x: -1 < x < 1),
    "atan": unary(mpmath.atan, 1e150, 1e200),
    "asinh": unary(mpmath.asinh, 1e150, 1e200, 1e-8),
    "acosh": unary(mpmath.acosh, *NEAR_ONE, 1e150, domain=lambda x: x > 1),
    "atanh": unary(mpmath.atanh, *NEAR_ONE, 1e-8, domain=lambda x: -1 < x < 1),
    # The angle jumps across the negative x axis, and the origin is a branch point.
    "atan2": binary(_atan2, where(lambda y, x: not (x <= 0 and y == 0))),
    "hypot": binary(lambda a, b: mpmath.sqrt(a * a + b * b), where(lambda a, b: a != 0 or b != 0)),
    "sinh": unary(mpmath.sinh, 710, 710.4),
    "cosh": unary(mpmath.cosh, 710, 710.4),
    "tanh": unary(mpmath.tanh, 18, 19, 22),
    "sech": unary(lambda z: 1 / mpmath.cosh(z), 710, 710.4),
    "sigmoid": unary(lambda z: 1 / (1 + mpmath.exp(-z)), 36, 37, 800),
    "softplus": unary(_softplus, 36, 37, 800),
    "log_sigmoid": unary(lambda z: -_softplus(-z), -36, -37, -800, 36, 800),
    "square": unary(lambda z: z * z, 1e154, 1.3e154, 1e-160),
    "exp2": unary(lambda z: mpmath.power(2, z), -1074, 1023.5, 0.5),
    # Kinks: analytic on each side, the piece chosen by the real parts; not on the kink itself.
    "abs": unary(lambda z: z if mpmath.re(z) >= 0 else -z, domain=lambda x: x != 0),
    "relu": unary(lambda z: z if mpmath.re(z) > 0 else mpc(0), domain=lambda x: x != 0),
    "max": binary(
        lambda a, b: a if mpmath.re(a) >= mpmath.re(b) else b, where(lambda a, b: a != b)
    ),
    "min": binary(
        lambda a, b: a if mpmath.re(a) <= mpmath.re(b) else b, where(lambda a, b: a != b)
    ),
    # Step functions: constant on each side of the jump, not analytic on it.
    "sign": unary(lambda z: mpmath.sign(mpmath.re(z)), domain=lambda x: x != 0),
    "heaviside": Elementwise(
        lambda z, h0: h0 if mpmath.re(z) == 0 else mpc(1 if mpmath.re(z) > 0 else 0),
        tuple(itertools.product(PAIRS, (0.0, 0.5, 1.0, -2.0))),
        lambda x, h0: everywhere(x, h0) if x != 0 else ((1,),),
    ),
    "equal": binary(lambda a, b: mpc(1 if mpmath.re(a) == mpmath.re(b) else 0)),
    # The other comparisons and the logical operations: steps too, on the real parts.
    **{
        name: binary(lambda a, b, t=test: mpc(1 if t(mpmath.re(a), mpmath.re(b)) else 0))
        for name, test in [
            ("less", lambda a, b: a < b),
            ("less_equal", lambda a, b: a <= b),
            ("greater", lambda a, b: a > b),
            ("greater_equal", lambda a, b: a >= b),
            ("not_equal", lambda a, b: a != b),
            ("logical_and", lambda a, b: a != 0 and b != 0),
            ("logical_or", lambda a, b: a != 0 or b != 0),
        ]
    },
    "logical_not": unary(lambda z: mpc(1 if mpmath.re(z) == 0 else 0)),
    # The steps of rounding, constant between their jumps (not on them).
    "floor": unary(lambda z: mpc(mpmath.floor(mpmath.re(z))), 2.5, 7, domain=_off_integers),
    "ceil": unary(lambda z: mpc(mpmath.ceil(mpmath.re(z))), 2.5, 7, domain=_off_integers),
    "trunc": unary(lambda z: mpc(_trunc(mpmath.re(z))), 2.5, 7, domain=_off_integers),
    "round": unary(lambda z: mpc(mpmath.nint(mpmath.re(z))), 2.5, 7, domain=_off_halves),
    # where picks by the real part of its condition: analytic in both branches, and in the
    # condition off 0, where it is constant.
    "where": Elementwise(
        lambda c, a, b: a if mpmath.re(c) != 0 else b,
        tuple(itertools.product((0.0, 1.0, -2.5), (0.5, -1e300, 1e-30), (3.0, 1e-300, -7.0))),
        lambda c, a, b: ((1,), (2,), (1, 2)) + (((0,), (0, 1, 2)) if c != 0 else ()),
    ),
    # mod(x, y) = x - y·floor(x/y): analytic in both off the jumps where x/y is whole.
    "mod": binary(
        lambda a, b: a - b * mpmath.floor(mpmath.re(a) / mpmath.re(b)),
        where(lambda a, b: b != 0 and a / b != round(a / b) and abs(a / b) < 2**52),
        (0.5, 1, 3, 7.25, -2.5, 1e-30, 1e30),
    ),
}


# --- Array primitives ------------------------------------------------------------------------


def _mp_array(z: Any) -> np.ndarray:
    z = np.asarray(z, dtype=complex)
    out = np.empty(z.shape, dtype=object)
    for idx, v in np.ndenumerate(z):
        out[idx] = _to_mp(v)
    return out


def _prod_pairs(x: np.ndarray, *rest: Any) -> np.ndarray:
    """For each j along the axis: Σ over distinct positions p_m ≠ j of Π_m t_m[p_m] times
    Π_{k ∉ {j, p}} x_k, by brute force (with no t: the product of the others)."""
    *ts, axis = rest
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=object) for a in (x, *ts)))
    shape = arrays[0].shape
    if axis is None:
        lines = [a.reshape(1, -1) for a in arrays]
    else:
        lines = [np.moveaxis(a, axis, -1).reshape(-1, shape[axis]) for a in arrays]
    rows, n = lines[0].shape
    out = np.empty((rows, n), dtype=object)
    for r, j in itertools.product(range(rows), range(n)):
        total: Any = mpf(0)
        for places in itertools.permutations([p for p in range(n) if p != j], len(ts)):
            term: Any = mpf(1)
            for m, p in enumerate(places):
                term = term * lines[m + 1][r, p]
            for k in range(n):
                if k != j and k not in places:
                    term = term * lines[0][r, k]
            total = total + term
        out[r, j] = total
    if axis is None:
        return out.reshape(shape)
    return np.moveaxis(out.reshape(np.moveaxis(arrays[0], axis, -1).shape), -1, axis)


def _prod_except(x: np.ndarray, axis: int | None) -> np.ndarray:
    return _prod_pairs(x, axis)


def _sum(x: np.ndarray, axis: int | None) -> Any:
    return np.sum(np.asarray(x, dtype=object), axis=axis)


def _each(f: Callable[[Any], Any], x: Any) -> Any:
    return np.vectorize(f, otypes=[object])(np.asarray(x, dtype=object))


def _norm(x: np.ndarray, axis: int | None) -> Any:
    return _each(mpmath.sqrt, _sum(np.asarray(x, dtype=object) ** 2, axis))


def _logsumexp(x: np.ndarray, axis: int | None) -> Any:
    return _each(mpmath.log, _sum(_each(mpmath.exp, x), axis))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    exps = _each(mpmath.exp, x)
    return exps / np.sum(exps, axis=axis, keepdims=True)


def _positive(z: np.ndarray) -> np.ndarray:
    """|Re z| + i|Im z|: a multilinear function of it has every term made positive."""
    return np.abs(np.real(z)) + 1j * np.abs(np.imag(z))


def _exp_terms(x: np.ndarray, axis: int) -> tuple[Any, Any, Any]:
    """softmax s of the real parts, |y|, and c = 1 + |x - max x|: the real forward (kept as it is)
    computes exp(x - max x), and the rounding of that difference makes each exponential ε·c
    off, relatively. Sums are along `axis`, kept."""
    xr, y = _mp_array(np.real(x)), np.abs(_mp_array(np.imag(x)))
    top = np.max(np.real(x), axis=axis, keepdims=True)
    c = 1 + np.abs(xr - _mp_array(top))
    return _softmax(xr, axis), y, c


def _softmax_scales(x: np.ndarray, axis: int) -> tuple[Any, Any]:
    """With e_k off by δ_k ≤ ε·c_k: Re s_j is off by s_j(δ_j - Σ s_k δ_k), and
    Im s_j = s_j(y_j - Σ s_k y_k) by at most s_j((c_j + C)(|y_j| + Y) + Σ s_k c_k |y_k| + C·Y),
    with C = Σ s_k c_k and Y = Σ s_k |y_k|."""
    s, y, c = _exp_terms(x, axis)
    big_c, big_y = (np.sum(s * v, axis=axis, keepdims=True) for v in (c, y))
    yc = np.sum(s * c * y, axis=axis, keepdims=True)
    return s * (c + big_c), s * ((c + big_c) * (y + big_y) + yc + big_c * big_y)


def _logsumexp_scales(x: np.ndarray, axis: int | None) -> tuple[Any, Any]:
    """Re log Σ e^x is off by Σ s_k δ_k ≤ ε·C (an absolute error, where Re is near 0), and
    Im = Σ s_k y_k by at most ε(Σ s_k c_k |y_k| + C·Y)."""
    x, axis = (x.ravel(), 0) if axis is None else (x, axis)
    s, y, c = _exp_terms(x, axis)
    big_c, big_y, yc = (np.sum(v, axis=axis) for v in (s * c, s * y, s * c * y))
    re = np.abs(_logsumexp(_mp_array(np.real(x)), axis))
    return re + big_c, yc + big_c * big_y


@dataclass(frozen=True)
class ArrayCase:
    """`ref(*inputs, *attrs)` on object arrays of mpc; `scales(*inputs, *attrs)` the sizes `s`
    of the tolerance for each part (default: `ref` at |Re z| + i|Im z|, the multilinear
    bound); `stepped` the inputs that may carry an imaginary part."""

    ref: Ref
    inputs: tuple[Any, ...]
    attrs: tuple[Any, ...] = ()
    scales: Callable[..., tuple[Any, Any]] | None = None
    stepped: tuple[int, ...] = (0,)

    def run(self, forward: Callable[..., Any]) -> Outcome:
        compared, skipped, parts = 0, 0, []
        real = [np.asarray(a, dtype=float) for a in self.inputs]
        for zs, label in self._steps(real):
            bits = _bits([v for z in zs for v in np.ravel(z)])
            want = reference(self.ref, [*map(_mp_array, zs), *self.attrs], bits)
            if not _representable(want):
                skipped += 1  # skip rule: float64 cannot represent it
                continue
            with np.errstate(all="ignore"):
                got = np.asarray(forward(*zs, *self.attrs))
            want = np.asarray(want, dtype=object)
            assert got.shape == want.shape, f"{label}: shape {got.shape}, want {want.shape}"
            re_s, im_s = self._scales(zs, bits)
            for i, (g, w) in enumerate(zip(got.ravel(), want.ravel(), strict=True)):
                parts += _compare(f"{label}, element {i}", complex(g), w, (re_s[i], im_s[i]))
            compared += 1
        return Outcome(compared, skipped, parts)

    def _scales(self, zs: list[np.ndarray], bits: int) -> tuple[list[mpf], list[mpf]]:
        with mp.workprec(bits):
            if self.scales is not None:
                re, im = self.scales(*zs, *self.attrs)
                return [abs(v) for v in np.ravel(re)], [abs(v) for v in np.ravel(im)]
            positive = [_mp_array(_positive(z)) for z in zs]
            out = np.asarray(self.ref(*positive, *self.attrs), dtype=object).ravel()
            return [abs(mpmath.re(v)) for v in out], [abs(mpmath.im(v)) for v in out]

    def _steps(self, real: list[np.ndarray]):
        """Every stepped input alone, then all at once: every element (alternating signs), and
        each element alone at each step of the grid."""
        groups = [(k,) for k in self.stepped]
        if len(self.stepped) > 1:
            groups.append(self.stepped)
        for group in groups:
            zs = [a.astype(complex) for a in real]
            for k in group:
                rel = np.vectorize(lambda v: _p2(STEP * abs(v)))(real[k])
                signs = (-1.0) ** np.arange(real[k].size).reshape(real[k].shape)
                zs[k] = real[k] + 1j * signs * rel
            yield zs, f"every element of inputs {group} stepped"
            for k in group:
                for j in range(real[k].size):
                    v = float(real[k].ravel()[j])
                    for y in steps(abs(v), 0.0):  # the last: c·max(1, |x|), as where f' is small
                        zs = [a.astype(complex) for a in real]
                        zs[k].ravel()[j] += 1j * y  # a fresh copy: ravel is a view
                        yield zs, f"input {k} element {j} = {v} stepped by {y!r}"


V = np.array([1e-150, -3.0, 2.5e100, 0.5, -7e-30])
W = np.array([0.25, -1e-20, 4e50, 2.0, -1.5])
M = np.array([[1e-200, 2.0, -1e150], [0.25, -1e-20, 3e100]])
N = np.array([[3.0, -1e-100], [0.5, 2e30], [-1e-5, 7.0]])
ZEROS = np.array([0.0, 2.0, -3.0, 0.0])
WEIGHTS = np.array([-1e3, 2.5, 700.0, -0.5, 1e-300])
MODERATE = np.array([[0.3, -1.2, 2.0, 0.0], [1.0, 1.0, -40.0, 35.0]])
TINY_NORM = np.array([1e-300, -2e-300, 5e-301])
MIXED_NORM = np.array([1e-300, 1.0, -1e150, 3e-20])


def _pick(x: np.ndarray, axis: int | None, choose: Callable[..., Any]) -> Any:
    """max or min of an object array of mpc along `axis`, by real parts."""
    x = np.asarray(x, dtype=object)
    if axis is None:
        return choose(x.ravel(), key=mpmath.re)
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = choose(moved[idx], key=mpmath.re)
    return out


def _cases(ref: Ref, inputs: Sequence[tuple], attrs: Sequence[tuple], **kw: Any) -> list:
    return [ArrayCase(ref, i, a, **kw) for i in inputs for a in attrs]


def _mean(x: np.ndarray, axis: int | None) -> Any:
    count = np.size(x) if axis is None else np.shape(x)[axis]
    return _sum(x, axis) / mpf(count)


def _variance(x: np.ndarray, axis: int | None, ddof: int) -> Any:
    """Σ(x − mean)²/(n − ddof), the analytic variance (numpy's takes |x − mean|²)."""
    x = np.asarray(x, dtype=object)
    count = np.size(x) if axis is None else np.shape(x)[axis]
    d = (
        x - _sum(x, axis) / mpf(count)
        if axis is None
        else x - np.expand_dims(_sum(x, axis) / mpf(count), axis)
    )
    return _sum(d * d, axis) / mpf(count - ddof)


def _ints(indices: Any) -> np.ndarray:
    """Indices given as mpc object arrays, as numpy's whole numbers."""
    return np.vectorize(lambda v: int(mpmath.re(v)), otypes=[np.int64])(indices)


def _added(g: Any, *rest: Any) -> np.ndarray:
    """scatter_add's reference: zeros of the shape, g added at the positions, by numpy."""
    *indices, shape, axis = rest
    out = np.full(shape, mpmath.mpc(0), dtype=object)
    np.add.at(out, (*(slice(None),) * axis, *map(_ints, indices)), g)
    return out


def _transpose(x: np.ndarray, axes: Any) -> np.ndarray:
    return np.transpose(x, axes)


def _unindex(g, shape, start, stop, step) -> np.ndarray:
    out = np.full(shape, mpc(0), dtype=object)
    key = tuple(a if c == 0 else slice(a, b, c) for a, b, c in zip(start, stop, step, strict=True))
    out[key] = g
    return out


def _sum_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lead = x.ndim - len(shape)
    x = np.sum(x, axis=tuple(range(lead))) if lead else x
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    return np.sum(x, axis=kept, keepdims=True) if kept else x


def _diag(x: np.ndarray) -> np.ndarray:
    """numpy's diag on mpc elements, with mpc zeros off the diagonal."""
    if np.ndim(x) == 2:
        return np.array([x[i, i] for i in range(min(np.shape(x)))], dtype=object)
    out = np.full((len(x), len(x)), mpc(0), dtype=object)
    for i, v in enumerate(x):
        out[i, i] = v
    return out


ARRAYS: dict[str, list[ArrayCase]] = {
    "sum": _cases(_sum, [(V,), (M,)], [(None,), (0,), (-1,)]),
    "mean": _cases(_mean, [(V,), (M,)], [(None,), (0,), (-1,)]),
    "var": _cases(_variance, [(V,), (M,)], [(None, 0), (0, 1), (-1, 0)]),
    "std": _cases(
        lambda x, axis, ddof: _each(mpmath.sqrt, _variance(x, axis, ddof)),
        [(V,), (M,)],
        [(None, 1), (0, 0), (-1, 0)],
    ),
    "prod": _cases(
        lambda x, axis: np.prod(np.asarray(x, dtype=object), axis=axis),
        [(V,), (M,), (ZEROS,)],
        [(None,), (0,), (-1,)],
    ),
    "prod_except": _cases(_prod_except, [(V,), (M,), (ZEROS,)], [(None,), (0,), (-1,)]),
    "prod_pairs": [
        *_cases(_prod_pairs, [(V, W), (ZEROS, ZEROS[::-1])], [(None,), (0,)], stepped=(0, 1)),
        *_cases(_prod_pairs, [(M, M[::-1])], [(None,), (1,)], stepped=(0, 1)),
        *_cases(_prod_pairs, [(V[:4], W[:4], W[1:])], [(None,)], stepped=(0, 1, 2)),
    ],
    "norm": _cases(_norm, [(V,), (M,), (TINY_NORM,), (MIXED_NORM,)], [(None,), (0,), (-1,)]),
    # the element whose real part is the extreme one (analytic off ties; V and M have none)
    "amax": _cases(lambda x, axis: _pick(x, axis, max), [(V,), (M,)], [(None,), (0,), (-1,)]),
    "amin": _cases(lambda x, axis: _pick(x, axis, min), [(V,), (M,)], [(None,), (0,), (-1,)]),
    "logsumexp": _cases(
        _logsumexp, [(WEIGHTS,), (MODERATE,)], [(None,), (0,), (-1,)], scales=_logsumexp_scales
    ),
    "softmax": _cases(_softmax, [(WEIGHTS,), (MODERATE,)], [(0,), (-1,)], scales=_softmax_scales),
    "matmul": [
        ArrayCase(lambda a, b: np.matmul(a, b), (M, N), stepped=(0, 1)),
        ArrayCase(lambda a, b: np.matmul(a, b), (N, M), stepped=(0, 1)),
        ArrayCase(lambda a, b: np.matmul(a, b), (V[:3], N), stepped=(0, 1)),
        ArrayCase(lambda a, b: np.matmul(a, b), (M, V[:3]), stepped=(0, 1)),
    ],
    "transpose": _cases(_transpose, [(M,)], [(None,), ((1, 0),)]),
    "reshape": _cases(lambda x, shape: np.reshape(x, shape), [(M,)], [((3, 2),), ((6,),)]),
    "index": [
        ArrayCase(lambda x, key: x[1, 0:2], (M,), ((1, ("slice", 0, 2, None)),)),
        ArrayCase(lambda x, key: x[::2], (V,), ((("slice", None, None, 2),),)),
    ],
    "unindex": [
        ArrayCase(_unindex, (V[:2],), ((2, 3), (1, 0), (2, 3), (0, 2))),
        ArrayCase(_unindex, (M,), ((3, 3), (0, 0), (2, 3), (1, 1))),
    ],
    "stack": [
        ArrayCase(lambda *xs: np.stack(np.broadcast_arrays(*xs)), (V, W), stepped=(0, 1)),
        ArrayCase(lambda *xs: np.stack(np.broadcast_arrays(*xs)), (M[0], 3.0), stepped=(0, 1)),
    ],
    "sum_to": _cases(_sum_to, [(M,)], [((3,),), ((2, 1),), ((1, 3),)]),
    "expand_dims": _cases(
        lambda x, axis: np.expand_dims(x, axis), [(M,), (V,)], [(0,), ((0, 2),), (-1,)]
    ),
    "flip": _cases(lambda x, axis: np.flip(x, axis), [(M,), (V,)], [(None,), (0,), (-1,)]),
    "roll": _cases(
        lambda x, shift, axis: np.roll(x, shift, axis),
        [(M,)],
        [(1, None), (-1, 1), ((1, 2), (0, 1))],
    ),
    "tril": _cases(lambda x, k: np.tril(x, k), [(M,), (N,)], [(0,), (1,), (-1,)]),
    "triu": _cases(lambda x, k: np.triu(x, k), [(M,), (N,)], [(0,), (1,), (-1,)]),
    "cumsum": _cases(lambda x, axis: np.cumsum(x, axis), [(M,), (V,)], [(None,), (0,), (-1,)]),
    "diff": _cases(lambda x, n, axis: np.diff(x, n, axis), [(M,)], [(1, -1), (2, 1), (1, 0)]),
    "concatenate": [
        ArrayCase(
            lambda a, b, axis: np.concatenate([a, b], axis), (V, W[:2]), (0,), stepped=(0, 1)
        ),
        ArrayCase(lambda a, b, axis: np.concatenate([a, b], axis), (M, N.T), (1,), stepped=(0, 1)),
    ],
    "stacked": [
        ArrayCase(lambda a, b, axis: np.stack([a, b], axis), (V, W), (1,), stepped=(0, 1)),
        ArrayCase(lambda a, b, axis: np.stack([a, b], axis), (M, M[::-1]), (-1,), stepped=(0, 1)),
    ],
    "tile": _cases(lambda x, reps: np.tile(x, reps), [(V[:3],), (M,)], [(2,), ((2, 1, 2),)]),
    "repeat": _cases(
        lambda x, repeats, axis: np.repeat(x, repeats, axis), [(M,)], [(2, None), (3, 1), (1, 0)]
    ),
    "squeeze": _cases(
        lambda x, axis: np.reshape(x, [n for n in np.shape(x) if n != 1]),
        [(M[None, :1],), (V[:, None],)],
        [(None,)],
    ),
    "cumprod": _cases(
        lambda x, axis: np.cumprod(x.reshape(-1) if axis is None else x, axis or 0),
        [(M,), (V,)],
        [(None,), (0,), (-1,)],
    ),
    "sort": _cases(
        lambda x, axis: np.take_along_axis(
            x, np.argsort(np.vectorize(lambda v: float(mpmath.re(v)))(x), axis=axis), axis=axis
        ),
        [(M,), (V,)],
        [(0,), (-1,)],
    ),
    "tensordot": [
        ArrayCase(
            lambda a, b, ia, ib: np.tensordot(a, b, axes=(ia, ib)),
            (M, N),
            ((1,), (0,)),
            stepped=(0, 1),
        ),
        ArrayCase(
            lambda a, b, ia, ib: np.tensordot(a, b, axes=(ia, ib)),
            (M, M),
            ((0, 1), (0, 1)),
            stepped=(0, 1),
        ),
    ],
    "einsum": [
        ArrayCase(lambda a, b, s: np.einsum(s, a, b), (M, N), ("ij,jk->ik",), stepped=(0, 1)),
        ArrayCase(lambda a, b, s: np.einsum(s, a, b), (M, M), ("ij,ij->i",), stepped=(0, 1)),
        ArrayCase(lambda a, s: np.einsum(s, a), (M[:, :2],), ("ii->i",), stepped=(0,)),
    ],
    "kron": [
        ArrayCase(lambda a, b: np.kron(a, b), (M, N[:2]), stepped=(0, 1)),
        ArrayCase(lambda a, b: np.kron(a, b), (V[:3], W[:2]), stepped=(0, 1)),
    ],
    "polyval": [
        ArrayCase(lambda p, x: np.polyval(p, x), (W[:3], V), stepped=(0, 1)),
        ArrayCase(
            lambda p, x: np.polyval(p, x), ([1.0, -3.0, 3.0, -1.0], [1.0001, 0.5]), stepped=(1,)
        ),
    ],
    "gather": [
        ArrayCase(lambda x, i, axis: x[_ints(i)], (V, [0, 2, 2, -1]), (0,)),
        ArrayCase(lambda x, i, j, axis: x[:, _ints(i), _ints(j)], (M[None], [1, 0], [2, 2]), (1,)),
    ],
    "scatter_add": [
        ArrayCase(_added, (V[:3], [1, 1, 0]), ((4,), 0)),
        ArrayCase(_added, (N[:2], [0, 1], [[2], [1]]), ((2, 3), 0)),
    ],
    "take_along_axis": [
        ArrayCase(
            lambda x, i, axis: np.take_along_axis(x, _ints(i), axis), (M, [[2, 0], [1, 1]]), (1,)
        ),
        ArrayCase(lambda x, i, axis: x.reshape(-1)[_ints(i)], (N, [5, 0, 5]), (None,)),
    ],
    "trace": [ArrayCase(lambda x: np.trace(x), (M,)), ArrayCase(lambda x: np.trace(x), (N,))],
    "diag": [ArrayCase(_diag, (V[:3],)), ArrayCase(_diag, (M,))],
    "outer": [
        ArrayCase(lambda a, b: np.outer(a, b), (V[:3], W[:2]), stepped=(0, 1)),
        ArrayCase(lambda a, b: np.outer(a, b), (M, V[:2]), stepped=(0, 1)),
    ],
    "broadcast_to": [
        ArrayCase(lambda x, shape: np.broadcast_to(x, shape), (V[:3],), ((2, 3),)),
        ArrayCase(lambda x, shape: np.broadcast_to(x, shape), (M[:1],), ((3, 2, 3),)),
        ArrayCase(lambda x, shape: np.broadcast_to(x, shape), (W[:2],), ((3, 2),)),
        ArrayCase(lambda x, shape: np.broadcast_to(x, shape), (np.array(2.5),), ((2, 2),)),
    ],
}


# --- The tests -------------------------------------------------------------------------------

ANALYTIC = sorted(
    name for name, prim in REGISTRY.items() if prim.analytic and prim.forward is not None
)


def outcome(name: str) -> Outcome:
    """Every comparison for one primitive (also used to measure ulps by hand)."""
    forward = REGISTRY[name].forward
    if name in ELEMENTWISE:
        return ELEMENTWISE[name].run(forward)
    total = Outcome(0, 0, [])
    for case in ARRAYS[name]:
        one = case.run(forward)
        total = Outcome(
            total.compared + one.compared, total.skipped + one.skipped, total.parts + one.parts
        )
    return total


@pytest.mark.parametrize("name", ANALYTIC)
def test_complex_forward_matches_mpmath(name: str) -> None:
    if name not in ELEMENTWISE and name not in ARRAYS:
        pytest.fail(f"{name} is registered analytic but has no mpmath reference here")
    result = outcome(name)
    assert result.compared >= MIN_COMPARED, f"only {result.compared} points compared"
    failures = sorted(result.failures, key=lambda m: -m.ulps)
    assert not failures, f"{len(failures)} parts off, the worst:\n" + "\n".join(
        map(str, failures[:8])
    )


BATCHED = sorted(name for name in ARRAYS if REGISTRY[name].batch is not None)


@pytest.mark.parametrize("name", BATCHED)
def test_batch_rules_take_the_same_complex_path(name: str) -> None:
    """The checker evaluates many points at once, through each array primitive's batch rule:
    for complex input it must give what the forward gives, so that the accuracy held above is
    the accuracy the checker sees. (A consistency check; the reference is mpmath, above.)"""
    prim = REGISTRY[name]
    for case in ARRAYS[name]:
        real = [np.asarray(a, dtype=float) for a in case.inputs]
        rows = [zs for zs, _ in itertools.islice(case._steps(real), 3)]
        args = [np.stack([row[k] for row in rows]) for k in range(len(real))]
        items = [a.shape for a in real]
        out = prim.output_shape(*items, attrs=case.attrs)
        with np.errstate(all="ignore"):
            batched = np.asarray(prim.batch(args, [True] * len(args), items, out, *case.attrs))
            for i, row in enumerate(rows):
                single = np.asarray(prim.forward(*row, *case.attrs))
                assert batched[i].shape == single.shape
                for part in (np.real, np.imag):
                    b, s = part(batched[i]), part(single)
                    assert np.all(np.abs(b - s) <= ULPS * EPS * np.abs(s) + FLOOR), (case, i)
