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
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..evaluation.faults import describe_fault
from ..evaluation.interpreter import evaluate
from ..graph.nodes import toposort
from ..graph.shapes import infer_shapes
from ..language.limits import ELEMENTS
from ..language.lower import Lowered
from ..language.program import check_variables, wrt_names
from ..language.source import GradcliError
from ..primitives import REGISTRY
from ..transforms.reverse import grad
from . import finite_diff as fd
from .blame import Blaming
from .hessian import asymmetry
from .merging import joined, split
from .probing import Probing
from .regularity import abstain_where_nothing_fits
from .structure import point_batch, reached_from
from .subgradients import JudgingKinks, mark_not_subgradients
from .verdicts import (
    DTYPES,
    FAIL,
    FAILING,
    KINK,
    KINK_FAIL,
    NONFINITE,
    PASS,
    UNCHECKED,
    Blame,
    CheckOptions,
    CheckResult,
    VariableCheck,
)

# The checker's public face: a check and the records it returns (defined in `verdicts`).
__all__ = [
    "DTYPES",
    "FAIL",
    "FAILING",
    "KINK",
    "KINK_FAIL",
    "NONFINITE",
    "PASS",
    "UNCHECKED",
    "Blame",
    "CheckOptions",
    "CheckResult",
    "VariableCheck",
    "check",
    "check_budget",
]

_KEPT_PER_ENTRY = (
    24  # float64s per derivative and point at the peak (measured: 25, see check_budget)
)


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
    _, count = point_batch(arrays)
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
        result.symmetry, result.symmetric = asymmetry(result.variables)
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
    abstain_where_nothing_fits(checks, directional)
    if options.blame:
        for vc in checks:
            if vc.failed:
                vc.blame = run.blame(vc)
    result = CheckResult(program, run.points, run.count, run.value, checks, run.faults, options)
    result.directional = directional
    result.directional_for = lambda among: run.directional(checks, among)
    return result


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
    batch, count = point_batch(arrays)
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
            abstain_where_nothing_fits(row, directional)
            for vc in row:
                vc.of = label
                checks.append(vc)
            if options.blame:
                for vc in checks[-len(names) :]:
                    if vc.failed:
                        vc.blame = run.blame(vc)
            faults += [f for f in run.faults if f.message not in {x.message for x in faults}]
    result = CheckResult(program, batch, count, value, checks, faults, options)
    result.symmetry, result.symmetric = asymmetry(checks)
    return result


def _require_analytic(program: Lowered, names: Sequence[str]) -> None:
    """The complex step evaluates f at x + ih: every function on the way must accept complex
    numbers and continue analytically, or the reference is meaningless (abs gives |x + ih|, a
    Python function may return its real part or fail)."""
    order = toposort([program.output])
    for name in names:
        for node in reached_from(order, program.variables[name])[1:]:
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


class _Run(Probing, JudgingKinks, Blaming):
    """A check of one program at one batch of points: every concern's passes together."""
