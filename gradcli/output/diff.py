"""`gradcli diff`: the derivatives in gradcli's language (each parses back), in LaTeX, as a Python
module, or in JSON with all three. The LaTeX and Python printers are in formats.py.
"""

from __future__ import annotations

import re
from typing import Any

from ..evaluation.values import to_json
from . import formats
from .formats import latex_name


def diff_text(result, output_format: str) -> str:
    """The derivatives in the language (each parses back), LaTeX or a Python module."""
    program = result.program
    hints, reserved = result.hints, list(program.variables)
    if output_format == "python":
        return _diff_python(result, hints, reserved)
    blocks = []
    for item in result.items:
        if output_format == "latex":
            label = _latex_label(item.wrt)
            blocks.append(formats.latex(item.node, label, reserved, hints))
        elif len(result.items) == 1:
            blocks.append(item.text)
        else:
            blocks.append(f"# {item.label}\n{item.text}")
    return "\n\n".join(blocks) + "\n"


def _latex_label(wrt: tuple[str, ...]) -> str:
    def one(label: str) -> str:
        base, _, index = label.partition("[")
        return latex_name(base) + (f"_{{[{index}}}" if index else "")

    if len(wrt) == 1:
        return rf"\frac{{\partial f}}{{\partial {one(wrt[0])}}}"
    if wrt[0] == wrt[1]:
        return rf"\frac{{\partial^2 f}}{{\partial {one(wrt[0])}^2}}"
    return rf"\frac{{\partial^2 f}}{{\partial {one(wrt[0])} \partial {one(wrt[1])}}}"


def _diff_python(result, hints, reserved) -> str:
    program = result.program
    params = list(program.variables)
    source = program.source.text.strip().replace('"""', "'''")
    parts = [
        f'"""Derivatives of {source!r}, written by gradcli diff."""',
        "from __future__ import annotations\n\nimport numpy as np",
        *(h.strip() for h in formats.helpers([item.node for item in result.items])),
    ]
    for item in result.items:
        name = "d" + ("2" if len(item.wrt) == 2 else "") + "_"
        name += "_".join(re.sub(r"\W+", "", w) for w in item.wrt)
        parts.append(formats.python_function(item.node, name, params, item.label, reserved, hints))
    return "\n\n\n".join(parts) + "\n"


def diff_json(result) -> dict[str, Any]:
    program = result.program
    hints, reserved = result.hints, list(program.variables)
    return {
        "expression": program.source.text,
        "source": program.source.name,
        "order": result.order,
        "variables": list(program.variables),
        "shapes": {n: list(s) for n, s in result.shapes.items()},
        "point": None if result.point is None else {n: to_json(v) for n, v in result.point.items()},
        "derivatives": [
            {
                "wrt": list(item.wrt),
                "label": item.label,
                "shape": list(item.shape),
                "text": item.text,
                "latex": formats.latex(item.node, _latex_label(item.wrt), reserved, hints),
                "value": None if item.value is None else to_json(item.value),
            }
            for item in result.items
        ],
    }
