"""The cases `gradcli check` runs, from its arguments: a Python function's (--python), an
expression's or a program's at a point or over samples, or those of check files and folders.
"""

from __future__ import annotations

import re
from pathlib import Path

from .arguments import NAME as _NAME
from .arguments import names as _names
from .arguments import program_and_values as _program_and_values
from .arguments import scan as _scan
from .arguments import split_arguments as _split_arguments
from .arguments import unknown_option as _unknown_option

# The options of `gradcli check` (check_command.py): a --NAME among them is not a variable.
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


def collect_cases(args, file, var, wrt, domain, samples, seed, settings, python, grad_function):
    """The cases to run, the errors of check files that cannot be used, and how many check
    files were read; raises GradcliError on unusable arguments. `settings` are the project's
    ([tool.gradcli]): its paths and the defaults of every case."""
    from ..language.source import GradcliError

    if python is not None:
        return _python_cases(python, grad_function, args, file, var, wrt, domain, samples, settings)
    if grad_function is not None:
        raise GradcliError("--grad is the gradient of a --python function")
    return _files_or_expression(
        args or [], file, var or [], wrt, domain or [], samples, seed, settings
    )


def _python_cases(python, grad_function, args, file, var, wrt, domain, samples, settings):
    """check --python: one case, the function at the point given (no files, no samples)."""
    from dataclasses import replace

    from ..language.source import GradcliError

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
    return [case], [], 0


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


def _files_or_expression(tokens, file, var, wrt, domains, samples, seed, settings):
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
