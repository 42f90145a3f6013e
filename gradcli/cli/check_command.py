"""`gradcli check`: gradients against finite differences, for an expression at a point or over
samples, a Python function (--python), or check files; shown as tables, JSON, GitHub annotations
and a JUnit XML report. The cases come from check_cases.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..checking.tolerances import TOLERANCE_RULE
from .check_cases import collect_cases
from .common import VarOption, app, epilog, fail

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

# The options of `gradcli check`, in the order --help lists them (as in the signature below).
CheckArguments = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[EXPR | PATH...] --NAME VALUE",
        help="An expression with a value for each variable (--x 5), or check files and "
        "folders (*.grad.toml, searched recursively). With neither: [tool.gradcli] paths "
        "in pyproject.toml, else the current folder.",
        show_default=False,
    ),
]
CheckFileOption = Annotated[
    str | None,
    typer.Option("--file", "-f", metavar="PATH", help="Check a program read from a file."),
]
WrtOption = Annotated[
    str | None, typer.Option("--wrt", metavar="NAMES", help="Check only these variables.")
]
MethodOption = Annotated[
    str | None,
    typer.Option(
        "--method",
        metavar="METHOD",
        help="auto (default), forward, central, richardson or complex.",
    ),
]
EpsOption = Annotated[
    float | None,
    typer.Option("--eps", help="The step coefficient c in h = c·max(1, |x|).", min=0.0),
]
DtypeOption = Annotated[
    str | None, typer.Option("--dtype", metavar="DTYPE", help="float64 (default) or float32.")
]
RtolOption = Annotated[float | None, typer.Option("--rtol", help="Relative tolerance.", min=0.0)]
AtolOption = Annotated[float | None, typer.Option("--atol", help="Absolute tolerance.", min=0.0)]
BlameOption = Annotated[
    bool,
    typer.Option("--blame", help="On a mismatch, find the primitive whose rule is wrong."),
]
SamplesOption = Annotated[
    int | None,
    typer.Option("--samples", help="Check N random points (sample size of check files).", min=1),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the random points.", min=0)]
DomainOption = Annotated[
    list[str] | None,
    typer.Option(
        "--domain", metavar="NAME=LO:HI[:log]", help="Where --samples draws a variable from."
    ),
]
FastOption = Annotated[
    bool,
    typer.Option(
        "--fast",
        help="Arrays: check one random direction first, every element only on a mismatch.",
    ),
]
OrderOption = Annotated[
    int | None,
    typer.Option(
        "--order",
        help="1: the gradient (default); 2: the Hessian, against differences of the gradient.",
        min=1,
        max=2,
    ),
]
SweepOption = Annotated[
    bool,
    typer.Option(
        "--sweep",
        help="Plot the reference's error against its step (the V of truncation and "
        "rounding) and the observed order of convergence.",
    ),
]
CheckJsonOption = Annotated[bool, typer.Option("--json", help="The same as --format json.")]
PythonOption = Annotated[
    str | None,
    typer.Option(
        "--python",
        metavar="MODULE:FUNCTION",
        help="Check a Python function of the variables (imported, from the current folder "
        "or the installed packages) instead of an expression.",
    ),
]
GradOption = Annotated[
    str | None,
    typer.Option(
        "--grad",
        metavar="MODULE:FUNCTION",
        help="Its hand-written gradient: a dict by variable name, or a list in the order "
        "of the --NAME options. Without it, --python's function returns (value, gradient).",
    ),
]
JunitXmlOption = Annotated[
    str | None,
    typer.Option("--junit-xml", metavar="FILE", help="Also write a JUnit XML report."),
]
FormatOption = Annotated[
    str | None,
    typer.Option("--format", metavar="FORMAT", help="table (default), json or github."),
]
AllowOutsidePathsOption = Annotated[
    bool,
    typer.Option(
        "--allow-outside-paths",
        help="Let check files read programs and value files outside their project "
        "(the folder holding pyproject.toml or .git).",
    ),
]


@app.command(
    "check",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=epilog(_CHECK_EXAMPLES),
)
def check_command(
    args: CheckArguments = None,
    file: CheckFileOption = None,
    var: VarOption = None,
    wrt: WrtOption = None,
    method: MethodOption = None,
    eps: EpsOption = None,
    dtype: DtypeOption = None,
    rtol: RtolOption = None,
    atol: AtolOption = None,
    blame: BlameOption = False,
    samples: SamplesOption = None,
    seed: SeedOption = 0,
    domain: DomainOption = None,
    fast: FastOption = False,
    order: OrderOption = None,
    sweep: SweepOption = False,
    as_json: CheckJsonOption = False,
    python: PythonOption = None,
    grad_function: GradOption = None,
    junit_xml: JunitXmlOption = None,
    output_format: FormatOption = None,
    allow_outside_paths: AllowOutsidePathsOption = False,
) -> None:
    """Check gradients against finite differences: an expression at a point, or check files."""
    from ..language.source import GradcliError

    settings, output_format = _settings_and_format(eps, as_json, output_format, allow_outside_paths)
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
        cases, errors, files = collect_cases(
            args, file, var, wrt, domain, samples, seed, settings, python, grad_function
        )
        _check_method_and_dtype(method, dtype)
    except GradcliError as err:
        fail(err)
    swept = None
    if sweep:
        try:
            swept = _sweep(cases, files, samples, method, dtype, eps, order)
        except GradcliError as err:
            fail(err)
    if samples is None and files:  # the project's sample size is for check files' samples
        samples = settings.samples
    results = _run(cases, samples, overrides)
    _report(results, errors, files, output_format, swept)
    if junit_xml is not None:
        _write_junit_xml(results, errors, junit_xml)
    from ..output import reports as report

    raise typer.Exit(report.exit_code(results, errors))


def _settings_and_format(eps, as_json: bool, output_format: str | None, allow_outside_paths: bool):
    """The project's settings ([tool.gradcli] in pyproject.toml), with --allow-outside-paths,
    and the output format: table, json or github. Exits 2 on an unusable option."""
    from ..checking.checkfile import project_settings
    from ..language.source import GradcliError

    settings, problems = project_settings(Path.cwd())
    if problems:
        fail(problems[0])
    settings.allow_outside_paths = settings.allow_outside_paths or allow_outside_paths
    if eps is not None and eps <= 0:
        fail(GradcliError("--eps must be greater than 0", hint="for example --eps 1e-6"))
    if as_json and output_format not in (None, "json"):
        fail(
            GradcliError(
                f"--json and --format {output_format} ask for two outputs on stdout",
                hint="give one of them (--json is --format json)",
            )
        )
    output_format = "json" if as_json else (output_format or settings.format or "table")
    if output_format not in ("table", "json", "github"):
        fail(GradcliError(f"unknown format {output_format!r}", hint="use table, json or github"))
    return settings, output_format


def _check_method_and_dtype(method: str | None, dtype: str | None) -> None:
    """--method and --dtype name ones that exist (raises GradcliError)."""
    from ..language.source import GradcliError

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


def _run(cases, samples, overrides) -> list:
    """Each case's result, in order, with a progress bar where stderr is a terminal."""
    from ..checking.runner import run_case
    from ..output import check_tables

    results = []
    with check_tables.check_progress(len(cases)) as on_case:
        for case in cases:
            results.append(run_case(case, samples, **overrides))
            on_case(results[-1])
    return results


def _report(results, errors, files: int, output_format: str, swept) -> None:
    """The results on stdout, and the errors of unusable check files on stderr: one JSON
    document, GitHub annotations, one case in full (with the --sweep plots), or the summary."""
    from ..output import check_tables, console, documents
    from ..output import reports as report
    from ..output.sweep import sweep_json, sweep_plots

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


def _write_junit_xml(results, errors, path: str) -> None:
    """--junit-xml: the report, written atomically; exits 2 where it cannot be written."""
    from ..language.source import GradcliError
    from ..output import reports as report

    try:
        report.junit_xml(results, errors, Path(path))
    except OSError as exc:
        fail(GradcliError(f"cannot write {path}: {exc.strerror or exc}"))
