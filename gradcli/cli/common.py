"""What every command shares: the Typer app they register on, the exit codes, the options most of
them take, and the steps they end with (`show` a result, or `fail` with a message).

A command's module registers it with `@app.command(...)`; app.py imports the module, which is
what puts the command on the command line. Nothing here imports a command's module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .._version import __version__
from .arguments import OPTIONS as _OPTIONS
from .arguments import program_and_values as _program_and_values
from .arguments import split_arguments as _split_arguments

EXIT_OK, EXIT_NONFINITE, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

EXIT_CODES = """\
[bold]Exit codes[/bold]: 0 success · 1 the value or a gradient is nan or inf ·
2 unusable input or usage · 3 an internal error (a bug in gradcli).
"""


def epilog(text: str) -> str:
    """Help text after the options: a paragraph's lines are joined, so that the terminal wraps
    it at its own width; indented lines (examples) and headings stay as they are."""
    blocks = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if any(line.startswith(" ") for line in lines) or len(lines) == 1:
            blocks.append(block)
        else:
            blocks.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(blocks)


app = typer.Typer(
    name="gradcli",
    help="Compute, explain and check derivatives of math expressions.\n\n" + EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = None,
) -> None:
    """Compute, explain and check derivatives of math expressions."""


# Options that most commands share.
FileOption = Annotated[
    str | None,
    typer.Option("--file", "-f", metavar="PATH", help="Read the program from a file."),
]
VarOption = Annotated[
    list[str] | None,
    typer.Option("--var", metavar="NAME=VALUE", help="A variable named like an option."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one strict JSON document.")]
PointArgument = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="EXPR --NAME VALUE", help="The expression and its point.", show_default=False
    ),
]


def program_at_point(args, file, var, options: tuple[str, ...] = _OPTIONS):
    """The program and a value for each of its variables, from the command line."""
    from ..api import check_variables

    text, name, assignments = _split_arguments(args or [], file, var or [])
    program, values = _program_and_values(text, name, assignments, options)
    check_variables(program, values)
    return program, values


def show(result, as_json: bool, to_json, table, exit_if_nonfinite: bool = True) -> None:
    """Warnings to stderr, then one JSON document or the table; exit 1 on a nan or inf, or on
    a gradient that lost digits to underflow."""
    from ..api import lost_digits
    from ..output import console, documents

    for fault in result.faults:
        console.warning(fault)
    if as_json:
        documents.json_document(to_json(result))
    else:
        table(result)
    if exit_if_nonfinite and (not result.finite or lost_digits(result.faults)):
        raise typer.Exit(EXIT_NONFINITE)


def fail(err: Exception) -> None:
    """The message on stderr, and exit 2: unusable input or usage."""
    from ..output import console

    console.error(err)
    raise typer.Exit(EXIT_USAGE)
