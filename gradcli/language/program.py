"""A program as the rest of gradcli takes it: compiled from text, with its variables checked.

Every layer above the language asks the same questions of a program (which variables to
differentiate in, whether the given values name exactly its variables) and gives the same
located errors, with a "did you mean" hint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..graph.nodes import collector_paused
from ..primitives import REGISTRY
from .lower import CONSTANTS, Lowered, lower
from .parser import parse
from .source import GradcliError


def compile_program(
    text: str,
    name: str = "<expr>",
    origin: tuple[int, int] = (1, 1),
    frame: str | None = None,
    columns: tuple[int, ...] | None = None,
) -> Lowered:
    """Parse and lower a program; raise `GradcliError` pointing at the problem if it is invalid.

    `origin`, `frame` and `columns` place an expression inside a larger file (see `Source`).
    """
    with collector_paused():
        return lower(parse(text, name, origin, frame, columns))


def wrt_names(program: Lowered, wrt: Sequence[str] | None) -> list[str]:
    """The variables to differentiate in: `wrt`, each checked, or every variable but those
    used only as positions (indices, labels), which have no derivative."""
    only = positions_only(program)
    names = [n for n in program.variables if n not in only] if wrt is None else list(wrt)
    for name in names:
        if name not in program.variables:
            raise unknown_variable(name, program, "--wrt: ")
        if name in only:
            raise GradcliError(
                f"--wrt: {name} is used only as a position (an index or a label), which has no "
                "derivative",
                hint="differentiate in the variables whose values are used",
            )
    return names


def positions_only(program: Lowered) -> set[str]:
    """The variables that reach the output only through inputs that are positions (the
    registry's `positions_from`): the indices of x[k], the labels of one_hot(k, n)."""
    valued = set()
    stack = [program.output]
    while stack:
        node = stack.pop()
        if node in valued:
            continue
        valued.add(node)
        prim = REGISTRY.get(node.op)
        cut = prim.positions_from if prim is not None else None
        stack.extend(node.inputs if cut is None else node.inputs[:cut])
    return {name for name, node in program.variables.items() if node not in valued}


def differentiable(program: Lowered, names: Sequence[str]) -> None:
    """Raise a clear error when there is nothing to differentiate with respect to."""
    if not names:
        what = "the expression has no variables" if not program.variables else "--wrt is empty"
        raise GradcliError(
            f"nothing to differentiate: {what}", hint="a derivative needs a variable, as in x^2"
        )


def check_variables(program: Lowered, given: Any) -> None:
    """Raise a clear error unless `given` names exactly the program's free variables."""
    given = list(given)
    expected = list(program.variables)
    for name in given:
        if name not in program.variables:
            raise unknown_variable(name, program, "")
    missing = [n for n in expected if n not in given]
    called = next((n for n in missing if n in REGISTRY and REGISTRY[n].public), None)
    if called is not None:  # `sin + 1`: most likely a call without its parentheses
        raise GradcliError(
            f"missing value for {called}",
            program.variables[called].span,
            hint=f"{called} is also a function: to call it, write {REGISTRY[called].signature()}; "
            f"as a variable, give --{called}",
            source=program.source,
        )
    if missing:
        listed = ", ".join(f"--{n}" for n in missing)
        raise GradcliError(
            f"missing value{'s' if len(missing) > 1 else ''} for {', '.join(missing)}",
            hint=f"give {listed}; the expression's variables are {_listing(expected)}",
        )


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(none: the expression is constant)"


def unknown_variable(name: str, program: Lowered, what: str) -> GradcliError:
    expected = list(program.variables)
    hint = f"the expression's variables are {_listing(expected)}"
    import difflib  # only for a mistake: not at start-up

    close = difflib.get_close_matches(name, expected, n=1)
    if close:
        hint = f"did you mean {close[0]}? {hint}"
    if name in CONSTANTS:
        hint = f"{name} is the constant {CONSTANTS[name]!r}; to change it, bind it in the program"
    return GradcliError(f"{what}{name} is not a variable of the expression", hint=hint)
