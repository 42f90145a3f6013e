"""The pipeline behind `gradcli eval`: parse, lower, differentiate, evaluate, diagnose.

The command line is a thin layer over `compile_program` and `evaluate`; both raise `GradcliError`
for unusable input, and report numerical faults as located diagnostics rather than exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checking.hessian import relative_asymmetry
from .evaluation.faults import describe_fault, fault_order, lost_digits
from .evaluation.gradient import Evaluation, evaluate, input_value, prepared
from .evaluation.interpreter import evaluate as run
from .graph.nodes import toposort
from .graph.shapes import infer_shapes
from .language.limits import check_elements
from .language.lower import Lowered
from .language.program import (
    check_variables,
    compile_program,
    differentiable,
    unknown_variable,
    wrt_names,
)
from .language.source import GradcliError, Span
from .transforms.forward import TANGENT, jvps
from .transforms.reverse import grad as gradient_nodes

# The API's own names, and those of the layers below that it offers as its own.
__all__ = [
    "Directional",
    "Evaluation",
    "Hessian",
    "Jacobian",
    "check",
    "check_variables",
    "compile_program",
    "describe_fault",
    "diff",
    "differentiable",
    "directional",
    "evaluate",
    "grad",
    "hessian",
    "input_value",
    "jacobian",
    "lost_digits",
    "prepared",
    "wrt_names",
]


@dataclass(frozen=True)
class Jacobian:
    """∂f_i/∂x_j of a vector- or array-valued program: one array per variable, of shape
    (*shape of f, *shape of the variable)."""

    program: Lowered
    variables: dict[str, np.ndarray]
    value: np.ndarray
    matrices: dict[str, np.ndarray]
    faults: list[GradcliError]

    @property
    def finite(self) -> bool:
        return bool(
            np.all(np.isfinite(self.value))
            and all(np.all(np.isfinite(j)) for j in self.matrices.values())
        )


_SEED = "seed·"  # a name no program can write ("·" is not a letter)


def jacobian(
    program: Lowered | str, values: Mapping[str, Any], wrt: Sequence[str] | None = None
) -> Jacobian:
    """The Jacobian in one batched reverse pass: the gradient of Σ f·s, evaluated with the
    seeds s batched as the rows of the identity, one row per element of f."""
    program, arrays, shapes = prepared(program, values)
    names = wrt_names(program, wrt)
    graph, out = program.graph, program.output
    try:
        out_shape = infer_shapes(toposort([out]), shapes)[out]
        seed = graph.var(_SEED)
        total = graph.apply("sum", out * seed, attrs=(None,))
        grads = gradient_nodes(
            total, [program.variables[n] for n in names], {**shapes, _SEED: out_shape}
        )
        size = int(np.prod(out_shape, dtype=int))
        widest = max([size, *(int(np.prod(shapes[n], dtype=int)) for n in names)])
        check_elements((size, widest), "the Jacobian's batch of seeds")
        env = {name: a[None] for name, a in arrays.items()}
        env[_SEED] = np.eye(size).reshape(size, *out_shape)
        outputs, faults, _ = run([out, *grads], env, batched=True)
    except GradcliError as err:
        raise err.with_source(program.source) from None
    value, *rows = outputs
    matrices = {
        name: np.broadcast_to(g, (size, *shapes[name])).reshape((*out_shape, *shapes[name]))
        for name, g in zip(names, rows, strict=True)
    }
    value = np.broadcast_to(value, (1, *out_shape))[0]
    described = [describe_fault(f, program, batched=True) for f in sorted(faults, key=fault_order)]
    return Jacobian(program, arrays, np.asarray(value), matrices, described)


@dataclass(frozen=True)
class Directional:
    """A forward-mode derivative: the tangent of f along a direction, and vᵀ∇(Σf) by reverse
    mode beside it."""

    program: Lowered
    variables: dict[str, np.ndarray]
    direction: dict[str, np.ndarray]
    value: np.ndarray
    derivative: np.ndarray  # shaped like f
    reverse: float  # vᵀ∇(Σf), from the reverse pass
    faults: list[GradcliError]

    @property
    def finite(self) -> bool:
        return bool(np.all(np.isfinite(self.value)) and np.all(np.isfinite(self.derivative)))


def directional(
    program: Lowered | str, values: Mapping[str, Any], direction: Mapping[str, Any]
) -> Directional:
    """Forward mode along `direction` (variables it omits stay fixed)."""
    program, arrays, shapes = prepared(program, values)
    differentiable(program, list(direction))
    moves = {}
    for name, v in direction.items():
        if name not in program.variables:
            raise unknown_variable(name, program, "--direction: ")
        move = np.asarray(v, dtype=np.float64)
        try:
            moves[name] = np.broadcast_to(move, shapes[name])
        except ValueError:
            raise GradcliError(
                f"--direction: {name} has shape {shapes[name]}, its direction {move.shape}",
                hint=f"give {name} a direction of its shape, or one number for every element",
            ) from None
    graph = program.graph
    tangent_vars = {program.variables[n]: graph.var(n + TANGENT) for n in moves}
    tangent_shapes = {n + TANGENT: shapes[n] for n in moves}
    try:
        (derivative,) = jvps([program.output], tangent_vars, {**shapes, **tangent_shapes})
        grads = gradient_nodes(program.output, [program.variables[n] for n in moves], shapes)
        env = {**arrays, **{n + TANGENT: m for n, m in moves.items()}}
        (value, d, *g), faults, _ = run([program.output, derivative, *grads], env)
    except GradcliError as err:
        raise err.with_source(program.source) from None
    with np.errstate(all="ignore"):  # an overflow is reported as inf, not as numpy's warning
        reverse = sum(
            float(np.sum(np.asarray(gi) * moves[n])) for n, gi in zip(moves, g, strict=True)
        )
    described = [describe_fault(f, program) for f in sorted(faults, key=fault_order)]
    return Directional(
        program, arrays, dict(moves), np.asarray(value), np.asarray(d), reverse, described
    )


@dataclass(frozen=True)
class Hessian:
    """∂²(Σf)/∂x_i∂x_j over every element of the variables, in order: `labels` names them."""

    program: Lowered
    variables: dict[str, np.ndarray]
    labels: list[str]
    matrix: np.ndarray
    gradient: np.ndarray
    value: np.ndarray
    mode: str
    faults: list[GradcliError]

    @property
    def asymmetry(self) -> float:
        """The largest |H_ij - H_ji|, relative to the largest |H_ij|."""
        return float(relative_asymmetry(self.matrix))

    @property
    def finite(self) -> bool:
        """The value, the gradient and every entry: a nan value is as wrong as a nan entry."""
        return bool(
            np.all(np.isfinite(self.matrix))
            and np.all(np.isfinite(self.gradient))
            and np.all(np.isfinite(self.value))
        )


_SEED_SUFFIX = "·seed"  # a suffix no program can write


def hessian(
    program: Lowered | str,
    values: Mapping[str, Any],
    wrt: Sequence[str] | None = None,
    mode: str = "forward",
) -> Hessian:
    """The Hessian in one batched pass over the basis directions: forward-over-reverse (the
    tangent of the gradient along each direction) or reverse-over-reverse (the gradient of each
    gradient component, through seeds)."""
    if mode not in ("forward", "reverse"):
        raise GradcliError(f"unknown mode {mode!r}", hint="use forward or reverse")
    program, arrays, shapes = prepared(program, values)
    names = wrt_names(program, wrt)
    differentiable(program, names)
    sizes = [int(np.prod(shapes[n], dtype=int)) for n in names]
    total = sum(sizes)
    check_elements((total, total), "the Hessian")
    labels = [
        n + ("" if not shapes[n] else f"[{', '.join(map(str, np.unravel_index(k, shapes[n])))}]")
        for n, size in zip(names, sizes, strict=True)
        for k in range(size)
    ]
    graph = program.graph
    wrt_nodes = [program.variables[n] for n in names]
    try:
        grads = gradient_nodes(program.output, wrt_nodes, shapes)
        basis = _basis(names, sizes, shapes, total)
        if mode == "forward":
            suffix = TANGENT
            seeds = {program.variables[n]: graph.var(n + suffix) for n in names}
            second = jvps(grads, seeds, {**shapes, **{n + suffix: shapes[n] for n in names}})
        else:
            suffix = _SEED_SUFFIX
            weighted = None
            for n, g in zip(names, grads, strict=True):
                term = graph.apply("sum", g * graph.var(n + suffix), attrs=(None,))
                weighted = term if weighted is None else weighted + term
            second = gradient_nodes(
                weighted, wrt_nodes, {**shapes, **{n + suffix: shapes[n] for n in names}}
            )
        env = {n: a[None] for n, a in arrays.items()}
        env |= {n + suffix: basis[n] for n in names}
        outputs, faults, _ = run([program.output, *grads, *second], env, batched=True)
    except GradcliError as err:
        raise err.with_source(program.source) from None
    value = np.broadcast_to(outputs[0], (1, *np.shape(outputs[0])[1:]))[0]
    gradient = np.concatenate(
        [
            np.reshape(np.broadcast_to(g, (1, *shapes[n])), -1)
            for n, g in zip(names, outputs[1 : 1 + len(names)], strict=True)
        ]
    )
    rows = [
        np.broadcast_to(h, (total, *shapes[n])).reshape(total, -1)
        for n, h in zip(names, outputs[1 + len(names) :], strict=True)
    ]
    matrix = np.concatenate(rows, axis=1) if rows else np.zeros((0, 0))
    if mode == "forward":  # row k holds the tangent of the gradient along e_k: a column of H
        matrix = matrix.T
    described = [describe_fault(f, program, batched=True) for f in sorted(faults, key=fault_order)]
    return Hessian(
        program,
        arrays,
        labels,
        np.ascontiguousarray(matrix),
        gradient,
        np.asarray(value),
        mode,
        described,
    )


def _basis(names, sizes, shapes, total) -> dict[str, np.ndarray]:
    """For each variable, `total` rows: row k is 1 at element k of the variables, else 0."""
    out, start = {}, 0
    for n, size in zip(names, sizes, strict=True):
        rows = np.zeros((total, size))
        rows[start : start + size] = np.eye(size)
        out[n] = rows.reshape(total, *shapes[n])
        start += size
    return out


# --- the rest of the Python API: the command line's other verbs as functions ----------------


def grad(
    program: Lowered | str, values: Mapping[str, Any], wrt: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The gradient of the program (of the sum of its elements, for an array) at a point.

    >>> g = grad("x*y + x/y", {"x": 5, "y": 2})
    >>> float(g["x"]), float(g["y"])
    (2.5, 3.75)
    """
    return evaluate(program, values, wrt).gradient


def check(
    program: Lowered | str,
    at: Mapping[str, Any] | None = None,
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    rtol: float | None = None,
    atol: float = 0.0,
    domains: Mapping[str, Any] | None = None,
    samples: int | None = None,
    seed: int = 0,
) -> Any:
    """Check the gradient against finite-difference references, as `gradcli check` does: at
    the point `at`, or at `samples` points drawn from `domains` ("lo:hi", "lo:hi:log" or
    [lo, hi]). The result (a `runner.CaseResult`) has `passed`, one `checks` entry per variable,
    and `report()`, the text `gradcli check` prints for it.

    >>> result = check("x*y + x/y", {"x": 5, "y": 2})
    >>> result.passed, [c.name for c in result.checks]
    (True, ['x', 'y'])
    >>> check("sin(x)", domains={"x": "-3:3"}, samples=50).passed
    True
    """
    from .checking.checkfile import Case, Sample, parse_domain
    from .checking.runner import run_case
    from .checking.verdicts import CheckOptions

    if samples is not None and not domains:
        raise GradcliError("samples needs domains: where to draw the points from")
    if isinstance(program, str):
        program = compile_program(program)
    points = {name: np.asarray(v, dtype=np.float64) for name, v in (at or {}).items()}
    check_variables(program, [*points, *(domains or {})])
    sample = None
    if domains:
        try:
            parsed = {name: parse_domain(spec) for name, spec in domains.items()}
        except ValueError as exc:
            raise GradcliError(f"bad domain: {exc}") from None
        sample = Sample(samples or 100, seed, parsed)
    options = CheckOptions(
        method=method, rtol=rtol, atol=atol, wrt=tuple(wrt) if wrt is not None else None
    )
    name = program.source.snippet(Span(0, len(program.source.text)), 70)
    return run_case(Case(name, program, points, sample, options=options))


def diff(
    program: Lowered | str,
    wrt: Sequence[str] | None = None,
    order: int = 1,
    values: Mapping[str, Any] | None = None,
) -> Any:
    """The derivatives as simplified expressions, as `gradcli diff` prints them (a
    `diff.Derivatives`: one item per derivative, with `text`).

    >>> [item.text for item in diff("x*y + x/y").items]
    ['1/y + y', 'x - x/y^2']
    """
    from .evaluation.derivatives import derivatives

    return derivatives(program, wrt, order, values)
