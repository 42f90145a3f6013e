"""The console script: a quick path for the commonest call, and the full command line for the rest.

`gradcli eval "x*y + x/y" --x 5 --y 2`, run hundreds of times a day in CI, spends most of its
time starting up. When the arguments are only an expression, `--NAME VALUE` pairs and perhaps
`--json`, and the answer is finite and scalar, this path evaluates and prints without importing
Typer or Rich. Anything else, an error included, goes through the full command line (app.py),
which prints exactly what it always does; this path writes nothing until it has its answer, so
falling back repeats no output. tests/test_startup.py checks that both paths print the same.
"""

from __future__ import annotations

import os
import re
import sys

# Tokens that make eval's arguments more than EXPR --NAME VALUE … [--json].
# Environment that changes what Rich draws (its width, forced colours): the full command line.
_STYLED = frozenset(
    {"COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE"}
)
_NEGATIVE = re.compile(r"-[\d.][\d.,eE+-]*")
_OPTION_PREFIXES = ("--file", "--var", "--wrt", "--batch", "--help", "--json=", "-f", "-h")


def main() -> None:
    """Console-script entry point."""
    try:
        output = quick_eval(sys.argv[1:])
        if output is not None:
            sys.stdout.write(output)
            sys.stdout.flush()
            return
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except OSError as exc:  # the reader left (`gradcli eval … | head -1`), or a full disk
        from .streams import is_write_error, reader_left, write_failed

        if isinstance(exc, BrokenPipeError):
            reader_left()
        if is_write_error(exc):
            write_failed(exc)
        raise
    from .app import main as full

    full()


def quick_eval(argv: list[str]) -> str | None:
    """What `gradcli eval` prints for these arguments, or None if the full command line must
    answer (other commands and options, stdin, a terminal, errors, warnings, arrays)."""
    if len(argv) < 2 or argv[0] != "eval" or not _plain(argv[1:]):
        return None
    if _STYLED.intersection(os.environ) or "_GRADCLI_COMPLETE" in os.environ:
        return None  # a width, colours forced on, or Typer's shell completion: Rich decides
    as_json = "--json" in argv
    if sys.stdout is None or (not as_json and sys.stdout.isatty()):
        return None  # a terminal gets Rich's colours
    try:
        from .arguments import evaluate_at, split_arguments

        text, name, assignments = split_arguments([a for a in argv[1:] if a != "--json"], None, [])
        if name != "<expr>":
            return None
        result = evaluate_at(text, name, assignments, None)
    except Exception:  # GradcliError, or anything else: the full command line reports it
        return None
    if result.faults or not result.finite:
        return None
    from ..output import documents as output

    text = (
        output.json_text(output.evaluation_json(result)) if as_json else output.scalar_table(result)
    )
    try:
        if text is not None:
            text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return None  # an encoding that cannot show ∂: the full command line deals with it
    return text


def _plain(tokens: list[str]) -> bool:
    for token in tokens:
        if token == "--json":
            continue
        if token in ("-", "--") or token.startswith(_OPTION_PREFIXES):
            return False
        # Click reads -abc as short options a, b, c (-softplus(x) holds -f); a negative number
        # has none of them.
        if token.startswith("-") and not token.startswith("--") and not _NEGATIVE.fullmatch(token):
            return False
    return True
