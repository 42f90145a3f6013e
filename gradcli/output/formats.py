"""Derivatives written in LaTeX and in Python with numpy, for `gradcli diff --format`.

Both are styles of the printer's walk (printer.Style): operators by precedence, functions by the
`latex` and `python` templates of their registry entries (@0, @1 for the inputs, @axis, @shape
for the attributes), or by name when an entry has none. The Python a derivative is written in
calls numpy, and for the functions numpy lacks (a stable sigmoid, logsumexp, the exclusive
product), gradcli's own numpy functions, whose source is emitted with it: the printed module
runs on numpy alone and computes what gradcli computes.
"""

from __future__ import annotations

import inspect
import keyword
import math
import re
from collections.abc import Sequence

import numpy as np

from ..graph.nodes import Node, toposort
from ..language.printer import Style, _attribute, _number, _subscript, bindings, expression
from ..primitives import REGISTRY, Primitive

_ATOM = 10
_PLACEHOLDER = re.compile(r"@(\d+|[a-z_]+)")


def _fill(template: str, node: Node, attr: callable) -> list[Node | str]:
    """The template's text, with input nodes and attribute text in place of its placeholders."""
    prim = REGISTRY[node.op]
    values = {name: value for (name, _), value in zip(prim.attr_params, node.attrs, strict=True)}
    out: list[Node | str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(template):
        out.append(template[last : match.start()])
        key = match.group(1)
        if key == "inputs":
            out += _joined(node.inputs)
        else:
            out.append(node.inputs[int(key)] if key.isdigit() else attr(values[key]))
        last = match.end()
    out.append(template[last:])
    return [p for p in out if not isinstance(p, str) or p]


def _joined(items: Sequence[Node | str], sep: str = ", ") -> list[Node | str]:
    out: list[Node | str] = []
    for i, item in enumerate(items):
        out += [sep, item] if i else [item]
    return out


# --- LaTeX ------------------------------------------------------------------------------------

_GREEK = frozenset(
    [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
        "nu",
        "xi",
        "pi",
        "rho",
        "sigma",
        "tau",
        "upsilon",
        "phi",
        "chi",
        "psi",
        "omega",
        "Gamma",
        "Delta",
        "Theta",
        "Lambda",
        "Xi",
        "Pi",
        "Sigma",
        "Upsilon",
        "Phi",
        "Psi",
        "Omega",
    ]
)
_LATEX_FUNCTIONS = frozenset({"sin", "cos", "tan", "sinh", "cosh", "tanh"})
_LATEX_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "matmul": 2, "neg": 3, "pow": 4, "div": 5}


def latex_name(name: str) -> str:
    """x, \\alpha, w_{1}, x_{i}, \\mathrm{loss}."""
    base, sub = re.fullmatch(r"(.*?)_?(\d*)", name).groups()
    if "_" in base and not sub:
        base, sub = base.split("_", 1)
    if base in _GREEK:
        base = "\\" + base
    elif len(base) > 1:
        base = r"\mathrm{" + base.replace("_", r"\_") + "}"
    return base + (f"_{{{sub}}}" if sub else "")


def _latex_number(value: float) -> str:
    if value == math.pi:
        return r"\pi"
    if value == math.e:
        return "e"
    text = _number(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
    return text


class LatexStyle(Style):
    def leaf(self, node: Node) -> str:
        if node.op == "variable":
            return latex_name(node.name)
        value = np.asarray(node.value)
        if value.ndim == 0:
            return _latex_number(float(value))
        rows = value.reshape(1, -1) if value.ndim == 1 else value.reshape(value.shape[0], -1)
        body = r" \\ ".join(" & ".join(_latex_number(float(v)) for v in row) for row in rows)
        return r"\begin{bmatrix} " + body + r" \end{bmatrix}"

    def name(self, name: str) -> str:
        return latex_name(name)

    def pieces(self, node: Node, names: dict[Node, str]) -> list[Node | str]:
        op = node.op
        if op == "div":
            a, b = node.inputs
            return [r"\frac{", a, "}{", b, "}"]
        if op == "pow":
            a, b = node.inputs
            return [*self._wrap(a, self._precedence(a, names) < _ATOM), "^{", b, "}"]
        if op == "neg":
            (a,) = node.inputs
            return ["-", *self._wrap(a, self._precedence(a, names) < 2)]
        if op in ("add", "sub", "mul", "matmul"):
            a, b = node.inputs
            p = _LATEX_PRECEDENCE[op]
            symbol = {"add": " + ", "sub": " - ", "mul": r" \cdot ", "matmul": " "}[op]
            if op == "mul" and _is_number(a) and not _is_number(b) and _starts_alpha(b, names):
                symbol = " "  # 2 x, not 2 · x; but 2 · 3^{y}
            right = self._precedence(b, names)
            wrap_right = right < p or (right == p and op == "sub") or _leads_with_minus(b, names)
            return [
                *self._wrap(a, self._precedence(a, names) < p),
                symbol,
                *self._wrap(b, wrap_right),
            ]
        if op == "index":
            (a,) = node.inputs
            key = ", ".join(_subscript(k) for k in node.attrs[0])
            return [*self._wrap(a, self._precedence(a, names) < _ATOM), f"_{{{key}}}"]
        if op == "stack":
            return [r"\begin{bmatrix} ", *_joined(node.inputs, " & "), r" \end{bmatrix}"]
        prim = REGISTRY[op]
        template = prim.latex
        extra = _non_default(prim, node)
        if template is None or (extra and "@" + extra[0][0] not in template):
            name = prim.written_as or op
            head = (
                rf"\{name}"
                if name in _LATEX_FUNCTIONS
                else r"\operatorname{" + name.replace("_", r"\_") + "}"
            )
            args = [
                *node.inputs,
                *(r"\mathrm{" + _escape(k) + "}=" + _attribute(v) for k, v in extra),
            ]
            return [head, r"\left(", *_joined(args), r"\right)"]
        return _fill(template, node, _attribute)

    def _precedence(self, node: Node, names: dict[Node, str]) -> int:
        if node in names or node.op == "variable":
            return _ATOM
        if node.op == "const":
            if np.ndim(node.value):
                return _ATOM
            if math.copysign(1.0, node.value) < 0:
                return 3
            return 2 if "e" in _number(float(node.value)) else _ATOM  # 1 \cdot 10^{-20}
        return _LATEX_PRECEDENCE.get(node.op, _ATOM)

    @staticmethod
    def _wrap(node: Node, parens: bool) -> list[Node | str]:
        return [r"\left(", node, r"\right)"] if parens else [node]


def _starts_alpha(node: Node, names: dict[Node, str]) -> bool:
    """Whether `node`, written in LaTeX, starts with a letter or a command (not a digit)."""
    while node not in names and node.inputs and node.op in ("mul", "matmul", "pow", "index"):
        node = node.inputs[0]
    if node in names or node.op == "variable":
        return True
    if node.op == "const":
        return np.ndim(node.value) > 0 or _latex_number(float(node.value)).startswith("\\")
    return node.op not in ("neg",)


def _is_number(node: Node) -> bool:
    return node.op == "const" and np.ndim(node.value) == 0


def _escape(name: str) -> str:
    return name.replace("_", r"\_")


def _leads_with_minus(node: Node, names: dict[Node, str]) -> bool:
    if node in names:
        return False
    if node.op == "neg":
        return True
    return node.op == "const" and np.ndim(node.value) == 0 and math.copysign(1.0, node.value) < 0


def _non_default(prim: Primitive, node: Node) -> list[tuple[str, object]]:
    return [
        (name, value)
        for (name, default), value in zip(prim.attr_params, node.attrs, strict=True)
        if value != default
    ]


LATEX = LatexStyle()


def latex(output: Node, label: str, reserved: Sequence[str], hints) -> str:
    """`label = …` as LaTeX, after its bindings (an aligned block when there are any)."""
    lines, names = bindings(output, reserved, compact=True, hints=hints)
    rows = [(latex_name(n), expression(b, names, LATEX)) for n, b in lines]
    rows.append((label, expression(output, names, LATEX)))
    if len(rows) == 1:
        return f"{rows[0][0]} = {rows[0][1]}"
    body = " \\\\\n".join(f"{left} &= {right}" for left, right in rows)
    return "\\begin{aligned}\n" + body + "\n\\end{aligned}"


# --- Python -----------------------------------------------------------------------------------


def python_name(name: str) -> str:
    """A language name as a Python identifier that cannot clash: a keyword, `np`, or a name
    like the helpers' (`_sigmoid`, `as_shape`) gets a trailing underscore."""
    clash = keyword.iskeyword(name) or name in ("np", "as_shape") or name.startswith("_")
    return name + "_" if clash else name


def _python_number(value: float) -> str:
    if math.isnan(value):
        return "np.nan"
    if math.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    return repr(float(value))


def _python_attribute(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + "".join(f"{v}, " for v in value).rstrip(" ") + ")"
    return str(value)


_UFUNCS = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "div": "divide",
    "pow": "power",
    "neg": "negative",
    "matmul": "matmul",
}


class PythonStyle(Style):
    def leaf(self, node: Node) -> str:
        if node.op == "variable":
            return python_name(node.name)
        value = np.asarray(node.value)
        if value.ndim == 0:
            return _python_number(float(value))
        return f"np.array({value.tolist()!r})"

    def name(self, name: str) -> str:
        return python_name(name)

    def pieces(self, node: Node, names: dict[Node, str]) -> list[Node | str]:
        op = node.op
        prim = REGISTRY[op]
        if prim.operator is not None and prim.python is not None:
            # A condition: Python's and, or, not and comparisons do not work on arrays.
            return _fill(prim.python, node, _python_attribute)
        if prim.operator is not None and all(i.op == "const" for i in node.inputs):
            # Numbers the graph left unfolded (1/0, 10^400, (-8)^(1/3)): numpy gives inf or
            # nan, as gradcli does, where Python's float arithmetic would raise.
            return [
                f"np.{_UFUNCS[op]}(",
                *_joined(
                    [
                        f"np.float64({i.value!r})" if np.ndim(i.value) == 0 else i
                        for i in node.inputs
                    ]
                ),
                ")",
            ]
        if prim.operator is not None or op == "index":
            # The language's precedences are Python's, and so are its symbols but for ^.
            return ["**" if p == "^" else p for p in Style().pieces(node, names)]
        if op == "stack":
            return ["np.stack(np.broadcast_arrays(", *_joined(node.inputs), "))"]
        if prim.python is not None:
            return _fill(prim.python, node, _python_attribute)
        name = prim.written_as or op
        args = [
            *node.inputs,
            *(
                f"{k}={_python_attribute(v)}"
                for (k, _), v in zip(prim.attr_params, node.attrs, strict=True)
            ),
        ]
        return [f"np.{name}(", *_joined(args), ")"]


PYTHON = PythonStyle()


def helpers(outputs: Sequence[Node]) -> list[str]:
    """The source of gradcli's numpy functions the outputs' Python calls, each once."""
    seen: dict[str, str] = {}
    for node in toposort(outputs):
        if node.inputs:
            for function in REGISTRY[node.op].python_uses:
                seen.setdefault(function.__name__, inspect.getsource(function))
    return list(seen.values())


def python_function(
    output: Node, name: str, params: Sequence[str], doc: str, reserved: Sequence[str], hints
) -> str:
    """`def name(params): return …`, with the bindings as local variables."""
    # Python's compiler recurses on nesting: a chain 20,000 deep is cut into bindings.
    lines, names = bindings(output, reserved, compact=True, hints=hints, max_depth=50)
    args = ", ".join(python_name(p) for p in params)
    body = [f'    """{doc}"""']
    body += [f"    {python_name(p)} = np.asarray({python_name(p)}, dtype=float)" for p in params]
    body += [f"    {python_name(n)} = {expression(b, names, PYTHON)}" for n, b in lines]
    body.append(f"    return {expression(output, names, PYTHON)}")
    return f"def {name}({args}):\n" + "\n".join(body)
