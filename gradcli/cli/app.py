"""The `gradcli` command line: a thin Typer layer over `gradcli.api`.

Data goes to stdout (a Rich table, or one JSON document with --json); messages go to stderr.
Exit codes: 0 success, 1 the value or a gradient is nan or inf, 2 unusable input or usage.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand

from .._version import __version__
from ..checking.tolerances import TOLERANCE_RULE
from . import streams
from .arguments import NAME as _NAME
from .arguments import OPTIONS as _OPTIONS
from .arguments import evaluate_at as _evaluate
from .arguments import names as _names
from .arguments import program_and_values as _program_and_values
from .arguments import scan as _scan
from .arguments import split_arguments as _split_arguments
from .arguments import unknown_option as _unknown_option

EXIT_OK, EXIT_NONFINITE, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

_EXIT_CODES = """\
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


# A program or value may start with "-" ("-sum(f*x)", "--x -inf"): Click would read it as short
# options (-s -u -m … -f). So every token that starts with one "-", other than "-" (stdin) and
# the short options "-f" and "-h" written alone, is marked with a NUL, which no argument can
# hold, before Click parses, and unmarked after; "--" is then never needed, and is dropped.
_MARK = "\x00"
_SHORT = frozenset({"-", "-f", "-h"})


def _unmark(value: object) -> object:
    if isinstance(value, str):
        return value.removeprefix(_MARK)
    if isinstance(value, list | tuple):
        return type(value)(_unmark(v) for v in value)
    return value


class _Command(TyperCommand):
    """A command whose options are its long --names (and -f, -h alone); every other token is
    a program, a path, or a variable's --NAME and VALUE, however it starts."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        valued = {
            name
            for param in self.get_params(ctx)
            if param.param_type_name == "option" and not getattr(param, "is_flag", False)
            for name in param.opts
        }
        marked = []
        for i, token in enumerate(args):
            if token == "--":
                continue
            after_option = i > 0 and args[i - 1] in valued
            if token[:1] == "-" and token[:2] != "--" and token not in _SHORT and not after_option:
                token = _MARK + token
            marked.append(token)
        rest = super().parse_args(ctx, marked)
        ctx.params = {k: _unmark(v) for k, v in ctx.params.items()}
        ctx.args = _unmark(ctx.args)
        return _unmark(rest)  # type: ignore[return-value]


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
        _fail(err)
    from ..output import at_point, documents

    _show(result, as_json, documents.evaluation_json, at_point.evaluation_table)


_JACOBIAN_EXAMPLES = (
    """\
[bold]Examples[/bold]

  gradcli jacobian "A @ x + sin(x)" --A "[[1, 2], [3, 4]]" --x 0.5,-1
  gradcli jacobian "softmax(x)" --x 1,2,3 --json | jq .jacobian.x
  gradcli jacobian "[x*y, x/y, x^y]" --x 2 --y 3

"""
    + _EXIT_CODES
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

        program, values = _program_at_point(args, file, var)
        result = jacobian(program, values, _names(wrt))
    except GradcliError as err:
        _fail(err)
    from ..output import at_point

    _show(result, as_json, at_point.jacobian_json, at_point.jacobian_table)


_MINIMIZE_EXAMPLES = (
    """\
[bold]Examples[/bold]

  gradcli minimize samples/tutorial_model.grad --params w,b --w 1.7,0.2 --b 0.6 \\\\
      --data x=@samples/data/tutorial_x.csv --data y=@samples/data/tutorial_y.csv \\\\
      --lr 0.05 --steps 500
  gradcli minimize "(x - 3)^2 + (y + 1)^2" --params x,y --x 0 --y 0 --optimizer gd --lr 0.1
  gradcli minimize model.grad --params W --W @w0.npy --data X=@X.npy --json > fit.json

Every parameter starts from its value (--NAME VALUE); --data and the other values stay fixed.
An array-valued program is a per-sample loss: its mean is minimized (--reduce sum: its sum).
Ctrl-C stops the run and still prints the best parameters so far.

"""
    + _EXIT_CODES
)


@app.command(
    "minimize",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=epilog(_MINIMIZE_EXAMPLES),
)
def minimize_command(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PROGRAM --NAME VALUE",
            help="A program file (.grad) or an expression, and a value for each variable: the "
            "starting values of the parameters and the values of the others.",
            show_default=False,
        ),
    ] = None,
    params: Annotated[
        str,
        typer.Option("--params", metavar="NAMES", help="The variables to fit (comma list)."),
    ] = "",
    data: Annotated[
        list[str] | None,
        typer.Option("--data", metavar="NAME=VALUE", help="A fixed variable, e.g. x=@xs.npy."),
    ] = None,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.", min=0.0)] = 1e-3,
    steps: Annotated[int, typer.Option("--steps", help="Number of updates.", min=0)] = 500,
    optimizer: Annotated[
        str, typer.Option("--optimizer", metavar="NAME", help="adam (default) or gd.")
    ] = "adam",
    reduce: Annotated[
        str,
        typer.Option("--reduce", metavar="HOW", help="mean (default) or sum of an array loss."),
    ] = "mean",
    plot: Annotated[
        str | None,
        typer.Option("--plot", metavar="FILE", help="Save the loss curve as a PNG (matplotlib)."),
    ] = None,
    file: FileOption = None,
    var: VarOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result and the loss history as JSON.")
    ] = False,
) -> None:
    """Fit parameters by gradient descent (plain or Adam) on a program's loss."""
    from ..language.source import GradcliError

    try:
        tokens = list(args or [])
        positional, _ = _scan(tokens)
        if file is None and len(positional) == 1 and Path(positional[0]).is_file():
            file = positional[0]
            tokens.remove(file)
        text, name, assignments = _split_arguments(tokens, file, [*(var or []), *(data or [])])
        program, values = _program_and_values(text, name, assignments, _MINIMIZE_OPTIONS)
        names = _names(params) or []
        if not names:
            raise GradcliError("--params names no variable", hint="for example --params w,b")
        from ..api import check_variables

        check_variables(program, values)
        if plot is not None:
            _check_plot_dependency()
        from ..evaluation.minimize import minimize
        from ..output import training

        with training.training_progress(steps, enabled=not as_json) as on_step:
            result = minimize(program, names, values, steps, lr, optimizer, reduce, on_step)
    except GradcliError as err:
        _fail(err)
    from ..output import documents, training

    if plot is not None:
        try:
            training.loss_plot(result.history, Path(plot))
        except OSError as exc:
            _fail(GradcliError(f"cannot write {plot}: {exc.strerror or exc}"))
    if as_json:
        documents.json_document(training.training_json(result, optimizer, lr))
    else:
        training.training_report(result)
    if result.stopped == "interrupted":
        raise typer.Exit(130)
    if result.stopped in ("diverged", "overflowed", "stuck"):
        raise typer.Exit(EXIT_NONFINITE)


_MINIMIZE_OPTIONS = (
    "params", "data", "lr", "steps", "optimizer", "reduce", "plot", "file", "var", "json", "help",
)  # fmt: skip


def _check_plot_dependency() -> None:
    from importlib.util import find_spec

    from ..language.source import GradcliError

    if find_spec("matplotlib") is None:
        raise GradcliError(
            "--plot needs matplotlib, which is not installed",
            hint="pip install 'gradcli[plot]'",
        )


@app.command(
    "jvp",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=epilog(
        """\
[bold]Examples[/bold]

  gradcli jvp "x*y + x/y" --x 5 --y 2 --direction x=1,y=0
  gradcli jvp "A @ v" --A "[[1, 2], [3, 4]]" --v 1,1 --direction v=[1,0] --json

"""
        + _EXIT_CODES
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

        program, values = _program_at_point(args, file, var, (*_OPTIONS, "direction"))
        if not direction:
            raise GradcliError("--direction is needed", hint="for example --direction x=1,y=0")
        moves = {
            n: parse_value(v, f"the direction of {n}")
            for n, v in _assignments(",".join(direction))  # --direction x=1 --direction y=0
        }
        result = directional(program, values, moves)
    except GradcliError as err:
        _fail(err)
    from ..output import at_point

    _show(result, as_json, at_point.directional_json, at_point.directional_table)


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
        + _EXIT_CODES
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

        program, values = _program_at_point(args, file, var, (*_OPTIONS, "mode"))
        result = hessian(program, values, _names(wrt), mode)
    except GradcliError as err:
        _fail(err)
    from ..output import at_point

    _show(result, as_json, at_point.hessian_json, at_point.hessian_table)


_CHECK_EXAMPLES = (
    """\
[bold]Examples[/bold]

  gradcli check "x*y + x/y" --x 5 --y 2
  gradcli check "relu(x)*y" --x 0 --y 3
  gradcli check "log(x)*y" --samples 1000 --domain x=1e-3:1e3:log --domain y=-3:3
  gradcli check "r2 = x^2 + y^2; sqrt(r2)" --x 3 --y 4 --method central --json
  gradcli check "x^3" --x 2 --dtype float32
  gradcli check samples/
  gradcli check --junit-xml report.xml
  gradcli check tests/ --format github

[bold]Methods[/bold]: forward, central, richardson (central differences extrapolated to h → 0),
complex (the complex step, exact to rounding on analytic functions) and auto: complex where every
node the variable reaches is analytic and smooth, else richardson. Steps are h = c·max(1, |x|)
with c = ε^(1/2), ε^(1/3), ε^(1/5) and ε^(5/4) respectively; --eps sets c.

[bold]Verdicts[/bold]: """
    + TOLERANCE_RULE
    + """
Where a stencil crosses a kink (relu(0), abs(0), a tie in max) or leaves the domain, the step
shrinks; a point on a kink is "not differentiable", with its left and right derivatives, and fails
only if the autograd value is not between them.

[bold]Exit codes[/bold]: 0 all passed · 1 a check failed · 2 unusable input · 5 nothing collected.
"""
)


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


def _program_at_point(args, file, var, options: tuple[str, ...] = _OPTIONS):
    """The program and a value for each of its variables, from the command line."""
    from ..api import check_variables

    text, name, assignments = _split_arguments(args or [], file, var or [])
    program, values = _program_and_values(text, name, assignments, options)
    check_variables(program, values)
    return program, values


def _show(result, as_json: bool, to_json, table, exit_if_nonfinite: bool = True) -> None:
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


def _fail(err: Exception) -> None:
    from ..output import console

    console.error(err)
    raise typer.Exit(EXIT_USAGE)


_CHECK_OPTIONS = (
    "json",
    "file",
    "var",
    "wrt",
    "help",
    "method",
    "eps",
    "dtype",
    "rtol",
    "atol",
    "blame",
    "samples",
    "seed",
    "domain",
    "fast",
    "junit-xml",
    "format",
    "order",
    "sweep",
    "python",
    "grad",
    "allow-outside-paths",
)


@app.command(
    "check",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=epilog(_CHECK_EXAMPLES),
)
def check_command(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[EXPR | PATH...] --NAME VALUE",
            help="An expression with a value for each variable (--x 5), or check files and "
            "folders (*.grad.toml, searched recursively). With neither: [tool.gradcli] paths "
            "in pyproject.toml, else the current folder.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option("--file", "-f", metavar="PATH", help="Check a program read from a file."),
    ] = None,
    var: VarOption = None,
    wrt: Annotated[
        str | None, typer.Option("--wrt", metavar="NAMES", help="Check only these variables.")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            metavar="METHOD",
            help="auto (default), forward, central, richardson or complex.",
        ),
    ] = None,
    eps: Annotated[
        float | None,
        typer.Option("--eps", help="The step coefficient c in h = c·max(1, |x|).", min=0.0),
    ] = None,
    dtype: Annotated[
        str | None, typer.Option("--dtype", metavar="DTYPE", help="float64 (default) or float32.")
    ] = None,
    rtol: Annotated[
        float | None, typer.Option("--rtol", help="Relative tolerance.", min=0.0)
    ] = None,
    atol: Annotated[
        float | None, typer.Option("--atol", help="Absolute tolerance.", min=0.0)
    ] = None,
    blame: Annotated[
        bool,
        typer.Option("--blame", help="On a mismatch, find the primitive whose rule is wrong."),
    ] = False,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples", help="Check N random points (sample size of check files).", min=1
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random points.", min=0)] = 0,
    domain: Annotated[
        list[str] | None,
        typer.Option(
            "--domain", metavar="NAME=LO:HI[:log]", help="Where --samples draws a variable from."
        ),
    ] = None,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="Arrays: check one random direction first, every element only on a mismatch.",
        ),
    ] = False,
    order: Annotated[
        int | None,
        typer.Option(
            "--order",
            help="1: the gradient (default); 2: the Hessian, against differences of the gradient.",
            min=1,
            max=2,
        ),
    ] = None,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Plot the reference's error against its step (the V of truncation and "
            "rounding) and the observed order of convergence.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    python: Annotated[
        str | None,
        typer.Option(
            "--python",
            metavar="MODULE:FUNCTION",
            help="Check a Python function of the variables (imported, from the current folder "
            "or the installed packages) instead of an expression.",
        ),
    ] = None,
    grad_function: Annotated[
        str | None,
        typer.Option(
            "--grad",
            metavar="MODULE:FUNCTION",
            help="Its hand-written gradient: a dict by variable name, or a list in the order "
            "of the --NAME options. Without it, --python's function returns (value, gradient).",
        ),
    ] = None,
    junit_xml: Annotated[
        str | None,
        typer.Option("--junit-xml", metavar="FILE", help="Also write a JUnit XML report."),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option("--format", metavar="FORMAT", help="table (default), json or github."),
    ] = None,
    allow_outside_paths: Annotated[
        bool,
        typer.Option(
            "--allow-outside-paths",
            help="Let check files read programs and value files outside their project "
            "(the folder holding pyproject.toml or .git).",
        ),
    ] = False,
) -> None:
    """Check gradients against finite differences: an expression at a point, or check files."""
    from dataclasses import replace

    from ..checking.checkfile import project_settings
    from ..language.source import GradcliError

    settings, problems = project_settings(Path.cwd())
    if problems:
        _fail(problems[0])
    settings.allow_outside_paths = settings.allow_outside_paths or allow_outside_paths
    if eps is not None and eps <= 0:
        _fail(GradcliError("--eps must be greater than 0", hint="for example --eps 1e-6"))
    if as_json and output_format not in (None, "json"):
        _fail(
            GradcliError(
                f"--json and --format {output_format} ask for two outputs on stdout",
                hint="give one of them (--json is --format json)",
            )
        )
    output_format = "json" if as_json else (output_format or settings.format or "table")
    if output_format not in ("table", "json", "github"):
        _fail(GradcliError(f"unknown format {output_format!r}", hint="use table, json or github"))
    overrides = {
        "method": method,
        "eps": eps,
        "dtype": dtype,
        "rtol": rtol,
        "atol": atol,
        "blame": blame or None,
        "fast": fast or None,
        "order": order,
    }
    try:
        if python is not None:
            given = [
                flag
                for flag, value in (("--file", file), ("--domain", domain), ("--samples", samples))
                if value
            ]
            if given:
                raise GradcliError(
                    f"{given[0]} is not for --python: a function is checked at the point given",
                    hint="give its arguments as --NAME VALUE",
                )
            checked = None if wrt is None else tuple(_names(wrt))
            tokens = [*(args or []), *_var_pairs(var)]
            case = _python_case(python, grad_function, tokens, settings, checked)
            if checked is not None:
                case.options = replace(case.options, wrt=checked)
            cases, errors, files = [case], [], 0
        elif grad_function is not None:
            raise GradcliError("--grad is the gradient of a --python function")
        else:
            cases, errors, files = _collect_cases(
                args or [], file, var or [], wrt, domain or [], samples, seed, settings
            )
        if method is not None and method not in (
            "auto",
            "forward",
            "central",
            "richardson",
            "complex",
        ):
            raise GradcliError(
                f"unknown method {method!r}",
                hint="use auto, forward, central, richardson or complex",
            )
        if dtype is not None and dtype not in ("float64", "float32"):
            raise GradcliError(f"unknown dtype {dtype!r}", hint="use float64 or float32")
    except GradcliError as err:
        _fail(err)
    from ..checking.runner import run_case
    from ..output import check_tables, console, documents
    from ..output import reports as report
    from ..output.sweep import sweep_json, sweep_plots

    swept = None
    if sweep:
        try:
            swept = _sweep(cases, files, samples, method, dtype, eps, order)
        except GradcliError as err:
            _fail(err)
    if samples is None and files:  # the project's sample size is for check files' samples
        samples = settings.samples
    results = []
    with check_tables.check_progress(len(cases)) as on_case:
        for case in cases:
            results.append(run_case(case, samples, **overrides))
            on_case(results[-1])
    if output_format == "json":
        document = report.json_document(results, errors, files)
        if swept is not None:
            document["sweep"] = sweep_json(swept)
        documents.json_document(document)
        for err in errors:
            console.error(err)
    elif output_format == "github":
        for line in report.github_annotations(results, errors):
            sys.stdout.write(line + "\n")
        for err in errors:
            console.error(err)
    elif files == 0 and len(results) == 1:
        check_tables.check_details(results[0])
        if swept is not None:
            console.stdout_line()
            sweep_plots(swept)
    else:
        check_tables.check_summary(results, errors, files)
    if junit_xml is not None:
        try:
            report.junit_xml(results, errors, Path(junit_xml))
        except OSError as exc:
            _fail(GradcliError(f"cannot write {junit_xml}: {exc.strerror or exc}"))
    raise typer.Exit(report.exit_code(results, errors))


def _var_pairs(var: list[str] | None) -> list[str]:
    """--var NAME=VALUE as --NAME=VALUE, for variables named like options."""
    return [f"--{item}" for item in var or []]


def _python_case(target: str, grad_target: str | None, tokens: list[str], settings, wrt=None):
    """check --python: the user's function at the point given as --NAME VALUE; the gradient
    needs entries for the `wrt` variables only (all, without it)."""
    from ..checking.checkfile import Case
    from ..checking.pyfunc import program
    from ..evaluation.values import parse_value
    from ..language.source import GradcliError

    positional, pairs = _scan(tokens)
    if positional:
        raise GradcliError(
            f"--python checks a function, not {positional[0]!r}",
            hint="give its arguments as --NAME VALUE: --python mod:f --x 1,2 --y 3",
        )
    at = {}
    for name, raw in pairs:
        if raw is None:
            raise GradcliError(f"--{name} needs a value")
        if name in at:
            raise GradcliError(f"{name} is given more than once")
        at[name] = parse_value(raw, name)
    return Case(target, program(target, grad_target, list(at), wrt), at, options=settings.options)


# What cannot be an expression and reads as a path: /abs/path, ./x, ../x, ~/x, a folder/,
# or a name with a check file's or program's suffix.
_PATH_LIKE = re.compile(r"(?:/|\./|\.\./|~/)\S*|\S*/|[\w./-]+\.(?:toml|grad)")


def _exists(path: str) -> bool:
    """Whether `path` names a file or folder; an expression too long for a path does not."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def _sweep(cases, files: int, samples, method, dtype, eps, order):
    """check --sweep: the error of the reference against the step, at one expression's point."""
    from ..checking.sweep import sweep
    from ..language.source import GradcliError

    if files or len(cases) != 1 or samples is not None or cases[0].sample is not None:
        raise GradcliError(
            "--sweep works on one expression at one point",
            hint='for example gradcli check "sin(x)*y" --x 0.5 --y 2 --sweep',
        )
    if order not in (None, 1):
        raise GradcliError("--sweep shows first derivatives: it does not combine with --order 2")
    case = cases[0]
    wrt = list(case.options.wrt) if case.options.wrt is not None else None
    return sweep(case.program, case.at, method or "central", dtype or "float64", wrt, eps)


def _collect_cases(tokens, file, var, wrt, domains, samples, seed, settings):
    """The cases to run: one for an expression or program, else those of the check files;
    `settings` are the project's ([tool.gradcli]): its paths and the defaults of every case."""
    from dataclasses import replace

    from ..language.source import GradcliError

    positional, pairs = _scan(tokens)
    for token in positional:
        if file is None and not _exists(token) and _PATH_LIKE.fullmatch(token):
            raise GradcliError(
                f"no such file or folder: {token}",
                hint="give check files or folders that exist, or quote an expression",
            )
    looks_like_paths = file is None and all(
        _exists(t) or t.endswith((".toml", ".grad", "/")) for t in positional
    )
    if looks_like_paths:
        for name, _ in pairs:
            mistyped = _unknown_option(name, (), _CHECK_OPTIONS)
            if mistyped is not None:
                raise mistyped
        if pairs or var:
            given = f"--{pairs[0][0]}" if pairs else "--var"
            raise GradcliError(
                f"{given}: variables are given in check files, not on the command line",
                hint="give values in each case's `at` or `sample`, or check an expression",
            )
        if domains:
            raise GradcliError("--domain is for an expression; check files have their own domains")
        from ..checking.checkfile import find, load

        paths, errors = find(tokens, configured=settings.paths)
        cases = []
        for path in paths:
            found, problems = load(
                path,
                base=settings.options,
                allow_outside_paths=settings.allow_outside_paths,
            )
            cases += found
            errors += problems
        if wrt is not None:
            raise GradcliError("--wrt is for an expression; check files have their own wrt")
        return cases, errors, len(paths)
    text, name, assignments = _split_arguments(tokens, file, var)
    try:
        case = _adhoc_case(text, name, assignments, wrt, domains, samples, seed)
        return [replace(case, options=replace(settings.options, wrt=case.options.wrt))], [], 0
    except GradcliError as err:
        if file is None and not assignments and _NAME.fullmatch(text.strip()):
            raise GradcliError(  # `gradcli check samples` in another folder
                f"no file or folder named {text.strip()!r} here, and as an expression its "
                "variable has no value",
                hint=f"run it where {text.strip()} is, or give --var {text.strip()}=VALUE",
            ) from None
        if file is None and not assignments and "/" in text and err.hint is not None:
            err.hint += f"; and no file or folder named {text!r} exists"
        raise


def _adhoc_case(text, name, assignments, wrt, domains, samples, seed):
    from dataclasses import replace

    from ..api import check_variables
    from ..checking.checkfile import Case, Sample, parse_domain
    from ..language.source import GradcliError

    program, at = _program_and_values(text, name, assignments, _CHECK_OPTIONS)
    parsed = {}
    for item in domains:
        var_name, _, spec = item.partition("=")
        if not spec:
            raise GradcliError(
                f"--domain {item!r} needs the form NAME=LO:HI", hint="--domain x=0.1:10"
            )
        if var_name not in program.variables:
            raise GradcliError(
                f"--domain: {var_name} is not a variable of the expression",
                hint="its variables are " + (", ".join(program.variables) or "(none)"),
            )
        try:
            parsed[var_name] = parse_domain(spec)
        except ValueError as exc:
            raise GradcliError(f"--domain {item}: {exc}") from None
    if parsed and samples is None:
        raise GradcliError("--domain needs --samples N: how many points to draw")
    if samples is not None and not parsed:
        raise GradcliError(
            "--samples needs a --domain for at least one variable: where to draw points from",
            hint="for example --samples 100 --domain x=0.1:10",
        )
    sample = None
    if samples is not None:
        sample = Sample(samples, seed, parsed)
        given = set(at) | set(parsed)
        missing = [v for v in program.variables if v not in given]
        if missing:
            raise GradcliError(
                f"--samples: no value or domain for {', '.join(missing)}",
                hint="give each variable a value (--x 1) or a domain (--domain x=LO:HI)",
            )
    else:
        check_variables(program, at)
    case = Case(name if name != "<expr>" else text.strip(), program, at, sample)
    if wrt is not None:
        case = replace(case, options=replace(case.options, wrt=tuple(_names(wrt))))
    return case


def main() -> None:
    """Console-script entry point."""
    if sys.stdout is None:  # started with stdout closed (`gradcli … >&-`)
        sys.stderr.write("error: standard output is closed: gradcli has nowhere to print\n")
        sys.exit(EXIT_USAGE)
    try:
        try:
            app(prog_name="gradcli")
        except SystemExit:
            if streams.pacified(sys.stdout):  # Click's way with a closed pipe: exit 1
                raise BrokenPipeError(errno.EPIPE, "the reader closed the pipe") from None
            raise
        finally:
            sys.stdout.flush()  # a write that fails now is reported, not ignored at exit
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except BrokenPipeError:  # e.g. `gradcli … | head`: the reader left; not an error of ours
        streams.reader_left()
    except UnicodeEncodeError as exc:  # the terminal's encoding, not a bug of ours
        sys.stderr.write(
            f"error: the output encoding ({exc.encoding}) cannot show {exc.object[exc.start]!r}\n"
            "  = use a UTF-8 locale, or set PYTHONIOENCODING=utf-8\n"
        )
        sys.exit(EXIT_USAGE)
    except MemoryError:
        sys.stderr.write(
            "error: out of memory\n  = lower the size of the problem, or the limits "
            "GRADCLI_MAX_NODES and GRADCLI_MAX_ELEMENTS\n"
        )
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # a bug of gradcli's: say so plainly, not with a traceback
        if streams.is_write_error(exc):  # a full disk (`> /dev/full`), not a bug
            streams.write_failed(exc)  # type: ignore[arg-type]
        if os.environ.get("GRADCLI_DEBUG"):
            raise
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  = this is a bug in gradcli, not in your input; please report it with the command "
            "(GRADCLI_DEBUG=1 shows the traceback)\n"
        )
        sys.exit(EXIT_INTERNAL)


from . import inspect_commands as _inspect_commands  # noqa: E402, F401  (registers diff, graph, explain)

for _info in app.registered_commands:  # every command reads its arguments by the same rule
    _info.cls = _Command
