"""Kinks: one-sided differences, and the judgement of a whole gradient where f has no derivative.

At a kink a gradient g can still be right or wrong. For every direction d, g·d must lie between
the one-sided directional derivatives −f′(x; −d) and f′(x; d) (for a convex f this is exactly the
subgradient inequality, and it holds for every element of Clarke's generalized gradient too).
Judged one coordinate at a time, g = (1, 1) for max(x, y) at x = y passes, since each partial lies
in [0, 1]; along d = (1, 1), f changes at the rate 1 on both sides and g·d = 2 is no subgradient.
So where several variables meet a kink the gradient is judged as a vector, along:

- random directions;
- directions that keep every tie: d_j = φ(x_j) for a few functions φ (1, x, cos(a·x + b)), so
  that elements of equal value move together (a tie of max or min, inside an array or across
  variables) and any switching function that is homogeneous in x stays at 0;
- random directions projected along the kink, onto the null space of the gradients of the
  switching functions that are 0 at the point (the coordinate directions are the per-element
  checks themselves).

Directions live in scaled coordinates, each coordinate in units of max(1, |x_j|), so that no
variable moves by more than its own scale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import finite_diff as fd

RANDOM_DIRECTIONS = 4
PROJECTED_DIRECTIONS = 3


class Sides:
    """One-sided and central differences from φ at -2h, -h, h, 2h, and which sides are clean.

    A side is clean when its two points are finite and on the same side of every kink as the
    point itself (or the point is on the kink). A jump is a kink where the value itself breaks:
    extrapolating a side's two points to the point misses φ(0) by more than a side's own change.
    """

    def __init__(self, f, f0, h, eps, noise, signs, base):
        with np.errstate(all="ignore"):
            sides = fd.one_sided(f, f0, h, eps, noise)
            self.left, self.left_error, self.right, self.right_error = sides
            self.error = self.left_error + self.right_error
            self.central = (f[:, 2] - f[:, 1]) / (2 * h)
            wide = (f[:, 3] - f[:, 0]) / (4 * h)
            noise = np.maximum(noise, eps * np.abs(f).max(axis=1))
            self.central_error = np.abs(wide - self.central) / 3 + noise / h
            self.left_limit = 2 * f[:, 1] - f[:, 0]
            self.right_limit = 2 * f[:, 2] - f[:, 3]
            self.breaks = (
                np.abs(f0 - self.left_limit) > 8 * np.abs(f[:, 1] - f[:, 0]) + 16 * noise
            ) | (np.abs(f0 - self.right_limit) > 8 * np.abs(f[:, 2] - f[:, 3]) + 16 * noise)
        self.jump = (base == 0).any(axis=1) & self.breaks
        finite = np.isfinite(f) & np.isfinite(f0)[:, None]
        at_kink = base == 0

        def clean(outer: int, inner: int) -> np.ndarray:
            same = (signs[:, outer] == signs[:, inner]) & (at_kink | (signs[:, inner] == base))
            return same.all(axis=1) & finite[:, outer] & finite[:, inner]

        self.left_ok, self.right_ok = clean(0, 1), clean(3, 2)


def directions(x: np.ndarray, normals: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Directions to judge a gradient along at one point, in scaled coordinates: (D, n).

    `x` is the point's coordinates, all variables flattened (n,); `normals` the gradients of the
    switching functions that are 0 there, in scaled coordinates (a, n), or None.

    Only the coordinates that move those switches move (all of them without `normals`): along
    the others f is smooth and each element is judged by itself, and a coordinate of 1e206
    inside a sine would leave every direction that moves it with no clean step at all.
    """
    involved = np.ones(x.size, bool)
    if normals is not None and normals.size:
        moving = np.isfinite(normals) & (normals != 0)
        if moving.any():
            involved = moving.any(axis=0)
    out = _directions(np.where(involved, x, 0.0), normals, rng)
    out = out * involved
    kept = [d / np.abs(d).max() for d in out if np.abs(d).max() > 0]
    return np.array(kept).reshape(len(kept), x.size)


def _directions(x: np.ndarray, normals: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """The directions of `directions`, over every coordinate."""
    n = x.size
    out = [rng.standard_normal(n) for _ in range(RANDOM_DIRECTIONS)]
    out += [np.ones(n), x / np.maximum(1.0, np.abs(x))]
    a, b = rng.uniform(0.5, 2.0, 2), rng.uniform(0.0, np.pi, 2)
    out += [np.cos(a[k] * np.tanh(x) + b[k]) for k in range(2)]
    if normals is not None and normals.size:
        basis = _null_space(normals)
        if basis.shape[1]:
            out += [
                basis @ rng.standard_normal(basis.shape[1]) for _ in range(PROJECTED_DIRECTIONS)
            ]
            out.append(basis @ (basis.T @ np.ones(n)))
    kept = [d / np.abs(d).max() for d in out if np.isfinite(d).all() and np.abs(d).max() > 0]
    return np.array(kept).reshape(len(kept), n)


def _null_space(normals: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the directions orthogonal to every row of `normals`: (n, k)."""
    normals = normals[np.isfinite(normals).all(axis=1) & (np.abs(normals).max(axis=1) > 0)]
    n = normals.shape[1]
    if not len(normals):
        return np.eye(n)
    _, s, vt = np.linalg.svd(normals)
    rank = int(np.sum(s > s.max() * n * 1e-12))
    return vt[rank:].T


@dataclass
class Directional:
    """One-sided directional derivatives at points on a kink: what any gradient there, the
    autograd one or a hand-derived one, is judged by."""

    points: np.ndarray  # (D,) the point of each direction
    moves: np.ndarray  # (D, n) the direction, in unscaled coordinates of all variables
    left: np.ndarray  # (D,) −f′(x; −d), nan where unresolved
    right: np.ndarray  # (D,) f′(x; d)
    tolerance: np.ndarray  # (D,)
    layout: dict[str, slice]  # where each variable's elements are among the n coordinates
    # The same at the clean step with the next smallest error: a gradient is ruled out along
    # a direction only if both steps rule it out (one step far out of its regime, at 1e282,
    # saw a rate of 3e221 on both sides where the pieces' rates were 1e238).
    second: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def outside(self, gradient: Mapping[str, np.ndarray]) -> np.ndarray:
        """(D,) whether g·d lies outside [min(left, right), max(left, right)] ± tolerance, for
        `gradient` as arrays (points, elements) by variable, at both steps."""
        g = np.concatenate(
            [np.asarray(gradient[name])[self.points] for name in self.layout], axis=1
        )
        with np.errstate(all="ignore"):
            along = np.einsum("dn,dn->d", g, self.moves)
        out = _outside(along, self.left, self.right, self.tolerance)
        if self.second is not None:
            out &= _outside(along, *self.second)
        return out

    def describe(self, k: int, gradient: Mapping[str, np.ndarray]) -> str:
        """Why direction `k` rules `gradient` out, in words."""
        g = np.concatenate([np.asarray(gradient[name])[self.points[k]] for name in self.layout])
        along = float(g @ self.moves[k])
        parts = []
        for name, sl in self.layout.items():
            d = self.moves[k, sl]
            shown = ", ".join(f"{v:.3g}" for v in d[:6]) + (", …" if d.size > 6 else "")
            parts.append(f"{name}: {shown}" if d.size == 1 else f"{name}: [{shown}]")
        return (
            f"not a subgradient as a whole: along the direction ({'; '.join(parts)}) the "
            f"gradient gives {along:.6g}, but f changes at the rates {self.left[k]:.6g} (left) "
            f"and {self.right[k]:.6g} (right)"
        )


def _outside(along, left, right, tolerance) -> np.ndarray:
    with np.errstate(all="ignore"):
        low = np.fmin(left, right) - tolerance
        high = np.fmax(left, right) + tolerance
        return np.isfinite(left) & np.isfinite(along) & ((along < low) | (along > high))


def one_sided_along(
    stencil: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[Any, Any]],
    points: np.ndarray,
    moves: np.ndarray,
    f0: np.ndarray,
    base: np.ndarray,
    noise: np.ndarray,
    rounding: np.ndarray,
    eps: float,
    tolerance: Callable[..., np.ndarray],
    first: float,
    floor: float,
    rungs: int,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The one-sided derivatives of f along each row of `moves` from its point, over steps
    from `first`, 8 times smaller each rung, down to `floor`: at the clean step (both sides on
    their own side of every kink) with the smallest error estimate, so that a second-order
    difference at a first, coarse step does not blur a gap of 5e-4: left, right and the
    tolerance to judge between them (nan where no step is clean, or where the value jumps);
    and the same at the clean step with the next smallest error."""
    count = len(points)
    left, right, tol, best = (np.full(count, np.nan) for _ in range(4))
    left2, right2, tol2, best2 = (np.full(count, np.nan) for _ in range(4))
    best[:] = best2[:] = np.inf
    h = first
    for _ in range(rungs):
        if h < floor:
            break
        steps = np.full(count, h)
        f, signs = stencil(points, moves, fd.ONE_SIDED_OFFSETS, steps)
        side = Sides(f, f0, steps, eps, noise, signs, base)
        with np.errstate(invalid="ignore"):
            clean = side.left_ok & side.right_ok & ~side.jump & ~side.breaks
            here = tolerance(
                np.maximum(np.abs(side.left), np.abs(side.right)), side.error, rounding
            )
            better = clean & (side.error < best)
            runner = clean & ~better & (side.error < best2)
        # the best so far becomes the runner-up where this step is better still
        for dst, src in ((left2, left), (right2, right), (tol2, tol), (best2, best)):
            dst[better] = src[better]
        left2[runner], right2[runner] = side.left[runner], side.right[runner]
        tol2[runner], best2[runner] = here[runner], side.error[runner]
        left[better], right[better] = side.left[better], side.right[better]
        tol[better], best[better] = here[better], side.error[better]
        h /= 8
    return (left, right, tol), (left2, right2, tol2)
