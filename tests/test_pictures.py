"""gradcli explain and gradcli graph: the backward pass step by step, and pictures of the graph.

References: the tutorial's example worked by hand (x*y + x/y at x = 5, y = 2: x receives 2 from
x*y and 0.5 from x/y, y receives 5 and -1.25), the autograd gradient for other programs, the
Graphviz grammar (pydot's parser, and the `dot` program itself where it is installed) and a
grammar of Mermaid's flowchart syntax written here from its documentation.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pydot
import pytest
from lark import Lark
from lark.exceptions import UnexpectedInput
from support import cli, strict
from test_scale import shallow_stack

from gradcli import compile_program, evaluate
from gradcli.output.explain import explain
from gradcli.output.pictures import dot, mermaid, tree

# --- explain ------------------------------------------------------------------------------------


def test_explain_shows_the_adjoints_arriving_at_x_and_y():
    r = cli("explain", "x*y + x/y", "--x", "5", "--y", "2", "--json")
    assert r.exit_code == 0, r.output
    doc = strict(r.stdout)
    steps = {s["text"]: s for s in doc["steps"]}
    x, y, xy, x_over_y, out = (steps[t] for t in ("x", "y", "x*y", "x/y", "x*y + x/y"))
    # Worked by hand: f = x*y + x/y; ∂(x*y)/∂x = y = 2, ∂(x/y)/∂x = 1/y = 0.5, ∂(x*y)/∂y = x = 5,
    # ∂(x/y)/∂y = -x/y² = -1.25. x and y are each used twice: their adjoints are sums.
    assert out["adjoint"] == 1.0 and out["received"] == [{"from": None, "value": 1.0}]
    assert sorted((t["to"], t["local"], t["contribution"]) for t in xy["sent"]) == [
        (x["number"], 2.0, 2.0),
        (y["number"], 5.0, 5.0),
    ]
    assert sorted((t["to"], t["local"], t["contribution"]) for t in x_over_y["sent"]) == [
        (x["number"], 0.5, 0.5),
        (y["number"], -1.25, -1.25),
    ]
    assert sorted(v["value"] for v in x["received"]) == [0.5, 2.0] and x["adjoint"] == 2.5
    assert sorted(v["value"] for v in y["received"]) == [-1.25, 5.0] and y["adjoint"] == 3.75
    assert doc["gradient"] == {"x": 2.5, "y": 3.75}
    # The backward pass visits the output first and the variables last.
    order = doc["backward_order"]
    assert order[0] == out["number"] and set(order[-2:]) == {x["number"], y["number"]}


def test_explain_table_reads_like_the_tutorial():
    r = cli("explain", "x*y + x/y", "--x", "5", "--y", "2")
    assert r.exit_code == 0, r.output
    assert "(the seed: ∂f/∂f)" in r.stdout
    assert "2.0 from #3 + 0.5 from #4 = 2.5" in r.stdout
    assert "5.0 from #3 + -1.25 from #4 = 3.75" in r.stdout
    assert "gradient: ∂f/∂x = 2.5 (#1), ∂f/∂y = 3.75 (#2)" in r.stdout


PROGRAMS = [
    ("sin(x^2) * exp(-y) + x/y", {"x": 0.7, "y": 1.3}),
    ("r = sqrt(x^2 + y^2); sin(r)/r", {"x": 0.6, "y": -0.8}),
    ("relu(x - 1) * y + max(x, y)", {"x": 2.0, "y": 0.5}),
    (
        "sum(w * x) + logsumexp(x) + norm(A @ x)",
        {"w": [1.0, -2.0], "x": [0.5, 0.25], "A": [[1.0, 2.0], [0.0, 3.0]]},
    ),
    ("sum(x[0:2] * x[1:3]) + x[0]^2", {"x": [1.0, -2.0, 3.0]}),
]


@pytest.mark.parametrize(("expr", "values"), PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_every_step_adds_up(expr, values):
    """Adjoints are the sums of what was received; elementwise contributions are adjoint ×
    local; the variables' adjoints are the gradient evaluate computes."""
    result = explain(expr, values)
    want = evaluate(expr, values).gradient
    by_number = {s.number: s for s in result.steps}
    for step in result.backward:
        total = sum(np.asarray(v) for _, v in step.received)
        np.testing.assert_allclose(step.adjoint, total, rtol=1e-15)
        for sent in step.sent:
            target = by_number[sent.to]
            if sent.local is not None and np.shape(sent.contribution) == np.shape(step.value):
                np.testing.assert_allclose(sent.contribution, step.adjoint * sent.local, rtol=1e-15)
            assert np.shape(sent.contribution) == np.shape(target.value)
    for step in result.steps:
        if step.node.op == "variable":
            np.testing.assert_array_equal(step.adjoint, want[step.op])


def test_explain_needs_a_point_and_reports_unusable_input():
    r = cli("explain", "x*y", "--x", "1")
    assert r.exit_code == 2 and "missing value for y" in r.stderr
    r = cli("explain", "x*", "--x", "1")
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = cli("explain", "2+3")
    assert r.exit_code == 2 and "nothing to differentiate" in r.stderr


def test_explain_names_the_node_that_made_a_nan():
    r = cli("explain", "log(x) * y", "--x", "-1", "--y", "2")
    assert r.exit_code == 0
    assert "log" in r.stderr and "warning" in r.stderr


# --- graph: DOT ----------------------------------------------------------------------------------

GRAPHS = [
    ("x*y + x/y", {"x": 5.0, "y": 2.0}),
    ("x*y + x/y", None),
    *PROGRAMS,
    ('x*"quoted"', None),  # not a program: the error path is tested below
]


def valid_graphs():
    for expr, values in GRAPHS:
        try:
            compile_program(expr)
        except Exception:
            continue
        yield pytest.param(expr, values, id=f"{expr}{'@' if values else ''}")


def distinct_edges(result) -> int:
    return sum(len(set(s.inputs)) for s in result.steps)


@pytest.mark.parametrize(("expr", "values"), list(valid_graphs()))
def test_dot_is_valid_graphviz_with_each_node_once(expr, values):
    result = explain(expr, values)
    text = dot(result)
    (graph,) = pydot.graph_from_dot_data(text)
    names = [n.get_name() for n in graph.get_nodes() if n.get_name() not in ("node", "edge")]
    assert sorted(names) == sorted(f"n{s.number}" for s in result.steps)  # each node once
    assert len(graph.get_edges()) == distinct_edges(result)
    if values is not None:
        labels = " ".join(n.get_label() or "" for n in graph.get_nodes())
        assert "∂f/∂·" in labels


@pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("GRADCLI_REQUIRE_GRAPHVIZ"),
    reason="Graphviz is not installed (CI installs it and sets GRADCLI_REQUIRE_GRAPHVIZ)",
)
@pytest.mark.parametrize(("expr", "values"), list(valid_graphs()))
def test_graphviz_itself_renders_the_dot(expr, values):
    done = subprocess.run(
        ["dot", "-Tsvg"], input=dot(explain(expr, values)), capture_output=True, text=True
    )
    assert done.returncode == 0 and "<svg" in done.stdout, done.stderr


def test_dot_labels_escape_quotes_and_backslashes():
    result = explain("x*y", {"x": 1.0, "y": 2.0})
    result.steps[0].text = 'a "quoted" \\ label'
    result.steps[0].op = 'a "quoted" \\ label'
    (graph,) = pydot.graph_from_dot_data(dot(result))
    node = graph.get_node("n1")[0]
    assert '\\"quoted\\"' in node.get_label()


# --- graph: Mermaid ------------------------------------------------------------------------------

# Mermaid's flowchart syntax (mermaid.js.org/syntax/flowchart.html), the part gradcli writes:
# a header with a direction, node definitions with a quoted label in [ ] or ([ ]) (a stadium),
# and links --> with an optional quoted label between pipes. A quoted label may not contain a
# double quote; entity codes (#quot; #35;) stand for reserved characters.
MERMAID = Lark(
    r"""
    start: "flowchart" DIRECTION _NL statement*
    DIRECTION: "TB" | "TD" | "BT" | "RL" | "LR"
    statement: (node | link) _NL
    node: ID "[" LABEL "]" | ID "([" LABEL "])"
    link: ID "-->" ("|" LABEL "|")? ID
    ID: /[A-Za-z][A-Za-z0-9_]*/
    LABEL: /"[^"\n]*"/
    _NL: /\n/
    %ignore /[ \t]+/
    """,
    parser="lalr",
)


@pytest.mark.parametrize(("expr", "values"), list(valid_graphs()))
def test_mermaid_is_a_valid_flowchart_with_each_node_once(expr, values):
    result = explain(expr, values)
    text = mermaid(result)
    parsed = MERMAID.parse(text)
    nodes = [str(s.children[0]) for s in parsed.find_data("node")]
    links = list(parsed.find_data("link"))
    assert sorted(nodes) == sorted(f"n{s.number}" for s in result.steps)
    assert len(links) == distinct_edges(result)
    for label in parsed.scan_values(lambda v: getattr(v, "type", "") == "LABEL"):
        assert "#" not in label.replace("#35;", "").replace("#quot;", "").replace(
            "#lt;", ""
        ).replace("#gt;", "")


def test_mermaid_rejects_what_it_should():
    """The grammar is not a rubber stamp: a label with a bare quote does not parse."""
    with pytest.raises(UnexpectedInput):
        MERMAID.parse('flowchart BT\n  n1["a "b" c"]\n')


# --- graph: tree ---------------------------------------------------------------------------------


def test_tree_shows_each_node_in_full_once():
    result = explain("r = sqrt(x^2 + y^2); sin(r)/r", {"x": 0.6, "y": 0.8})
    text = tree(result)
    lines = text.splitlines()
    full = [line for line in lines if "(shared: shown above)" not in line]
    numbers = [line.split("#")[1].split()[0] for line in full]
    assert sorted(numbers, key=int) == [str(s.number) for s in result.steps]
    assert any("(shared: shown above)" in line for line in lines)  # r is used twice
    assert lines[0].startswith(f"#{len(result.steps)} /")
    assert "= 1.0" in text and "∂f/∂·" in text  # sqrt(0.36 + 0.64) = 1


def test_graph_command_formats_and_errors():
    r = cli("graph", "x*y + x/y", "--x", "5", "--y", "2")
    assert r.exit_code == 0 and "∂f/∂· = 2.5" in r.stdout
    r = cli("graph", "x*y", "--format", "dot")
    assert r.exit_code == 0 and r.stdout.startswith("digraph gradcli {")
    r = cli("graph", "x*y", "--format", "mermaid")
    assert r.exit_code == 0 and r.stdout.startswith("flowchart BT")
    r = cli("graph", "x*y", "--format", "png")
    assert r.exit_code == 2 and "unknown format" in r.stderr
    r = cli("graph", "x*y", "--z", "1")
    assert r.exit_code == 2 and "z is not a variable" in r.stderr


def test_pictures_of_a_20000_deep_program_are_linear():
    depth = 20_000
    with shallow_stack():
        result = explain("sin(" * depth + "x" + ")" * depth, {"x": 0.5})
        text = dot(result)
        flow = mermaid(result)
        shown = tree(result)
    assert text.count(" -> ") == depth and flow.count("-->") == depth
    assert len(text) < 200 * depth
    assert "nodes in all" in shown and len(shown) < 500 * 300  # cut at 500 lines


def test_explain_and_graph_of_a_20000_term_sum_are_linear():
    """Labels are built from the inputs' labels, not by printing each node's whole expression
    (which was quadratic on a long sum)."""
    n = 20_000
    text = " + ".join(f"sin({i}*x)" for i in range(1, n + 1))
    with shallow_stack():
        result = explain(text, {"x": 0.3})
        picture = dot(result)
    want = evaluate(text, {"x": 0.3}).gradient["x"]
    (x,) = [s for s in result.steps if s.node.op == "variable"]
    assert float(x.adjoint) == pytest.approx(float(want), rel=1e-12)
    assert picture.count(" -> ") == sum(len(set(s.inputs)) for s in result.steps)
    assert max(len(s.text) for s in result.steps) <= 40


def test_a_variable_that_only_feeds_steps_and_ties_is_explained_and_drawn():
    """Found by tests/test_fuzz.py: heaviside(v, …) and equal(w, v) send v no derivative, so v
    had no adjoint, and explain and graph raised KeyError."""
    text, values = "heaviside(v, -1)*w + equal(w, v)", {"v": 1.0, "w": 2.0}
    result = explain(text, values)
    steps = {s.text: s for s in result.steps}
    assert steps["w"].adjoint == evaluate(text, values).gradient["w"] == 1.0
    assert steps["v"].adjoint is None and steps["v"].received == []
    for command in ("explain", "graph"):
        r = cli(command, text, "--v", "1", "--w", "2")
        assert r.exit_code == 0, r.output
