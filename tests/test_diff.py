"""gradcli diff: simplified derivatives that parse back, in text, LaTeX, Python and JSON.

References: the autograd gradient and Hessian (computed without simplification), central
differences for the textbook cases, and derivatives worked out by hand for the exact texts.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from support import cli, strict
from test_scale import shallow_stack

from gradcli import compile_program, evaluate
from gradcli.api import hessian
from gradcli.evaluation.derivatives import derivatives
from gradcli.evaluation.interpreter import evaluate as run

RNG = np.random.default_rng(5)

# (expression, domain of every variable, array shapes)
EXPRESSIONS = [
    ("x*y + x/y", (0.5, 3), {}),
    ("sin(x^2)", (-2, 2), {}),
    ("r = sqrt(x^2 + y^2); sin(r)/r", (0.3, 2), {}),
    ("exp(-x^2/2) * cos(3*y) - x^3*y^2", (-1.5, 1.5), {}),
    ("log(x)*y + x*x - x/x + x - x", (0.5, 3), {}),
    ("tanh(w*x + b) * sigmoid(x - b)", (-2, 2), {}),
    ("atan2(y, x) + hypot(x, y) + softplus(x*y)", (0.2, 2), {}),
    ("x^y + log1p(x) * expm1(y) + sech(x)", (0.3, 1.7), {}),
    ("(x + 1)*(x + 1) - (x - 1)^2", (-2, 2), {}),
    ("relu(x - 0.25) * abs(y - 0.25) + max(x, y) + min(x, 2*y)", (0.3, 2), {}),
    ("sum(x^2) + logsumexp(x) + norm(x)", (-2, 2), {"x": (4,)}),
    ("softmax(x) @ c + prod(x) + max(x)", (0.2, 2), {"x": (3,), "c": (3,)}),
    ("sum(A @ x) + x[0]*x[2] + sum(x[1:3]^2)", (-2, 2), {"A": (2, 3), "x": (3,)}),
    ("mean((X @ w + b - t)^2)", (-1, 1), {"X": (4, 2), "w": (2,), "t": (4,)}),
    # A reshape to fewer axes inside an elementwise operation must not be dropped.
    ("sum(z*(reshape(x, shape=[1]) + y))", (0.5, 2), {"x": (1, 1, 1), "y": (2, 1)}),
    ("sum(sin(reshape(x, shape=[1])*y))", (0.5, 2), {"x": (1, 1, 1), "y": (2, 1)}),
    # Conditions: the python form must not chain x > 0 != 0, nor use and/or on arrays.
    ("where(x > 0.5, x^2*y, -x) + (x < y and not y >= 1.5)*x + (x != y or x == y)*y", (0, 2), {}),
    ("sum(where(x > y, sqrt(x - y), 0) + clip(x, 0.5, 1.5)*y)", (0, 2), {"x": (4,)}),
    ("floor(x)*y + ceil(x)*x + round(y)*trunc(x) + mod(x, y)*x", (0.6, 3.4), {}),
    # Matrix functions, at matrices made well conditioned (diagonally dominant, or A·Aᵀ + I).
    (
        "M = A + 3*eye(3); logdet(A @ transpose(A) + eye(3)) + trace(inv(M) @ B)"
        " + solve(M, v) @ v + det(M) + sum(outer(v, diag(B)))",
        (0.5, 1.5),
        {"A": (3, 3), "B": (3, 3), "v": (3,)},
    ),
    (
        "sum(einsum('ij,jk->ik', A, B) * C) + einsum('ii', A @ B) + einsum('i,ij,j', v, A, w)",
        (-1, 1),
        {"A": (2, 3), "B": (3, 2), "C": (2, 2), "v": (2,), "w": (3,)},
    ),
    (
        "sum(svdvals(A) * [1, 2]) + norm(A, ord='nuc') + sum(pinv(A) * B)"
        " + norm(A, ord='fro') + norm(B, ord=inf, axis=[-2, -1])",
        (0.5, 1.5),
        {"A": (3, 2), "B": (2, 3)},
    ),
]


def point(expr: str, domain, shapes) -> dict[str, np.ndarray]:
    program = compile_program(expr)
    return {n: RNG.uniform(*domain, shapes.get(n, ())) for n in program.variables}


def reparse(text: str, env: dict, faults_allowed: bool = False) -> np.ndarray:
    again = compile_program(text)
    (value,), faults, _ = run([again.output], {n: env[n] for n in again.variables})
    assert faults_allowed or not faults, list(faults)
    return np.asarray(value)


def assert_agrees(got, want, what: str) -> None:
    got, want = np.broadcast_to(got, np.shape(want)), np.asarray(want)
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    assert np.all(np.abs(got - want) <= 1e-12 * scale), f"{what}: {got} vs {want}"


@pytest.mark.parametrize(
    ("expr", "domain", "shapes"), EXPRESSIONS, ids=[e for e, *_ in EXPRESSIONS]
)
def test_printed_gradient_parses_back_to_the_autograd_gradient(expr, domain, shapes):
    for _ in range(5):
        env = point(expr, domain, shapes)
        want = evaluate(expr, env).gradient
        result = derivatives(expr, values=env)
        assert [item.wrt[0] for item in result.items] == list(want)
        for item in result.items:
            assert_agrees(reparse(item.text, env), want[item.wrt[0]], f"{item.label}: {item.text}")
            assert_agrees(item.value, want[item.wrt[0]], f"value of {item.label}")


@pytest.mark.parametrize(
    ("expr", "domain", "shapes"),
    [e for e in EXPRESSIONS if "max" not in e[0] and "prod" not in e[0] and "relu" not in e[0]],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_printed_second_derivatives_parse_back_to_the_hessian(expr, domain, shapes):
    env = point(expr, domain, shapes)
    result = derivatives(expr, order=2, values=env)
    want = hessian(expr, env)
    rows = []
    for item in result.items:
        rows.append(np.ravel(np.broadcast_to(reparse(item.text, env), item.shape)))
    n = len(want.labels)
    got = np.concatenate(rows).reshape(n, n)
    assert_agrees(got, want.matrix, "Hessian")


def derivative(expr: str, wrt: str, order: int = 1) -> str:
    result = derivatives(expr, [wrt], order)
    (item,) = [i for i in result.items if i.wrt[-1] == wrt]
    return item.text


@pytest.mark.parametrize(
    ("expr", "wrt", "text"),
    [
        ("x*y + x/y", "x", "1/y + y"),  # y + 1/y
        ("x*y + x/y", "y", "x - x/y^2"),
        ("sin(x^2)", "x", "2*x*cos(x^2)"),
        ("r2 = x^2 + y^2; sqrt(r2)", "x", "x/sqrt(x^2 + y^2)"),  # 0.5/sqrt(r)*(2*x)
        ("exp(-x^2/2)", "x", "-x*exp(-x^2/2)"),
        ("log(x)*y + x*x", "x", "2*x + y/x"),  # y*(1/x) → y/x, x + x → 2*x
        ("x^3*y", "x", "3*x^2*y"),
        ("(x + 1)*(x + 1)", "x", "2*(x + 1)"),
        ("x*1 + 0 + x - x", "x", "1"),
        ("exp(x)/exp(x)*x", "x", "1"),  # exp is never 0: it cancels
        ("-(a + b)*c", "c", "-a - b"),
        ("tanh(x)", "x", "sech(x)^2"),
        ("logsumexp(x)", "x", "softmax(x)"),
    ],
)
def test_simplified_forms(expr, wrt, text):
    values = {"x": [1.0, 2.0, 3.0]} if "logsumexp" in expr else None
    result = derivatives(expr, [wrt], 1, values)
    assert result.items[0].text == text


def test_a_binding_named_pi_does_not_capture_the_constant():
    text = derivative("pi = sqrt(x^2 + y^2); sin(pi)/pi + x*y*3.141592653589793", "x")
    env = {"x": 0.5, "y": 0.7}
    want = evaluate("pi = sqrt(x^2 + y^2); sin(pi)/pi + x*y*3.141592653589793", env)
    assert_agrees(reparse(text, env), want.gradient["x"], text)
    assert not text.startswith("pi =")


def test_signed_zeros_survive_simplification():
    """x*0 is -0 for x < 0, and atan2 tells -0 from 0."""
    env = {"x": -1.0, "y": 1.0}
    for expr in ("y*atan2(x*0, -1)", "y*atan2(-(x - x), -1)"):
        text = derivative(expr, "y")
        assert float(reparse(text, env)) == evaluate(expr, env).gradient["y"] == -math.pi


def test_x_over_x_does_not_cancel_where_x_may_be_0():
    """x/x is 1 except at 0, where it is undefined: the printed derivative keeps that point."""
    text = derivative("x/x", "x")
    assert "x" in text and reparse(text, {"x": 2.0}) == 0.0
    assert np.isnan(reparse(text, {"x": 0.0}, faults_allowed=True))


def test_shared_subexpressions_are_bound_when_shorter_and_keep_the_programs_names():
    text = derivative("r = sqrt(x^2 + y^2); sin(r)/r", "x")
    assert text.splitlines()[0] == "r = sqrt(x^2 + y^2)"
    inline = text.splitlines()[1].replace("r", "(sqrt(x^2 + y^2))")
    assert len(text) < len(inline)
    # A short shared node is not worth a name.
    assert "=" not in derivative("sigmoid(w*x + b)", "w")


def test_text_of_several_derivatives_labels_each_and_each_block_parses():
    r = cli("diff", "x^2*y + sin(x*y)", "--order", "2")
    assert r.exit_code == 0, r.output
    blocks = r.stdout.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [
        "# ∂²f/∂x∂x",
        "# ∂²f/∂x∂y",
        "# ∂²f/∂y∂x",
        "# ∂²f/∂y∂y",
    ]
    x, y = 0.7, -1.3
    s, c = math.sin(x * y), math.cos(x * y)
    closed = [2 * y - y * y * s, 2 * x + c - x * y * s, 2 * x + c - x * y * s, -x * x * s]
    for block, want in zip(blocks, closed, strict=True):
        body = "\n".join(block.splitlines()[1:])
        assert float(reparse(body, {"x": x, "y": y})) == pytest.approx(want, rel=1e-14)


def test_json_holds_text_latex_and_values_at_the_point():
    r = cli("diff", "x*y + x/y", "--x", "5", "--y", "2", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = strict(r.stdout)
    assert doc["order"] == 1 and doc["variables"] == ["x", "y"]
    got = {d["wrt"][0]: d for d in doc["derivatives"]}
    assert got["x"]["value"] == 2.5 and got["y"]["value"] == 3.75
    assert got["y"]["text"] == "x - x/y^2"
    assert got["y"]["latex"] == r"\frac{\partial f}{\partial y} = x - \frac{x}{y^{2}}"


def test_json_without_a_point_has_no_values_and_array_shapes_come_from_values():
    r = cli("diff", "sum(x^2)", "--x", "1,2,3", "--format", "json")
    doc = strict(r.stdout)
    assert doc["shapes"] == {"x": [3]} and doc["derivatives"][0]["shape"] == [3]
    assert doc["derivatives"][0]["value"] == [2.0, 4.0, 6.0]
    r = cli("diff", "x*y", "--format", "json")
    assert all(d["value"] is None for d in strict(r.stdout)["derivatives"])


# --- LaTeX --------------------------------------------------------------------------------------


def balanced(text: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0 and text.count(r"\left") == text.count(r"\right")


@pytest.mark.parametrize(
    ("expr", "wrt", "latex"),
    [
        ("x*y + x/y", "x", r"\frac{\partial f}{\partial x} = \frac{1}{y} + y"),
        ("sin(x^2)", "x", r"\frac{\partial f}{\partial x} = 2 x \cdot \cos\left(x^{2}\right)"),
        (
            "sqrt(alpha*x)",
            "alpha",
            r"\frac{\partial f}{\partial \alpha} = \frac{x}{2 \sqrt{\alpha \cdot x}}",
        ),
        ("exp(w1*x)", "w1", r"\frac{\partial f}{\partial w_{1}} = x \cdot e^{w_{1} \cdot x}"),
        ("abs(x)", "x", r"\frac{\partial f}{\partial x} = \operatorname{sgn}\left(x\right)"),
        # Numbers that carry an exponent or start with a digit keep their product sign.
        ("x*1e-20^y", "x", r"\frac{\partial f}{\partial x} = \left(1 \cdot 10^{-20}\right)^{y}"),
        ("x*2*3^y", "x", r"\frac{\partial f}{\partial x} = 2 \cdot 3^{y}"),
    ],
)
def test_latex_of_textbook_derivatives(expr, wrt, latex):
    r = cli("diff", expr, "--wrt", wrt, "--format", "latex")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == latex


@pytest.mark.parametrize(
    ("expr", "domain", "shapes"), EXPRESSIONS, ids=[e for e, *_ in EXPRESSIONS]
)
def test_latex_is_balanced_for_every_expression(expr, domain, shapes):
    env = point(expr, domain, shapes)
    args = [f"--{n}={','.join(map(str, np.ravel(v)))}" for n, v in env.items() if np.ndim(v) == 1]
    args += [f"--{n}={json.dumps(v.tolist())}" for n, v in env.items() if np.ndim(v) == 2]
    r = cli("diff", expr, "--format", "latex", *args)
    assert r.exit_code == 0, r.output
    for block in r.stdout.strip().split("\n\n"):
        assert balanced(block), block


# --- Python -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "domain", "shapes"), EXPRESSIONS, ids=[e for e, *_ in EXPRESSIONS]
)
def test_python_module_computes_the_autograd_gradient(expr, domain, shapes):
    env = point(expr, domain, shapes)
    result = derivatives(expr, values=env)
    from gradcli.output.diff import diff_text

    source = diff_text(result, "python")
    namespace: dict = {}
    exec(compile(source, "<gradcli diff>", "exec"), namespace)  # our own output, in a test
    want = evaluate(expr, env).gradient
    args = [env[n] for n in result.program.variables]
    for name, g in want.items():
        got = namespace[f"d_{name}"](*args)
        assert_agrees(got, g, f"d_{name}")


@pytest.mark.parametrize(
    ("expr", "want"),
    [("x/0", math.inf), ("x*0^-1", math.inf), ("x*10^400", math.inf), ("x*(-8)^(1/3)", math.nan)],
)
def test_python_of_unfolded_constants_gives_what_gradcli_gives(expr, want):
    from gradcli.output.diff import diff_text

    namespace: dict = {}
    exec(compile(diff_text(derivatives(expr), "python"), "<gradcli diff>", "exec"), namespace)
    with np.errstate(all="ignore"):
        got = float(namespace["d_x"](0.5))
    assert got == want or (math.isnan(want) and math.isnan(got))
    assert (got == evaluate(expr, {"x": 0.5}).gradient["x"]) or math.isnan(got)


def test_python_names_avoid_helpers_and_keywords():
    from gradcli.output.diff import diff_text

    namespace: dict = {}
    source = diff_text(derivatives("sigmoid(x)*_sigmoid"), "python")
    exec(compile(source, "<gradcli diff>", "exec"), namespace)
    s = 1 / (1 + math.exp(-0.5))
    assert namespace["d_x"](0.5, 2.0) == pytest.approx(2.0 * s * (1 - s), rel=1e-15)


def test_python_names_avoid_keywords():
    result = derivatives("lambda * x^2")
    from gradcli.output.diff import diff_text

    source = diff_text(result, "python")
    assert "def d_lambda(lambda_, x):" in source
    namespace: dict = {}
    exec(compile(source, "<gradcli diff>", "exec"), namespace)
    assert namespace["d_x"](3.0, 2.0) == 12.0


# --- errors and scale ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["x^2", "--format", "mathml"], "unknown format"),
        (["x^2", "--order", "3"], "--order must be 1 or 2"),
        (["x^2", "--wrt", "y"], "y is not a variable"),
        (["x^2", "--y", "1"], "y is not a variable"),
        (["x^2 +"], "error"),
        (["2+3"], "nothing to differentiate: the expression has no variables"),
        (["x^2", "--wrt", ""], "nothing to differentiate: --wrt is empty"),
    ],
)
def test_usage_errors(args, needle):
    r = cli("diff", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "Traceback" not in r.output


def test_second_derivative_of_prod_prints_and_evaluates():
    """prod's Hessian prints with prod_pairs, which can itself be evaluated and differentiated."""
    env = {"x": np.array([1.5, 0.0, -2.0, 3.0])}
    result = derivatives("prod(x)", order=2, values=env)
    want = hessian("prod(x)", env)
    got = np.array([np.ravel(reparse(item.text, env)) for item in result.items])
    assert_agrees(got, want.matrix, "Hessian of prod")
    assert all("prod_pairs(x, " in item.text for item in result.items)
    assert evaluate(result.items[1].text, env).gradient["x"].shape == (4,)


@pytest.mark.usefixtures("no_size_limits")
def test_diff_of_a_100000_term_sum_and_20000_deep_nesting():
    with shallow_stack():
        long = derivatives(" + ".join(["x*x"] * 100_000))
        deep = derivatives("sin(" * 20_000 + "x" + ")" * 20_000)
    assert long.items[0].text == "200000*x"
    text = deep.items[0].text
    assert len(text) < 40 * 20_000  # linear: each level is bound once
    with shallow_stack():
        value = reparse(text, {"x": 0.5})
    v, d = 0.5, 1.0
    for _ in range(20_000):
        v, d = math.sin(v), d * math.cos(v)
    assert float(value) == pytest.approx(d, rel=1e-10)
    # The Python module of the same derivative imports: long chains are cut into bindings.
    from gradcli.output.diff import diff_text

    namespace: dict = {}
    exec(compile(diff_text(deep, "python"), "<gradcli diff>", "exec"), namespace)
    assert float(namespace["d_x"](0.5)) == pytest.approx(d, rel=1e-10)


@pytest.mark.parametrize("expr", ["1/(x*0)", "y/(0*x)", "x/(0*x*y)", "log(0*x)"])
@pytest.mark.parametrize("order", [1, 2])
def test_dividing_by_a_product_with_a_zero_factor(expr, order):
    """Found by tests/test_fuzz.py: simplifying 1/(0*x) divided the coefficient 1 by 0 and
    raised ZeroDivisionError. The printed derivatives parse back."""
    result = derivatives(expr, order=order)
    assert result.items
    for item in result.items:
        compile_program(item.text)
