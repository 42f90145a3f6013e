"""Finite-difference references: stencils, steps, and how each method turns samples into a
derivative with an estimate of its own error.

Every method works on a one-dimensional slice φ(t) = f(x + t·d) of the function: it asks for φ at
`offsets · h` (imaginary offsets for the complex step) and combines those values into φ'(0) and an
error estimate. Each estimate compares two step sizes, so it measures both the truncation error and
the rounding noise actually present, and adds a bound on rounding from the values' magnitude.

Steps are relative to the point, h = c·max(1, |x|), with c chosen for the method's order and the
working precision ε: ε^(1/2) forward, ε^(1/3) central, ε^(1/5) for Richardson's coarsest step (its
finest is 1/8 of that), and ε^(5/4) for the complex step, which has no cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = ("auto", "forward", "central", "richardson", "complex")
_LEVELS = 4  # Richardson: central differences at h, h/2, h/4, h/8


@dataclass(frozen=True)
class Method:
    name: str
    offsets: np.ndarray  # multiples of h at which φ is sampled (complex for the complex step)
    power: float  # c = ε ** power

    def coefficient(self, eps: float) -> float:
        return eps**self.power

    def combine(
        self, f: np.ndarray, f0: np.ndarray, h: np.ndarray, eps: float, noise: Any = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """φ'(0), its error estimate, and the part of that estimate due to rounding, from
        samples f[..., k] = φ(offsets[k]·h) and f0 = φ(0).

        `noise` is the rounding error of one value of φ where it exceeds ε·|φ|: a small sum of
        large terms carries the rounding error of its terms.
        """
        return _COMBINE[self.name](f, f0, h, eps, noise)


def _noise(f: np.ndarray, f0: np.ndarray, eps: float, noise: Any) -> np.ndarray:
    """The rounding error of one sample of φ."""
    return np.maximum(eps * np.maximum(np.abs(f0), np.abs(f).max(axis=-1)), noise)


def _forward(f, f0, h, eps, noise):
    d1 = (f[..., 0] - f0) / h
    d2 = (f[..., 1] - f0) / (2 * h)
    rounding = 2 * _noise(f, f0, eps, noise) / h
    return d1, np.abs(d2 - d1) + rounding, rounding  # d2 - d1 ≈ h·φ''/2, d1's truncation error


def _central(f, f0, h, eps, noise):
    c1 = (f[..., 0] - f[..., 1]) / (2 * h)
    c2 = (f[..., 2] - f[..., 3]) / (4 * h)
    rounding = _noise(f, f0, eps, noise) / h
    return c1, np.abs(c2 - c1) / 3 + rounding, rounding  # c2 - c1 ≈ 3·(c1's h²·φ'''/6)


def _richardson(f, f0, h, eps, noise):
    """Central differences at h/2^k, extrapolated to h → 0; the best diagonal entry wins."""
    d = [(f[..., 2 * k] - f[..., 2 * k + 1]) * (2**k / (2 * h)) for k in range(_LEVELS)]
    table = [d[0]]
    diagonal, errors = [d[0]], [np.full_like(d[0], np.inf, dtype=float)]
    for k in range(1, _LEVELS):
        row = [d[k]]
        for j in range(1, k + 1):
            row.append(row[j - 1] + (row[j - 1] - table[j - 1]) / (4**j - 1))
        errors.append(np.maximum(np.abs(row[k] - row[k - 1]), np.abs(row[k] - diagonal[-1])))
        diagonal.append(row[k])
        table = row
    diagonal, errors = np.stack(diagonal), np.stack(errors)
    best = np.argmin(errors, axis=0)
    estimate = np.take_along_axis(diagonal, best[None], axis=0)[0]
    error = np.take_along_axis(errors, best[None], axis=0)[0]
    rounding = 2**_LEVELS * _noise(f, f0, eps, noise) / h
    return estimate, error + rounding, rounding


def _complex(f, f0, h, eps, noise):
    """`noise` is what the imaginary part can lose to underflow: an imaginary part of 0 says
    only that |φ'| is below noise/h (Im atan2(x, y + ih) at y = 1e297 is h·1e-453, 0)."""
    d1 = np.imag(f[..., 0]) / h
    d2 = np.imag(f[..., 1]) / (_COMPLEX_SECOND * h)
    rounding = 2 * eps * np.abs(d1) + noise / h
    return d1, np.abs(d2 - d1) + rounding, rounding


_COMPLEX_SECOND = 1e6  # a second, larger imaginary step: its truncation error is still ~(1e6 h)²
_COMBINE = {
    "forward": _forward,
    "central": _central,
    "richardson": _richardson,
    "complex": _complex,
}

FORWARD = Method("forward", np.array([1.0, 2.0]), 1 / 2)
CENTRAL = Method("central", np.array([1.0, -1.0, 2.0, -2.0]), 1 / 3)
RICHARDSON = Method(
    "richardson",
    np.array([s * 2.0**-k for k in range(_LEVELS) for s in (1.0, -1.0)]),
    1 / 5,
)
COMPLEX = Method("complex", np.array([1j, 1j * _COMPLEX_SECOND]), 5 / 4)
BY_NAME = {m.name: m for m in (FORWARD, CENTRAL, RICHARDSON, COMPLEX)}

# One-sided second-order differences, for a point at a kink or a domain edge: φ at -2h, -h, h, 2h.
ONE_SIDED_OFFSETS = np.array([-2.0, -1.0, 1.0, 2.0])


def one_sided(f: np.ndarray, f0: np.ndarray, h: np.ndarray, eps: float, noise: Any = 0.0):
    """Left and right derivatives with their error estimates, from φ at -2h, -h, h, 2h."""
    fm2, fm1, fp1, fp2 = (f[..., k] for k in range(4))
    left = (3 * f0 - 4 * fm1 + fm2) / (2 * h)
    right = (-3 * f0 + 4 * fp1 - fp2) / (2 * h)
    rounding = 8 * _noise(f, f0, eps, noise) / h
    left_error = np.abs(left - (f0 - fm1) / h) + rounding
    right_error = np.abs(right - (fp1 - f0) / h) + rounding
    return left, left_error, right, right_error


def machine_eps(dtype: type[np.generic]) -> float:
    return float(np.finfo(dtype).eps)
