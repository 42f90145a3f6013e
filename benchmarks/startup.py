"""Start-up: `gradcli eval "x*y + x/y" --x 5 --y 2` against `python -c "import numpy"`.

Both run as subprocesses with their output captured: the `gradcli` console script of this
environment and the same interpreter (sys.executable). The commands are run in turn (a, b, c, d,
a, b, ...) after a warm-up, so machine noise falls on all alike; the figure is the median.
`eval ... --json` and `--help` are reported for information.

gradcli's modules are compiled to bytecode first, as `pip install` compiles them: numpy's are,
and an environment with PYTHONDONTWRITEBYTECODE set (this machine's) would otherwise compile
gradcli's sources again at every start, which no installed copy does.

Target: gradcli eval ≤ 1.5 × python -c "import numpy".
"""

from __future__ import annotations

import compileall
import sys
from pathlib import Path

from common import (
    INFO,
    Result,
    command_timer,
    gradcli_command,
    interleaved,
    median,
    seconds,
    verdict,
)

NAME = "startup"
TARGET = 1.5
EXPR = ["eval", "x*y + x/y", "--x", "5", "--y", "2"]


def run(quick: bool = False) -> list[Result]:
    repeats = 7 if quick else 20
    import gradcli

    compileall.compile_dir(str(Path(gradcli.__file__).parent), quiet=1)
    gradcli = gradcli_command()
    commands = {
        "numpy": [sys.executable, "-c", "import numpy"],
        "eval": [*gradcli, *EXPR],
        "json": [*gradcli, *EXPR, "--json"],
        "help": [*gradcli, "--help"],
        "python": [sys.executable, "-c", "pass"],
    }
    times = interleaved({k: command_timer(v) for k, v in commands.items()}, repeats, warmup=2)
    base = median(times["numpy"])
    results = []
    labels = {
        "eval": ('gradcli eval "x*y + x/y" --x 5 --y 2', True),
        "json": ("gradcli eval ... --json", False),
        "help": ("gradcli --help", False),
        "python": ('python -c "pass"', False),
    }
    for key, (label, targeted) in labels.items():
        t = median(times[key])
        ratio = t / base
        results.append(
            Result(
                NAME,
                label,
                f"{seconds(t)} vs import numpy {seconds(base)} (median of {repeats})",
                ratio,
                f"≤ {TARGET}" if targeted else "",
                verdict(ratio <= TARGET) if targeted else INFO,
            )
        )
    return results
