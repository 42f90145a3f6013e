"""What the commands read from their arguments: the program, and a value for each variable.

Kept free of Typer and Rich, so that the quick path of `gradcli eval` (entry.py) and the
full command line share it.
"""

from __future__ import annotations

import re
import sys

NAME = re.compile(r"[^\W\d]\w*")


def scan(tokens: list[str]) -> tuple[list[str], list[tuple[str, str | None]]]:
    """Positional tokens, and (name, value) for each `--name value` or `--name=value`.

    `--name` takes the next token as its value, whatever it looks like (`--x -3`); a `--name`
    at the end has the value None.
    """
    positional: list[str] = []
    pairs: list[tuple[str, str | None]] = []
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
                name, value = body, None
            pairs.append((name, value))
        else:
            positional.append(token)
        i += 1
    return positional, pairs


def split_arguments(
    tokens: list[str], file: str | None, var: list[str]
) -> tuple[str, str, list[tuple[str, str]]]:
    """The program text, its name, and (variable, value) pairs from the command-line tokens."""
    from ..language.source import GradcliError

    positional, scanned = scan(tokens)
    pairs: list[tuple[str, str]] = []
    for name, value in scanned:
        if value is None:
            raise unknown_option(name) or GradcliError(
                f"--{name} needs a value", hint=f"write --{name} VALUE or --{name}=VALUE"
            )
        pairs.append((name, value))
    for item in var:
        if "=" not in item:
            raise GradcliError(f"--var {item!r} needs the form NAME=VALUE")
        pairs.append(tuple(item.split("=", 1)))  # type: ignore[arg-type]
    for name, _ in pairs:
        if not NAME.fullmatch(name):
            raise GradcliError(
                f"--{name} is not an option of gradcli eval, nor a variable name",
                hint="see gradcli eval --help",
            )

    if file is not None:
        if positional:
            raise GradcliError(
                f"give the program with -f or as an argument, not both (got {positional[0]!r})"
            )
        return read(file), ("<stdin>" if file == "-" else file), pairs
    if not positional:
        raise GradcliError("no expression given", hint='gradcli eval "x*y + x/y" --x 5 --y 2')
    if len(positional) > 1:
        raise GradcliError(
            f"expected one expression, got {len(positional)}: {', '.join(map(repr, positional))}",
            hint="quote the expression, and give variables as --NAME VALUE",
        )
    if positional[0] == "-":
        return read("-"), "<stdin>", pairs
    return positional[0], "<expr>", pairs


def read(path: str) -> str:
    from ..language.limits import read_bounded, read_text
    from ..language.source import GradcliError

    if path == "-":
        return read_bounded(sys.stdin, "the program on stdin")
    try:
        return read_text(path, path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise GradcliError(f"cannot read {path}: {reason}") from None


OPTIONS = ("json", "file", "var", "wrt", "help")


def unknown_option(
    name: str, variables: list[str] | tuple[str, ...] = (), options: tuple[str, ...] = OPTIONS
):
    """An error for `--name` if it looks like a mistyped option rather than a variable."""
    import difflib

    from ..language.source import GradcliError

    close = difflib.get_close_matches(name, options, n=1, cutoff=0.7)
    if not close or difflib.get_close_matches(name, variables, n=1):
        return None
    if close[0] == name:  # an option of another command
        return GradcliError(f"this command has no option --{name}", hint="see its --help")
    known = f" (the expression's variables are {', '.join(variables)})" if variables else ""
    return GradcliError(f"unknown option --{name}", hint=f"did you mean --{close[0]}?{known}")


def program_and_values(
    text: str, name: str, assignments: list[tuple[str, str]], options: tuple[str, ...] = OPTIONS
):
    """The compiled program and the values given for its variables (not checked to be all)."""
    from ..api import compile_program
    from ..evaluation.values import parse_value
    from ..language.source import GradcliError

    program = compile_program(text, name)
    values = {}
    for var_name, raw in assignments:
        if var_name in values:
            raise GradcliError(f"{var_name} is given more than once")
        if var_name not in program.variables:
            mistyped = unknown_option(var_name, list(program.variables), options)
            if mistyped is not None:
                raise mistyped
        values[var_name] = parse_value(raw, var_name)
    for var_name in program.variables:
        if var_name not in values and var_name in options:
            raise GradcliError(
                f"the program's variable {var_name} has no value, and --{var_name} is an option "
                "of this command",
                hint=f"give the variable as --var {var_name}=VALUE",
            )
    return program, values


def names(wrt: str | None) -> list[str] | None:
    return [n.strip() for n in wrt.split(",") if n.strip()] if wrt is not None else None


def evaluate_at(text: str, name: str, assignments: list[tuple[str, str]], wrt: str | None):
    from ..api import check_variables, evaluate

    program, values = program_and_values(text, name, assignments)
    check_variables(program, values)
    return evaluate(program, values, names(wrt))
