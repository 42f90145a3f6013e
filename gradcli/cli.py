"""The `gradcli` command line: a thin Typer layer over `gradcli.api`.

Data goes to stdout (a Rich table, or one JSON document with --json); messages go to stderr.
Exit codes: 0 success, 1 the value or a gradient is nan or inf, 2 unusable input or usage.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._version import __version__

EXIT_OK, EXIT_NONFINITE, EXIT_USAGE = 0, 1, 2

_EXIT_CODES = """\
[bold]Exit codes[/bold]: 0 success · 1 the value or a gradient is nan or inf ·
2 unusable input or usage.
"""

app = typer.Typer(
    name="gradcli",
    help="Compute, explain and check derivatives of math expressions.\n\n" + _EXIT_CODES,
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


_EVAL_EXAMPLES = (
    """\
[bold]Examples[/bold]

  gradcli eval "x*y + x/y" --x 5 --y 2
  gradcli eval "x*y + x/y" --x 5 --y 2 --json | jq .gradient.y
  gradcli eval "r2 = x^2 + y^2; sqrt(r2)" --x=3 --y=4
  gradcli eval "sin(x)*y" --x 0,1,2 --y "[1, 2, 3]"
  gradcli eval -f samples/small_model.grad --x 0.5 --y 1 \\
      --w1 1.7 --w2 0.2 --w3 0.6 --wrt w1,w2,w3
  echo "exp(-t^2)" | gradcli eval - --t 0.5
  gradcli eval "json * 2" --var json=3
  gradcli eval --x 2 -- "-x^2"

A variable named like an option is given with --var;
an expression that starts with '-' goes after '--'.

"""
    + _EXIT_CODES
)

_NAME = re.compile(r"[^\W\d]\w*")


@app.command(
    "eval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_EVAL_EXAMPLES,
)
def eval_command(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="EXPR --NAME VALUE",
            help="The expression (or '-' to read it from stdin), and a value for each variable: "
            "--x 5, --x=5, --x 1,2,3 or --x '[[1, 2], [3, 4]]'.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file", "-f", metavar="PATH", help="Read the program from a file ('-': stdin)."
        ),
    ] = None,
    var: Annotated[
        list[str] | None,
        typer.Option(
            "--var", metavar="NAME=VALUE", help="A variable whose name clashes with an option."
        ),
    ] = None,
    wrt: Annotated[
        str | None,
        typer.Option(
            "--wrt", metavar="NAMES", help="Differentiate only with respect to these (comma list)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one strict JSON document instead of a table.")
    ] = False,
) -> None:
    """Evaluate an expression and its gradient at a point.

    Variables are the expression's free names. Integers are read as floats. Arrays broadcast like numpy; for an array value, the gradient shown is that of the sum of its elements.
    """  # noqa: E501  (Typer shows each docstring line break)
    from .source import GradcliError

    try:
        text, name, assignments = _split_arguments(args or [], file, var or [])
        result = _evaluate(text, name, assignments, wrt)
    except GradcliError as err:
        _fail(err)
    from . import render

    for fault in result.faults:
        render.warning(fault)
    if as_json:
        render.json_document(render.evaluation_json(result))
    else:
        render.evaluation_table(result)
    if not result.finite:
        raise typer.Exit(EXIT_NONFINITE)


def _split_arguments(
    tokens: list[str], file: str | None, var: list[str]
) -> tuple[str, str, list[tuple[str, str]]]:
    """The program text, its name, and (variable, value) pairs from the command-line tokens."""
    from .source import GradcliError

    positional: list[str] = []
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and len(token) > 2:
            body = token[2:]
            if "=" in body:
                name, value = body.split("=", 1)
            elif i + 1 < len(tokens):
                name, value = body, tokens[i + 1]
                i += 1
            else:
                raise _unknown_option(body) or GradcliError(
                    f"{token} needs a value", hint=f"write {token} VALUE or {token}=VALUE"
                )
            pairs.append((name, value))
        else:
            positional.append(token)
        i += 1
    for item in var:
        if "=" not in item:
            raise GradcliError(f"--var {item!r} needs the form NAME=VALUE")
        pairs.append(tuple(item.split("=", 1)))  # type: ignore[arg-type]
    for name, _ in pairs:
        if not _NAME.fullmatch(name):
            raise GradcliError(
                f"--{name} is not an option of gradcli eval, nor a variable name",
                hint="see gradcli eval --help",
            )

    if file is not None:
        if positional:
            raise GradcliError(
                f"give the program with -f or as an argument, not both (got {positional[0]!r})"
            )
        return _read(file), ("<stdin>" if file == "-" else file), pairs
    if not positional:
        raise GradcliError("no expression given", hint='gradcli eval "x*y + x/y" --x 5 --y 2')
    if len(positional) > 1:
        raise GradcliError(
            f"expected one expression, got {len(positional)}: {', '.join(map(repr, positional))}",
            hint="quote the expression, and give variables as --NAME VALUE",
        )
    if positional[0] == "-":
        return _read("-"), "<stdin>", pairs
    return positional[0], "<expr>", pairs


def _read(path: str) -> str:
    from .source import GradcliError

    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise GradcliError(f"cannot read {path}: {reason}") from None


_OPTIONS = ("json", "file", "var", "wrt", "help")


def _unknown_option(name: str, variables: list[str] | tuple[str, ...] = ()):
    """An error for `--name` if it looks like a mistyped option rather than a variable."""
    import difflib

    from .source import GradcliError

    close = difflib.get_close_matches(name, _OPTIONS, n=1, cutoff=0.7)
    if not close or difflib.get_close_matches(name, variables, n=1):
        return None
    known = f" (the expression's variables are {', '.join(variables)})" if variables else ""
    return GradcliError(f"unknown option --{name}", hint=f"did you mean --{close[0]}?{known}")


def _evaluate(text: str, name: str, assignments: list[tuple[str, str]], wrt: str | None):
    from .api import check_variables, compile_program, evaluate
    from .source import GradcliError
    from .values import parse_value

    program = compile_program(text, name)
    values = {}
    for var_name, raw in assignments:
        if var_name in values:
            raise GradcliError(f"{var_name} is given more than once")
        if var_name not in program.variables:
            mistyped = _unknown_option(var_name, list(program.variables))
            if mistyped is not None:
                raise mistyped
        values[var_name] = parse_value(raw, var_name)
    check_variables(program, values)
    names = [n.strip() for n in wrt.split(",")] if wrt is not None else None
    return evaluate(program, values, names)


def _fail(err: Exception) -> None:
    from . import render

    render.error(err)
    raise typer.Exit(EXIT_USAGE)


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="gradcli")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except BrokenPipeError:  # e.g. `gradcli … | head`: the reader left; not an error of ours
        sys.stderr.close()
        sys.exit(EXIT_OK)
