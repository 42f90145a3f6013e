"""Kinks where f is not regular: no gradient lies between the one-sided rates in every direction.

At a tie of three in sum(sort(x)·w) with weights out of order, the rates along each tied
coordinate are 1 and 3 and along all three together 2: no vector fits them all, so the gradient
of each adjacent piece (a limiting gradient, which autograd gives) is ruled out as surely as a
wrong one. Where a linear program proves that nothing fits, with a margin no rounding of the
rates could close, the point is judged not differentiable rather than failed; where anything
fits, the verdicts stand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .kinks import Directional
from .verdicts import KINK, KINK_FAIL, VariableCheck


def abstain_where_nothing_fits(
    checks: Sequence[VariableCheck], directional: Directional | None
) -> None:
    """At a point where several pieces meet and f is not regular (sort at a tie of three, whose
    weights 1, −2, 3 give the rates 1 and 3 along each tied coordinate but sum to 2 along all
    three), no vector lies between the one-sided rates along every direction probed: the
    gradient of each piece, a limiting gradient, is ruled out as much as any wrong one. Such a
    point is judged not differentiable, not failed: the rates cannot tell a right gradient."""
    by_point: dict[int, list[tuple[VariableCheck, int]]] = {}
    for vc in checks:
        if vc.direction is not None:
            continue
        for p, e in zip(*np.nonzero(vc.verdict == KINK_FAIL), strict=True):
            by_point.setdefault(int(p), []).append((vc, int(e)))
    for p, failed in by_point.items():
        if _nothing_fits(checks, directional, p):
            for vc, e in failed:
                vc.verdict[p, e] = KINK
                vc.messages[p, e] = (
                    "several pieces meet here and no gradient lies between the one-sided rates "
                    "along every direction probed: f is not regular, and the rates judge none"
                )


def _nothing_fits(checks: Sequence[VariableCheck], directional: Directional | None, p: int) -> bool:
    """Whether no g has each kink entry between its one-sided derivatives, each smooth entry
    at its reference, and g·d between the one-sided rates along each direction at point p."""
    from scipy.optimize import linprog  # only at a failing kink: not at start-up

    low, high, layout = [], [], {}
    for vc in checks:
        at = slice(len(low), len(low) + vc.verdict.shape[1])
        layout[vc.name] = at
        for e in range(vc.verdict.shape[1]):
            tol = float(vc.tolerance[p, e]) if np.isfinite(vc.tolerance[p, e]) else 0.0
            if vc.verdict[p, e] in (KINK, KINK_FAIL):
                a, b = float(vc.left[p, e]), float(vc.right[p, e])
                low.append(min(a, b) - tol), high.append(max(a, b) + tol)
            else:  # its reference, or free where there is none (not the value judged)
                known = float(vc.reference[p, e])
                if np.isfinite(known):
                    low.append(known - tol), high.append(known + tol)
                else:
                    low.append(-np.inf), high.append(np.inf)
    if not all(np.isfinite(a) or a == -np.inf for a in low):
        return False  # an unresolved rate at the kink: nothing is proved infeasible
    rows, bounds = [], []
    if directional is not None:
        steps = [(directional.left, directional.right, directional.tolerance)]
        if directional.second is not None:
            steps.append(directional.second)
        for k in np.flatnonzero(directional.points == p):
            d = np.zeros(len(low))
            for name, sl in directional.layout.items():
                if name in layout:
                    d[layout[name]] = directional.moves[k, sl]
            # The interval allowed at either step: a direction rules out only what both do.
            ends = [
                (min(a[k], b[k]) - t[k], max(a[k], b[k]) + t[k])
                for a, b, t in steps
                if np.isfinite(a[k]) and np.isfinite(b[k]) and np.isfinite(t[k])
            ]
            if ends and np.any(d):
                size = np.abs(d).max()  # rows of entries near 1: solvers need them so
                rows.append(d / size)
                bounds.append((min(e[0] for e in ends) / size, max(e[1] for e in ends) / size))
    if not rows:
        return False
    # In units of the largest rate, which LP solvers need (rates of 1e160 read as infeasible),
    # and with every interval widened by a part in 10⁴ of that unit: only a gap that no
    # rounding of the rates could close proves that nothing fits.
    finite = [abs(v) for v in (*low, *high) if np.isfinite(v)]
    scale = max(max(finite, default=0.0), float(np.max(np.abs(bounds))), 1e-300)
    slack = 1e-4
    d = np.array(rows)
    lo, hi = np.array(bounds).T / scale
    widen = slack * np.abs(d).sum(axis=1)
    result = linprog(
        np.zeros(len(low)), A_ub=np.vstack([d, -d]), b_ub=np.concatenate([hi + widen, widen - lo]),
        bounds=[_scaled(a, b, scale, slack) for a, b in zip(low, high, strict=True)],
        method="highs",
    )  # fmt: skip
    return result.status == 2  # infeasible


def _scaled(a: float, b: float, scale: float, slack: float) -> tuple[float | None, float | None]:
    """An interval in units of `scale`, widened by `slack`; None for an unbounded end."""
    return (
        None if a == -np.inf else a / scale - slack,
        None if b == np.inf else b / scale + slack,
    )
