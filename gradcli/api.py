"""The pipeline behind `gradcli eval`: parse, lower, differentiate, evaluate, diagnose.

The command line is a thin layer over `compile_program` and `evaluate`; both raise `GradcliError`
for unusable input, and report numerical faults as located diagnostics rather than exceptions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .evaluation.interpreter import Fault
from .evaluation.interpreter import evaluate as run
from .evaluation.values import format_number
from .graph.nodes import Node, collector_paused, toposort
from .graph.shapes import infer_shapes
from .language.limits import check_elements
from .language.lower import CONSTANTS, Lowered, lower
from .language.parser import parse
from .language.printer import expression
from .language.source import GradcliError, Source, Span
from .primitives import REGISTRY
from .transforms.forward import TANGENT, jvps
from .transforms.reverse import grad as gradient_nodes


def compile_program(
    text: str,
    name: str = "<expr>",
    origin: tuple[int, int] = (1, 1),
    frame: str | None = None,
    columns: tuple[int, ...] | None = None,
) -> Lowered:
    """Parse and lower a program; raise `GradcliError` pointing at the problem if it is invalid.

    `origin`, `frame` and `columns` place an expression inside a larger file (see `Source`).
    """
    with collector_paused():
        return lower(parse(text, name, origin, frame, columns))


@dataclass(frozen=True)
class Evaluation:
    """The value of a program at a point and the gradient of its value (of its sum, for arrays)."""

    program: Lowered
    variables: dict[str, np.ndarray]
    value: np.ndarray
    gradient: dict[str, np.ndarray]
    faults: list[GradcliError]  # located diagnostics: the first node that made each nan or inf

    @property
    def reduced(self) -> bool:
        """True when the value is an array, so the gradient is that of the sum of its elements."""
        return np.ndim(self.value) > 0

    @property
    def finite(self) -> bool:
        return bool(
            np.all(np.isfinite(self.value))
            and all(np.all(np.isfinite(g)) for g in self.gradient.values())
        )


def evaluate(
    program: Lowered | str,
    values: Mapping[str, Any],
    wrt: Sequence[str] | None = None,
) -> Evaluation:
    """Evaluate a program and its gradient with respect to `wrt` (default: every variable)."""
    program, arrays, shapes = _prepared(program, values)
    names = wrt_names(program, wrt)
    try:
        grads = gradient_nodes(program.output, [program.variables[n] for n in names], shapes)
        outputs, faults, _ = run([program.output, *grads], arrays)
    except GradcliError as err:
        raise err.with_source(program.source) from None
    value, *gradient = outputs
    gradient = {
        name: _own(
            g if np.shape(g) == arrays[name].shape else np.broadcast_to(g, arrays[name].shape),
            arrays,
        )
        for name, g in zip(names, gradient, strict=True)
    }
    return Evaluation(
        program,
        arrays,
        np.asarray(value),
        {k: np.asarray(v) for k, v in gradient.items()},
        [describe_fault(f, program) for f in sorted(faults, key=_fault_order)],
    )


def _own(value: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """`value` as an array the caller may keep and write: a copy where it is a read-only view
    (a broadcast) or shares memory with an input (the gradient of x*y in x is y itself)."""
    array = np.asarray(value)
    if array.ndim and (
        not array.flags.writeable or any(np.may_share_memory(array, a) for a in inputs.values())
    ):
        return array.copy()
    return array


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
    program, arrays, shapes = _prepared(program, values)
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
    described = [describe_fault(f, program, batched=True) for f in sorted(faults, key=_fault_order)]
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
    program, arrays, shapes = _prepared(program, values)
    differentiable(program, list(direction))
    moves = {}
    for name, v in direction.items():
        if name not in program.variables:
            raise _unknown(name, program, "--direction: ")
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
    described = [describe_fault(f, program) for f in sorted(faults, key=_fault_order)]
    return Directional(
        program, arrays, dict(moves), np.asarray(value), np.asarray(d), reverse, described
    )


def relative_asymmetry(h: np.ndarray) -> np.ndarray:
    """max |H_ij - H_ji| / max |H_ij| over the last two axes (the difference itself where H is
    0), for one matrix or a stack of them."""
    with np.errstate(all="ignore"):
        worst = np.max(np.abs(h - np.swapaxes(h, -1, -2)), axis=(-2, -1), initial=0.0)
        scale = np.max(np.abs(h), axis=(-2, -1), initial=0.0)
        return np.where(scale > 0, worst / np.where(scale > 0, scale, 1.0), worst)


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
    program, arrays, shapes = _prepared(program, values)
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
    described = [describe_fault(f, program, batched=True) for f in sorted(faults, key=_fault_order)]
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


def _prepared(program: Lowered | str, values: Mapping[str, Any]):
    if isinstance(program, str):
        program = compile_program(program)
    arrays = {name: _value(name, v) for name, v in values.items()}
    check_variables(program, arrays.keys())
    return program, arrays, {name: a.shape for name, a in arrays.items()}


def _value(name: str, value: Any) -> np.ndarray:
    """A variable's value as float64, refused as the command line refuses it: not numbers, or
    nan and inf (every nan or inf reported is then one the program made)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GradcliError(
            f"the value of {name} is not a number or an array of numbers: {exc}"
        ) from None
    if not np.all(np.isfinite(array)):
        raise GradcliError(f"the value of {name} holds nan or inf: values must be finite")
    check_elements(array.shape, f"the value of {name}")
    return array


def wrt_names(program: Lowered, wrt: Sequence[str] | None) -> list[str]:
    """The variables to differentiate in: `wrt`, each checked, or every variable."""
    names = list(program.variables) if wrt is None else list(wrt)
    for name in names:
        if name not in program.variables:
            raise _unknown(name, program, "--wrt: ")
    return names


def differentiable(program: Lowered, names: Sequence[str]) -> None:
    """Raise a clear error when there is nothing to differentiate with respect to."""
    if not names:
        what = "the expression has no variables" if not program.variables else "--wrt is empty"
        raise GradcliError(
            f"nothing to differentiate: {what}", hint="a derivative needs a variable, as in x^2"
        )


def check_variables(program: Lowered, given: Any) -> None:
    """Raise a clear error unless `given` names exactly the program's free variables."""
    given = list(given)
    expected = list(program.variables)
    for name in given:
        if name not in program.variables:
            raise _unknown(name, program, "")
    missing = [n for n in expected if n not in given]
    if missing:
        listed = ", ".join(f"--{n}" for n in missing)
        raise GradcliError(
            f"missing value{'s' if len(missing) > 1 else ''} for {', '.join(missing)}",
            hint=f"give {listed}; the expression's variables are {_listing(expected)}",
        )


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(none: the expression is constant)"


def _unknown(name: str, program: Lowered, what: str) -> GradcliError:
    expected = list(program.variables)
    hint = f"the expression's variables are {_listing(expected)}"
    import difflib  # only for a mistake: not at start-up

    close = difflib.get_close_matches(name, expected, n=1)
    if close:
        hint = f"did you mean {close[0]}? {hint}"
    if name in CONSTANTS:
        hint = f"{name} is the constant {CONSTANTS[name]!r}; to change it, bind it in the program"
    return GradcliError(f"{what}{name} is not a variable of the expression", hint=hint)


def _fault_order(fault: Fault) -> tuple[bool, int]:
    """Faults of the value first, then of derivatives; each in the order they arose."""
    return fault.in_derivative, fault.node.id


def describe_fault(fault: Fault, program: Lowered, batched: bool = False) -> GradcliError:
    """A located message for a nan or inf (or an underflow): what produced it, and why.

    With `batched`, the first axis of every value is a batch of points, not part of an array.
    """
    error = _describe_fault(fault, program, batched)
    error.cause = fault.cause
    error.rows = fault.rows  # the batch rows an underflow cost digits at (None: any)
    return error


def lost_digits(faults: Sequence[GradcliError]) -> bool:
    """Whether a gradient lost digits to underflow: finite, but not to be trusted."""
    return any(f.cause == "underflow" for f in faults)


def _describe_fault(fault: Fault, program: Lowered, batched: bool) -> GradcliError:
    source = program.source
    bound = {node: name for name, node in program.bindings.items()}
    node = fault.node
    index = fault.index[1:] if batched and fault.index is not None else fault.index
    element = f" at index {list(index)}" if index else ""
    if fault.cause == "input":
        return GradcliError(
            f"the value of {node.name} is {fault.kind}{element}", node.span, source=source
        )
    what = _text(node, source)
    args = [
        f"{bound.get(i) or _text(i, source)} = {_format(a)}"
        for i, a in zip(node.inputs, fault.args, strict=False)
        if i.op != "const"
    ]
    prim = REGISTRY[node.op]
    if fault.cause == "underflow":
        exact = _exact_size(node.op, fault.args)
        detail = f"{', '.join(args)} give {exact}, below the smallest normal number"
        if fault.in_derivative:
            derivative = f"the derivative of {_text(node.origin, source)}"
            message = f"{derivative} underflows{element} at {what}: {detail}, so the gradient "
        else:
            message = f"{what} underflows{element}: {detail}, so the value and its gradient "
        return GradcliError(message + "lose digits (or all of them)", node.span, source=source)
    if fault.cause == "domain":
        domain = prim.domain
        reason = domain.fault or f"{prim.signature()} requires {domain.text}"
    else:
        reason = "overflow" if fault.cause == "overflow" else "undefined result"
    detail = f"{reason}; here {', '.join(args)}" if args else reason
    if fault.in_derivative:
        derivative = f"the derivative of {_text(node.origin, source)}"
        message = f"{derivative} is {fault.kind}{element} at {what}: {detail}"
    else:
        message = f"{what} is {fault.kind}{element}: {detail}"
    return GradcliError(message, node.span, source=source)


def _exact_size(op: str, args: tuple[Any, ...]) -> str:
    """The size of a product or quotient that float64 cannot hold, as a power of ten."""
    a, b = (abs(float(np.real(v))) for v in args)
    if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
        return "a number below the normal range"
    exponent = math.log10(a) + (math.log10(b) if op == "mul" else -math.log10(b))
    whole = math.floor(exponent)
    return f"about {10 ** (exponent - whole):.2g}e{whole}"


def _text(node: Node, source: Source) -> str:
    if node.op == "const":
        return format_number(node.value)
    if node.origin is None and node.span is not None:
        return source.snippet(node.span)
    try:
        text = expression(node)
    except ValueError:  # a shape operation, which has no written form
        text = node.op
    return text if len(text) <= 60 else text[:59] + "…"


def _format(value: Any) -> str:
    return format_number(value) if not np.iscomplexobj(value) else str(complex(value))


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
    from .checking.engine import CheckOptions
    from .checking.runner import run_case

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
    from .transforms.derivatives import derivatives

    return derivatives(program, wrt, order, values)
