"""The value of a program and its gradient at a point: what `gradcli eval` and the Python
API's `evaluate` compute, with values checked as the command line checks them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..graph.nodes import toposort
from ..language.limits import check_elements
from ..language.lower import Lowered
from ..language.program import check_variables, compile_program, wrt_names
from ..language.source import GradcliError
from ..transforms.reverse import grad as gradient_nodes
from .faults import describe_fault, fault_order
from .interpreter import evaluate as run


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
    program, arrays, shapes = prepared(program, values)
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
    if np.all(np.isfinite(value)) and _widened(grads, names, arrays, gradient):
        done = set(toposort([program.output]))
        faults = [f for f in faults if f.node in done or f.kind == "underflow"]
    return Evaluation(
        program,
        arrays,
        np.asarray(value),
        {k: np.asarray(v) for k, v in gradient.items()},
        [describe_fault(f, program) for f in sorted(faults, key=fault_order)],
    )


def _widened(
    grads: Sequence[Any], names: Sequence[str], arrays: Mapping[str, np.ndarray], gradient: dict
) -> bool:
    """Gradient elements that are nan or inf though the value is finite, evaluated again in
    numpy's longdouble (exponent to 1e4932) and replaced where that gives a float64 number: a
    product of the chain rule can overflow on the way to a finite derivative (∂/∂z atan(1/z)
    at z = 1e-200 is (−1/z²)·1/(1 + 1/z²) = −1). True when every gradient is finite then."""
    bad = [k for k, name in enumerate(names) if not np.all(np.isfinite(gradient[name]))]
    if not bad or np.finfo(np.longdouble).max <= np.finfo(np.float64).max:
        return False
    with np.errstate(all="ignore"):
        try:
            wide, _, _ = run([grads[k] for k in bad], arrays, np.longdouble)
        except TypeError:  # a forward with no longdouble loop: the float64 result stands
            return False
        for k, again in zip(bad, wide, strict=True):
            g = gradient[names[k]]
            again = np.broadcast_to(np.asarray(again), np.shape(g))
            fits = ~np.isfinite(g) & (np.abs(again) <= np.finfo(np.float64).max)
            if np.any(fits):
                g = np.array(g, dtype=np.float64)  # a fresh array, which may be written
                g[fits] = again[fits]
                gradient[names[k]] = g
    return all(np.all(np.isfinite(g)) for g in gradient.values())


def _own(value: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """`value` as an array the caller may keep and write: a copy where it is a read-only view
    (a broadcast) or shares memory with an input (the gradient of x*y in x is y itself)."""
    array = np.asarray(value)
    if array.ndim and (
        not array.flags.writeable or any(np.may_share_memory(array, a) for a in inputs.values())
    ):
        return array.copy()
    return array


def prepared(program: Lowered | str, values: Mapping[str, Any]):
    if isinstance(program, str):
        program = compile_program(program)
    arrays = {name: input_value(name, v) for name, v in values.items()}
    check_variables(program, arrays.keys())
    return program, arrays, {name: a.shape for name, a in arrays.items()}


def input_value(name: str, value: Any) -> np.ndarray:
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
