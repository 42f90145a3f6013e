"""The `gradcli` command line: a thin Typer layer over `gradcli.api`.

Data goes to stdout (a Rich table, or one JSON document with --json); messages go to stderr.
Exit codes: 0 success, 1 the value or a gradient is nan or inf, 2 unusable input or usage.

Here the command line is put together: importing the commands' modules registers them on the
app of common.py; --help lists them in the order below; every one reads its arguments by the
same rule (`_Command`); and `main` runs the app for the console script (after entry.py's
quick path).
"""

from __future__ import annotations

import errno
import os
import sys

from typer.core import TyperCommand

from . import check_command, eval_commands, inspect_commands, minimize_command, streams
from .common import EXIT_INTERNAL, EXIT_USAGE, app

# The modules of the commands: importing one registers its commands on the app.
COMMAND_MODULES = (eval_commands, minimize_command, check_command, inspect_commands)

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


# The order in which --help lists the commands (a command not named here comes last).
_ORDER = ("eval", "jacobian", "minimize", "jvp", "hessian", "check", "diff", "graph", "explain")
app.registered_commands.sort(
    key=lambda info: _ORDER.index(info.name) if info.name in _ORDER else len(_ORDER)
)
for _info in app.registered_commands:  # every command reads its arguments by the same rule
    _info.cls = _Command


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
