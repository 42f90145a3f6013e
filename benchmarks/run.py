"""The benchmark suite of issue 6: start-up, check throughput, vector throughput, scale, parsing.

    python benchmarks/run.py                      # everything (several minutes)
    python benchmarks/run.py --quick              # fewer repeats
    python benchmarks/run.py --only startup       # one benchmark (repeatable)
    python benchmarks/run.py --markdown benchmarks/RESULTS.md   # also append a results section

Prints one row per measurement: what was measured, the ratio, the target and PASS or MISS
(`info` rows have no target). PyTorch and JAX are optional (`pip install -e '.[bench]'`); without
them their rows say "skipped (not installed)". Each benchmark is a module of this folder with a
`NAME` and a `run(quick)` that returns rows; `common.py` holds the timing helpers. Exit code: 0
when every target is met, 1 when one is missed or a benchmark failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_throughput
import parsing
import scale
import startup
import vector
from common import ERROR, MISS, Result

BENCHMARKS = {m.NAME: m for m in (startup, check_throughput, vector, scale, parsing)}

# The benchmarks measure programs far past the default input limits (a sum of 100,000 terms is
# 364,000 characters): lift them, as `GRADCLI_MAX_SOURCE=0` would, unless the caller set them.
for _limit in ("GRADCLI_MAX_SOURCE", "GRADCLI_MAX_NODES", "GRADCLI_MAX_ELEMENTS"):
    os.environ.setdefault(_limit, "0")
ALIASES = {m.__name__: m.NAME for m in BENCHMARKS.values()}
HEADER = ("benchmark", "ratio", "target", "result", "measured")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' with uncommitted changes' if dirty else ''}" if head else "unknown"


def environment() -> dict[str, str]:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{cpu_model()}, {cores} cores ({usable} usable), {platform.system()} "
        f"{platform.release()}",
        "load": load,
        "software": f"Python {platform.python_version()}, numpy {version('numpy')}, "
        f"torch {version('torch')}, jax {version('jax')}, gradcli {version('gradcli')} "
        f"(commit {commit()})",
    }


def ratio_text(r: Result) -> str:
    return "" if r.ratio is None else f"{r.ratio:.2f}"


def cells(r: Result) -> tuple[str, ...]:
    return (f"{r.benchmark}: {r.name}", ratio_text(r), r.target, r.status, r.measured)


def table(results: list[Result]) -> str:
    rows = [HEADER, *(cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("  ".join("─" * w for w in widths))
    notes = [f"{r.benchmark}: {r.name}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", "notes:", *(f"  {n}" for n in notes)]
    return "\n".join(lines)


def markdown(results: list[Result], env: dict[str, str], command: str, took: float) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("*", "\\*")

    lines = [
        f"## Benchmark suite (issue 6), {env['date']}",
        "",
        f"- Machine: {env['machine']}; load average {env['load']} at the start.",
        f"- Software: {env['software']}.",
        f"- Command: `{command}` ({took:.0f} s).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| --- | ---: | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(cell(c) for c in cells(r)) + " |" for r in results]
    notes = [f"- {r.benchmark}: {r.name}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def append_atomically(path: Path, section: str) -> None:
    """Append `section` to `path` (or create it) by writing a new file and renaming it."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    text = (old.rstrip("\n") + "\n\n" if old.strip() else "") + section
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_here(name: str, quick: bool) -> list[Result]:
    try:
        return BENCHMARKS[name].run(quick)
    except Exception as exc:
        traceback.print_exc()
        return [Result(name, "(benchmark failed)", f"{type(exc).__name__}: {exc}", status=ERROR)]


def run_one(name: str, quick: bool) -> list[Result]:
    """Run one benchmark in a fresh interpreter, so that what another one imported (torch and
    jax add some 200,000 objects for the garbage collector to walk) does not slow it down."""
    print(f"running {name} …", file=sys.stderr, flush=True)
    start = time.perf_counter()
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    done = subprocess.run(argv + ["--quick"] * quick, stdout=subprocess.PIPE, text=True)
    try:
        results = [Result(**row) for row in json.loads(done.stdout.splitlines()[-1])]
    except (IndexError, json.JSONDecodeError, TypeError):
        results = [
            Result(name, "(benchmark failed)", f"exit {done.returncode}; see stderr", status=ERROR)
        ]
    print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run gradcli's benchmark suite and print each ratio against its target."
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        choices=[*BENCHMARKS, *ALIASES],
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="append a results section to FILE"
    )
    parser.add_argument("--child", choices=list(BENCHMARKS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # one benchmark, its rows as JSON on the last line of stdout
        results = run_here(args.child, args.quick)
        print(json.dumps([dataclasses.asdict(r) for r in results]))
        return 0
    chosen = {ALIASES.get(n, n) for n in args.only or BENCHMARKS}
    names = [name for name in BENCHMARKS if name in chosen]
    env = environment()
    print(f"{env['date']} · {env['machine']} · load {env['load']}", file=sys.stderr)
    print(env["software"], file=sys.stderr)
    start = time.perf_counter()
    results = [r for name in names for r in run_one(name, args.quick)]
    took = time.perf_counter() - start
    print(table(results))
    if args.markdown:
        command = "python benchmarks/run.py" + " --quick" * args.quick
        command += "".join(f" --only {n}" for n in args.only or [])
        append_atomically(args.markdown, markdown(results, env, command, took))
        print(f"wrote a results section to {args.markdown}", file=sys.stderr)
    return 1 if any(r.status in (MISS, ERROR) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
