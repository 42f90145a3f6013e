"""The symmetry of a checked Hessian: a Hessian whose entries pass may still be asymmetric."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the API takes relative_asymmetry alone: its start-up needs no checker
    from .verdicts import VariableCheck


def relative_asymmetry(h: np.ndarray) -> np.ndarray:
    """max |H_ij - H_ji| / max |H_ij| over the last two axes (the difference itself where H is
    0), for one matrix or a stack of them."""
    with np.errstate(all="ignore"):
        worst = np.max(np.abs(h - np.swapaxes(h, -1, -2)), axis=(-2, -1), initial=0.0)
        scale = np.max(np.abs(h), axis=(-2, -1), initial=0.0)
        return np.where(scale > 0, worst / np.where(scale > 0, scale, 1.0), worst)


def asymmetry(checks: list[VariableCheck]) -> tuple[float | None, bool | None]:
    """The largest |H - Hᵀ| / max |H| over the points, and whether every |H_ij - H_ji| is within
    the sum of the two entries' tolerances: where large terms cancel (H of 1e-28 made from terms
    of 1e-14) rounding makes H slightly asymmetric relative to itself but not to its terms.
    (None with --fast, whose entries are directional derivatives rather than entries of H.)"""
    if any(vc.direction is not None for vc in checks):
        return None, None
    if not checks:  # nothing to differentiate in: an empty Hessian
        return 0.0, True
    rows: dict[str, list[VariableCheck]] = {}
    for vc in checks:
        rows.setdefault(vc.of, []).append(vc)

    def matrix(field: Callable[[VariableCheck], np.ndarray]) -> np.ndarray:  # (points, n, n)
        parts = [np.concatenate([field(vc) for vc in r], axis=1) for r in rows.values()]
        return np.stack(parts, axis=1)

    h, tol = matrix(lambda vc: vc.autograd), matrix(lambda vc: vc.tolerance)
    if not np.isfinite(h).all():  # a nan or inf entry: symmetry is not measured, not claimed
        return None, None
    # Only points whose entries were all judged as derivatives (passed or failed) bound their
    # pairs: an entry without a reference has no tolerance, and one at a kink, or unresolved,
    # says f may not be twice differentiable there, where H need not be symmetric (svdvals at
    # a tie). If such a pair differs, nothing is said: a Hessian of a polynomial with
    # H[0, 2] = 30 and H[2, 0] = 0, unchecked, was called symmetric.
    from .verdicts import FAIL, PASS  # only here: see the import above

    judged = matrix(lambda vc: np.isin(vc.verdict, (PASS, FAIL))).all(axis=(1, 2))
    with np.errstate(all="ignore"):
        bound = tol + np.swapaxes(tol, 1, 2)
        apart = np.abs(h - np.swapaxes(h, 1, 2))
        bounded = np.isfinite(bound) & judged[:, None, None]
    worst = float(np.max(relative_asymmetry(h), initial=0.0))
    if not np.all((apart <= bound) | ~bounded):
        return worst, False
    return worst, None if np.any(~bounded & (apart > 0)) else True
