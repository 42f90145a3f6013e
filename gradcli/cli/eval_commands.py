"""The commands that evaluate at a point: eval (and its --batch of JSON Lines), jacobian, jvp
and hessian. Each reads EXPR --NAME VALUE and shows a table, or JSON with --json.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer

from .arguments import NAME as _NAME
from .arguments import OPTIONS as _OPTIONS
from .arguments import evaluate_at as _evaluate
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
    + EXIT_CODES
)


@app.command(
    "eval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=epilog(_EVAL_EXAMPLES),
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
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            metavar="FILE",
            help="JSON Lines ('-': stdin): one object of variables per line in, one JSON result "
            "per line out, streamed. --NAME VALUE values hold for every line.",
        ),
    ] = None,
) -> None:
    """Evaluate an expression and its gradient at a point.

    Variables are the expression's free names. Integers are read as floats. Arrays broadcast like numpy; for an array value, the gradient shown is that of the sum of its elements.
    """  # noqa: E501  (Typer shows each docstring line break)
    from ..language.source import GradcliError

    try:
        text, name, assignments = _split_arguments(args or [], file, var or [])
        if batch is not None:
            _run_batch(text, name, assignments, wrt, batch)
        result = _evaluate(text, name, assignments, wrt)
    except GradcliError as err:
        fail(err)
    from ..output import at_point, documents

    show(result, as_json, documents.evaluation_json, at_point.evaluation_table)


def _run_batch(text: str, name: str, assignments, wrt: str | None, path: str) -> None:
    """eval --batch: stream JSON Lines through the batched evaluator; exits when done."""
    from ..evaluation.batch import run_batch
    from ..language.limits import lines_bounded
    from ..language.source import GradcliError

    program, fixed = _program_and_values(text, name, assignments)
    if path == "-":
        if name == "<stdin>":
            raise GradcliError("the program and --batch cannot both come from stdin")
        stream = sys.stdin
    else:
        try:
            stream = open(path, encoding="utf-8")  # noqa: SIM115  (closed below)
        except OSError as exc:
            raise GradcliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        lines = lines_bounded(stream, "--batch")
        summary = run_batch(program, lines, sys.stdout, fixed, _names(wrt))
    finally:
        if stream is not sys.stdin:
            stream.close()
    message = (
        f"{summary.lines} lines: {summary.evaluated} evaluated, {summary.errors} errors, "
        f"{summary.nonfinite} with nan or inf"
    )
    sys.stderr.write(message + "\n")
    for line in summary.first_errors:
        sys.stderr.write(f"  {line}\n")
    raise typer.Exit(summary.exit_code)


_JACOBIAN_EXAMPLES = (
    """\
[bold]Examples[/bold]

  gradcli jacobian "A @ x + sin(x)" --A "[[1, 2], [3, 4]]" --x 0.5,-1
  gradcli jacobian "softmax(x)" --x 1,2,3 --json | jq .jacobian.x
  gradcli jacobian "[x*y, x/y, x^y]" --x 2 --y 3

"""
    + EXIT_CODES
)


@app.command(
    "jacobian",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=epilog(_JACOBIAN_EXAMPLES),
)
def jacobian_command(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="EXPR --NAME VALUE",
            help="The expression (or '-' to read it from stdin), and a value for each variable.",
            show_default=False,
        ),
    ] = None,
    file: FileOption = None,
    var: VarOption = None,
    wrt: Annotated[
        str | None, typer.Option("--wrt", metavar="NAMES", help="Only these variables.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The Jacobian of a vector- or array-valued expression: ∂f_i/∂x_j for every element of f and of each variable, from one batched reverse pass."""  # noqa: E501
    from ..language.source import GradcliError

    try:
        from ..api import jacobian

        program, values = program_at_point(args, file, var)
        result = jacobian(program, values, _names(wrt))
    except GradcliError as err:
        fail(err)
    from ..output import at_point

    show(result, as_json, at_point.jacobian_json, at_point.jacobian_table)


@app.command(
    "jvp",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=epilog(
        """\
[bold]Examples[/bold]

  gradcli jvp "x*y + x/y" --x 5 --y 2 --direction x=1,y=0
  gradcli jvp "A @ v" --A "[[1, 2], [3, 4]]" --v 1,1 --direction v=[1,0] --json

"""
        + EXIT_CODES
    ),
)
def jvp_command(
    args: PointArgument = None,
    direction: Annotated[
        list[str] | None,
        typer.Option(
            "--direction",
            metavar="NAME=VALUE,...",
            help="The direction: a tangent for some variables (the others stay fixed), e.g. "
            "x=1,y=0 or v=[1,0].",
        ),
    ] = None,
    file: FileOption = None,
    var: VarOption = None,
    as_json: JsonOption = False,
) -> None:
    """Forward mode: the derivative of an expression along a direction, beside vᵀ∇f from reverse mode."""  # noqa: E501
    from ..language.source import GradcliError

    try:
        from ..api import directional
        from ..evaluation.values import parse_value

        program, values = program_at_point(args, file, var, (*_OPTIONS, "direction"))
        if not direction:
            raise GradcliError("--direction is needed", hint="for example --direction x=1,y=0")
        moves = {
            n: parse_value(v, f"the direction of {n}")
            for n, v in _assignments(",".join(direction))  # --direction x=1 --direction y=0
        }
        result = directional(program, values, moves)
    except GradcliError as err:
        fail(err)
    from ..output import at_point

    show(result, as_json, at_point.directional_json, at_point.directional_table)


def _assignments(text: str) -> list[tuple[str, str]]:
    """NAME=VALUE pairs separated by commas, where a value may itself be 1,2,3 or [1, 2]:
    a comma starts a new pair only when a NAME= follows it."""

    from ..language.source import GradcliError

    parts = re.split(r",(?=\s*[^\W\d]\w*\s*=)", text)
    pairs = []
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep or not _NAME.fullmatch(name.strip()):
            raise GradcliError(f"{part!r} is not NAME=VALUE", hint="for example x=1,y=0")
        if any(name.strip() == seen for seen, _ in pairs):
            raise GradcliError(f"{name.strip()} is given twice in {text!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


@app.command(
    "hessian",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=epilog(
        """\
[bold]Examples[/bold]

  gradcli hessian "x^2*y + sin(x*y)" --x 0.7 --y -1.3
  gradcli hessian "logsumexp(x)" --x 1,2,3 --json
  gradcli hessian "x^3*y" --x 2 --y 1 --mode reverse

The matrix is ∂²(Σf)/∂x_i∂x_j over every element of the variables. --mode forward (the default)
takes the tangent of the gradient along each direction; --mode reverse differentiates each
gradient component again. Either is one batched pass.

"""
        + EXIT_CODES
    ),
)
def hessian_command(
    args: PointArgument = None,
    wrt: Annotated[
        str | None, typer.Option("--wrt", metavar="NAMES", help="Only these variables.")
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", metavar="MODE", help="forward (default) or reverse.")
    ] = "forward",
    file: FileOption = None,
    var: VarOption = None,
    as_json: JsonOption = False,
) -> None:
    """The Hessian of an expression at a point, with its symmetry."""
    from ..language.source import GradcliError

    try:
        from ..api import hessian

        program, values = program_at_point(args, file, var, (*_OPTIONS, "mode"))
        result = hessian(program, values, _names(wrt), mode)
    except GradcliError as err:
        fail(err)
    from ..output import at_point

    show(result, as_json, at_point.hessian_json, at_point.hessian_table)
