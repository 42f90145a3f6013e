"""Confirmation: failures, doubtful passes and kinks decided on ladders of smaller steps.

A relative step can be far too large for the function at a point; a correct gradient must not
pay for that. A failing probe is redone at smaller and smaller steps, and its verdict comes from
the references of the whole ladder (`Confirming._settle`); a probe whose stencil crossed a kink
or left the domain is refined to one-sided derivatives (`Confirming._refine`).
"""

from __future__ import annotations

import numpy as np

from . import finite_diff as fd
from .kinks import Sides
from .probes import MAX_RUNGS, UNSETTLED, Entries, Probes, believable, jump_note, labels
from .run import Run
from .verdicts import FAIL, KINK, KINK_FAIL, PASS, UNCHECKED


class Confirming(Run):
    """The ladders of smaller steps: refinement next to kinks, confirmation of failures."""

    def _refine(
        self, var: str, probes: Probes, scale: np.ndarray, idx: np.ndarray, entries: Entries
    ):
        """Probes whose stencil crossed a kink or left the domain: shrink the step 8 times at a
        time until both sides of the point are clean, then take a central difference if the two
        one-sided derivatives agree, or give the verdict "not differentiable" if they do not.
        A side that never becomes clean (a domain edge closer than the smallest usable step)
        leaves a one-sided reference, which may pass but never fails.

        As in `_confirm`, the steps go on below the rounding floor 64·ε·max(1, |x|) relative to
        |x| itself where |x| < 1: a kink at 0 is |x| away (sqrt(abs(x)) at x = 1e-232), and a
        step far above that is no step for the function, even on the side that stays clean."""
        s = entries.step[idx].copy()
        x = np.abs(self._coordinate(var, probes, idx))
        coarse_floor = 64 * self.eps * scale[idx]
        relative = self._power_of_two(fd.RICHARDSON.coefficient(self.eps) * x)
        small = (x > 0) & (x < 1)  # at x = 0 the kink is the point's own: no scale below 1
        floor = np.where(small, np.maximum(64 * self.eps * x, self.tiny), coarse_floor)
        todo = np.ones(len(idx), bool)
        last_ref = np.full(len(idx), np.nan)
        last_err = np.full(len(idx), np.nan)
        last_how = labels(len(idx), "none")
        jumped = np.zeros(len(idx), bool)  # last seen as a jump, and confirmed at every step since
        for _ in range(MAX_RUNGS):  # s ≥ the smallest normal number: a few dozen steps
            s = s / 8
            s = np.where(small & (s < coarse_floor) & (s > relative), relative, s)
            active = np.flatnonzero(todo & (s >= floor))
            if active.size == 0:
                break
            sub = probes.select(idx[active])
            h = s[active]
            where = idx[active]
            side, tol, smooth, kink = self._one_sided_rung(var, sub, h, entries.rounding[where])

            done = where[smooth]
            entries.reference[done] = side.central[smooth]
            entries.error[done] = side.central_error[smooth]
            entries.step[done] = h[smooth]
            entries.how[done] = "central, smaller step"
            _take_kinks(entries, where[kink], side, kink, tol, h, self.f0[sub.points])

            one = side.left_ok ^ side.right_ok
            chosen = active[one]
            last_ref[chosen] = np.where(side.left_ok, side.left, side.right)[one]
            last_err[chosen] = np.where(side.left_ok, side.left_error, side.right_error)[one]
            last_how[chosen] = np.where(side.left_ok, "one-sided, left", "one-sided, right")[one]
            # A jump passes any gradient, so it must hold at every smaller step: a transition
            # steeper than the step (sigmoid(1e29·x)) looks like one until the step is below
            # its width, and is then judged as what it is.
            leap = kink & side.jump
            settled = smooth | (kink & ~side.jump)
            for k in where[settled & jumped[active]]:
                entries.notes.pop(int(k), None)
            undone = where[smooth & jumped[active]]  # a jump at a coarser step, smooth here
            entries.verdict[undone] = PASS  # judged from the central difference, as any other
            entries.left[undone] = entries.right[undone] = np.nan
            entries.kink_tolerance[undone] = np.nan
            jumped[active[leap]] = True
            jumped[active[settled]] = False
            todo[active[settled]] = False
        self._confirm_jumps(var, probes, idx[jumped], x[jumped], entries)
        left = todo & ~jumped
        self._leave_one_sided(
            var, probes, idx[left], last_ref[left], last_err[left], last_how[left], entries
        )

    def _one_sided_rung(
        self, var: str, sub: Probes, h: np.ndarray, chain: np.ndarray
    ) -> tuple[Sides, np.ndarray, np.ndarray, np.ndarray]:
        """One rung of `_refine`: both sides of each probe at step `h`, their tolerance, and
        which probes are smooth there (the sides agree) or on a kink (they converged apart, or
        the value jumps). `chain` is the rounding scale of each probe's chain-rule terms."""
        f, signs = self._stencil(var, sub, fd.ONE_SIDED_OFFSETS, h)
        f0 = self.f0[sub.points]
        base = self.base_sign[sub.points]
        side = Sides(f, f0, h, self.eps, self.noise[sub.points], signs, base)
        tol = self._tolerance(np.maximum(np.abs(side.left), np.abs(side.right)), side.error, chain)
        with np.errstate(all="ignore"):
            agree = np.abs(side.left - side.right) <= tol
        both = side.left_ok & side.right_ok
        smooth = both & agree & ~side.jump
        # One-sided derivatives that have not converged (a step far above the width of
        # sigmoid(1e29·x)) bound nothing yet: a smaller step is tried.
        with np.errstate(all="ignore"):  # the rounding in each side's own estimate
            noise = np.maximum(self.eps * np.abs(f).max(axis=1), self.noise[sub.points])
            rounding = np.maximum(8 * noise / h, chain)
        converged = believable(side.left, side.left_error, rounding) & believable(
            side.right, side.right_error, rounding
        )
        kink = both & ~smooth & (side.jump | converged)
        return side, tol, smooth, kink

    def _leave_one_sided(
        self,
        var: str,
        probes: Probes,
        rest: np.ndarray,
        reference: np.ndarray,
        error: np.ndarray,
        how: np.ndarray,
        entries: Entries,
    ) -> None:
        """Probes `rest` of `_refine` whose two sides never both became clean keep the last
        one-sided reference seen (a domain edge closer than the smallest usable step): it may
        pass but never fails, and on a kink it judges nothing, since a subgradient needs both."""
        entries.reference[rest] = reference
        entries.error[rest] = error
        entries.how[rest] = how
        entries.edge[rest] = True
        # On a kink one side says nothing about a subgradient, which both sides bound.
        kinked = rest[self._on_kink(var, probes.points[rest]) & np.isfinite(reference)]
        entries.verdict[kinked] = UNCHECKED
        for k in kinked:
            entries.notes[int(k)] = (
                "on a kink, and only one side of it resolves (the other meets another kink or "
                "leaves the domain within the smallest usable step): a subgradient needs both"
            )

    def _confirm_jumps(
        self, var: str, probes: Probes, idx: np.ndarray, x: np.ndarray, entries: Entries
    ) -> None:
        """A jump seen at every step of the ladder is tried once more at the smallest step the
        point allows, 2^-1012 (or 64·ε·|x|): a break that is still there is one in float64;
        one that is gone was a turn steeper than the ladder's steps (sigmoid(2e210·x) at x = 0),
        where the function is continuous but no difference resolves its derivative."""
        if idx.size == 0:
            return
        h = self._power_of_two(np.maximum(2.0**-1012, 64 * self.eps * x))
        finer = h < entries.step[idx]
        idx, h = idx[finer], h[finer]
        if idx.size == 0:
            return
        sub = probes.select(idx)
        f, signs = self._stencil(var, sub, fd.ONE_SIDED_OFFSETS, h)
        base = self.base_sign[sub.points]
        side = Sides(f, self.f0[sub.points], h, self.eps, self.noise[sub.points], signs, base)
        gone = idx[side.left_ok & side.right_ok & ~side.jump]
        entries.verdict[gone] = UNCHECKED
        for k in gone:
            entries.notes[int(k)] = (
                "the value turns faster than any step here can resolve: it looks like a jump at "
                "every step down to the rounding floor, but not at the smallest step"
            )

    def _confirm(self, var: str, method: fd.Method, probes: Probes, entries: Entries):
        """Decide failures on a ladder of smaller and smaller steps.

        A relative step h = c·max(1, |x|) can be far too large for the function (sin at x = 1e6;
        atan2(y, x) in y at |y| ≪ 1, which varies on the scale of x), and a correct gradient must
        not pay for that. So a failing probe is redone at steps 32 times smaller, down to the
        rounding floor 64·ε·max(1, |x|), then (for |x| < 1) on at steps relative to |x| itself.

        The verdict then comes from the most accurate trusted reference of the ladder (the
        smallest error estimate; the one the probe failed against included): the probe passes
        if it agrees with the autograd value, fails if it does not and another trusted reference
        agrees with it and rules the autograd value out as well, and is otherwise unchecked: no
        two steps resolve the function at this point. Passes against a reference whose error is
        above rtol, or that cannot be believed, climb the same ladder.
        """
        # A pass against a reference whose error estimate cannot be believed (out of the
        # asymptotic regime: a jump seen by differences, a step far too large) proves nothing:
        # it climbs the same ladder.
        # So does one against a reference whose error is above rtol: a smaller step may tell
        # a rule 1e-3 off from a right one, where 4 times a 7% error estimate cannot.
        with np.errstate(invalid="ignore"):
            loose = entries.error > self.options.effective_rtol * np.abs(entries.reference)
        doubtful = (entries.verdict == PASS) & (~entries.trusted | loose)
        # A reference refined next to a kink is confirmed as well: "both sides clean" is seen
        # at the stencil's points only, and |sin x| has kinks between them at a step of 32.
        ours = (entries.how == method.name) | (entries.how == "central, smaller step")
        failing = np.flatnonzero(((entries.verdict == FAIL) | doubtful) & ours)
        if failing.size == 0:
            return
        x = np.abs(self._coordinate(var, probes, failing))
        c = self.options.eps if self.options.eps is not None else method.coefficient(self.eps)
        h = entries.step[failing].copy()
        if method.name == "complex":  # no cancellation and no rounding floor: a few smaller steps
            coarse_floor = final_floor = np.maximum(h / 32**3, self.tiny)
        else:
            coarse_floor = 64 * self.eps * np.maximum(1.0, x)
            final_floor = np.maximum(64 * self.eps * x, self.tiny)
        relative = self._power_of_two(c * x)
        steep, chain = self._steep(method, probes, entries, failing, coarse_floor)
        usual_floor = coarse_floor  # where a steep probe leaves the usual steps
        coarse_floor = np.where(steep, 0.0, coarse_floor)
        steep_floor = np.maximum(np.maximum(chain * 2.0**-40, 4 * self.eps * x), self.tiny)
        final_floor = np.where(steep, steep_floor, final_floor)
        trusted = entries.trusted[failing]
        if method.name == "complex":
            trusted &= h * self._size(entries)[failing] >= 2.0**-960
        refs = [np.where(trusted, entries.reference[failing], np.nan)]
        errs = [np.where(trusted, entries.error[failing], np.nan)]
        steps = [h.copy()]
        active = np.ones(failing.size, bool)
        for _ in range(MAX_RUNGS):  # every step ≥ the smallest normal number: a few dozen at most
            h = np.where(active, h / 32, h)
            h = np.where(active & (h < coarse_floor) & (h > relative), relative, h)
            # A steep probe leaves the usual steps once they reach the rounding floor of x.
            below = active & steep & (h < usual_floor) & (h > 4 * chain)
            h = np.where(below, 4 * chain, h)
            active &= h >= final_floor
            if not active.any():
                break
            on = np.flatnonzero(active)
            sub = probes.select(failing[on])
            f, signs = self._stencil(var, sub, method.offsets, h[on])
            with np.errstate(all="ignore"):
                ref, err, rnd = method.combine(
                    f, self.f0[sub.points], h[on], self.eps, self._noise(method, sub.points)
                )
                clean = (signs == self.base_sign[sub.points][:, None, :]).all(axis=(1, 2))
                clean &= np.isfinite(f).all(axis=1) & np.isfinite(ref) & np.isfinite(err)
                if method.name == "complex":
                    err = np.maximum(err, entries.rounding[failing[on]])
                good = clean & believable(ref, err, np.maximum(rnd, entries.rounding[failing[on]]))
                if method.name == "complex":  # a step too small to see the derivative
                    good &= h[on] * self._size(entries)[failing[on]] >= 2.0**-960
            rung_ref, rung_err = np.full(failing.size, np.nan), np.full(failing.size, np.nan)
            rung_ref[on[good]], rung_err[on[good]] = ref[good], err[good]
            refs.append(rung_ref)
            errs.append(rung_err)
            steps.append(h.copy())
        self._settle(failing, np.stack(refs), np.stack(errs), np.stack(steps), method, entries, x)

    def _steep(self, method, probes, entries, failing, floor) -> tuple[np.ndarray, np.ndarray]:
        """The probes whose autograd value says f changes by its own size over a step below the
        rounding floor of x, and that step (a power of two). There (i1e(x*y) at x = 0,
        y = 1e200: a slope of 1e200 on a function that saturates within 1e-200 of 0) every rung
        of the floor sees the saturated function, flat, and seconds a wrong failure, so such
        probes go on below that floor, to 2^-40 of that step: a right gradient is then seen,
        and a wrong one still fails."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            f0 = np.abs(self.f0[probes.points[failing]])
            step = np.maximum(1.0, f0) / np.abs(entries.autograd[failing])
            chain = self._power_of_two(np.minimum(step, 1.0))  # only a small one matters
        return (method.name != "complex") & np.isfinite(chain) & (4 * chain < floor), chain

    def _settle(
        self, failing, refs, errs, steps, method: fd.Method, entries: Entries, x: np.ndarray
    ) -> None:
        """The verdict of each failing probe from its ladder (nan where a rung is not trusted)."""
        columns = np.arange(failing.size)
        # Every rung estimates the same number: the smallest error estimate wins (relative to
        # the reference's size, a reference of 0, the truth where the derivative is 0, never
        # would, and a rung of rounding noise, 4 ± 31, did).
        best = np.argmin(np.where(np.isfinite(errs), errs, np.inf), axis=0)
        r, e = refs[best, columns], errs[best, columns]
        rounding, autograd = entries.rounding[failing], entries.autograd[failing]
        with np.errstate(all="ignore"):
            ok = np.abs(autograd - r) <= self._tolerance(r, e, rounding)
            near = np.abs(refs - r) <= self._tolerance(r, e + errs, rounding)
            # A second reference seconds a failure only if it rules the autograd value out
            # too: one whose error is large agrees with anything (0.9 ± 1.8 with -0.17 ± 0.2,
            # from a step of 4 radians on 1e15 + sin(x), where the rule was right).
            near &= np.abs(autograd - refs) > self._tolerance(refs, errs, rounding)
        near[best, columns] = False
        seconded = near.any(axis=0)
        # A failure is not confirmed where another trusted rung tells the best one wrong and
        # agrees with the autograd value: the coarse steps of a ladder can be out of their
        # regime together (a cone sampled symmetrically gives 0 ± 4e-15 at every step of 5e-4;
        # norm(x) at x = 1e-300 is 0.45 at a step of 1e-303).
        with np.errstate(all="ignore"):
            agrees = np.abs(autograd - refs) <= self._tolerance(refs, errs, rounding)
        with np.errstate(all="ignore"):
            apart = np.abs(refs - r) > self._tolerance(r, e + errs, rounding)
        contradicted = (np.isfinite(errs) & agrees & apart).any(axis=0)
        # Steps far above a small coordinate see the function over a region wide against the
        # coordinate itself: where the function is a cone there (norm(x) in x[1] = 1e-183 next
        # to x[2] = 2e-66), every such step agrees on a wrong slope. Such a failure stands only
        # if a step no larger than the coordinate tells the derivative too.
        with np.errstate(all="ignore"):
            telling = np.isfinite(errs) & (errs <= 0.1 * np.maximum(np.abs(refs), np.abs(autograd)))
        fine = steps <= np.maximum(x, self.tiny)[None, :]
        wide = (steps[best, columns] > 1024 * x) & (x > 0) & (x < 1) & ~(telling & fine).any(axis=0)
        # Nor is a pass confirmed where another trusted rung tells the best one wrong and rules
        # the autograd value out: the finest steps can be flat together where f cancels to 0
        # in float64 ((1.5^y - 1)·c at y = 2e-143), while a coarse one sees the slope.
        disputed = (np.isfinite(errs) & apart & ~agrees).any(axis=0)
        known = np.isfinite(r)
        passed = known & ok & ~disputed
        confirmed = known & ~ok & seconded & ~contradicted & ~(wide & (method.name != "complex"))
        for mask, verdict in ((passed, PASS), (confirmed, FAIL)):
            idx = failing[mask]
            entries.reference[idx], entries.error[idx] = r[mask], e[mask]
            entries.step[idx] = steps[best[mask], columns[mask]]
            entries.how[idx] = np.where(best[mask] > 0, f"{method.name}, smaller step", method.name)
            entries.verdict[idx] = verdict
        unsettled = failing[~(passed | confirmed)]
        entries.verdict[unsettled] = UNCHECKED
        for k in unsettled:
            entries.notes[int(k)] = UNSETTLED


def _take_kinks(
    entries: Entries,
    done: np.ndarray,
    side: Sides,
    kink: np.ndarray,
    tol: np.ndarray,
    h: np.ndarray,
    f0: np.ndarray,
) -> None:
    """The probes `done` (those of a rung where `kink`) are on a kink: "not differentiable"
    if the autograd value lies between the one-sided derivatives (or the value jumps), "not a
    subgradient" if it does not; both sides and the tolerance are kept for the report."""
    lv, rv = side.left[kink], side.right[kink]
    entries.step[done] = h[kink]
    entries.how[done] = "one-sided"
    with np.errstate(all="ignore"):  # sides of -inf and inf (sqrt(abs(x)) at 0)
        entries.reference[done] = (lv + rv) / 2
        entries.error[done] = np.abs(lv - rv) / 2
        g = entries.autograd[done]
        low, high = np.minimum(lv, rv) - tol[kink], np.maximum(lv, rv) + tol[kink]
        inside = (low <= g) & (g <= high)
    entries.verdict[done] = np.where(inside | side.jump[kink], KINK, KINK_FAIL)
    # a tolerance that is not a number judges nothing (noise of nan from 0·inf)
    entries.verdict[done[~np.isfinite(tol[kink]) & ~side.jump[kink]]] = UNCHECKED
    entries.kink_tolerance[done] = tol[kink]
    entries.left[done], entries.right[done] = lv, rv
    for k in np.flatnonzero(side.jump[kink]):
        entries.notes[int(done[k])] = jump_note(
            side.left_limit[kink][k], side.right_limit[kink][k], f0[kink][k]
        )
