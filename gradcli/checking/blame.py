"""Blame: at a failing point, which primitive's own derivative rule disagrees with its forward.

Each primitive on the path of the failing variable is tested alone, on its actual inputs, by a
finite difference of its own numpy forward: the message names the rule, the argument and where
in the source it is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..evaluation.interpreter import evaluate
from ..graph.nodes import Node
from ..language.lower import Lowered
from ..primitives import REGISTRY
from . import finite_diff as fd
from .run import Run
from .structure import reached_from
from .verdicts import Blame, VariableCheck


class Blaming(Run):
    """Blame for a failing variable, primitive by primitive."""

    def blame(self, check: VariableCheck) -> list[Blame]:
        """At the worst failing point, test each primitive's own rule on its actual inputs."""
        p, _ = check.worst()
        env = {name: a[p if len(a) > 1 else 0] for name, a in self.batch.items()}
        _, _, values = evaluate([self.program.output], env, self.dtype, keep_all=True)
        graph = self.program.graph
        found = []
        reached = reached_from(self.order, self.program.variables[check.name])
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
