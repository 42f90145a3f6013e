"""The commands that show how a derivative is made: diff, graph and explain.

They are registered on the same Typer app as the others (app.py imports this module).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .arguments import names as _names
from .arguments import program_and_values as _program_and_values
from .arguments import split_arguments as _split_arguments
from .common import (
    EXIT_CODES,
    FileOption,
    JsonOption,
    PointArgument,
    VarOption,
    app,
    epilog,
    fail,
    program_at_point,
    show,
)

_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
_DIFF_FORMATS = ("text", "latex", "python", "json")


@app.command(
    "diff",
    context_settings=_CONTEXT,
    epilog=epilog(
        """\
[bold]Examples[/bold]

  gradcli diff "x*y + x/y" --wrt x
  gradcli diff "r = sqrt(x^2 + y^2); sin(r)/r"
  gradcli diff "x^2*y + sin(x*y)" --order 2 --format latex
  gradcli diff "logsumexp(x)" --x 1,2,3 --format python
  gradcli diff "x*y + x/y" --x 5 --y 2 --format json | jq '.derivatives[].value'

The derivative is the one gradcli computes (reverse mode), simplified: numbers multiplied out,
like terms collected (x + x → 2*x), x/x cancelled only where x can never be 0, and a shared
subexpression bound to a name (the program's own, when it has one) where that is shorter.
Printed in the language (--format text), it parses back: paste it into a program.
Array variables need a value (--x 1,2,3) for their shape; with every variable given, --format
json also holds each derivative's value there.

"""
        + EXIT_CODES
    ),
)
def diff_command(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="EXPR [--NAME VALUE]",
            help="The expression; values give array variables their shapes.",
            show_default=False,
        ),
    ] = None,
    wrt: Annotated[
        str | None,
        typer.Option("--wrt", metavar="NAMES", help="Differentiate in these (default: all)."),
    ] = None,
    order: Annotated[
        int, typer.Option("--order", help="1 (the gradient) or 2 (second derivatives).")
    ] = 1,
    output_format: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="text (default), latex, python, json.")
    ] = "text",
    file: FileOption = None,
    var: VarOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
) -> None:
    """The derivative as an expression: simplified, in gradcli's language, LaTeX or Python."""
    from ..language.source import GradcliError

    if as_json:
        output_format = "json"
    try:
        if output_format not in _DIFF_FORMATS:
            raise GradcliError(
                f"unknown format {output_format!r}", hint="use " + ", ".join(_DIFF_FORMATS)
            )
        from ..evaluation.derivatives import derivatives

        text, name, assignments = _split_arguments(args or [], file, var or [])
        options = ("wrt", "order", "format", "file", "var", "json", "help")
        program, values = _program_and_values(text, name, assignments, options)
        result = derivatives(program, _names(wrt), order, values)
    except GradcliError as err:
        fail(err)
    from ..output import diff, documents

    if output_format == "json":
        documents.json_document(diff.diff_json(result))
    else:
        sys.stdout.write(diff.diff_text(result, output_format))


_GRAPH_FORMATS = ("tree", "dot", "mermaid")


@app.command(
    "graph",
    context_settings=_CONTEXT,
    epilog=epilog(
        """\
[bold]Examples[/bold]

  gradcli graph "x*y + x/y"
  gradcli graph "x*y + x/y" --x 5 --y 2
  gradcli graph "r = sqrt(x^2 + y^2); sin(r)/r" --format dot | dot -Tsvg > graph.svg
  gradcli graph "x*y + x/y" --x 5 --y 2 --format mermaid >> README.md

Nodes are numbered in topological order (inputs first), as gradcli explain numbers them. With a
value for every variable, each node shows its value and its adjoint ∂f/∂node, and each edge the
gradient that flowed back along it. A node used twice appears once.

"""
        + EXIT_CODES
    ),
)
def graph_command(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="EXPR [--NAME VALUE]",
            help="The expression, and optionally a point to annotate it with.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="tree (default), dot or mermaid.")
    ] = "tree",
    file: FileOption = None,
    var: VarOption = None,
) -> None:
    """Draw the computation graph: a tree, Graphviz DOT or a Mermaid flowchart."""
    from ..language.source import GradcliError

    try:
        if output_format not in _GRAPH_FORMATS:
            raise GradcliError(
                f"unknown format {output_format!r}", hint="use " + ", ".join(_GRAPH_FORMATS)
            )
        from ..output.explain import explain

        text, name, assignments = _split_arguments(args or [], file, var or [])
        options = ("format", "file", "var", "help")
        program, values = _program_and_values(text, name, assignments, options)
        result = explain(program, values or None)
    except GradcliError as err:
        fail(err)
    from ..output import console, pictures

    for fault in result.faults:
        console.warning(fault)
    draw = {"tree": pictures.tree, "dot": pictures.dot, "mermaid": pictures.mermaid}
    sys.stdout.write(draw[output_format](result))


@app.command(
    "explain",
    context_settings=_CONTEXT,
    epilog=epilog(
        """\
[bold]Examples[/bold]

  gradcli explain "x*y + x/y" --x 5 --y 2
  gradcli explain "sin(x^2)" --x 1.5 --json

"""
        + EXIT_CODES
    ),
)
def explain_command(
    args: PointArgument = None,
    file: FileOption = None,
    var: VarOption = None,
    as_json: JsonOption = False,
) -> None:
    """The backward pass step by step: each node's adjoint and what it sends its inputs."""
    from ..language.source import GradcliError

    try:
        from ..output.explain import explain

        program, values = program_at_point(args, file, var, ("json", "file", "var"))
        result = explain(program, values)
    except GradcliError as err:
        fail(err)
    from ..output.explain import explain_json, explain_table

    show(result, as_json, explain_json, explain_table, exit_if_nonfinite=False)
