"""Checking a Python function and its hand-written gradient: `gradcli check --python mod:f`.

The function becomes a primitive of its own, whose forward is the user's function and whose
derivative rule is the user's gradient, so that the checker treats it like any expression: the
reference is a finite difference of the function (Richardson: a Python function need not accept
complex numbers), and the gradient under test is the user's. The function is imported by its
module name, as Python imports any module; no text is evaluated.
"""

from __future__ import annotations

import importlib
import operator
import re
import sys
from collections.abc import Callable, Sequence
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np

from .graph import Graph, Node
from .lower import Lowered
from .registry import REGISTRY, Primitive, register
from .source import GradcliError, Source

_TARGET = re.compile(r"([A-Za-z_][\w.]*):([A-Za-z_]\w*)")


def load(target: str) -> Callable[..., Any]:
    """`module:function`, imported from the current folder or the installed packages."""
    match = _TARGET.fullmatch(target)
    if match is None:
        raise GradcliError(
            f"{target!r} is not MODULE:FUNCTION", hint="for example --python mypkg.model:loss"
        )
    module_name, function_name = match.groups()
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: the project's own modules
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may raise anything while it loads
        raise GradcliError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    function = vars(module).get(function_name)
    if not callable(function):
        raise GradcliError(f"{module_name} has no function {function_name}")
    return function


def program(target: str, grad_target: str | None, names: Sequence[str]) -> Lowered:
    """A program of one node: the function of `target` applied to the variables `names`, with
    the gradient of `grad_target` as its derivative rule (or, without one, the second item of
    what the function returns: value and gradient)."""
    if not names:
        raise GradcliError("give the function's arguments: --python mod:f --x 1 --y 2")
    function = load(target)
    gradient = load(grad_target) if grad_target is not None else None
    names = tuple(names)

    def value_of(*args: Any) -> Any:
        out = _call(function, names, args, target)
        return out[0] if gradient is None and isinstance(out, tuple) else out

    def gradient_of(*args: Any) -> list[np.ndarray]:
        if gradient is not None:
            out = _call(gradient, names, args, grad_target)
        else:
            out = _call(function, names, args, target)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise GradcliError(
                    f"{target} returns no gradient",
                    hint="give --grad mod:df, or return (value, gradient) from the function",
                )
            out = out[1]
        if isinstance(out, dict):
            missing = [n for n in names if n not in out]
            if missing:
                raise GradcliError(f"the gradient has no entry for {', '.join(missing)}")
            out = [out[n] for n in names]
        if len(names) == 1 and not isinstance(out, list | tuple):
            out = [out]
        if len(out) != len(names):
            raise GradcliError(f"the gradient has {len(out)} entries for {len(names)} arguments")
        return [np.asarray(g, dtype=np.float64) for g in out]

    key = f"{target}|{grad_target}|{','.join(names)}"
    f_name, df_name = f"python {key}", f"python gradient {key}"
    if f_name not in REGISTRY:
        _register(f_name, df_name, value_of, gradient_of, len(names), target)
    graph = Graph()
    variables = {n: graph.var(n) for n in names}
    output = graph.apply(f_name, *variables.values())
    call = f"{target}({', '.join(names)})"
    return Lowered(graph, output, variables, {}, Source(call, target))


def _call(function: Callable[..., Any], names: tuple[str, ...], args: tuple, target: str) -> Any:
    try:
        return function(**dict(zip(names, args, strict=True)))
    except GradcliError:
        raise
    except Exception as exc:  # the user's code: its error is the user's to see
        raise GradcliError(f"{target} raised {type(exc).__name__}: {exc}") from None


def _register(f_name, df_name, value_of, gradient_of, arity: int, target: str) -> None:
    def scalar(*args: Any) -> Any:
        value = np.asarray(value_of(*args), dtype=np.float64)
        if value.ndim:
            raise GradcliError(f"{target} must return a number (its value has shape {value.shape})")
        return value[()]

    def partial(node: Node, k: int) -> Node:
        """∂f/∂(k-th argument), by the user's gradient."""
        return node.graph.apply(df_name, *node.inputs, attrs=(k,))

    def vjp(node: Node, g: Node, shape_of) -> tuple:
        return tuple(g * partial(node, k) for k in range(arity))

    def magnitude(node: Node, g: Node, shape_of) -> tuple:
        return tuple(g * node.graph.apply("abs", partial(node, k)) for k in range(arity))

    def jvp(node: Node, tangents: list, shape_of, size=lambda v: v) -> Node | None:
        parts = [
            node.graph.apply("sum", size(partial(node, k)) * t, attrs=(None,))
            for k, t in enumerate(tangents)
            if t is not None
        ]
        return reduce(operator.add, parts) if parts else None

    def error_jvp(node: Node, bounds: list, shape_of) -> Node | None:
        return jvp(node, bounds, shape_of, lambda v: node.graph.apply("abs", v))

    register(
        Primitive(
            f_name, arity, scalar, f"the Python function {target}",
            vjp=vjp, magnitude_vjp=magnitude, jvp=jvp, error_jvp=error_jvp, public=False,
            foldable=False,
            shape=lambda *shapes: (),
        )
    )  # fmt: skip
    register(
        Primitive(
            df_name, arity, lambda *args: gradient_of(*args[:-1])[args[-1]],
            f"the hand-written gradient of {target}",
            vjp=_no_second_derivative, jvp=_no_second_derivative, public=False, foldable=False,
            shape=lambda *shapes_and_k: shapes_and_k[shapes_and_k[-1]],  # the k-th input's
        )
    )  # fmt: skip


def _no_second_derivative(*args: Any) -> Any:
    raise GradcliError("a Python function is checked at first order only")
