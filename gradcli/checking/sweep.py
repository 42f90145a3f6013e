"""The error of a finite-difference reference against its step (`gradcli check --sweep`).

For each checked entry, the method's estimate is taken at steps h = 2^-k·max(1, |x|) from 1 down
to 2^-52 and compared with the autograd derivative. Large steps err by truncation (∝ h^p, p the
method's order); small ones by rounding (∝ ε/h), which the complex step does not suffer: the
log-log curve is a V whose bottom is the best step. The slope of the truncation side is the
observed order of convergence; a curve that never dips below some level says the reference and
the autograd value disagree by that much, whatever the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..evaluation.gradient import prepared
from ..evaluation.interpreter import evaluate
from ..language.lower import Lowered
from ..language.source import GradcliError
from . import finite_diff as fd
from .verdicts import DTYPES

POINTS = 53  # steps per curve: h = 2^-k · max(1, |x|), k = 0 … 52, or further below a small |x|
ORDER = {"forward": 1, "central": 2, "richardson": 8, "complex": 2}  # truncation error ∝ h^p


@dataclass(frozen=True)
class Curve:
    """One entry's error at every step."""

    variable: str
    index: tuple[int, ...]
    autograd: float
    steps: np.ndarray  # h
    estimates: np.ndarray
    errors: np.ndarray  # |estimate - autograd|
    check_step: float  # the step `gradcli check` takes with this method

    @property
    def label(self) -> str:
        at = f"[{', '.join(map(str, self.index))}]" if self.index else ""
        return f"∂f/∂{self.variable}{at}"

    @property
    def best(self) -> int:
        """The position of the smallest error (the bottom of the V)."""
        errors = np.where(np.isfinite(self.errors), self.errors, np.inf)
        return int(np.argmin(errors))

    def observed_order(self) -> float | None:
        """The slope of log error against log h on the truncation side of the V: between the
        bottom (excluded, with its neighbours where rounding still matters) and the steps too
        large for the asymptotic regime; None when fewer than three steps qualify."""
        best = self.best
        floor = self.errors[best]
        scale = max(abs(self.autograd), np.finfo(float).tiny)
        keep = [
            k
            for k in range(len(self.steps))
            if self.steps[k] >= 4 * self.steps[best]
            and self.errors[k] > 10 * floor
            and self.errors[k] < 0.1 * scale
            and np.isfinite(self.errors[k])
        ]
        if len(keep) < 3:
            return None
        slope, _ = np.polyfit(np.log2(self.steps[keep]), np.log2(self.errors[keep]), 1)
        return float(slope)


def _exponents(x: np.ndarray) -> np.ndarray:
    """k for each element: 0 … 52, stretched to reach 2^-52·|x| when |x| < 1, so that steps
    smaller than x itself are seen (log x at x = 1e-300 is only resolved there)."""
    small = np.abs(x) < 1
    with np.errstate(divide="ignore"):
        extra = np.where(small & (x != 0), np.ceil(-np.log2(np.abs(x))), 0.0)
    last = np.minimum(52 + extra, 1074.0)  # 2^-1074: the smallest float64
    return np.round(np.linspace(0.0, 1.0, POINTS)[None, :] * last[:, None])


@dataclass(frozen=True)
class Sweep:
    method: str
    dtype: str
    expected_order: int
    curves: list[Curve]


def sweep(
    program: Lowered,
    values: Mapping[str, Any],
    method: str = "central",
    dtype: str = "float64",
    wrt: list[str] | None = None,
    eps_coefficient: float | None = None,
) -> Sweep:
    """Every entry of every variable in `wrt`, swept over the steps in one batched pass each."""
    if method == "auto":
        method = "central"
    if method not in fd.BY_NAME:
        raise GradcliError(
            f"unknown method {method!r}", hint="use forward, central, richardson or complex"
        )
    from ..evaluation.gradient import evaluate as evaluate_gradient

    program, arrays, _ = prepared(program, values)
    gradient = evaluate_gradient(program, arrays, wrt).gradient
    chosen = fd.BY_NAME[method]
    kind = DTYPES[dtype]
    eps = fd.machine_eps(kind)
    curves = []
    for name, g in gradient.items():
        x = arrays[name]
        size = x.size
        scale = np.maximum(1.0, np.abs(x.ravel()))  # (size,)
        h = np.exp2(-_exponents(x.ravel())) * scale[:, None]  # (size, steps)
        offsets = chosen.offsets
        moves = h[:, :, None] * offsets[None, None, :]  # (size, steps, m)
        rows = moves.size
        env: dict[str, Any] = {n: a[None] for n, a in arrays.items()}
        moved = np.broadcast_to(x.ravel(), (rows, size)).astype(moves.dtype)
        element = np.repeat(np.arange(size), moves.shape[1] * moves.shape[2])
        moved[np.arange(rows), element] += moves.ravel()
        env[name] = moved.reshape(rows, *x.shape)
        (f,), _, _ = evaluate([program.output], env, kind, batched=True)
        f = np.broadcast_to(f, (rows, *np.shape(f)[1:])).reshape(rows, -1).sum(axis=1)
        (f0,), _, _ = evaluate([program.output], {n: a for n, a in arrays.items()}, kind)
        f0 = np.sum(f0)
        with np.errstate(all="ignore"):
            estimates, _, _ = chosen.combine(f.reshape(moves.shape), f0, h, eps)
        c = eps_coefficient if eps_coefficient is not None else chosen.coefficient(eps)
        for k in range(size):
            index = tuple(int(i) for i in np.unravel_index(k, x.shape)) if x.shape else ()
            auto = float(np.ravel(g)[k])
            base = scale[k] if method != "complex" else max(abs(float(x.ravel()[k])), 2.0**-1000)
            with np.errstate(all="ignore"):
                errors = np.abs(np.real(estimates[k]) - auto)
            curves.append(
                Curve(
                    name,
                    index,
                    auto,
                    h[k],
                    np.real(estimates[k]),
                    errors,
                    float(2.0 ** np.floor(np.log2(c * base))),
                )
            )
    return Sweep(method, dtype, ORDER[method], curves)
