"""gradcli: compute, explain and check derivatives of math expressions.

>>> from gradcli import evaluate
>>> result = evaluate("x*y + x/y", {"x": 5, "y": 2})
>>> float(result.value), float(result.gradient["x"]), float(result.gradient["y"])
(12.5, 2.5, 3.75)
"""

from ._version import __version__
from .api import Evaluation, compile_program, evaluate
from .source import GradcliError

__all__ = ["Evaluation", "GradcliError", "__version__", "compile_program", "evaluate"]
