"""Kinks judged as a whole: where several variables meet a kink, the gradient vector is judged.

For each probed direction d (coordinate directions, random ones, and the directions along the
kink), g·d must lie between the one-sided directional derivatives; an entry that lies between
its own one-sided derivatives can still belong to no subgradient. Kinks that only an underflow
made are found in extended precision and judged as what they are: not the formula's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..evaluation.interpreter import evaluate
from ..graph.nodes import Node, toposort
from ..transforms.forward import TANGENT, jvps
from . import finite_diff as fd
from .kinks import Directional, directions, one_sided_along
from .probes import MAX_RUNGS, MAX_WIDE_ROWS
from .run import Run
from .structure import moving_nodes, row_sums
from .tolerances import SAFETY
from .verdicts import KINK, KINK_FAIL, PASS, UNCHECKED, VariableCheck


def mark_not_subgradients(
    checks: Sequence[VariableCheck], directional: Directional, gradient: Mapping[str, np.ndarray]
) -> None:
    """Entries that lie between their own one-sided derivatives, at a point where the gradient
    as a whole is no subgradient: "not differentiable, not a subgradient", saying along which
    direction. `gradient` is the gradient judged, by variable, as (points, elements)."""
    outside = np.flatnonzero(directional.outside(gradient))
    by_name = {vc.name: vc for vc in checks}
    for k in outside:
        p = int(directional.points[k])
        message = directional.describe(int(k), gradient)
        for name, sl in directional.layout.items():
            vc = by_name.get(name)
            if vc is None:
                continue
            moved = np.abs(directional.moves[k, sl]) > 0
            columns = [0] if vc.direction is not None else np.flatnonzero(moved)
            for e in columns:
                if vc.verdict[p, e] == KINK:
                    vc.verdict[p, e] = KINK_FAIL
                    vc.messages[p, int(e)] = message


class JudgingKinks(Run):
    """The one-sided derivatives along directions at kinks, and kinks made by underflow."""

    def underflowed_switches(self) -> dict[int, str]:
        """The points whose kink or jump is an artefact of underflow, with why.

        heaviside(sqrt(x*y), h) at x·y = 1e-498: float64 makes x·y 0, so the program takes the
        middle value h where the formula takes 1, and its gradient is that of another branch
        (min([a, b]) where both underflow to 0 is the same: a tie that the formula does not
        have). Such a point is found by evaluating the switches again in extended precision
        (numpy's longdouble, whose exponent reaches 1e-4951): a switch that float64 makes 0,
        that is not 0 there, with a value below float64's range on the way."""
        found: dict[int, str] = {}
        if not self.switches or np.finfo(np.longdouble).tiny >= self.tiny:
            return found  # no wider exponent on this machine
        zero = self.base_sign[:, : self.kink_columns] == 0
        rows = np.flatnonzero(zero.any(axis=1))[:MAX_WIDE_ROWS]
        if rows.size == 0:
            return found
        order = toposort(self.switches)
        moving = moving_nodes(order)
        with np.errstate(all="ignore"):
            try:
                values, _, kept = evaluate(
                    self.switches, self._rows(rows), np.longdouble, keep_all=True, batched=True
                )
            except TypeError:  # a primitive without extended precision (numpy.linalg)
                return found
            # By node and row: a value below float64's range at the node or before it.
            below: dict[Node, np.ndarray] = {}
            for node in order:
                if node not in moving:
                    continue
                seen = np.zeros(len(rows), bool)
                for i in node.inputs:
                    seen |= below.get(i, False)
                v = np.asarray(kept[node])
                if v.dtype == np.longdouble and v.ndim:
                    v = np.broadcast_to(v, (len(rows), *v.shape[1:])).reshape(len(rows), -1)
                    seen |= ((v != 0) & (np.abs(v) < self.tiny)).any(axis=1)
                below[node] = seen
            wide = self._switch_values(values, len(rows))
        none = np.zeros(len(rows), bool)  # a constant switch (heaviside(0.1, w)) never moves
        small = np.concatenate(
            [
                np.repeat(below.get(switch, none)[:, None], int(np.prod(item, dtype=int)), axis=1)
                for switch, item in zip(self.switches, self.switch_items, strict=True)
            ],
            axis=1,
        )
        lost = zero[rows] & (wide != 0) & np.isfinite(wide) & small
        for i in np.flatnonzero(lost.any(axis=1)):
            k = int(np.flatnonzero(lost[i])[0])
            found[int(rows[i])] = (
                "on a kink or jump only because a value underflowed: a switching function that "
                f"float64 computes as 0 is {float(wide[i, k]):.3g} in extended precision, so "
                "the program takes another branch than the formula"
            )
        return found

    def settle_underflowed(self, checks: Sequence[VariableCheck]) -> None:
        """Passes and kink verdicts at `underflowed_switches` points become unchecked: the
        float64 program is there not the formula (a failure stands: its two derivatives of the
        same function disagree)."""
        for p, why in self.underflowed_switches().items():
            for vc in checks:
                for e in np.flatnonzero(np.isin(vc.verdict[p], [PASS, KINK, KINK_FAIL])):
                    vc.verdict[p, e] = UNCHECKED
                    vc.messages[p, int(e)] = why

    def directional(
        self, checks: Sequence[VariableCheck], names: Sequence[str]
    ) -> Directional | None:
        """The one-sided derivatives along the directions of `kinks.directions` in the
        coordinates of the variables `names` (the others held), at every point where an entry of
        `checks` was found not differentiable, if there are two coordinates or more."""
        sizes = {n: int(np.prod(self.shapes[n], dtype=int)) for n in names}
        total = sum(sizes.values())
        kinked = np.zeros(self.count, bool)
        for vc in checks:
            kinked |= np.isin(vc.verdict, [KINK, KINK_FAIL]).any(axis=1)
        points = np.flatnonzero(kinked)
        if total < 2 or points.size == 0:
            return None
        layout, start = {}, 0
        for n in names:
            layout[n] = slice(start, start + sizes[n])
            start += sizes[n]
        probed = self._switch_normals(points, names, layout, total)
        normals, still, errors = (None, None, None) if probed is None else probed
        # On a jump (heaviside(w, 0.5) times a w of 0 is continuous there, but not regular) the
        # one-sided rates along a direction bound no generalized gradient: not judged as a whole.
        # A jump's switch that no move stirs from 0 (equal(a, a), heaviside of relu(x) at x < 0)
        # is constant there: no jump.
        jumps = self.base_sign[points, : self.kink_columns] == 0
        jumps &= self.jump_columns[None, :]
        if still is not None:
            jumps &= ~still
        keep = ~jumps.any(axis=1)
        points = points[keep]
        if points.size == 0:
            return None
        if normals is not None:
            normals, errors = normals[keep], errors[keep]
        x = np.concatenate([self._values(n)[points] for n in names], axis=1)
        scale = np.maximum(1.0, np.abs(x))
        rng = np.random.default_rng(0)
        rows, owners, moves, tangent = [], [], [], []
        for i, p in enumerate(points):
            active = None
            if normals is not None:
                active = normals[i][self.base_sign[p, : normals.shape[1]] == 0] * scale[i]
            for d in directions(x[i], active, rng):
                rows.append(p)
                owners.append(i)
                moves.append(d * scale[i])
                if normals is not None:
                    tangent.append(self._tangent(p, normals[i], moves[-1]))
        rows, moves = np.array(rows, dtype=int), np.array(moves).reshape(len(rows), total)
        along_kink = np.array(tangent) if tangent else None
        directional = _Along(self, rows, along_kink, names, layout)
        everything = np.arange(len(rows))
        (left, right, tol), second = directional(everything, moves)
        # Moves are scaled by max(1, |x|), so the ladder's floor (64ε) cannot reach a kink among
        # coordinates of 1e-182: where no step resolved a direction that moves only coordinates
        # below 1, it is tried again in units of the largest coordinate it moves.
        at = x[np.array(owners, dtype=int)]
        size = np.where(moves != 0, np.abs(at), 0.0).max(axis=1, initial=0.0)
        retry = np.flatnonzero((np.isnan(left) | np.isnan(right)) & (size > 0) & (size < 1))
        if retry.size:
            small = moves[retry] * size[retry, None]
            (l2, r2, t2), (l3, r3, t3) = directional(retry, small)
            done = ~np.isnan(l2) & ~np.isnan(r2)
            put = retry[done]
            moves = moves.copy()
            moves[put] = small[done]
            left[put], right[put], tol[put] = l2[done], r2[done], t2[done]
            for old_, new_ in zip(second, (l3, r3, t3), strict=True):
                old_[put] = new_[done]
        if along_kink is not None and along_kink.any():
            owner = np.array(owners, dtype=int)
            slack = _misalignment(checks, names, points, owner, moves, normals, errors, along_kink)
            tol, second = tol + slack, (*second[:2], second[2] + slack)
        return Directional(rows, moves, left, right, tol, layout, second)

    def _tangent(self, p: int, normals: np.ndarray, move: np.ndarray) -> np.ndarray:
        """Which switches that are 0 at point `p` the move runs along (normal ⟂ move): (K,)."""
        with np.errstate(all="ignore"):  # each scaled by its largest entry: no overflow
            rows = np.abs(normals).max(axis=1, initial=0.0)
            n = normals / np.where(rows > 0, rows, 1.0)[:, None]
            d = move / (np.abs(move).max(initial=0.0) or 1.0)
            size = _norm(n, axis=1) * _norm(d)
            along = np.abs(n @ d) <= 1e-9 * size
        return (self.base_sign[p, : normals.shape[0]] == 0) & along & (size > 0)

    def _stencil_along(
        self,
        points: np.ndarray,
        moves: np.ndarray,
        offsets: np.ndarray,
        h: np.ndarray,
        layout: Mapping[str, slice],
    ):
        """φ(t) = f(x + t·d) at every offset of every (point, direction) row, moving every
        variable of `layout` at once: f (R, m) and the kinks' signs (R, m, K)."""
        m = len(offsets)
        width = max(1, moves.shape[1])
        per_chunk = max(1, self.options.max_elements // (m * width))
        fs, signs = [], []
        for start in range(0, len(points), per_chunk):
            sl = slice(start, start + per_chunk)
            rows = np.repeat(points[sl], m)
            t = np.tile(offsets, len(rows) // m) * np.repeat(h[sl], m)
            env = self._rows(rows)
            for name, part in layout.items():
                base = self._values(name)[rows]
                moved = base + t[:, None] * np.repeat(moves[sl, part], m, axis=0)
                env[name] = moved.reshape(len(rows), *self.shapes[name])
            values, _, _ = evaluate(
                [self.program.output, *self.switches, *self.witnesses],
                env,
                self.dtype,
                batched=True,
            )
            fs.append(row_sums(values[0], len(rows)).reshape(-1, m))
            sign = self._signature(values[1:], len(rows), rows)
            signs.append(sign.reshape(len(rows) // m, m, sign.shape[1]))
        return np.concatenate(fs), np.concatenate(signs)

    def _switch_normals(
        self, points: np.ndarray, names: Sequence[str], layout: Mapping[str, slice], total: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The gradient of every switching function at each point, (points, K, total), whether
        it stays exactly 0 under every move, (points, K), and the error of the gradient, (points,
        K, total), from its difference with the same at half the step; None without switches or
        for many coordinates.

        By central differences of the switches, not by forward mode: the directions along a
        kink must not come from the rules under test (a wrong partial of hypot tilted its
        switch's gradient by just what hid the error along the kink). A switch that is a cone
        at its tip (the gap between the two smallest elements of min, at their tie) has no
        central difference, only a sign-blind slope on each side: there forward mode's
        gradient is taken."""
        if not self.switches or total > 64 or 4 * len(points) * total > self.options.max_elements:
            return None
        x = np.concatenate([self._values(n)[points] for n in names], axis=1)  # (P, total)
        h = self._power_of_two(fd.CENTRAL.coefficient(self.eps) * np.maximum(1.0, np.abs(x)))
        rows = np.repeat(points, 4 * total)
        eye = np.eye(total)
        moves = np.tile(np.concatenate([eye, -eye, eye / 2, -eye / 2]), (len(points), 1))
        moves = moves * np.repeat(h, 4 * total, axis=0)
        env = self._rows(rows)
        for n in names:
            moved = self._values(n)[rows] + moves[:, layout[n]]
            env[n] = moved.reshape(len(rows), *self.shapes[n])
        values, _, _ = evaluate(self.switches, env, self.dtype, batched=True)
        s4 = self._switch_values(values, len(rows)).reshape(len(points), 4, total, -1)
        s = s4[:, :2]  # the steps ±h; ±h/2, inside them, only estimate the error
        base = self.base_switch[points][:, None, : self.kink_columns]  # (P, 1, K)
        with np.errstate(all="ignore"):
            jac = ((s[:, 0] - s[:, 1]) / (2 * h[:, :, None])).transpose(0, 2, 1)  # (P, K, total)
            # A central difference's error is c·h² + rounding: 4/3 of its difference from the
            # one at h/2, taken twice over. The half steps stay within the steps ±h, so they
            # cross no kink that those do not (twice the step could: abs(w) at w = h).
            half = ((s4[:, 2] - s4[:, 3]) / h[:, :, None]).transpose(0, 2, 1)
            error = 2 * np.abs(jac - half)
            side = np.abs((s[:, 0] - base) / h[:, :, None]).transpose(0, 2, 1)
            # a cone: the central slope is nothing next to the slope on either side
            flat = ~(np.abs(jac) > 1e-3 * side).any(axis=2)  # (P, K)
        # A zero that no move crosses is a tip, not a surface (a gap of min is ≥ 0): the two
        # sides of a central difference may even see different pieces (another element
        # becoming the second smallest on one side only).
        at_zero = base[:, 0] == 0
        flat |= at_zero & ((s >= 0).all(axis=(1, 2)) | (s <= 0).all(axis=(1, 2)))
        still = at_zero & (s == 0).all(axis=(1, 2))
        if flat.any():
            jac = np.where(
                flat[:, :, None], self._forward_normals(points, names, layout, total), jac
            )
            error = np.where(flat[:, :, None], 0.0, error)
        return jac, still, error

    def _forward_normals(
        self, points: np.ndarray, names: Sequence[str], layout: Mapping[str, slice], total: int
    ) -> np.ndarray:
        """The switches' gradients by forward mode along each coordinate: (points, K, total)."""
        graph = self.program.graph
        tangents = {self.program.variables[n]: graph.var(n + TANGENT) for n in names}
        shapes = {**self.shapes, **{n + TANGENT: self.shapes[n] for n in names}}
        outs = jvps(self.switches, tangents, shapes)
        rows = np.repeat(points, total)
        env = self._rows(rows)
        eye = np.tile(np.eye(total), (len(points), 1))
        for n in names:
            env[n + TANGENT] = eye[:, layout[n]].reshape(len(rows), *self.shapes[n])
        values, _, _ = evaluate(outs, env, self.dtype, batched=True)
        columns = []
        for v, item in zip(values, self.switch_items, strict=True):
            v = np.asarray(v, dtype=float)
            if v.ndim == len(item):  # a tangent that does not move: a constant
                v = v[None]
            columns.append(np.broadcast_to(v, (len(rows), *item)).reshape(len(rows), -1))
        jac = np.concatenate(columns, axis=1)  # (rows, K)
        return jac.reshape(len(points), total, -1).transpose(0, 2, 1)


class _Along:
    """The one-sided derivatives of f along moves from the rows' points (`kinks.one_sided_along`
    with this run's stencils): called with the rows to take and their moves."""

    def __init__(
        self,
        run: JudgingKinks,
        rows: np.ndarray,
        along_kink: np.ndarray | None,
        names: Sequence[str],
        layout: Mapping[str, slice],
    ):
        self.run, self.rows, self.along_kink, self.layout = run, rows, along_kink, layout
        self.terms = np.concatenate([run.scales[n][rows] for n in names], axis=1)

    def __call__(self, which: np.ndarray, mv: np.ndarray):
        run, rows = self.run, self.rows[which]
        along_kink = self.along_kink[which] if self.along_kink is not None else None
        rounding = run.eps * np.einsum("dn,dn->d", np.abs(self.terms[which]), np.abs(mv))

        def stencil(pts, mv, offsets, h):
            f, signs = run._stencil_along(pts, mv, offsets, h, self.layout)
            if along_kink is not None:
                # Along a kink the switch stays within rounding of 0, and its sign at each
                # offset is noise: no step would be clean. Both pieces have the same rate
                # along the kink, so its side does not matter (a curved kink parts from
                # the direction at second order, which the error estimate sees).
                k = along_kink.shape[1]
                signs[:, :, :k] = np.where(along_kink[:, None, :], 0, signs[:, :, :k])
            return f, signs

        return one_sided_along(
            stencil,
            rows,
            mv,
            run.f0[rows],
            run.base_sign[rows],
            run.noise[rows],
            rounding,
            run.eps,
            run._tolerance,
            float(run._power_of_two(fd.RICHARDSON.coefficient(run.eps))),
            64 * run.eps,
            MAX_RUNGS,
        )


def _misalignment(
    checks: Sequence[VariableCheck],
    names: Sequence[str],
    points: np.ndarray,
    owner: np.ndarray,
    moves: np.ndarray,
    normals: np.ndarray,
    errors: np.ndarray,
    along: np.ndarray,
) -> np.ndarray:
    """How far apart the pieces' rates along each move can be, where the move runs along a kink
    only as well as the kink's normal is known: 0 for a move along no kink.

    The pieces of a continuous f differ across a kink by a gradient parallel to its normal n,
    as large as the jump J of f's gradient there (|right − left| of the coordinates' one-sided
    derivatives, measured, not the rules under test). A move d built ⟂ to the measured normal
    is off the true kink by an angle of |error of n|/|n|, so the pieces' rates along it differ
    by up to J·|d| times that: any gradient between them may lie that far from the one
    piece a stencil along a curved kink sees (max(A, B) with B curving away from A on both
    sides, where the rates seen are A's and the subgradients' reach B's). SAFETY times."""
    by_name = {vc.name: vc for vc in checks}
    gaps = [np.zeros((len(points), 0))]
    with np.errstate(all="ignore"):
        for name in names:
            vc = by_name.get(name)
            if vc is None or vc.direction is not None:  # no sides by element (all passed)
                continue
            gaps.append(np.nan_to_num(vc.right[points] - vc.left[points], nan=0.0))
        jump = _norm(np.concatenate(gaps, axis=1), axis=1)  # (P,)
        size = _norm(normals, axis=2)
        relative = np.where(size > 0, _norm(errors, axis=2) / size, 0.0)  # (P, K)
        # A normal whose error is not a number is not known at all: nothing along it is judged.
        relative = np.where(np.isnan(relative), np.inf, relative)
        off = np.where(along, relative[owner], 0.0).sum(axis=1)  # 0 for an exact normal
        slack = SAFETY * jump[owner] * off * _norm(moves, axis=1)
        # An exact normal (a linear switch, a cone's tip by forward mode) leaves no slack,
        # whatever the jump: never inf·0.
        return np.where(off > 0, np.where(np.isnan(slack), np.inf, slack), 0.0)


def _norm(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """The 2-norm along `axis`, scaled by the largest magnitude first, so that entries of 1e200
    do not overflow it (nor entries of 1e-200 underflow it)."""
    a = np.asarray(a, dtype=float)
    with np.errstate(all="ignore"):
        m = np.abs(a).max(axis=axis, keepdims=True, initial=0.0)
        unit = np.where((m > 0) & np.isfinite(m), m, 1.0)
        out = np.squeeze(unit, axis=axis) * np.sqrt(np.sum((a / unit) ** 2, axis=axis))
        return np.where(np.isinf(np.squeeze(m, axis=axis)), np.inf, out)
