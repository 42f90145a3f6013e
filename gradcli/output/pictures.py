"""Pictures of the graph (`gradcli graph`): a tree for the terminal, Graphviz DOT, Mermaid.

Each node appears once, numbered in topological order as `gradcli explain` numbers them; with a
point, each carries its value and its adjoint ∂f/∂node, and each edge the contribution that
flowed back along it. A node used twice is drawn once in DOT and Mermaid (two edges leave it);
the tree, which can only nest, shows it in full the first time and by number after.
"""

from __future__ import annotations

import numpy as np

from ..evaluation.values import format_number
from .explain import Explanation, Step

_TREE_NODES = 500  # a tree longer than this is cut, with a note: DOT and Mermaid draw any size
_TREE_DEPTH = 40  # deeper levels are not indented further


def short_value(value: np.ndarray) -> str:
    value = np.asarray(value)
    if value.ndim == 0:
        return format_number(float(value))
    flat = ", ".join(format_number(float(v)) for v in value.ravel()[:4])
    more = ", …" if value.size > 4 else ""
    shape = "×".join(map(str, value.shape))
    return f"[{flat}{more}] ({shape})"


def _annotations(step: Step) -> list[str]:
    if step.value.ndim == 0 and np.isnan(step.value) and step.adjoint is None:
        return []
    out = [f"= {short_value(step.value)}"]
    if step.adjoint is not None:
        out.append(f"∂f/∂· = {short_value(step.adjoint)}")
    return out


def _title(step: Step) -> str:
    if step.op == step.text or not step.node.inputs:
        return f"#{step.number} {step.op}"
    return f"#{step.number} {step.op}  {step.text}"


def tree(explanation: Explanation) -> str:
    """The graph as an indented tree from the output down; shared nodes in full once."""
    steps = explanation.steps
    lines: list[str] = []
    shown: set[int] = set()
    stack: list[tuple[int, str, bool]] = [(len(steps), "", True)]  # (step, prefix, last)
    root = True
    while stack:
        if len(lines) >= _TREE_NODES:
            lines.append(f"… {len(steps)} nodes in all: --format dot or mermaid draws them all")
            break
        number, prefix, last = stack.pop()
        step = steps[number - 1]
        branch = "" if root else ("└── " if last else "├── ")
        label = _title(step)
        notes = _annotations(step)
        if number in shown:
            lines.append(f"{prefix}{branch}#{step.number} {step.op} (shared: shown above)")
            root = False
            continue
        shown.add(number)
        lines.append(f"{prefix}{branch}{label}" + (f"   {', '.join(notes)}" if notes else ""))
        if root:
            child_prefix = ""
        elif prefix.count("    ") + prefix.count("│   ") >= _TREE_DEPTH:
            child_prefix = prefix
        else:
            child_prefix = prefix + ("    " if last else "│   ")
        root = False
        children = step.inputs
        for k in reversed(range(len(children))):
            stack.append((children[k], child_prefix, k == len(children) - 1))
    return "\n".join(lines) + "\n"


def _edge_values(explanation: Explanation) -> dict[tuple[int, int], str]:
    """The contribution each user sent each input (summed if it uses it twice, as x*x does)."""
    out: dict[tuple[int, int], float | np.ndarray] = {}
    for step in explanation.steps:
        for sent in step.sent:
            key = (sent.to, step.number)
            out[key] = out[key] + sent.contribution if key in out else sent.contribution
    return {k: short_value(v) for k, v in out.items()}


def dot(explanation: Explanation) -> str:
    """Graphviz DOT: data flows up from the variables; edges carry the gradient sent back."""
    lines = [
        "digraph gradcli {",
        "  rankdir=BT;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for step in explanation.steps:
        label = "\\n".join([_title(step), *_annotations(step)])
        shape = ", shape=ellipse" if step.node.op == "variable" else ""
        lines.append(f'  n{step.number} [label="{_dot_escape(label)}"{shape}];')
    edges = _edge_values(explanation)
    for step in explanation.steps:
        for number in dict.fromkeys(step.inputs):
            text = edges.get((number, step.number))
            attrs = f' [label="{_dot_escape("∂: " + text)}"]' if text is not None else ""
            lines.append(f"  n{number} -> n{step.number}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    # A backslash is kept only as the \n that DOT reads as a line break.
    return text.replace("\\", "\\\\").replace("\\\\n", "\\n").replace('"', '\\"')


def mermaid(explanation: Explanation) -> str:
    """A Mermaid flowchart, which GitHub renders in Markdown (```mermaid)."""
    lines = ["flowchart BT"]
    for step in explanation.steps:
        label = "<br/>".join(_mermaid_escape(t) for t in [_title(step), *_annotations(step)])
        if step.node.op == "variable":
            lines.append(f'  n{step.number}(["{label}"])')
        else:
            lines.append(f'  n{step.number}["{label}"]')
    edges = _edge_values(explanation)
    for step in explanation.steps:
        for number in dict.fromkeys(step.inputs):
            text = edges.get((number, step.number))
            if text is None:
                lines.append(f"  n{number} --> n{step.number}")
            else:
                lines.append(f'  n{number} -->|"∂: {_mermaid_escape(text)}"| n{step.number}')
    return "\n".join(lines) + "\n"


def _mermaid_escape(text: str) -> str:
    """Mermaid labels in quotes take entity codes for the characters its parser reserves."""
    for ch, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(ch, code)
    return text
