"""Forward mode against reverse mode: two orders of the same computation, which must agree.

Where they differ by more than the tolerance, a derivative rule of gradcli's own is wrong, unless
the difference is one of range (a tangent that overflowed or underflowed) or of rounding, which
shorter or longer tangents and extended precision tell apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..evaluation.faults import describe_fault
from ..evaluation.interpreter import evaluate
from ..graph.nodes import Node, toposort
from ..transforms.forward import TANGENT, jvp
from .probes import MAX_WIDE_ROWS, Entries, Probes
from .run import Run
from .structure import moving_nodes, row_sums
from .verdicts import FAIL, PASS, UNCHECKED


class ComparingModes(Run):
    """Forward mode for each probe, compared with reverse mode."""

    def prefetch_forward(self, names: Sequence[str]) -> None:
        """Forward mode for every element of every variable in `names`, in one pass: one
        tangent graph with a tangent variable each, evaluated on one row per (point, element),
        each row a unit tangent. Only for small variables (the rows are their total size
        wide); larger ones are done one variable at a time by `_forward`."""
        sizes = {n: int(np.prod(self.shapes[n], dtype=int)) for n in names}
        width = sum(sizes.values())
        if len(names) < 2 or width > 64 or self.count * width * width > self.options.max_elements:
            return
        out = self._tangent_of_sum(names)
        points = np.concatenate([np.repeat(np.arange(self.count), sizes[n]) for n in names])
        ends = np.cumsum([self.count * sizes[n] for n in names])
        env = self._rows(points)
        for n, end in zip(names, ends, strict=True):
            rows = np.arange(end - self.count * sizes[n], end)  # this variable's rows
            moves = np.zeros((len(points), sizes[n]))
            moves[rows, np.tile(np.arange(sizes[n]), self.count)] = 1.0
            env[n + TANGENT] = moves.reshape(len(points), *self.shapes[n])
        (d,), _, _ = evaluate([out], env, self.dtype, batched=True)
        flat = row_sums(d, len(points)).astype(float)
        for n, end in zip(names, ends, strict=True):
            self._prefetched[n] = flat[end - self.count * sizes[n] : end]

    def _tangent_of_sum(self, names: Sequence[str]) -> Node:
        """The forward-mode tangent of Σf, with a tangent variable (name + TANGENT) for each of
        `names`."""
        graph = self.program.graph
        tangents = {self.program.variables[n]: graph.var(n + TANGENT) for n in names}
        shapes = {**self.shapes, **{n + TANGENT: self.shapes[n] for n in names}}
        out = jvp(self.program.output, tangents, shapes)
        if np.shape(self.value)[1:]:
            out = graph.apply("sum", out, attrs=(None,))
        return out

    def _forward(
        self, var: str, probes: Probes, scale: np.ndarray | None = None, faults: bool = False
    ) -> Any:
        """Each probe's derivative by forward mode: the tangent of Σf along the probe's element
        (or direction), in batched chunks of one row per probe. With `scale`, each probe's
        tangent has that length (the result is divided by it again); with `faults`, the
        faults of the evaluation are returned beside it."""
        prefetched = self._prefetched.get(var) if probes.direction is None else None
        # A row where another variable's partial is inf reads 0·inf = nan: not this variable's
        # derivative, so such rows are done one variable at a time.
        # (The prefetch's evaluation kept no faults: where they are wanted, it is done again.)
        usable = prefetched is not None and np.isfinite(prefetched).all()
        if usable and scale is None and not faults:
            return prefetched
        out = self._tangent_of_sum([var])
        size = int(np.prod(self.shapes[var], dtype=int))
        per_chunk = max(1, self.options.max_elements // max(size, 1))
        parts, found = [], []
        lengths = (
            np.ones(len(probes.points))
            if scale is None
            else np.broadcast_to(scale, len(probes.points))
        )
        for start in range(0, len(probes.points), per_chunk):
            sl = slice(start, start + per_chunk)
            rows = probes.points[sl]
            env = self._rows(rows)
            moves = probes.shift(sl, 1, lengths[sl], size)
            env[var + TANGENT] = moves.reshape(len(moves), *self.shapes[var])
            (d,), chunk_faults, _ = evaluate([out], env, self.dtype, batched=True)
            with np.errstate(all="ignore"):
                parts.append(row_sums(d, len(rows)) / lengths[sl])
            found += chunk_faults
        result = np.concatenate(parts).astype(float)
        return (result, found) if faults else result

    def _compare_modes(
        self, var: str, probes: Probes, entries: Entries, forward: np.ndarray
    ) -> None:
        """Forward and reverse mode compute the same numbers in a different order: where they
        differ by more than the tolerance, a derivative rule of gradcli's own is wrong.

        Forward mode is linear in the tangent, so a tangent that overflows (that of
        exp(100000*x) can, where the gradient of log(exp(100000*x)) does not) is taken again
        with a shorter tangent; what is still not finite where reverse mode and the reference
        are is a failure that names the node where the tangent broke, unless it broke by
        overflowing, which is no fault of a rule (then the forward value is shown as null)."""
        self._retry_broken_tangents(var, probes, entries, forward)
        tolerance = self._tolerance(entries.autograd, 0.0, entries.rounding)
        with np.errstate(all="ignore"):
            apart = np.abs(forward - entries.autograd) > tolerance
        apart &= np.isfinite(forward) & np.isfinite(entries.autograd)
        # Linear in the tangent, a wrong rule stays wrong at any length of it, while a tangent
        # that underflowed (or overflowed) somewhere recovers at another: where one agrees,
        # no rule is wrong.
        for length in (2.0**600, 2.0**300, 2.0**-300, 2.0**-600):
            idx = np.flatnonzero(apart)
            if idx.size == 0:
                break
            again = self._forward(var, probes.select(idx), scale=np.full(idx.size, length))
            with np.errstate(all="ignore"):
                close = np.abs(again - entries.autograd[idx]) <= tolerance[idx]
            forward[idx[close]] = again[close]
            apart[idx[close]] = False
        self._judge_modes_widely(var, probes, entries, forward, apart, tolerance)
        for k in np.flatnonzero(apart):
            lost = self._lost_at(int(probes.points[k]))
            if lost is not None:
                # Reverse mode lost digits to underflow (the evaluation says where): the modes
                # differ by that, not by a rule; the reference decides, and a pass it cannot
                # tell from the difference is unchecked.
                if entries.verdict[k] == PASS:
                    entries.verdict[k] = UNCHECKED
                entries.notes[int(k)] = (
                    f"forward mode gives {forward[k]:.17g} but reverse mode "
                    f"{entries.autograd[k]:.17g}, which lost its digits: {lost}"
                )
                continue
            _, faults = self._forward(var, probes.select(np.array([k])), faults=True)
            dropped = next((f for f in faults if f.cause == "underflow"), None)
            if dropped is not None:
                # Forward mode lost digits to underflow where reverse mode did not: the
                # reference judges the autograd value, and the modes' difference says nothing.
                where = describe_fault(dropped, self.program, batched=True).message
                entries.notes[int(k)] = (
                    f"forward mode gives {forward[k]:.17g}, which lost its digits: {where}"
                )
                continue
            entries.verdict[k] = FAIL
            entries.notes[int(k)] = (
                f"forward mode gives {forward[k]:.17g} but reverse mode {entries.autograd[k]:.17g}"
                " (an inconsistent derivative rule in gradcli: please report it)"
            )

    def _retry_broken_tangents(
        self, var: str, probes: Probes, entries: Entries, forward: np.ndarray
    ) -> None:
        """Probes whose forward value is not finite where reverse mode and the reference are:
        taken again with a shorter tangent (`forward` is updated where that is finite and
        agrees); a nan that a rule made from finite numbers is a failure naming the node."""
        broken = np.flatnonzero(
            ~np.isfinite(forward) & np.isfinite(entries.autograd) & np.isfinite(entries.reference)
        )
        for k in broken:
            sub = probes.select(np.array([k]))
            # Short enough to keep intermediate tangents finite, long enough that the result
            # (|g| times the length) stays far from underflow.
            g = abs(entries.autograd[k])
            length = self._power_of_two(np.clip(2.0**-900 / g, 2.0**-600, 1.0) if g else 2.0**-600)
            (again,), faults = self._forward(var, sub, scale=length, faults=True)
            if np.isfinite(again):
                # Only overflowed: the shorter tangent may underflow elsewhere (the tangent of
                # exp(-1000*x) beside that of exp(1000*x)), so its value is shown only if it agrees.
                close = abs(again - entries.autograd[k]) <= self._tolerance(
                    entries.autograd[k], 0.0, entries.rounding[k]
                )
                forward[k] = again if close else np.nan
                continue
            fault = next((f for f in faults if f.node.op != "variable"), None)
            # An infinite local derivative (sqrt at 0) is mathematics, not a broken rule, even
            # where a tangent of 0 meets it (0·inf, for an element the tangent does not move);
            # a nan made from finite numbers (a rule's 0/0) is a broken rule.
            if fault is None or fault.cause == "overflow" or fault.kind != "nan":
                continue
            where = (
                describe_fault(fault, self.program, batched=True).message
                if fault is not None
                else "the tangent is not finite"
            )
            entries.verdict[k] = FAIL
            entries.notes[int(k)] = (
                f"forward mode gives {forward[k]} where reverse mode gives "
                f"{entries.autograd[k]:.17g}: {where} (an inconsistent derivative rule in "
                "gradcli: please report it)"
            )

    def _judge_modes_widely(
        self,
        var: str,
        probes: Probes,
        entries: Entries,
        forward: np.ndarray,
        apart: np.ndarray,
        tolerance: np.ndarray,
    ) -> None:
        """Where the modes still differ, both again in extended precision: a wrong rule is wrong
        in every precision, while a difference made by a value that left float64's range is
        gone there, whether or not the evaluation traced it (a tangent that underflows inside
        norm while another overflows at any length of it is not traced). Decided probes leave
        `apart`; the rest are left to what float64 can tell."""
        idx = np.flatnonzero(apart)[:MAX_WIDE_ROWS]
        wide = self._wide_modes(var, probes.select(idx)) if idx.size else None
        if wide is None:
            return
        reverse, ahead = wide
        with np.errstate(all="ignore"):
            apart_wide = np.abs(reverse - ahead)
            agree = apart_wide <= tolerance[idx]
            # A wrong rule's difference is the same in any precision; one made by rounding (a
            # cancellation in one mode's sums) shrinks with the unit roundoff: 2^-11 here, and
            # 2^-6 leaves room for the rounding of the two orders to differ.
            rounding = apart_wide < 2.0**-6 * np.abs(forward[idx] - entries.autograd[idx])
            differ = (apart_wide > tolerance[idx]) & ~rounding
            exact = np.abs(entries.autograd[idx] - reverse) <= tolerance[idx]
        for j, k in enumerate(idx):
            if agree[j]:
                if not exact[j] and entries.verdict[k] == PASS:
                    entries.verdict[k] = UNCHECKED  # the reference cannot tell a lost digit
                where = self._lost_at(int(probes.points[k]), anywhere=False) or (
                    "a value left float64's range on the way"
                )
                entries.notes[int(k)] = (
                    f"forward mode gives {forward[k]:.17g} but reverse mode "
                    f"{entries.autograd[k]:.17g}, and in extended precision both give "
                    f"{float(reverse[j]):.17g}: {'forward' if exact[j] else 'reverse'} mode "
                    f"lost its digits: {where}"
                )
            elif rounding[j]:
                entries.notes[int(k)] = (
                    f"forward mode gives {forward[k]:.17g} but reverse mode "
                    f"{entries.autograd[k]:.17g}: a difference of rounding, not of rules (in "
                    f"extended precision it is {float(apart_wide[j]):.3g}); the reference decides"
                )
            elif differ[j]:
                entries.verdict[k] = FAIL
                entries.notes[int(k)] = (
                    f"forward mode gives {forward[k]:.17g} but reverse mode "
                    f"{entries.autograd[k]:.17g}, and {float(ahead[j]):.17g} against "
                    f"{float(reverse[j]):.17g} in extended precision (an inconsistent derivative "
                    "rule in gradcli: please report it)"
                )
            else:
                continue
            apart[k] = False

    def _wide_modes(self, var: str, probes: Probes) -> tuple[np.ndarray, np.ndarray] | None:
        """Reverse and forward mode at each probe in numpy's longdouble (exponent to 1e-4951);
        nan at a probe where that evaluation came near its own range or a primitive computed in
        a narrower type; None where there is no wider type (the machine, or a primitive such as
        numpy.linalg's)."""
        if np.finfo(np.longdouble).tiny >= self.tiny:
            return None
        rows = probes.points
        size = int(np.prod(self.shapes[var], dtype=int))
        moves = probes.shift(slice(None), 1, np.ones(len(rows)), size)  # unit tangents
        env = self._rows(rows)
        env[var + TANGENT] = moves.reshape(len(rows), *self.shapes[var])
        reverse = self._grad_nodes[list(self.program.variables).index(var)]
        tangent = self._tangent_of_sum([var])
        order = toposort([reverse, tangent])
        low, high = np.ldexp(np.longdouble(1), -8000), np.ldexp(np.longdouble(1), 8000)
        with np.errstate(all="ignore"):
            try:
                (g, d), _, kept = evaluate(
                    [reverse, tangent], env, np.longdouble, keep_all=True, batched=True
                )
            except TypeError:
                return None
            g = np.broadcast_to(g, (len(rows), *self.shapes[var])).reshape(len(rows), -1)
            if probes.direction is not None:
                g = g @ probes.direction.astype(np.longdouble)
            else:
                g = g[np.arange(len(rows)), probes.elements]
            d = row_sums(d, len(rows))
            # Far past float64's range the wider type has limits of its own: undecided there.
            edge = np.zeros(len(rows), bool)
            for node in moving_nodes(order):
                v = np.asarray(kept[node])
                a = np.abs(np.broadcast_to(v, (len(rows), *v.shape[1:]))).reshape(len(rows), -1)
                if v.dtype == np.longdouble:
                    edge |= (((a != 0) & (a < low)) | (a > high)).any(axis=1)
                elif v.dtype.kind in "fc":  # computed in a narrower type: harmless if 0/1 (equal)
                    edge |= ((a != np.round(a)) | (a > 2.0**53)).any(axis=1)
            out = g.astype(np.longdouble), d.astype(np.longdouble)
        return tuple(np.where(edge, np.nan, x) for x in out)  # type: ignore[return-value]
