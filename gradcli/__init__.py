"""gradcli: compute, explain and check derivatives of math expressions.

>>> from gradcli import evaluate
>>> result = evaluate("x*y + x/y", {"x": 5, "y": 2})
>>> float(result.value), float(result.gradient["x"]), float(result.gradient["y"])
(12.5, 2.5, 3.75)

The names below are imported on first use, so that `gradcli --help` and the command line's
other quick paths do not pay for numpy and the whole pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .api import (
        Evaluation,
        check,
        compile_program,
        diff,
        directional,
        evaluate,
        grad,
        hessian,
        jacobian,
    )
    from .language.source import GradcliError

__all__ = [
    "Evaluation",
    "GradcliError",
    "__version__",
    "check",
    "compile_program",
    "diff",
    "directional",
    "evaluate",
    "grad",
    "hessian",
    "jacobian",
]
_API = frozenset(__all__) - {"GradcliError", "__version__"}


def __getattr__(name: str) -> Any:
    if name == "GradcliError":
        from .language.source import GradcliError as value
    elif name in _API:
        from . import api

        value = api.__dict__[name]
    else:
        raise AttributeError(f"module 'gradcli' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
