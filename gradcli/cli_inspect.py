"""The commands that show how a derivative is made: diff, graph and explain.

They are registered on the same Typer app as the others (cli.py imports this module).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .cli import (
    _EXIT_CODES,
    _fail,
    _names,
    _program_and_values,
    _split_arguments,
    app,
)

_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
_DIFF_FORMATS = ("text", "latex", "python", "json")


@app.command(
    "diff",
    context_settings=_CONTEXT,
    epilog=(
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
        + _EXIT_CODES
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
    file: Annotated[
        str | None,
        typer.Option("--file", "-f", metavar="PATH", help="Read the program from a file."),
    ] = None,
    var: Annotated[
        list[str] | None,
        typer.Option("--var", metavar="NAME=VALUE", help="A variable named like an option."),
    ] = None,
) -> None:
    """The derivative as an expression: simplified, in gradcli's language, LaTeX or Python."""
    from .source import GradcliError

    try:
        if output_format not in _DIFF_FORMATS:
            raise GradcliError(
                f"unknown format {output_format!r}", hint="use " + ", ".join(_DIFF_FORMATS)
            )
        from .diff import derivatives

        text, name, assignments = _split_arguments(args or [], file, var or [])
        options = ("wrt", "order", "format", "file", "var", "help")
        program, values = _program_and_values(text, name, assignments, options)
        result = derivatives(program, _names(wrt), order, values)
    except GradcliError as err:
        _fail(err)
    from . import render

    if output_format == "json":
        render.json_document(render.diff_json(result))
    else:
        sys.stdout.write(render.diff_text(result, output_format))
