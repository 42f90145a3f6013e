"""The quick path of `gradcli eval` prints exactly what the full command line prints, and starts
without Typer, Rich or Lark. (Its speed is measured in benchmarks/, not here.)"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from support import cli, strict

from gradcli.cli.entry import quick_eval

_FUNCTIONS = ["sin", "cos", "exp", "tanh", "sqrt", "log", "abs", "relu", "softplus"]


def _expression(rng: random.Random, names: list[str], depth: int = 0) -> str:
    if depth > 3 or rng.random() < 0.3:
        return rng.choice([*names, str(rng.randint(1, 9)), "pi", "2.5"])
    a, b = _expression(rng, names, depth + 1), _expression(rng, names, depth + 1)
    return rng.choice(
        [
            f"{a} + {b}",
            f"{a} - {b}",
            f"{a}*{b}",
            f"{a}/{b}",
            f"({a})^2",
            f"-{a}",
            f"{rng.choice(_FUNCTIONS)}({a})",
            f"t = {a}; t*{b}",
        ]
    )


def _argv(rng: random.Random) -> list[str]:
    names = rng.sample(["x", "y", "z", "w1", "rate"], rng.randint(1, 3))
    argv = ["eval", f"{_expression(rng, names)} + {'*'.join(names)}"]
    for name in names:
        value = f"{rng.uniform(-3, 3):.3g}"
        argv += [f"--{name}={value}"] if rng.random() < 0.3 else [f"--{name}", value]
    if rng.random() < 0.4:
        argv.insert(rng.randint(1, len(argv)), "--json")
    return argv


def test_the_quick_path_prints_what_the_full_command_line_prints():
    rng = random.Random(2026)
    quick = 0
    for _ in range(400):
        argv = _argv(rng)
        fast = quick_eval(argv)
        full = cli(*argv)
        if fast is None:
            continue  # the full command line answers; nothing to compare
        quick += 1
        assert full.exit_code == 0, (argv, full.stderr)
        assert full.stderr == ""
        assert fast == full.stdout, argv
        if "--json" in argv:
            strict(fast)
    assert quick > 200  # most of these calls take the quick path


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "x*y + x/y", "--x", "5"],  # a variable without a value: an error
        ["eval", "x*y", "--x", "5", "--y", "2", "--wrt", "x"],  # an option the path leaves alone
        ["eval", "log(x)", "--x", "-1"],  # nan: a warning and exit 1
        ["eval", "1/x", "--x", "0"],  # inf
        ["eval", "sum(x)", "--x", "1,2,3"],  # an array
        ["eval", "x +", "--x", "1"],  # a syntax error
        ["eval", "--x", "2", "--", "-x^2"],  # the expression after --
        ["eval", "-", "--x", "1"],  # stdin
        ["eval", "-f", "samples/tutorial.grad", "--x", "5", "--y", "2"],  # a file
        ["eval", "x", "--x", "1", "--help"],
        ["eval", "x", "--jsn", "--x", "1"],  # a mistyped option
        ["eval", "x", "--x", "1", "--x", "2"],
        ["eval", "x\ty", "--x", "1", "--y", "2"],  # a tab, which Rich would expand
        ["eval", "-softplus(x)", "--x", "1"],  # Click reads -s -o -f tplus(x)
        ["jacobian", "x", "--x", "1"],
        ["eval"],
    ],
)
def test_anything_else_goes_to_the_full_command_line(argv):
    assert quick_eval(argv) is None


def test_the_console_script_imports_neither_typer_nor_rich_nor_lark():
    code = (
        "import sys; sys.argv = ['gradcli', 'eval', 'x*y + x/y', '--x', '5', '--y', '2'];"
        "from gradcli.cli.entry import main; main();"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'typer', 'click', 'rich', 'lark'};"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[-1] == "[]"
    assert lines[1:4] == ["┌───────┬──────┐", "│ f     │ 12.5 │", "│ ∂f/∂x │  2.5 │"]


def test_the_full_command_line_still_answers_errors_through_the_console_script():
    out = subprocess.run(
        [sys.executable, "-m", "gradcli", "eval", "x +", "--x", "1"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "unexpected end of input" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
