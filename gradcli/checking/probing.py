"""Probing: the reference, error estimate and verdict of each probe of a variable.

The method is the complex step where every function on the way is analytic and smooth, else
Richardson extrapolation of differences; each method's doubtful verdicts are asked of the other,
stencils that cross a kink are refined, failures confirmed, and forward mode compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import finite_diff as fd
from .confirmation import Confirming
from .kinks import Sides
from .modes import ComparingModes
from .probes import MAX_RUNGS, Entries, Probes, believable, jump_note, subset
from .verdicts import FAIL, KINK, KINK_FAIL, NONFINITE, PASS, UNCHECKED, VariableCheck


class Probing(Confirming, ComparingModes):
    """The check of each variable, probe by probe, in batched passes."""

    def variables(self, names: Sequence[str]) -> list[VariableCheck]:
        """The check of each variable; where one does not pass, all again with the running
        error bound in their tolerances (it only ever widens them)."""
        checks = [self.variable(name) for name in names]
        if any((vc.verdict != PASS).any() for vc in checks) and self.with_error_bounds():
            checks = [self.variable(name) for name in names]
        return checks

    def variable(self, var: str) -> VariableCheck:
        method = self.method_for(var)
        x = self._values(var)
        size = x.shape[1]
        if self.options.fast and size > 1:
            v = np.random.default_rng(0).standard_normal(size)
            probes = Probes(np.arange(self.count), None, v / np.linalg.norm(v))
            along = self._probe(var, method, probes)
            if (along.verdict == PASS).all():
                return along
        probes = Probes(
            np.repeat(np.arange(self.count), size), np.tile(np.arange(size), self.count), None
        )
        return self._probe(var, method, probes)

    def _probe(self, var: str, method: fd.Method, probes: Probes) -> VariableCheck:
        entries = self._entries(var, method, probes)
        if method.name == "complex":
            # Where the complex step cannot see the derivative (h·f'(x) subnormal) or leaves it
            # unresolved (an imaginary part lost to underflow inside exp(-709 + ih)),
            # differences may settle it.
            # On a kink (the complex step would take one piece's derivative for a subgradient's),
            # too.
            on_kink = self._on_kink(var, probes.points)
            weak = np.flatnonzero(
                (entries.step * self._size(entries) < 2.0**-960)
                | (entries.verdict == UNCHECKED)
                | on_kink
            )
            if weak.size:
                entries.take(weak, self._entries(var, fd.RICHARDSON, probes.select(weak)))
            # A failure by the complex step stands only if differences do not pass it: an
            # imaginary part can underflow inside the computation (Im (x/y)/y at y = 1e110 is
            # 1e-351) where the real values, and their differences, do not.
            failed = np.flatnonzero(entries.verdict == FAIL)
            if failed.size:
                second = self._entries(var, fd.RICHARDSON, probes.select(failed))
                passed = np.flatnonzero(second.verdict == PASS)
                if passed.size:
                    entries.take(failed[passed], subset(second, passed))
        tolerance = self._tolerance(entries.reference, entries.error, entries.rounding)
        tolerance = np.where(np.isnan(entries.kink_tolerance), tolerance, entries.kink_tolerance)
        forward = self._forward(var, probes)
        self._compare_modes(var, probes, entries, forward)
        _unresolved(entries, tolerance, self.options.atol)
        columns = 1 if probes.direction is not None else int(np.prod(self.shapes[var], dtype=int))
        check = entries.as_check(var, self.shapes[var], method.name, tolerance, self.count, columns)
        check.direction = probes.direction
        check.forward = forward.reshape(self.count, columns)
        self._explain(check, entries.notes)
        return check

    def _entries(
        self, var: str, method: fd.Method, probes: Probes, steps: np.ndarray | None = None
    ) -> Entries:
        """Reference, error estimate and verdict of each probe by `method`: refined, confirmed."""
        scale = self._scale(method, np.abs(self._coordinate(var, probes)))
        h = self._step(method, scale) if steps is None else steps
        f, signs = self._stencil(var, probes, method.offsets, h)
        f0 = self.f0[probes.points]
        with np.errstate(all="ignore"):
            reference, error, rounding = method.combine(
                f, f0, h, self.eps, self._noise(method, probes.points)
            )
        g, s = self.grads[var], self.scales[var]
        if probes.direction is not None:
            autograd, terms = g @ probes.direction, s @ np.abs(probes.direction)
        else:
            autograd = g[probes.points, probes.elements]
            terms = s[probes.points, probes.elements]
        entries = Entries(
            autograd.astype(float), reference, error, h, len(probes.points), method.name
        )
        with np.errstate(invalid="ignore", over="ignore"):
            chain = self.eps * np.abs(terms.astype(float))
        # A chain-rule sum that is not finite (an infinite partial on a path of weight 0, as
        # sqrt(abs(v)) at 0 times 0) bounds nothing: no tolerance may be nan.
        entries.rounding = np.where(np.isfinite(chain), chain, 0.0)
        if method.name == "complex":
            # The complex step computes the derivative as forward mode does, rounding and all:
            # its error is never below the rounding bound of that computation.
            entries.error = np.maximum(entries.error, entries.rounding)
        # Rounding in the reference is that of the method, or of the chain rule's terms (ε·s)
        # where they cancel: an estimate at that level is believed as one of rounding.
        entries.trusted = believable(reference, error, np.maximum(rounding, entries.rounding))
        if method.name != "complex":
            crossed = (signs != self.base_sign[probes.points][:, None, :]).any(axis=(1, 2))
            broken = ~np.isfinite(f).all(axis=1) & np.isfinite(f0)
            flagged = np.flatnonzero(crossed | broken)
            if flagged.size:
                self._refine(var, probes, scale, flagged, entries)
        entries.judge(
            self._tolerance(entries.reference, entries.error, entries.rounding),
            value_finite=np.isfinite(self.f0[probes.points]),
        )
        if method.name == "complex":
            # Im f(x + ih) = h·f'(x) underflows where h times the size of the chain-rule terms
            # is subnormal: the complex step cannot see the derivative there, and says nothing.
            blind = (entries.step * self._size(entries) < 2.0**-960) & (entries.verdict == FAIL)
            entries.verdict[blind] = UNCHECKED
        self._confirm(var, method, probes, entries)
        if method.name != "complex" and self._analytic(var):
            self._second_opinion(var, probes, entries)
        if method.name != "complex":
            self._unknown_kinks(var, probes, entries)
        return entries

    def _unknown_kinks(self, var: str, probes: Probes, entries: Entries) -> None:
        """Through a function whose kinks the graph cannot show (a Python function's relu or
        tie), every probe is tested for one: where left and right differences converge to
        different values as the step shrinks, at the first two steps that resolve both sides,
        the verdict is "not differentiable", with both sides, as at a known kink, and so is a
        value jump stable over two steps; a valid subgradient there is not a pass by symmetry.
        (In an expression every kink is registered: a function that turns on a scale below the
        smallest step, -x/(x + y) at x = 0, y = 3e-88, is no kink, and a wrong rule there must
        not pass as one.)"""
        if not self._opaque(var):
            return
        idx = np.flatnonzero(~np.char.startswith(entries.how.astype(str), "one-sided"))
        if idx.size == 0:
            return
        sub = probes.select(idx)
        floor = 64 * self.eps * np.maximum(1.0, np.abs(self._coordinate(var, sub)))
        h = entries.step[idx].copy()
        flat = np.zeros((idx.size, 1), np.int8)  # no switching function: every side is clean
        rungs: list[tuple[np.ndarray, Sides, np.ndarray, np.ndarray]] = []
        for _ in range(MAX_RUNGS):
            h = h / 8
            on = h >= floor
            if not on.any():
                break
            f, _ = self._stencil(var, sub, fd.ONE_SIDED_OFFSETS, h)
            side = Sides(
                f, self.f0[sub.points], h, self.eps, self.noise[sub.points],
                np.zeros((*f.shape, 1), np.int8), flat,
            )  # fmt: skip
            biggest = np.maximum(np.abs(side.left), np.abs(side.right))
            tol = self._tolerance(biggest, side.error, entries.rounding[idx])
            clean = on & side.left_ok & side.right_ok
            with np.errstate(all="ignore"):
                # a jump is resolved by its values; a kink by one-sided derivatives within 1%
                resolved = clean & ((side.error <= 1e-2 * biggest) | side.breaks)
            rungs.append((resolved, side, tol, h.copy()))
        # The first (coarsest) pair of steps that both resolve the sides decides; the values
        # are those of the step with the smaller error.
        decided = np.full(idx.size, -1)
        open_ = np.ones(idx.size, bool)
        for r in range(len(rungs) - 1):
            (ok1, s1, t1, _), (ok2, s2, t2, _) = rungs[r], rungs[r + 1]
            with np.errstate(all="ignore"):
                t = np.maximum(t1, t2)
                apart = (np.abs(s1.left - s1.right) > t1) & (np.abs(s2.left - s2.right) > t2)
                steady = (np.abs(s1.left - s2.left) <= t) & (np.abs(s1.right - s2.right) <= t)
            says = apart & steady | (s1.breaks & s2.breaks)
            now = open_ & ok1 & ok2
            decided[now & says] = np.where(s2.error < s1.error, r + 1, r)[now & says]
            open_ &= ~now
        for r in np.unique(decided[decided >= 0]):
            found = np.flatnonzero(decided == r)
            _, side, tol, step = rungs[r]
            done = idx[found]
            lv, rv, tv, jump = side.left[found], side.right[found], tol[found], side.breaks[found]
            g = entries.autograd[done]
            inside = (np.fmin(lv, rv) - tv <= g) & (g <= np.fmax(lv, rv) + tv)
            entries.verdict[done] = np.where(inside | jump, KINK, KINK_FAIL)
            entries.left[done], entries.right[done] = lv, rv
            entries.reference[done], entries.error[done] = (lv + rv) / 2, np.abs(lv - rv) / 2
            entries.kink_tolerance[done] = tv
            entries.step[done] = step[found]
            entries.how[done] = "one-sided"
            for k, position in enumerate(found):
                entries.notes.pop(int(done[k]), None)
                if jump[k]:
                    entries.notes[int(done[k])] = jump_note(
                        side.left_limit[position],
                        side.right_limit[position],
                        self.f0[sub.points[position]],
                    )

    def _second_opinion(self, var: str, probes: Probes, entries: Entries) -> None:
        """On an analytic path, ask the complex step about what differences could not settle.

        Differences can be blind (a cone sampled symmetrically gives 0 at every step) or find no
        stencil that fits (log x at x = 1e-150): a failure stands only if the complex step fails
        too, and an unchecked probe takes the complex step's verdict when it has one. Two steps
        are tried: the usual one, and one just large enough that h·f' stays clear of underflow,
        which is far below any scale on which the function curves.

        A pass against a reference whose error is above rtol (differences that the period of
        sin or the rounding of a large value keep at steps of a few percent) is asked too: where
        the complex step agrees with that reference, and is more precise, its verdict stands,
        so that a rule 1e-3 off is not passed within a tolerance of 4%.
        """
        # On a kink the complex step takes one piece's derivative (one element of a tie of
        # min), which is no reference for a subgradient: those probes are left to differences.
        on_kink = self._on_kink(var, probes.points)
        with np.errstate(invalid="ignore"):
            loose = (entries.verdict == PASS) & (
                entries.error > self.options.effective_rtol * np.abs(entries.reference)
            )
        chosen_method = self.options.method != "auto"  # kept where it passes
        # Where the usual step saw the derivative, trusted, and failed it, the smaller one may
        # not pass it with a smaller reference: that step is for a derivative the usual one
        # cannot see, and its imaginary parts can underflow inside (h/(2√u) at u = 1e108),
        # giving a reference of 0 that a rule negated to 0 agreed with. An underflow loses
        # terms; where the smaller step sees more than the usual one (-1e181 against 5e144,
        # inside pow at 1e-125), it is the usual one that was blind, and the pass stands.
        seen_failing = np.zeros(len(probes.points), bool)
        seen_ref = np.full(len(probes.points), np.nan)
        seen_tol = np.full(len(probes.points), np.nan)
        for steps in (None, self._safe_complex_step):
            asked = np.isin(entries.verdict, [FAIL, UNCHECKED]) | (loose & (steps is None))
            open_ = np.flatnonzero(asked & ~on_kink)
            if open_.size == 0:
                return
            h = None if steps is None else steps(var, probes, entries, open_)
            second = self._entries(var, fd.COMPLEX, probes.select(open_), h)
            if steps is None:
                seen = second.trusted & (second.step * self._size(second) >= 2.0**-960)
                seen_failing[open_] = (second.verdict == FAIL) & seen
                seen_ref[open_] = second.reference
                seen_tol[open_] = self._tolerance(second.reference, second.error, second.rounding)
            else:
                with np.errstate(invalid="ignore"):
                    other = np.abs(second.reference - seen_ref[open_]) > seen_tol[open_]
                    other &= np.abs(second.reference) < np.abs(seen_ref[open_])
                second.verdict[seen_failing[open_] & other & (second.verdict == PASS)] = UNCHECKED
            was_unchecked = entries.verdict[open_] == UNCHECKED
            was_loose = entries.verdict[open_] == PASS
            with np.errstate(invalid="ignore"):
                tighter = second.error < entries.error[open_]
                first = self._tolerance(entries.reference, entries.error, entries.rounding)
                agree = np.abs(second.reference - entries.reference[open_]) <= first[open_]
            adopt = (
                ((second.verdict == PASS) & (~was_loose | (tighter & ~chosen_method)))
                | (was_unchecked & (second.verdict == FAIL))
                | (was_loose & (second.verdict == FAIL) & tighter & agree & second.trusted)
            )
            chosen = np.flatnonzero(adopt)
            if chosen.size:
                entries.take(open_[chosen], subset(second, chosen))

    def _safe_complex_step(
        self, var: str, probes: Probes, entries: Entries, which: np.ndarray
    ) -> np.ndarray:
        """A complex step h with h·(size of the chain-rule terms) about 2^-900, at most the
        usual one, c·min(1, |x|): far from underflow, and far below any scale on which the
        function curves (which can be |x| itself: norm at 1e-300)."""
        size = self._size(entries)[which]
        scale = self._scale(fd.COMPLEX, np.abs(self._coordinate(var, probes, which)))
        usual = fd.COMPLEX.coefficient(self.eps) * scale
        return self._power_of_two(np.minimum(2.0**-900 / np.maximum(size, self.tiny), usual))

    def _explain(self, check: VariableCheck, notes: dict[int, str]) -> None:
        """Messages for entries whose verdict needs words: non-finite, unchecked, kinks."""
        columns = check.verdict.shape[1]
        for p, e in zip(*np.nonzero(check.verdict != PASS), strict=True):
            verdict = check.verdict[p, e]
            note = notes.get(int(p * columns + e))
            if note is not None:
                check.messages[p, e] = note
                continue
            lost = self._lost_at(int(p) if check.verdict.shape[0] == self.count else 0)
            if verdict == NONFINITE:
                check.messages[p, e] = next(
                    (f.message for f in self.faults), "the value or its derivative is not finite"
                )
            elif verdict == FAIL and lost is not None:
                check.messages[p, e] = f"the autograd value may have lost its digits: {lost}"
            elif verdict == UNCHECKED:
                if check.how[p, e] == "none":
                    text = (
                        "no reference: on both sides the stencil leaves the domain, meets a "
                        "kink, or spans too much of the period of a sine, cosine or tangent (or "
                        "of the spacing of floor's or round's steps)"
                    )
                elif str(check.how[p, e]).startswith("one-sided"):
                    text = (
                        "only a one-sided reference, next to a domain edge or kink closer than the "
                        "smallest usable step, and it disagrees: not counted as a failure"
                    )
                else:
                    text = "no reference: the finite differences are not finite"
                check.messages[p, e] = text
            elif verdict in (KINK, KINK_FAIL):
                between = (
                    "the autograd value lies between them: a valid subgradient"
                    if verdict == KINK
                    else "the autograd value is not between them: not a subgradient"
                )
                check.messages[p, e] = (
                    f"left derivative {check.left[p, e]:.17g}, "
                    f"right derivative {check.right[p, e]:.17g}; {between}"
                )


def _unresolved(entries: Entries, tolerance: np.ndarray, atol: float) -> None:
    """A pass that says nothing becomes unchecked: where the tolerance is as large as the
    autograd value and holds 0 too (the values of f underflow, and differences of them are 0
    with an error estimate above the derivative), any value of that size, a wrong one included,
    would pass. A value at the level of the chain rule's rounding is a derivative of 0 and
    keeps its pass, and so does one that the user's --atol covers: a pass by their rule."""
    with np.errstate(all="ignore"):
        size = np.abs(entries.autograd)
        blind = (
            (entries.verdict == PASS)
            & (size > 4 * entries.rounding)
            & (tolerance >= size)
            & (np.abs(entries.reference) <= tolerance)
            & (np.abs(entries.autograd - entries.reference) > atol)
        )
    for k in np.flatnonzero(blind):
        entries.verdict[k] = UNCHECKED
        entries.notes[int(k)] = (
            f"the reference cannot resolve this derivative: {entries.reference[k]:.6g} with a "
            f"tolerance of {tolerance[k]:.3g}, which holds the autograd value "
            f"{entries.autograd[k]:.6g} and 0 alike (the values of f are too small, or lost in "
            "rounding, for differences of them to show it)"
        )
