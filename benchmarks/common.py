"""What every benchmark shares: timing, medians, running commands, results.

Timing is `time.perf_counter`; every figure is the median of repeated runs, and two things that
are compared are measured interleaved (a, b, a, b, ...) so that the noise of a shared machine
falls on both alike. Nothing here needs hyperfine.
"""

from __future__ import annotations

import gc
import importlib.util
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASS, MISS, INFO, ERROR = "PASS", "MISS", "info", "ERROR"
SKIPPED = "skipped (not installed)"


@dataclass(frozen=True)
class Result:
    """One row of the table: what was measured, the ratio, the target and the verdict."""

    benchmark: str  # the module's NAME, as given to --only
    name: str
    measured: str  # the numbers behind the row, as text
    ratio: float | None = None  # the quantity compared with the target, if any
    target: str = ""
    status: str = INFO
    note: str = ""


def verdict(ok: bool) -> str:
    return PASS if ok else MISS


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def time_once(fn: Callable[[], Any]) -> float:
    """Seconds taken by one call of `fn`.

    The garbage collector runs before the call, so that garbage left by earlier calls is not
    charged to this one, and stays enabled during it, as it is for anyone using gradcli.
    """
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of `repeats` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    return [time_once(fn) for _ in range(repeats)]


def interleaved(
    fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds of `repeats` calls of each function, taken in turn (a, b, c, a, b, c, ...)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            times[key].append(time_once(fn))
    return times


def interleaved_setup(
    setups: Mapping[str, Callable[[], Callable[[], Any]]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Like `interleaved`, but each round first calls `setups[key]()`, untimed, for the function
    to time (for work that changes its input, such as adding gradient nodes to a graph)."""
    for _ in range(warmup):
        for setup in setups.values():
            setup()()
    times: dict[str, list[float]] = {key: [] for key in setups}
    for _ in range(repeats):
        for key, setup in setups.items():
            fn = setup()
            times[key].append(time_once(fn))
    return times


def run_command(argv: Sequence[str], expect: int | None = 0) -> subprocess.CompletedProcess:
    """Run a command with its output captured; raise if its exit code is not `expect`."""
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if expect is not None and done.returncode != expect:
        raise RuntimeError(
            f"{' '.join(argv)} exited with {done.returncode}, expected {expect}:\n"
            f"{done.stderr.strip()[-2000:]}"
        )
    return done


def command_timer(argv: Sequence[str], expect: int | None = 0) -> Callable[[], Any]:
    """A function that runs the command once (for `repeat` and `interleaved`)."""
    return lambda: run_command(argv, expect)


def gradcli_command() -> list[str]:
    """The `gradcli` console script of the running interpreter's environment."""
    here = Path(sys.executable).parent
    found = shutil.which("gradcli", path=str(here)) or shutil.which("gradcli")
    if found is None:
        raise RuntimeError("no gradcli console script next to python or on PATH")
    return [found]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def seconds(t: float) -> str:
    """A duration with a unit that keeps three significant digits."""
    if t >= 1:
        return f"{t:.3g} s" if t < 100 else f"{t:.0f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} µs"


def skipped(benchmark: str, name: str, package: str, target: str = "") -> Result:
    return Result(benchmark, name, f"needs {package}", None, target, SKIPPED)
