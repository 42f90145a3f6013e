"""Static shape inference: the numpy shape of every node, given the shapes of the variables.

The differentiator needs shapes to undo broadcasting (an adjoint is summed back down to the shape
of the input it flows into); evaluation needs them to report a shape mismatch at its source.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..language.limits import ELEMENTS, check_elements
from ..language.source import GradcliError
from .nodes import Node
from .registry import REGISTRY, Shape


def infer_shapes(
    order: Sequence[Node],
    var_shapes: Mapping[str, Shape] | None = None,
    known: dict[Node, Shape] | None = None,
) -> dict[Node, Shape]:
    """Shapes of the nodes in `order` (inputs first); variables not in `var_shapes` are scalars."""
    var_shapes = var_shapes or {}
    limit = ELEMENTS.value() or math.inf
    shapes = {} if known is None else known
    for node in order:
        if node in shapes:
            continue
        if node.op == "const":
            shapes[node] = np.shape(node.value)
        elif node.op == "variable":
            shapes[node] = tuple(var_shapes.get(node.name, ()))
        else:
            inputs = [shapes[i] for i in node.inputs]
            prim = REGISTRY[node.op]
            try:
                shape = shapes[node] = prim.output_shape(*inputs, attrs=node.attrs)
            except ValueError as exc:
                if prim.shape is not None:  # the primitive's own rule says what is wrong
                    raise GradcliError(str(exc), node.span) from None
                shown = " and ".join(str(s) for s in inputs)
                raise GradcliError(
                    f"the shapes {shown} cannot be broadcast together",
                    node.span,
                    hint="operands of an elementwise operation must have numpy-compatible shapes",
                ) from None
            except RuntimeError as exc:  # numpy's limit of 32 axes
                raise GradcliError(f"cannot compute {node.op}: {exc}", node.span) from None
            if shape and math.prod(shape) > limit:
                check_elements(shape, f"the result of {node.op}", node.span)
    return shapes
