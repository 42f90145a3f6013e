"""The primitives: registrations only, one module per family.

Importing this package fills the table of `gradcli.graph.registry` with every primitive, and
re-exports the table's names; every layer above the graph takes them from here, so that the
table it reads is always full. The graph and the registry never import this package (its
modules build their rules with the graph's operations); this package imports only the graph
and the language's floor (spans, errors, limits).
"""

from ..graph.registry import (
    REGISTRY,
    Domain,
    Operator,
    Primitive,
    Shape,
    as_shape,
    public_names,
    register,
)
from . import arrays, scalar  # noqa: F401  (each registers its family)

__all__ = [
    "REGISTRY",
    "Domain",
    "Operator",
    "Primitive",
    "Shape",
    "as_shape",
    "public_names",
    "register",
]
