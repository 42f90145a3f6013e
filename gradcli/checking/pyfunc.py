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

from ..graph.nodes import Graph, Node
from ..language.lower import Lowered
from ..language.source import GradcliError, Source
from ..primitives import REGISTRY, Primitive, register

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


def program(
    target: str,
    grad_target: str | None,
    names: Sequence[str],
    wrt: Sequence[str] | None = None,
) -> Lowered:
    """A program of one node: the function of `target` applied to the variables `names`, with
    the gradient of `grad_target` as its derivative rule (or, without one, the second item of
    what the function returns: value and gradient). A gradient given as a dict needs entries
    for the `wrt` variables only (all of them without it)."""
    if not names:
        raise GradcliError("give the function's arguments: --python mod:f --x 1 --y 2")
    function = load(target)
    gradient = load(grad_target) if grad_target is not None else None
    names = tuple(names)

    def value_of(*args: Any) -> Any:
        out = _call(function, names, args, target)
        return out[0] if gradient is None and isinstance(out, tuple) else out

    def gradient_of(*args: Any) -> list[np.ndarray | None]:
        """The user's gradient, entry by entry in the order of `names`; None for an entry a
        dict leaves out (an error only if that variable is checked: --wrt may leave it out)."""
        source = grad_target if gradient is not None else target
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
            out = [out.get(n, _MISSING) for n in names]
        elif len(names) == 1 and not isinstance(out, list | tuple):
            out = [out]
        if not isinstance(out, list | tuple):
            raise GradcliError(
                f"{source} returned {_kind(out)}, not a gradient",
                hint="return a dict by variable name, or a list in the order of the arguments",
            )
        if len(out) != len(names):
            raise GradcliError(
                f"the gradient of {source} has {len(out)} entries for {len(names)} arguments "
                f"({', '.join(names)})"
            )
        return [
            None if g is _MISSING else _entry(g, name, np.shape(a), source)
            for g, name, a in zip(out, names, args, strict=True)
        ]

    def partial_of(*args: Any) -> np.ndarray:
        k = args[-1]
        entry = gradient_of(*args[:-1])[k]
        if entry is None and wrt is not None and names[k] not in wrt:
            return np.zeros(np.shape(args[k]))  # never checked: the checker only carries it
        if entry is None:
            raise GradcliError(
                f"the gradient of {grad_target or target} has no entry for {names[k]}",
                hint=f"add one, or leave {names[k]} out of the check with --wrt",
            )
        return entry

    key = f"{target}|{grad_target}|{','.join(names)}|{','.join(wrt or names)}"
    f_name, df_name = f"python {key}", f"python gradient {key}"
    if f_name not in REGISTRY:
        _register(f_name, df_name, value_of, partial_of, len(names), target)
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


_MISSING = object()


def _kind(value: Any) -> str:
    """What a value is, for a message: None, a str, an array of shape (2, 3)…"""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _numbers(value: Any, what: str, source: str) -> np.ndarray:
    if value is None:
        raise GradcliError(f"{source} returned None for {what}", hint="return a number or array")
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradcliError(f"{source} returned {_kind(value)} for {what}, not numbers") from None
    return out


def _entry(value: Any, name: str, shape: tuple[int, ...], source: str) -> np.ndarray:
    """One entry of the user's gradient, of the shape of its variable, or an error that names
    the variable, both shapes, and what the mistake looks like (a transpose, keepdims)."""
    g = _numbers(value, f"the gradient's entry for {name}", source)
    if g.shape == shape:
        return g
    message = f"the gradient's entry for {name} has shape {g.shape}, and {name} has shape {shape}"
    if len(shape) >= 2 and g.shape == shape[::-1]:
        hint = "it is the transpose of what it should be: return its .T"
    elif g.size == int(np.prod(shape, dtype=int)) and tuple(d for d in g.shape if d != 1) == tuple(
        d for d in shape if d != 1
    ):
        hint = f"it has axes of length 1 too many or too few (keepdims?): reshape it to {shape}"
    elif _broadcasts(g.shape, shape):
        hint = (
            f"it broadcasts to {shape}, but a gradient has one entry per element of {name}: "
            "sum over the axes that were broadcast, or give every element"
        )
    else:
        hint = f"a gradient has the shape of its variable: {shape}"
    raise GradcliError(message, hint=hint)


def _broadcasts(given: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(given, shape) == shape
    except ValueError:
        return False


def _register(f_name, df_name, value_of, partial_of, arity: int, target: str) -> None:
    def scalar(*args: Any) -> Any:
        value = _numbers(value_of(*args), "its value", target)
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
            foldable=False, opaque=True,
            shape=lambda *shapes: (),
        )
    )  # fmt: skip
    register(
        Primitive(
            df_name, arity, partial_of,
            f"the hand-written gradient of {target}",
            vjp=_no_second_derivative, jvp=_no_second_derivative, public=False, foldable=False,
            shape=lambda *shapes_and_k: shapes_and_k[shapes_and_k[-1]],  # the k-th input's
        )
    )  # fmt: skip


def _no_second_derivative(*args: Any) -> Any:
    raise GradcliError("a Python function is checked at first order only")
