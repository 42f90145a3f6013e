"""The state of one check: a program at a batch of points, and how it is probed.

`Run` evaluates the program once with everything a verdict needs (value, gradient, rounding
scales, the kinks' switching functions) and evaluates stencils of shifted points in batched
passes. The passes that reach verdicts build on it, one concern each: `probing` (references and
verdicts per probe), `confirmation` (ladders of smaller steps), `modes` (forward against reverse
mode), `subgradients` (the gradient as a whole at kinks) and `blame`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..evaluation.faults import describe_fault
from ..evaluation.interpreter import evaluate
from ..graph.nodes import toposort
from ..language.lower import Lowered
from ..primitives import REGISTRY
from ..transforms.reverse import grad
from ..transforms.rounding import error_bounds
from . import finite_diff as fd
from .probes import Entries, Probes
from .structure import (
    point_batch,
    reached_from,
    rounding_scale,
    row_sums,
    switching_functions,
    watched_values,
)
from .tolerances import SAFETY
from .verdicts import DTYPES, CheckOptions


class Run:
    """State shared by the checks of one program at one batch of points."""

    def __init__(self, program: Lowered, points: Mapping[str, Any], options: CheckOptions):
        self.program, self.options = program, options
        self._prefetched: dict[str, np.ndarray] = {}  # forward mode, by `prefetch_forward`
        self.dtype = DTYPES[options.dtype]
        self.eps = fd.machine_eps(self.dtype)
        self.tiny = float(np.finfo(self.dtype).tiny)  # below it, numbers lose precision
        self.points = {n: np.asarray(v, dtype=np.float64) for n, v in points.items()}
        self.shapes = {n: a.shape[1:] for n, a in self.points.items()}
        self.batch, self.count = point_batch(self.points)
        out = program.output
        self.order = toposort([out])
        wrt = list(program.variables.values())
        relative, absolute, grads = rounding_scale(out, self.shapes, wrt)
        scales = grad(out, wrt, self.shapes, magnitude=True)
        self._grad_nodes = grads
        jumps = switching_functions(self.order)
        self.switches = list(jumps)
        # Watched beside the switches: the arguments of periodic functions, and the functions
        # that are 0 at a pole or branch point (the registry's `singular`). A stencil that moves
        # one by half its period, or the other by half its value, reaches as far from the point
        # as a kink (see `_signature`).
        self.witnesses, reach = watched_values(self.order)
        self.kinks = len(self.switches)
        values, faults, _ = evaluate(
            [out, *grads, *scales, *self.switches, *self.witnesses, relative, absolute],
            self.batch,
            self.dtype,
            batched=True,
        )
        # The rounding error of one value of f: Σ|∂f/∂v|·(ε·|v| + η) over its nodes, where η,
        # the smallest subnormal number, is what a value that underflows can lose.
        eta = float(np.finfo(self.dtype).smallest_subnormal)
        with np.errstate(over="ignore"):
            # What the imaginary parts of the complex step lose the same way: Im f(x + ih) is
            # h·f'(x), and an underflow of η at node v moves it by η·|∂f/∂v|.
            self.imaginary_noise = eta * (1 + np.abs(np.broadcast_to(values[-1], (self.count,))))
            self.noise = (
                self.eps * np.abs(np.broadcast_to(values[-2], (self.count,))) + self.imaginary_noise
            )
        values = values[:-2]
        if not program.variables:  # a constant: evaluated without the axis of the points
            values[0] = np.asarray(values[0])[None]
        self.value = np.broadcast_to(values[0], (self.count, *np.shape(values[0])[1:]))
        k = len(grads)
        self.grads, scales = (
            self._per_point(part) for part in (values[1 : 1 + k], values[1 + k : 1 + 2 * k])
        )
        # ε times these bounds the rounding error of each derivative: the sum over chain-rule
        # paths of |product of local derivatives| (rounding in the adjoints' sums); and, once a
        # probe does not pass (`with_error_bounds`), the running error bound of the gradient's
        # whole computation too (rounding in the values it is made from, where they cancel:
        # see rounding.py), which both the autograd value and the complex step, computing the
        # same derivative in another order, carry. It can only widen a tolerance, so a probe
        # that passes without it passes with it, and most checks never build it.
        self.scales = {name: np.abs(v) for name, v in scales.items()}
        self.bounded = False
        watched = values[1 + 2 * k :]
        self.switch_items = [np.shape(v)[1:] for v in watched[: self.kinks]]
        self.base_switch = self._switch_values(watched, self.count)
        # How far each watched element may move: half the period, or (nan) half its value.
        self.reaches = np.concatenate(
            [
                np.full(int(np.prod(np.shape(v)[1:], dtype=int)), limit)
                for limit, v in zip(reach, watched[self.kinks :], strict=True)
            ]
            or [np.zeros(0)]
        )
        self.base_sign = self._signature(watched, self.count)
        self.kink_columns = self.base_sign.shape[1] - self.reaches.size
        self.jump_columns = np.concatenate(
            [
                np.full(int(np.prod(item, dtype=int)), jumps[switch])
                for switch, item in zip(self.switches, self.switch_items, strict=True)
            ]
            or [np.zeros(0, bool)]
        )
        self._moved_switches: dict[str, np.ndarray] = {}  # by `_on_kink`
        self.f0 = row_sums(values[0], self.count)
        self.faults = [describe_fault(f, program, batched=True) for f in faults]

    def _per_point(self, values: Sequence[Any]) -> dict[str, np.ndarray]:
        """One array per variable, (points, elements), from values with a batch axis."""
        return {
            name: np.broadcast_to(g, (self.count, *self.shapes[name])).reshape(self.count, -1)
            for name, g in zip(self.program.variables, values, strict=True)
        }

    def with_error_bounds(self) -> bool:
        """Add the running error bound of the gradient to the rounding scales (see __init__);
        False if it was already there, so that nothing is checked again."""
        if self.bounded or not self._grad_nodes:
            return False
        self.bounded = True
        bounds = error_bounds(self._grad_nodes, self.shapes)
        values, _, _ = evaluate(bounds, self.batch, self.dtype, batched=True)
        with np.errstate(over="ignore", invalid="ignore"):
            for name, b in self._per_point(values).items():
                self.scales[name] = self.scales[name] + np.where(np.isfinite(b), np.abs(b), 0.0)
        return True

    def _noise(self, method: fd.Method, points: np.ndarray) -> np.ndarray:
        """The rounding error of one sample of φ by `method`: of its value for differences, of
        its imaginary part for the complex step."""
        return (self.imaginary_noise if method.name == "complex" else self.noise)[points]

    def _rows(self, points: np.ndarray) -> dict[str, np.ndarray]:
        """The variables at the given points, one batch row each (shared values stay one row)."""
        return {name: a if len(a) == 1 else a[points] for name, a in self.batch.items()}

    def _values(self, var: str) -> np.ndarray:
        """The values of `var` at every point, one row per point: (count, elements)."""
        return np.broadcast_to(self.batch[var], (self.count, *self.shapes[var])).reshape(
            self.count, -1
        )

    def _step(self, method: fd.Method, scale: np.ndarray) -> np.ndarray:
        """h = c·scale, rounded down to a power of two so that x ± k·h is exact."""
        c = self.options.eps if self.options.eps is not None else method.coefficient(self.eps)
        return self._power_of_two(c * scale)

    def _power_of_two(self, h: Any) -> np.ndarray:
        """`h` rounded down to a power of two, and never below the smallest normal number: a
        subnormal step carries fewer digits, and one that rounds to 0 would never end a ladder."""
        with np.errstate(divide="ignore"):
            return np.maximum(2.0 ** np.floor(np.log2(np.maximum(h, 0.0))), self.tiny)

    @staticmethod
    def _scale(method: fd.Method, magnitude: np.ndarray) -> np.ndarray:
        """max(1, |x|) for differences; min(1, |x|) for the complex step, which does not cancel
        and so can stay far below the scale of a function singular at 0 (log x at x = 1e-150),
        and must stay below that of one curving on the scale 1 at any |x|: a step of 3e180 at
        1e200 is no step for logsumexp, nor for sin, whose continuation grows as sinh(h)."""
        if method.name == "complex":
            return np.clip(magnitude, 2.0**-1000, 1.0)
        return np.maximum(1.0, magnitude)

    def _tolerance(
        self, reference: np.ndarray, error: np.ndarray, rounding: Any = 0.0
    ) -> np.ndarray:
        """atol + rtol·|r| + 4·(e + ε·s): see `rules.TOLERANCE_RULE` (inf where it overflows)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return (
                self.options.atol
                + self.options.effective_rtol * np.abs(reference)
                + SAFETY * (error + rounding)
                + self.tiny
            )

    @staticmethod
    def _switch_values(switching: Sequence[Any], rows: int) -> np.ndarray:
        """Every kink's switching function, one row per batch row: (rows, K)."""
        parts = [
            np.broadcast_to(np.real(v), (rows, *np.shape(v)[1:])).reshape(rows, -1)
            for v in switching
        ]
        return np.concatenate(parts, axis=1) if parts else np.zeros((rows, 0))

    def _signature(
        self, switching: Sequence[Any], rows: int, points: np.ndarray | None = None
    ) -> np.ndarray:
        """Signs of every kink's switching function, then 1 for each watched value (the
        `witnesses`: periodic arguments and singular functions), one row per batch row:
        (rows, K) int8; 2 where a value is not defined.

        With `points` (the point of each row), a switch that keeps its sign but moved by more
        than half its value at the point reads 3, unlike any sign: the stencil reaches as far
        from the point as the kink is, where the function is no longer the smooth one the
        point sits on (sqrt(abs(x)) at x = 1e-232, whose right side is smooth but curves on the
        scale 1e-232; the cone norm(x) next to its tip, whose switch is ≥ 0 on every side). So
        does a witness moved beyond its reach: half a period, or half its own value."""
        values = self._switch_values(switching, rows)
        signs = np.where(np.isnan(values), 2, np.sign(values))  # 2: a switch not defined there
        kinks = signs.shape[1] - self.reaches.size
        signs[:, kinks:] = np.where(np.isnan(values[:, kinks:]), 2, 1)  # watched: never a kink
        if points is not None and values.size:
            base = self.base_switch[points]
            with np.errstate(all="ignore"):
                moved = np.abs(values - base)
                far = (base != 0) & (moved > 0.5 * np.abs(base))
                limit = np.where(
                    np.isnan(self.reaches), 0.5 * np.abs(base[:, kinks:]), self.reaches
                )
                far[:, kinks:] = moved[:, kinks:] > limit
            kept = np.sign(base)
            kept[:, kinks:] = 1
            signs = np.where(far & (signs == kept), 3, signs)
        return signs.astype(np.int8)

    def _stencil(self, var: str, probes: Probes, offsets: np.ndarray, h: np.ndarray):
        """φ at every offset of every probe, in batched chunks: f (P, m), signatures (P, m, K)."""
        m = len(offsets)
        size = int(np.prod(self.shapes[var], dtype=int))
        per_chunk = max(1, self.options.max_elements // (m * max(size, 1)))
        fs, signs = [], []
        for start in range(0, len(probes.points), per_chunk):
            sl = slice(start, start + per_chunk)
            rows = np.repeat(probes.points[sl], m)
            moves = np.tile(offsets, len(rows) // m) * np.repeat(h[sl], m)
            env = self._rows(rows)
            base = np.broadcast_to(self.batch[var][:1], (len(rows), *self.shapes[var]))
            if len(self.batch[var]) > 1:
                base = self.batch[var][rows]
            moved = base.reshape(len(rows), -1) + probes.shift(sl, m, moves, size)
            env[var] = moved.reshape(len(rows), *self.shapes[var])
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

    def method_for(self, var: str) -> fd.Method:
        """The complex step if every node `var` reaches is analytic and smooth, else Richardson."""
        if self.options.method != "auto":
            return fd.BY_NAME[self.options.method]
        reached = reached_from(self.order, self.program.variables[var])
        smooth = all(REGISTRY[n.op].analytic and REGISTRY[n.op].kink is None for n in reached[1:])
        return fd.COMPLEX if smooth else fd.RICHARDSON

    def _coordinate(self, var: str, probes: Probes, which: Any = slice(None)) -> np.ndarray:
        """The coordinate each probe moves (its largest entry, for a direction)."""
        x = self._values(var)
        points = probes.points[which]
        if probes.direction is not None:
            return np.abs(x[points]).max(axis=1)
        return x[points, probes.elements[which]]

    def _size(self, entries: Entries) -> np.ndarray:
        """The size of the chain-rule terms of each probe's derivative."""
        return np.maximum(np.abs(entries.autograd), entries.rounding / self.eps)

    def _on_kink(self, var: str, points: np.ndarray) -> np.ndarray:
        """Whether each point sits on a kink that `var` moves (relu(y) at y = 0 is no kink of
        x·y + tan(x) in x, and must not keep x from the complex step)."""
        if var not in self._moved_switches:
            source = self.program.variables[var]
            reached = set(reached_from(toposort(self.switches), source)) if self.switches else set()
            self._moved_switches[var] = np.concatenate(
                [
                    np.full(int(np.prod(item, dtype=int)), switch in reached)
                    for switch, item in zip(self.switches, self.switch_items, strict=True)
                ]
                or [np.zeros(0, bool)]
            )
        moved = self._moved_switches[var]
        return (self.base_sign[points][:, : self.kink_columns][:, moved] == 0).any(axis=1)

    def _opaque(self, var: str) -> bool:
        """Whether `var` reaches a function whose kinks are unknown (a Python function): the
        graph cannot say where it is not differentiable. Smooth primitives that are not analytic
        (erf, logit) name their kinks as every registered primitive does: none."""
        reached = reached_from(self.order, self.program.variables[var])
        return any(REGISTRY[n.op].opaque for n in reached[1:])

    def _analytic(self, var: str) -> bool:
        """Whether every node `var` reaches has an analytic continuation (kinks allowed: a
        failure comes from a clean stencil, off any kink)."""
        reached = reached_from(self.order, self.program.variables[var])
        return all(REGISTRY[n.op].analytic for n in reached[1:])

    def _lost_at(self, point: int, anywhere: bool = True) -> str | None:
        """The underflow that cost the value or gradient digits at `point`, if one did; else,
        with `anywhere`, one anywhere in the batch. Not every underflow is traced to its rows
        (a tangent that underflows inside norm is not), so where extended precision cannot
        settle it (`_wide_modes`), a disagreement of the modes at a point next to an
        underflow is left to the reference (which still judges the autograd value) rather
        than called an inconsistent rule."""
        elsewhere = None
        for f in self.faults:
            if f.cause != "underflow":
                continue
            if f.rows is None or f.rows[point if len(f.rows) > 1 else 0]:
                return f.message
            elsewhere = elsewhere or f.message
        return elsewhere if anywhere else None
