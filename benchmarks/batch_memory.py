"""Peak memory and time of `gradcli eval --batch` against the number of lines.

Streaming means the peak resident memory stays flat as the input grows: this runs the installed
command on generated JSON Lines of increasing length and prints time and peak RSS for each, and
their ratio to the smallest run.

    python benchmarks/batch_memory.py [--lines 100000 1000000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(lines: int, folder: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one run over `lines` generated points."""
    path = folder / f"points-{lines}.jsonl"
    rng = random.Random(lines)
    with path.open("w") as out:
        for _ in range(lines):
            out.write(f'{{"x": {rng.uniform(1, 5)!r}, "y": {rng.uniform(1, 5)!r}}}\n')
    command = shutil.which("gradcli", path=str(Path(sys.executable).parent)) or "gradcli"
    script = (
        "import resource, subprocess, sys\n"
        f"subprocess.run([{command!r}, 'eval', 'x*y + x/y', '--batch', {str(path)!r}],"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, int(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    counts = parser.parse_args().lines
    with tempfile.TemporaryDirectory() as folder:
        results = [(n, *measure(n, Path(folder))) for n in counts]
    base_seconds, base_rss = results[0][1], results[0][2]
    print(f"{'lines':>10} {'seconds':>9} {'peak RSS MiB':>13} {'time ratio':>11} {'RSS ratio':>10}")
    for n, seconds, rss in results:
        print(
            f"{n:>10} {seconds:>9.2f} {rss / 1024:>13.1f} {seconds / base_seconds:>11.2f} "
            f"{rss / base_rss:>10.2f}"
        )


if __name__ == "__main__":
    main()
