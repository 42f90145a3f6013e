"""`gradcli minimize`: fit a program's parameters by gradient descent, with a progress bar, the
report of the run, its JSON, and the loss curve as a PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .arguments import names as _names
from .arguments import program_and_values as _program_and_values
from .arguments import scan as _scan
from .arguments import split_arguments as _split_arguments
from .common import EXIT_CODES, EXIT_NONFINITE, FileOption, VarOption, app, epilog, fail

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
    + EXIT_CODES
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
        fail(err)
    from ..output import documents, training

    if plot is not None:
        try:
            training.loss_plot(result.history, Path(plot))
        except OSError as exc:
            fail(GradcliError(f"cannot write {plot}: {exc.strerror or exc}"))
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
