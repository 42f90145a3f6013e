"""Gradient checks: reverse mode against finite differences, with verdicts that can be trusted.

A check compares, for every point, variable and element, the autograd derivative g with a
finite-difference reference r whose own error estimate is e, and passes when

    |g - r| <= atol + rtol·|r| + 4·e

so a correct gradient never fails for lack of precision in the reference, while a rule that is off
by more than rtol (1e-7 by default in float64) is caught wherever the reference is better than that.

Every stencil of every point is evaluated in batched numpy passes: the batch axis comes first, one
row per stencil point, and each variable is padded to a common rank so that broadcasting between
variables is the same as at a single point. Where a stencil crosses a kink of a non-smooth
primitive (its switching function changes sign) or leaves the domain (a non-finite value), the
probe is redone with one-sided differences: a point on a kink gets the verdict "not differentiable"
with its left and right derivatives, never a false failure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from operator import add
from typing import Any

import numpy as np

from ..evaluation.faults import describe_fault
from ..evaluation.interpreter import evaluate
from ..graph.nodes import Node, toposort
from ..graph.shapes import infer_shapes
from ..language.limits import ELEMENTS
from ..language.lower import Lowered
from ..language.program import check_variables, wrt_names
from ..language.source import GradcliError
from ..primitives import REGISTRY
from ..transforms.forward import TANGENT, jvp, jvps
from ..transforms.reverse import grad
from ..transforms.rounding import error_bounds
from . import finite_diff as fd
from .kinks import Directional, Sides, directions, one_sided_along
from .merging import joined, split
from .tolerances import DEFAULT_RTOL, SAFETY

PASS = "pass"
FAIL = "fail"
KINK = "not differentiable"
KINK_FAIL = "not differentiable, not a subgradient"
NONFINITE = "non-finite"
UNCHECKED = "unchecked"
FAILING = frozenset({FAIL, KINK_FAIL, NONFINITE})
_UNSETTLED = (
    "no two trusted references agree at any step down to the rounding floor: the function "
    "cannot be resolved by differences at this point"
)
# The most steps a ladder (of confirmation or refinement) tries. Each rung divides the step by 8
# or 32 and no step is below the smallest normal number, so a ladder ends long before this; the
# bound makes sure that it ends whatever the arithmetic does.
_MAX_RUNGS = 40
_KEPT_PER_ENTRY = (
    24  # float64s per derivative and point at the peak (measured: 25, see check_budget)
)
# Points on a kink re-evaluated in extended precision, per check (`underflowed_switches`).
_MAX_WIDE_ROWS = 256
_RANK = {NONFINITE: 5, KINK_FAIL: 4, FAIL: 3, UNCHECKED: 2, KINK: 1, PASS: 0}

DTYPES = {"float64": np.float64, "float32": np.float32}


@dataclass(frozen=True)
class CheckOptions:
    method: str = "auto"
    eps: float | None = None  # overrides the step coefficient c in h = c·max(1, |x|)
    dtype: str = "float64"
    rtol: float | None = None
    atol: float = 0.0
    blame: bool = False
    fast: bool = False
    wrt: Sequence[str] | None = None
    order: int = 1  # 2: check the Hessian, as the gradient of each gradient component
    max_elements: int = 1 << 21  # elements of a variable per batched pass, to bound memory

    @property
    def effective_rtol(self) -> float:
        return DEFAULT_RTOL[self.dtype] if self.rtol is None else self.rtol


@dataclass
class Blame:
    """A primitive whose own derivative rule disagrees with a finite difference of its forward."""

    node: Node
    argument: int
    rule: float
    numeric: float
    message: str


@dataclass
class VariableCheck:
    """The check of one variable at every point, as arrays indexed [point, element].

    With --fast, when the directional check agrees, there is one entry per point: the derivative
    along a random unit direction (`direction`).
    """

    name: str
    shape: tuple[int, ...]
    method: str
    autograd: np.ndarray
    reference: np.ndarray
    error: np.ndarray
    step: np.ndarray
    tolerance: np.ndarray
    verdict: np.ndarray  # object array of verdict strings
    how: np.ndarray  # object array: the method actually used for each entry
    left: np.ndarray
    right: np.ndarray
    direction: np.ndarray | None = None  # with --fast: the unit direction of the entries
    forward: np.ndarray | None = None  # the same derivatives by forward mode (autograd only)
    of: str | None = None  # order 2: the gradient component differentiated, as "x" or "x[1]"
    source: str = "autograd"  # or "expected": a hand-derived gradient judged the same way
    messages: dict[tuple[int, int], str] = field(default_factory=dict)
    blame: list[Blame] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(v in FAILING for v in self.verdict.flat)

    def worst(self) -> tuple[int, int]:
        """The entry to show: the gravest verdict, then the largest error relative to tolerance."""
        rank = np.vectorize(_RANK.__getitem__, otypes=[int])(self.verdict).ravel()
        with np.errstate(all="ignore"):
            ratio = (np.abs(self.autograd - self.reference) / self.tolerance).ravel()
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        flat = int(np.lexsort((ratio, rank))[-1])  # by rank, then by ratio
        p, e = divmod(flat, self.verdict.shape[1])
        return p, e

    def counts(self) -> dict[str, int]:
        values, counts = np.unique(self.verdict.astype(str), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts, strict=True)}

    def index(self, element: int) -> tuple[int, ...] | None:
        """The array index of a flat element, or None for a scalar or a direction."""
        if self.direction is not None or not self.shape:
            return None
        return tuple(int(i) for i in np.unravel_index(element, self.shape))


@dataclass
class CheckResult:
    program: Lowered
    points: dict[str, np.ndarray]  # each variable with a leading axis of `count` points
    count: int
    value: np.ndarray  # the value at each point (leading axis: points)
    variables: list[VariableCheck]
    faults: list[GradcliError]
    options: CheckOptions
    symmetry: float | None = None  # order 2: the largest |H - Hᵀ| / max |H| over the points
    symmetric: bool | None = None  # order 2: |H_ij - H_ji| within the two entries' tolerances
    # Where several variables meet a kink: the one-sided derivatives along directions that any
    # gradient there (a hand-derived one too) is judged by, as a whole.
    directional: Directional | None = None
    # The same along directions that move only some variables: (names) -> Directional | None,
    # for a hand-derived gradient of some of the variables.
    directional_for: Callable[[Sequence[str]], Directional | None] | None = None

    @property
    def passed(self) -> bool:
        return not any(v.failed for v in self.variables)

    def point(self, index: int) -> dict[str, np.ndarray]:
        """The coordinates of point `index` (a fixed variable has one value for all points)."""
        return {name: v[index if len(v) > 1 else 0] for name, v in self.points.items()}


def check(program: Lowered, points: Mapping[str, Any], options: CheckOptions) -> CheckResult:
    """Check the gradient of `program` at a batch of points (values have a leading point axis)."""
    if options.method not in fd.METHODS:
        raise GradcliError(
            f"unknown method {options.method!r}", hint=f"use one of {', '.join(fd.METHODS)}"
        )
    if options.dtype not in DTYPES:
        raise GradcliError(f"unknown dtype {options.dtype!r}", hint="use float64 or float32")
    check_variables(program, points.keys())
    names = wrt_names(program, options.wrt)
    if options.method == "complex":
        _require_analytic(program, names)
    if options.order not in (1, 2):
        raise GradcliError(f"order must be 1 or 2, not {options.order}")
    arrays = {n: np.asarray(v, dtype=np.float64) for n, v in points.items()}
    _, count = _batch(arrays)
    check_budget(count, [math.prod(arrays[n].shape[1:]) for n in names], options.order)
    rows = _rows_per_chunk(program, arrays, options)
    if count <= rows:
        return _check_points(program, arrays, options, names)
    parts = [_check_points(program, part, options, names) for part in split(arrays, count, rows)]
    if any(vc.direction is not None for r in parts for vc in r.variables):
        # With --fast a chunk whose entries do not all pass along the random direction has
        # them element by element: the whole sample gets them element by element.
        shapes = {tuple(vc.direction is None for vc in r.variables) for r in parts}
        if len(shapes) > 1:
            full = replace(options, fast=False)
            parts = [
                _check_points(program, part, full, names)
                if any(vc.direction is not None for vc in r.variables)
                else r
                for r, part in zip(parts, split(arrays, count, rows), strict=True)
            ]
    result = joined(parts, arrays)
    if options.order == 2:
        result.symmetry, result.symmetric = _asymmetry(result.variables)
    return result


def check_budget(count: int, sizes: Sequence[int], order: int) -> None:
    """Refuse, before it is allocated, a check whose result holds more elements than the limit:
    the evaluation goes a chunk of points at a time, but the result keeps about 10 float64s for
    every derivative at every point, and each chunk's state for judging hand-derived gradients
    and joining the chunks double that (1,000,000 points of `x*y + x/y` peaked at 400 MB;
    --samples 10,000,000 had peaked at 5.9 GB)."""
    entries = sum(sizes) * (sum(sizes) if order == 2 else 1)
    limit = ELEMENTS.value()
    if limit is not None and count * entries * _KEPT_PER_ENTRY > limit:
        each = f"{entries:,} derivative{'s' if entries != 1 else ''}"
        error = ELEMENTS.error(
            f"a check at {count:,} points of {each} each", count * entries * _KEPT_PER_ENTRY
        )
        most = max(1, limit // (entries * _KEPT_PER_ENTRY))
        error.hint = f"check at most {most:,} points here, or {error.hint}"
        raise error


def _rows_per_chunk(
    program: Lowered, points: Mapping[str, np.ndarray], options: CheckOptions
) -> int:
    """How many points one pass of the check takes: a check holds about 15 float64 arrays per
    value of the program at once (300,000 points of `x*y + x/y`, 5 values each, took 255 MB), so a
    chunk of max_elements/4 values keeps it near 80 MB, whatever the sample size."""
    shapes = {name: a.shape[1:] for name, a in points.items()}
    try:
        sizes = infer_shapes(toposort([program.output]), shapes).values()
    except GradcliError:
        return 1 << 62  # the check itself reports the shape mistake, with its span
    values = sum(math.prod(s) for s in sizes)
    return max(1, options.max_elements // 4 // max(values, 1))


def _check_points(
    program: Lowered, points: Mapping[str, np.ndarray], options: CheckOptions, names: list[str]
) -> CheckResult:
    """The check at one batch of points, all at once."""
    if options.order == 2:
        return _second_order(program, points, options, names)
    run = _Run(program, points, options)
    run.prefetch_forward(names)
    checks = run.variables(names)
    run.settle_underflowed(checks)
    directional = run.directional(checks, names)
    if directional is not None:
        mark_not_subgradients(checks, directional, run.grads)
    if options.blame:
        for vc in checks:
            if vc.failed:
                vc.blame = run.blame(vc)
    result = CheckResult(program, run.points, run.count, run.value, checks, run.faults, options)
    result.directional = directional
    result.directional_for = lambda among: run.directional(checks, among)
    return result


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


def _second_order(
    program: Lowered, points: Mapping[str, Any], options: CheckOptions, names: list[str]
) -> CheckResult:
    """The Hessian, checked as the gradient of each gradient component: reverse-over-reverse
    against finite differences of the gradient (and forward-over-reverse beside it)."""
    arrays = {n: np.asarray(v, dtype=np.float64) for n, v in points.items()}
    shapes = {n: a.shape[1:] for n, a in arrays.items()}
    graph = program.graph
    grads = grad(program.output, [program.variables[n] for n in names], shapes)
    first = replace(options, order=1, wrt=tuple(names))
    checks: list[VariableCheck] = []
    batch, count = _batch(arrays)
    (value,), raw, _ = evaluate([program.output], batch, DTYPES[options.dtype], batched=True)
    if not program.variables:  # a constant: evaluated without the axis of the points
        value = np.asarray(value)[None]
    value = np.broadcast_to(value, (count, *np.shape(value)[1:]))
    faults = [describe_fault(f, program, batched=True) for f in raw]
    for name, g in zip(names, grads, strict=True):
        for k in np.ndindex(shapes[name]):
            component = graph.apply("index", g, attrs=(k,)) if k else g
            label = name + (f"[{', '.join(map(str, k))}]" if k else "")
            run = _Run(replace(program, output=component), arrays, first)
            run.prefetch_forward(names)
            row = run.variables(names)
            run.settle_underflowed(row)
            directional = run.directional(row, names)
            if directional is not None:
                mark_not_subgradients(row, directional, run.grads)
            for vc in row:
                vc.of = label
                checks.append(vc)
            if options.blame:
                for vc in checks[-len(names) :]:
                    if vc.failed:
                        vc.blame = run.blame(vc)
            faults += [f for f in run.faults if f.message not in {x.message for x in faults}]
    result = CheckResult(program, batch, count, value, checks, faults, options)
    result.symmetry, result.symmetric = _asymmetry(checks)
    return result


def relative_asymmetry(h: np.ndarray) -> np.ndarray:
    """max |H_ij - H_ji| / max |H_ij| over the last two axes (the difference itself where H is
    0), for one matrix or a stack of them."""
    with np.errstate(all="ignore"):
        worst = np.max(np.abs(h - np.swapaxes(h, -1, -2)), axis=(-2, -1), initial=0.0)
        scale = np.max(np.abs(h), axis=(-2, -1), initial=0.0)
        return np.where(scale > 0, worst / np.where(scale > 0, scale, 1.0), worst)


def _require_analytic(program: Lowered, names: Sequence[str]) -> None:
    """The complex step evaluates f at x + ih: every function on the way must accept complex
    numbers and continue analytically, or the reference is meaningless (abs gives |x + ih|, a
    Python function may return its real part or fail)."""
    order = toposort([program.output])
    for name in names:
        for node in _reached(order, program.variables[name])[1:]:
            prim = REGISTRY[node.op]
            if prim.analytic:
                continue
            if node.op.startswith("python "):
                what = "a Python function need not accept complex numbers"
            else:
                what = f"{prim.written_as or node.op} is not analytic (it has no complex extension)"
            raise GradcliError(
                f"the complex step cannot differentiate this program: {what}; use the method "
                "richardson, or auto, which takes the complex step only where it is exact",
                node.span,
                source=program.source,
            )


def _asymmetry(checks: list[VariableCheck]) -> tuple[float | None, bool | None]:
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
    with np.errstate(all="ignore"):
        bound = tol + np.swapaxes(tol, 1, 2)
        within = bool(np.all((np.abs(h - np.swapaxes(h, 1, 2)) <= bound) | ~np.isfinite(bound)))
    return float(np.max(relative_asymmetry(h), initial=0.0)), within


@dataclass(frozen=True)
class _Probes:
    """Directions to differentiate along: from point `points[k]`, along a one-hot element or `v`."""

    points: np.ndarray  # (P,) index of the base point
    elements: np.ndarray | None  # (P,) flat element moved, for element probes
    direction: np.ndarray | None  # (E,) unit direction shared by all probes

    def select(self, which: np.ndarray) -> _Probes:
        elements = None if self.elements is None else self.elements[which]
        return _Probes(self.points[which], elements, self.direction)

    def shift(self, sl: slice, m: int, moves: np.ndarray, size: int) -> np.ndarray:
        """The shifts for the probes in `sl`, at `m` stencil moves each: (rows, size)."""
        if self.direction is not None:
            return moves[:, None] * self.direction[None, :]
        shift = np.zeros((len(moves), size), dtype=moves.dtype)
        shift[np.arange(len(moves)), np.repeat(self.elements[sl], m)] = moves
        return shift


class _Run:
    """State shared by the checks of one program at one batch of points."""

    def __init__(self, program: Lowered, points: Mapping[str, Any], options: CheckOptions):
        self.program, self.options = program, options
        self._prefetched: dict[str, np.ndarray] = {}  # forward mode, by `prefetch_forward`
        self.dtype = DTYPES[options.dtype]
        self.eps = fd.machine_eps(self.dtype)
        self.tiny = float(np.finfo(self.dtype).tiny)  # below it, numbers lose precision
        self.points = {n: np.asarray(v, dtype=np.float64) for n, v in points.items()}
        self.shapes = {n: a.shape[1:] for n, a in self.points.items()}
        self.batch, self.count = _batch(self.points)
        out = program.output
        self.order = toposort([out])
        wrt = list(program.variables.values())
        relative, absolute, grads = _rounding_scale(out, self.shapes, wrt)
        scales = grad(out, wrt, self.shapes, magnitude=True)
        self._grad_nodes = grads
        jumps = _switches(self.order)
        self.switches = list(jumps)
        # Watched beside the switches: the arguments of periodic functions, and the functions
        # that are 0 at a pole or branch point (the registry's `singular`). A stencil that moves
        # one by half its period, or the other by half its value, reaches as far from the point
        # as a kink (see `_signature`).
        self.witnesses, reach = _watched(self.order)
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
        self.f0 = _per_row(values[0], self.count)
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

    # --- evaluation of stencil rows ---------------------------------------------------------

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

    def _stencil(self, var: str, probes: _Probes, offsets: np.ndarray, h: np.ndarray):
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
            fs.append(_per_row(values[0], len(rows)).reshape(-1, m))
            sign = self._signature(values[1:], len(rows), rows)
            signs.append(sign.reshape(len(rows) // m, m, sign.shape[1]))
        return np.concatenate(fs), np.concatenate(signs)

    # --- one variable -----------------------------------------------------------------------

    def method_for(self, var: str) -> fd.Method:
        """The complex step if every node `var` reaches is analytic and smooth, else Richardson."""
        if self.options.method != "auto":
            return fd.BY_NAME[self.options.method]
        reached = _reached(self.order, self.program.variables[var])
        smooth = all(REGISTRY[n.op].analytic and REGISTRY[n.op].kink is None for n in reached[1:])
        return fd.COMPLEX if smooth else fd.RICHARDSON

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
            probes = _Probes(np.arange(self.count), None, v / np.linalg.norm(v))
            along = self._probe(var, method, probes)
            if (along.verdict == PASS).all():
                return along
        probes = _Probes(
            np.repeat(np.arange(self.count), size), np.tile(np.arange(size), self.count), None
        )
        return self._probe(var, method, probes)

    def _probe(self, var: str, method: fd.Method, probes: _Probes) -> VariableCheck:
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
                    entries.take(failed[passed], _select(second, passed))
        tolerance = self._tolerance(entries.reference, entries.error, entries.rounding)
        tolerance = np.where(np.isnan(entries.kink_tolerance), tolerance, entries.kink_tolerance)
        forward = self._forward(var, probes)
        self._compare_modes(var, probes, entries, forward)
        columns = 1 if probes.direction is not None else int(np.prod(self.shapes[var], dtype=int))
        check = entries.as_check(var, self.shapes[var], method.name, tolerance, self.count, columns)
        check.direction = probes.direction
        check.forward = forward.reshape(self.count, columns)
        self._explain(check, entries.notes)
        return check

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
        flat = _per_row(d, len(points)).astype(float)
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
        self, var: str, probes: _Probes, scale: np.ndarray | None = None, faults: bool = False
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
                parts.append(_per_row(d, len(rows)) / lengths[sl])
            found += chunk_faults
        result = np.concatenate(parts).astype(float)
        return (result, found) if faults else result

    def _compare_modes(
        self, var: str, probes: _Probes, entries: _Entries, forward: np.ndarray
    ) -> None:
        """Forward and reverse mode compute the same numbers in a different order: where they
        differ by more than the tolerance, a derivative rule of gradcli's own is wrong.

        Forward mode is linear in the tangent, so a tangent that overflows (that of
        exp(100000*x) can, where the gradient of log(exp(100000*x)) does not) is taken again
        with a shorter tangent; what is still not finite where reverse mode and the reference
        are is a failure that names the node where the tangent broke, unless it broke by
        overflowing, which is no fault of a rule (then the forward value is shown as null)."""
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
            fault = next((f for f in faults if f.node.op != "var"), None)
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

    def _judge_modes_widely(
        self,
        var: str,
        probes: _Probes,
        entries: _Entries,
        forward: np.ndarray,
        apart: np.ndarray,
        tolerance: np.ndarray,
    ) -> None:
        """Where the modes still differ, both again in extended precision: a wrong rule is wrong
        in every precision, while a difference made by a value that left float64's range is
        gone there, whether or not the evaluation traced it (a tangent that underflows inside
        norm while another overflows at any length of it is not traced). Decided probes leave
        `apart`; the rest are left to what float64 can tell."""
        idx = np.flatnonzero(apart)[:_MAX_WIDE_ROWS]
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

    def _wide_modes(self, var: str, probes: _Probes) -> tuple[np.ndarray, np.ndarray] | None:
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
            d = _per_row(d, len(rows))
            # Far past float64's range the wider type has limits of its own: undecided there.
            edge = np.zeros(len(rows), bool)
            for node in _moving(order):
                v = np.asarray(kept[node])
                a = np.abs(np.broadcast_to(v, (len(rows), *v.shape[1:]))).reshape(len(rows), -1)
                if v.dtype == np.longdouble:
                    edge |= (((a != 0) & (a < low)) | (a > high)).any(axis=1)
                elif v.dtype.kind in "fc":  # computed in a narrower type: harmless if 0/1 (equal)
                    edge |= ((a != np.round(a)) | (a > 2.0**53)).any(axis=1)
            out = g.astype(np.longdouble), d.astype(np.longdouble)
        return tuple(np.where(edge, np.nan, x) for x in out)  # type: ignore[return-value]

    def _entries(
        self, var: str, method: fd.Method, probes: _Probes, steps: np.ndarray | None = None
    ) -> _Entries:
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
        entries = _Entries(
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
        entries.trusted = _trusted(reference, error, np.maximum(rounding, entries.rounding))
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

    def _unknown_kinks(self, var: str, probes: _Probes, entries: _Entries) -> None:
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
        for _ in range(_MAX_RUNGS):
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
                    entries.notes[int(done[k])] = _jump_note(
                        side.left_limit[position],
                        side.right_limit[position],
                        self.f0[sub.points[position]],
                    )

    def _second_opinion(self, var: str, probes: _Probes, entries: _Entries) -> None:
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
                entries.take(open_[chosen], _select(second, chosen))

    def _size(self, entries: _Entries) -> np.ndarray:
        """The size of the chain-rule terms of each probe's derivative."""
        return np.maximum(np.abs(entries.autograd), entries.rounding / self.eps)

    def _safe_complex_step(
        self, var: str, probes: _Probes, entries: _Entries, which: np.ndarray
    ) -> np.ndarray:
        """A complex step h with h·(size of the chain-rule terms) about 2^-900, at most the
        usual one, c·min(1, |x|): far from underflow, and far below any scale on which the
        function curves (which can be |x| itself: norm at 1e-300)."""
        size = self._size(entries)[which]
        scale = self._scale(fd.COMPLEX, np.abs(self._coordinate(var, probes, which)))
        usual = fd.COMPLEX.coefficient(self.eps) * scale
        return self._power_of_two(np.minimum(2.0**-900 / np.maximum(size, self.tiny), usual))

    def _on_kink(self, var: str, points: np.ndarray) -> np.ndarray:
        """Whether each point sits on a kink that `var` moves (relu(y) at y = 0 is no kink of
        x·y + tan(x) in x, and must not keep x from the complex step)."""
        if var not in self._moved_switches:
            source = self.program.variables[var]
            reached = set(_reached(toposort(self.switches), source)) if self.switches else set()
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
        """Whether `var` reaches a function that neither continues analytically nor names its
        kinks: the graph cannot say where it is not differentiable."""
        reached = _reached(self.order, self.program.variables[var])
        return any(not REGISTRY[n.op].analytic and REGISTRY[n.op].kink is None for n in reached[1:])

    def _analytic(self, var: str) -> bool:
        """Whether every node `var` reaches has an analytic continuation (kinks allowed: a
        failure comes from a clean stencil, off any kink)."""
        reached = _reached(self.order, self.program.variables[var])
        return all(REGISTRY[n.op].analytic for n in reached[1:])

    def _refine(
        self, var: str, probes: _Probes, scale: np.ndarray, idx: np.ndarray, entries: _Entries
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
        last_how = _labels(len(idx), "none")
        jumped = np.zeros(len(idx), bool)  # last seen as a jump, and confirmed at every step since
        for _ in range(_MAX_RUNGS):  # s ≥ the smallest normal number: a few dozen steps
            s = s / 8
            s = np.where(small & (s < coarse_floor) & (s > relative), relative, s)
            active = np.flatnonzero(todo & (s >= floor))
            if active.size == 0:
                break
            sub = probes.select(idx[active])
            h = s[active]
            f, signs = self._stencil(var, sub, fd.ONE_SIDED_OFFSETS, h)
            f0 = self.f0[sub.points]
            base = self.base_sign[sub.points]
            side = Sides(f, f0, h, self.eps, self.noise[sub.points], signs, base)
            tol = self._tolerance(
                np.maximum(np.abs(side.left), np.abs(side.right)),
                side.error,
                entries.rounding[idx[active]],
            )
            with np.errstate(all="ignore"):
                agree = np.abs(side.left - side.right) <= tol
            both = side.left_ok & side.right_ok
            smooth = both & agree & ~side.jump
            # One-sided derivatives that have not converged (a step far above the width of
            # sigmoid(1e29·x)) bound nothing yet: a smaller step is tried.
            with np.errstate(all="ignore"):  # the rounding in each side's own estimate
                noise = np.maximum(self.eps * np.abs(f).max(axis=1), self.noise[sub.points])
                rounding = np.maximum(8 * noise / h, entries.rounding[idx[active]])
            converged = _trusted(side.left, side.left_error, rounding) & _trusted(
                side.right, side.right_error, rounding
            )
            kink = both & ~smooth & (side.jump | converged)
            where = idx[active]

            done = where[smooth]
            entries.reference[done] = side.central[smooth]
            entries.error[done] = side.central_error[smooth]
            entries.step[done] = h[smooth]
            entries.how[done] = "central, smaller step"

            done = where[kink]
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
                entries.notes[int(done[k])] = _jump_note(
                    side.left_limit[kink][k], side.right_limit[kink][k], f0[kink][k]
                )

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
        rest = idx[left]
        entries.reference[rest] = last_ref[left]
        entries.error[rest] = last_err[left]
        entries.how[rest] = last_how[left]
        entries.edge[rest] = True
        # On a kink one side says nothing about a subgradient, which both sides bound.
        kinked = rest[self._on_kink(var, probes.points[rest]) & np.isfinite(last_ref[left])]
        entries.verdict[kinked] = UNCHECKED
        for k in kinked:
            entries.notes[int(k)] = (
                "on a kink, and only one side of it resolves (the other meets another kink or "
                "leaves the domain within the smallest usable step): a subgradient needs both"
            )

    def _confirm_jumps(
        self, var: str, probes: _Probes, idx: np.ndarray, x: np.ndarray, entries: _Entries
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

    def _confirm(self, var: str, method: fd.Method, probes: _Probes, entries: _Entries):
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
        trusted = entries.trusted[failing]
        if method.name == "complex":
            trusted &= h * self._size(entries)[failing] >= 2.0**-960
        refs = [np.where(trusted, entries.reference[failing], np.nan)]
        errs = [np.where(trusted, entries.error[failing], np.nan)]
        steps = [h.copy()]
        active = np.ones(failing.size, bool)
        for _ in range(_MAX_RUNGS):  # every step ≥ the smallest normal number: a few dozen at most
            h = np.where(active, h / 32, h)
            h = np.where(active & (h < coarse_floor) & (h > relative), relative, h)
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
                good = clean & _trusted(ref, err, np.maximum(rnd, entries.rounding[failing[on]]))
                if method.name == "complex":  # a step too small to see the derivative
                    good &= h[on] * self._size(entries)[failing[on]] >= 2.0**-960
            rung_ref, rung_err = np.full(failing.size, np.nan), np.full(failing.size, np.nan)
            rung_ref[on[good]], rung_err[on[good]] = ref[good], err[good]
            refs.append(rung_ref)
            errs.append(rung_err)
            steps.append(h.copy())
        self._settle(failing, np.stack(refs), np.stack(errs), np.stack(steps), method, entries, x)

    def _settle(
        self, failing, refs, errs, steps, method: fd.Method, entries: _Entries, x: np.ndarray
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
            entries.notes[int(k)] = _UNSETTLED

    # --- kinks that only an underflow made ---------------------------------------------------

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
        rows = np.flatnonzero(zero.any(axis=1))[:_MAX_WIDE_ROWS]
        if rows.size == 0:
            return found
        order = toposort(self.switches)
        moving = _moving(order)
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

    # --- the gradient as a whole, at kinks --------------------------------------------------

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
        normals, still = (None, None) if probed is None else probed
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
            normals = normals[keep]
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
        terms = np.concatenate([self.scales[n][rows] for n in names], axis=1)

        def along(which: np.ndarray, mv: np.ndarray):
            along_kink = np.array(tangent)[which] if tangent else None
            rounding = self.eps * np.einsum("dn,dn->d", np.abs(terms[which]), np.abs(mv))

            def stencil(pts, mv, offsets, h):
                f, signs = self._stencil_along(pts, mv, offsets, h, layout)
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
                rows[which],
                mv,
                self.f0[rows[which]],
                self.base_sign[rows[which]],
                self.noise[rows[which]],
                rounding,
                self.eps,
                self._tolerance,
                float(self._power_of_two(fd.RICHARDSON.coefficient(self.eps))),
                64 * self.eps,
                _MAX_RUNGS,
            )

        everything = np.arange(len(rows))
        (left, right, tol), second = along(everything, moves)
        # Moves are scaled by max(1, |x|), so the ladder's floor (64ε) cannot reach a kink among
        # coordinates of 1e-182: where no step resolved a direction that moves only coordinates
        # below 1, it is tried again in units of the largest coordinate it moves.
        at = x[np.array(owners, dtype=int)]
        size = np.where(moves != 0, np.abs(at), 0.0).max(axis=1, initial=0.0)
        retry = np.flatnonzero((np.isnan(left) | np.isnan(right)) & (size > 0) & (size < 1))
        if retry.size:
            small = moves[retry] * size[retry, None]
            (l2, r2, t2), (l3, r3, t3) = along(retry, small)
            done = ~np.isnan(l2) & ~np.isnan(r2)
            put = retry[done]
            moves = moves.copy()
            moves[put] = small[done]
            left[put], right[put], tol[put] = l2[done], r2[done], t2[done]
            for old_, new_ in zip(second, (l3, r3, t3), strict=True):
                old_[put] = new_[done]
        return Directional(rows, moves, left, right, tol, layout, second)

    def _tangent(self, p: int, normals: np.ndarray, move: np.ndarray) -> np.ndarray:
        """Which switches that are 0 at point `p` the move runs along (normal ⟂ move): (K,)."""
        with np.errstate(all="ignore"):
            size = np.linalg.norm(normals, axis=1) * np.linalg.norm(move)
            along = np.abs(normals @ move) <= 1e-9 * size
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
            fs.append(_per_row(values[0], len(rows)).reshape(-1, m))
            sign = self._signature(values[1:], len(rows), rows)
            signs.append(sign.reshape(len(rows) // m, m, sign.shape[1]))
        return np.concatenate(fs), np.concatenate(signs)

    def _switch_normals(
        self, points: np.ndarray, names: Sequence[str], layout: Mapping[str, slice], total: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The gradient of every switching function at each point, (points, K, total), and
        whether it stays exactly 0 under every move, (points, K); None without switches or
        for many coordinates.

        By central differences of the switches, not by forward mode: the directions along a
        kink must not come from the rules under test (a wrong partial of hypot tilted its
        switch's gradient by just what hid the error along the kink). A switch that is a cone
        at its tip (the gap between the two smallest elements of min, at their tie) has no
        central difference, only a sign-blind slope on each side: there forward mode's
        gradient is taken."""
        if not self.switches or total > 64 or 2 * len(points) * total > self.options.max_elements:
            return None
        x = np.concatenate([self._values(n)[points] for n in names], axis=1)  # (P, total)
        h = self._power_of_two(fd.CENTRAL.coefficient(self.eps) * np.maximum(1.0, np.abs(x)))
        rows = np.repeat(points, 2 * total)
        moves = np.tile(np.concatenate([np.eye(total), -np.eye(total)]), (len(points), 1))
        moves = moves * np.repeat(h, 2 * total, axis=0)
        env = self._rows(rows)
        for n in names:
            moved = self._values(n)[rows] + moves[:, layout[n]]
            env[n] = moved.reshape(len(rows), *self.shapes[n])
        values, _, _ = evaluate(self.switches, env, self.dtype, batched=True)
        s = self._switch_values(values, len(rows)).reshape(len(points), 2, total, -1)
        base = self.base_switch[points][:, None, : self.kink_columns]  # (P, 1, K)
        with np.errstate(all="ignore"):
            jac = ((s[:, 0] - s[:, 1]) / (2 * h[:, :, None])).transpose(0, 2, 1)  # (P, K, total)
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
        return jac, still

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

    def _coordinate(self, var: str, probes: _Probes, which: Any = slice(None)) -> np.ndarray:
        """The coordinate each probe moves (its largest entry, for a direction)."""
        x = self._values(var)
        points = probes.points[which]
        if probes.direction is not None:
            return np.abs(x[points]).max(axis=1)
        return x[points, probes.elements[which]]

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
                        "kink, or spans too much of the period of a sine, cosine or tangent"
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

    # --- blame ------------------------------------------------------------------------------

    def blame(self, check: VariableCheck) -> list[Blame]:
        """At the worst failing point, test each primitive's own rule on its actual inputs."""
        p, _ = check.worst()
        env = {name: a[p if len(a) > 1 else 0] for name, a in self.batch.items()}
        _, _, values = evaluate([self.program.output], env, self.dtype, keep_all=True)
        graph = self.program.graph
        found = []
        reached = _reached(self.order, self.program.variables[check.name])
        live = set(reached)
        for node in reached[1:]:
            prim = REGISTRY[node.op]
            if prim.partials is None:
                continue
            args = [values[i] for i in node.inputs]
            for i, inp in enumerate(node.inputs):
                if inp not in live:
                    continue
                with graph.deriving(node):
                    rule_node = prim.partials[i](node, *node.inputs)
                rule = self._rule_value(rule_node, env)
                numeric, error = _primitive_partial(prim, args, i, node.attrs, self.eps)
                shape = np.broadcast_shapes(
                    np.shape(rule), np.shape(numeric), np.shape(values[node])
                )
                rule, numeric, error = (np.broadcast_to(a, shape) for a in (rule, numeric, error))
                with np.errstate(all="ignore"):
                    bad = np.abs(rule - numeric) > self._tolerance(numeric, error)
                bad &= np.isfinite(numeric)
                if bad.any():
                    k = np.unravel_index(int(np.argmax(bad)), shape)
                    found.append(_blame(node, i, float(rule[k]), float(numeric[k]), self.program))
        return found

    def _rule_value(self, rule: Node | float | None, env: Mapping[str, Any]) -> Any:
        if rule is None:
            return 0.0
        if not isinstance(rule, Node):
            return float(rule)
        (value,), _, _ = evaluate([rule], env, self.dtype)
        return np.asarray(value, dtype=float)


class _Entries:
    """Per-probe arrays while a variable is being checked."""

    def __init__(self, autograd, reference, error, step, n, method):
        self.autograd, self.reference, self.error, self.step = autograd, reference, error, step
        self.how = _labels(n, method)
        self.verdict = _labels(n, PASS)
        self.left = np.full(n, np.nan)
        self.right = np.full(n, np.nan)
        self.edge = np.zeros(n, bool)  # reference from one side only, at a domain edge or kink
        self.rounding = np.zeros(n)  # ε·s: the rounding scale of the chain-rule terms
        self.trusted = np.ones(n, bool)  # the reference's error estimate can be believed
        # At a kink: the tolerance the value was judged with between the one-sided derivatives
        # (the reference, their midpoint, has an error of half their gap: no tolerance of it).
        self.kink_tolerance = np.full(n, np.nan)
        self.notes: dict[int, str] = {}

    def take(self, idx: np.ndarray, other: _Entries) -> None:
        """Replace the probes at `idx` by those of `other`, computed for exactly these probes."""
        for name in ("autograd", "reference", "error", "step", "how", "verdict", "left", "right"):
            getattr(self, name)[idx] = getattr(other, name)
        self.edge[idx], self.rounding[idx] = other.edge, other.rounding
        self.trusted[idx] = other.trusted
        self.kink_tolerance[idx] = other.kink_tolerance
        for k in idx:
            self.notes.pop(int(k), None)
        self.notes |= {int(idx[k]): note for k, note in other.notes.items()}

    def judge(self, tolerance: np.ndarray, value_finite: np.ndarray) -> None:
        """Verdicts from the tolerance; nan or inf in the value or the gradient is its own."""
        plain = self.verdict == PASS
        with np.errstate(all="ignore"):
            ok = np.abs(self.autograd - self.reference) <= tolerance
        self.verdict[plain & ~ok] = FAIL
        self.verdict[plain & ~ok & self.edge] = UNCHECKED
        self.verdict[plain & ~np.isfinite(self.reference)] = UNCHECKED
        # A bound of nan or inf judges nothing: an infinite error estimate (a difference of
        # 1e-291 lost in a sum of 1e273) passed every autograd value.
        self.verdict[plain & ~np.isfinite(tolerance)] = UNCHECKED
        self.verdict[~np.isfinite(self.autograd) | ~value_finite] = NONFINITE

    def as_check(self, var, shape, method, tolerance, count, columns) -> VariableCheck:
        def grid(a):
            return np.asarray(a).reshape(count, columns)

        return VariableCheck(
            var,
            tuple(shape),
            method,
            *(grid(a) for a in (self.autograd, self.reference, self.error, self.step, tolerance)),
            *(grid(a) for a in (self.verdict, self.how, self.left, self.right)),
        )


def _labels(n: int, label: str) -> np.ndarray:
    """An object array of one string: np.full would store a new copy of it in every element
    (56 bytes each, a third of a large check's memory)."""
    out = np.empty(n, dtype=object)
    out.fill(label)
    return out


def _batch(points: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Variables with a leading point axis: of length `count`, or 1 for a value all points share."""
    count = max((a.shape[0] for a in points.values()), default=1)
    for name, a in points.items():
        if a.shape[0] not in (1, count):
            raise GradcliError(f"{name} has {a.shape[0]} points where the others have {count}")
    return dict(points), count


def _select(entries: _Entries, which: np.ndarray) -> _Entries:
    """The probes `which` of `entries`, as entries of their own."""
    out = _Entries(
        entries.autograd[which],
        entries.reference[which],
        entries.error[which],
        entries.step[which],
        len(which),
        "",
    )
    for name in (
        "how",
        "verdict",
        "left",
        "right",
        "edge",
        "rounding",
        "trusted",
        "kink_tolerance",
    ):
        setattr(out, name, getattr(entries, name)[which])
    position = {int(k): i for i, k in enumerate(which)}
    out.notes = {position[k]: v for k, v in entries.notes.items() if k in position}
    return out


def _jump_note(left: float, right: float, here: float) -> str:
    """Words for a jump: a step between two sides, or a single point off the value around it."""
    if abs(left - right) <= 1e-9 * abs(here - (left + right) / 2):
        return (
            f"the value breaks at this single point: it is {here:.17g} here and "
            f"{left:.17g} on both sides"
        )
    return f"the value jumps here, from {left:.17g} on the left to {right:.17g} on the right"


def _trusted(reference: np.ndarray, error: np.ndarray, rounding: np.ndarray) -> np.ndarray:
    """Whether an error estimate can be believed: the truncation error has converged (small
    next to the reference) or the estimate is at the level of rounding (a derivative of 0).
    Out of the asymptotic regime, references at a step too large can agree with each other,
    each with a large error estimate, and must not confirm a failure (a failure also needs a
    second reference that rules the autograd value out: see `_settle`)."""
    with np.errstate(all="ignore"):
        return (error <= 0.1 * np.abs(reference)) | (error <= 4 * rounding)


def _moving(order: Sequence[Node]) -> set[Node]:
    """The nodes of `order` (topologically sorted) that depend on a variable."""
    moving: set[Node] = set()
    for node in order:
        if node.op == "var" or any(i in moving for i in node.inputs):
            moving.add(node)
    return moving


def _switches(order: Sequence[Node]) -> dict[Node, bool]:
    """The switching function of every kink in `order` that can move (depends on a variable),
    and whether the value jumps where it is 0 (for any of the primitives it switches)."""
    moving = _moving(order)
    out: dict[Node, bool] = {}
    for node in order:
        prim = REGISTRY.get(node.op)
        if prim is not None and prim.kink is not None and node in moving:
            with node.graph.deriving(node):
                switch = prim.kink(*node.inputs, *node.attrs)
            if isinstance(switch, Node):
                out[switch] = out.get(switch, False) or prim.jump
    return out


def _watched(order: Sequence[Node]) -> tuple[list[Node], list[float]]:
    """What the stencils watch besides the switches, for every primitive in `order` that can
    move: the argument of a periodic function, with half its period as the reach; and the
    registry's `singular` function of the inputs, with nan: half its own value."""
    moving = _moving(order)
    nodes: list[Node] = []
    reach: list[float] = []
    for node in order:
        if not node.inputs or not any(i in moving for i in node.inputs):
            continue
        prim = REGISTRY[node.op]
        if prim.period is not None and node.inputs[0] in moving:
            nodes.append(node.inputs[0])
            reach.append(prim.period / 2)
        if prim.singular is not None:
            with node.graph.deriving(node):
                witness = prim.singular(*node.inputs, *node.attrs)
            if isinstance(witness, Node) and (
                witness in moving or any(i in moving for i in witness.inputs)
            ):
                nodes.append(witness)
                reach.append(math.nan)
    return nodes, reach


def _rounding_scale(
    output: Node, item_shapes: Mapping[str, tuple], wrt: Sequence[Node] = ()
) -> tuple[Node, Node, list[Node]]:
    """Σ over the nodes v of |v·∂f/∂v|, and of |∂f/∂v|: ε times the first bounds the rounding
    error of a value of f to first order (a sum of large terms that cancel has a small value but
    a large bound), and the smallest subnormal times the second what values that underflow lose
    (x*x at x = 1e-290 is 0, and 1e300*(x*x) with it).

    The same reverse pass gives the gradient in `wrt`, returned beside them."""
    graph = output.graph
    everything = toposort([output])
    order = [n for n in everything if n.inputs]
    adjoints = grad(output, [*order, *wrt], item_shapes)
    gradient = adjoints[len(order) :]
    if not order:
        return graph.const(0.0), graph.const(0.0), gradient
    shapes = infer_shapes(everything, item_shapes)
    relative, absolute = [], []
    for node, adjoint in zip(order, adjoints, strict=False):
        for terms, term in ((relative, node * adjoint), (absolute, adjoint)):
            term = graph.apply("abs", term)
            if shapes[node] != ():
                term = graph.apply("sum_to", term, attrs=((),))
            terms.append(term)
    return reduce(add, relative), reduce(add, absolute), gradient


def _per_row(value: Any, rows: int) -> np.ndarray:
    """The sum of each row's elements: the scalar whose derivative is checked."""
    value = np.asarray(value)
    if value.ndim == 0:
        return np.full(rows, value)
    with np.errstate(over="ignore", invalid="ignore"):  # a sum may overflow: checked as inf
        return np.broadcast_to(value, (rows, *value.shape[1:])).reshape(rows, -1).sum(axis=1)


def _reached(order: Sequence[Node], source: Node) -> list[Node]:
    """`source` and the nodes of `order` that depend on it, in order."""
    reached = {source}
    for node in order:
        if any(i in reached for i in node.inputs):
            reached.add(node)
    return [source] + [n for n in order if n in reached and n is not source]


def _primitive_partial(prim, args: list[Any], i: int, attrs: tuple, eps: float):
    """∂prim/∂args[i], elementwise, by a finite difference of the primitive's own forward."""
    x = np.asarray(args[i])
    scale = np.maximum(1.0, np.abs(np.real(x)))
    method = fd.COMPLEX if prim.analytic and prim.kink is None else fd.RICHARDSON
    h = method.coefficient(eps) * scale
    samples = []
    with np.errstate(all="ignore"):
        for offset in method.offsets:
            moved = list(args)
            moved[i] = x + offset * h
            samples.append(np.asarray(prim.forward(*moved, *attrs)))
        f0 = np.asarray(prim.forward(*args, *attrs))
        shape = np.broadcast_shapes(f0.shape, *(s.shape for s in samples))
        f = np.stack([np.broadcast_to(s, shape) for s in samples], axis=-1)
        reference, error, _ = method.combine(
            f, np.broadcast_to(f0, shape), np.broadcast_to(h, shape), eps
        )
        return reference, error


_ORDINALS = ("first", "second", "third", "fourth")


def _blame(node: Node, argument: int, rule: float, numeric: float, program: Lowered) -> Blame:
    where = ""
    if node.span is not None:
        where = f" in {program.source.snippet(node.span)} at {program.source.location(node.span)}"
    message = (
        f"the derivative rule of {node.op} with respect to its {_ORDINALS[argument]} argument"
        f"{where} gives {rule:.17g}, but a finite difference of {node.op} itself gives "
        f"{numeric:.17g}"
    )
    return Blame(node, argument, rule, numeric, message)
