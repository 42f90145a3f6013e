"""Check throughput: `gradcli check` on 1,000 generated scalar cases against torch's gradcheck.

The cases come from `exprgen` (seeded): two to four variables, random compositions of + - * /
and sin cos exp log tanh sqrt, each with an `at` point. gradcli is timed as the whole command,
`gradcli check FILE` with its default settings, start-up included; it must exit 0. PyTorch is
timed in-process on the same 1,000 functions, built as closures from the same trees, with
float64 inputs that require grad: `torch.autograd.gradcheck(f, inputs)` with its defaults, for
all of them (the import of torch is excluded, and reported apart). JAX's
`jax.test_util.check_grads(f, args, order=1, modes=["rev"])` is reported beside it: eager (no
jit), float64 (jax_enable_x64), its default eps and tolerances.

Target: gradcli ≤ 0.5 × torch.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import exprgen
from common import (
    ERROR,
    INFO,
    Result,
    command_timer,
    gradcli_command,
    installed,
    interleaved,
    median,
    run_command,
    seconds,
    skipped,
    verdict,
)

NAME = "check"
COUNT = 1000
SEED = 6
TARGET = 0.5


def _torch_setup(cases):
    import torch

    ops = {name: getattr(torch, name) for name in exprgen.FUNCTIONS}
    ops["const"] = lambda c: torch.tensor(c, dtype=torch.float64)
    functions = [exprgen.build(c.tree, c.variables, ops) for c in cases]
    inputs = [
        tuple(
            torch.tensor(c.point[n], dtype=torch.float64, requires_grad=True) for n in c.variables
        )
        for c in cases
    ]
    failures: list[str] = []

    def run() -> None:
        failures.clear()
        for case, f, args in zip(cases, functions, inputs, strict=True):
            try:
                torch.autograd.gradcheck(f, args)
            except Exception:  # GradcheckError, or anything the function raised
                failures.append(case.name)

    return run, failures, functions, inputs


def _jax_setup(cases):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.test_util import check_grads

    ops = {name: getattr(jnp, name) for name in exprgen.FUNCTIONS}
    ops["const"] = float
    functions = [exprgen.build(c.tree, c.variables, ops) for c in cases]
    inputs = [tuple(jnp.asarray(c.point[n], dtype=jnp.float64) for n in c.variables) for c in cases]
    failures: list[int] = []

    def run() -> None:
        failures.clear()
        for i, (f, args) in enumerate(zip(functions, inputs, strict=True)):
            try:
                check_grads(f, args, order=1, modes=["rev"])
            except AssertionError:
                failures.append(i)

    def recheck(eps: float) -> int:
        """How many of the failures still fail with a smaller finite-difference step."""
        still = 0
        for i in failures:
            try:
                check_grads(functions[i], inputs[i], order=1, modes=["rev"], eps=eps)
            except AssertionError:
                still += 1
        return still

    return run, failures, recheck


def _import_seconds(module: str, repeats: int) -> float:
    """Median wall time of `python -c "import MODULE"` minus that of `python -c "pass"`."""
    times = interleaved(
        {
            "import": command_timer([sys.executable, "-c", f"import {module}"]),
            "bare": command_timer([sys.executable, "-c", "pass"]),
        },
        repeats,
    )
    return median(times["import"]) - median(times["bare"])


def _check_json(command: list[str], path: Path) -> dict:
    done = run_command([*command, "check", str(path), "--json"], expect=None)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"error": f"no JSON from gradcli check --json (exit {done.returncode})"}


def _failing(document: dict) -> list[str]:
    """Each record of `gradcli check --json` that did not pass, as one line."""
    if "error" in document:
        return [document["error"]]
    return [
        f"{r.get('case')} ∂/∂{r.get('variable')}: {r.get('verdict')} ({r.get('message')})"
        for r in document.get("records", [])
        if not r.get("passed")
    ]


def _agreement(cases, torch_functions, torch_inputs) -> tuple[int, float]:
    """gradcli's gradients (Python API) against torch autograd: cases within 1e-9, worst error."""
    import torch

    from gradcli.api import evaluate

    agree, worst = 0, 0.0
    for case, f, args in zip(cases, torch_functions, torch_inputs, strict=True):
        reference = torch.autograd.grad(f(*args), args)
        ours = evaluate(case.text, case.point).gradient
        error = max(
            abs(float(ours[n]) - float(r)) / max(1.0, abs(float(r)))
            for n, r in zip(case.variables, reference, strict=True)
        )
        worst = max(worst, error)
        agree += error <= 1e-9
    return agree, worst


def run(quick: bool = False) -> list[Result]:
    repeats = 1 if quick else 3
    cases = exprgen.cases(COUNT, SEED)
    command = gradcli_command()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.grad.toml"
        path.write_text(exprgen.check_file(cases), encoding="utf-8")
        return _measure(cases, command, path, repeats)


def _measure(cases, command: list[str], path: Path, repeats: int) -> list[Result]:
    check = [*command, "check", str(path)]
    first = run_command(check, expect=None)  # also a warm-up
    document = _check_json(command, path)
    if first.returncode != 0:
        failing = _failing(document)
        for line in failing:
            print(f"  not passing: {line}", file=sys.stderr)
        return [
            Result(
                NAME,
                "gradcli check exit code",
                f"exit {first.returncode}; {len(failing)} records not passing: "
                + "; ".join(failing[:5]),
                status=ERROR,
                note="every generated case should pass (list on stderr)",
            )
        ]
    summary = document.get("summary", {})

    runners = {"gradcli": command_timer(check), "gradcli --json": command_timer([*check, "--json"])}
    results: list[Result] = []
    import_torch = in_process_import = 0.0
    have_torch, have_jax = installed("torch"), installed("jax")
    if have_torch:
        import_torch = _import_seconds("torch", max(repeats, 3))
        start = time.perf_counter()
        import torch

        in_process_import = time.perf_counter() - start
        runners["torch"], torch_failures, functions, inputs = _torch_setup(cases)
    if have_jax:
        runners["jax"], jax_failures, recheck = _jax_setup(cases)
    times = interleaved(runners, repeats, warmup=1)
    g = median(times["gradcli"])
    gradcli_text = (
        f"gradcli check {seconds(g)} (whole command; "
        f"{summary.get('passed', '?')}/{summary.get('cases', '?')} passed, "
        f"{summary.get('seconds', float('nan')):.2f} s by its own summary)"
    )

    if have_torch:
        t = median(times["torch"])
        ratio = g / t
        note = f"torch gradcheck failures: {len(torch_failures)}"
        if torch_failures:
            note += f" ({', '.join(torch_failures[:10])})"
        results.append(
            Result(
                NAME,
                f"check {COUNT:,} cases vs torch gradcheck",
                f"{gradcli_text} vs torch gradcheck {seconds(t)} "
                f"(in-process, {torch.get_num_threads()} threads)",
                ratio,
                f"≤ {TARGET}",
                verdict(ratio <= TARGET),
                note,
            )
        )
        results.append(
            Result(
                NAME,
                "import torch (excluded above)",
                f"{seconds(import_torch)} (python -c 'import torch' minus python -c 'pass'); "
                f"{seconds(in_process_import)} in this process",
                g / (t + import_torch),
                note="ratio: gradcli / (torch gradcheck + import torch)",
            )
        )
        agree, worst = _agreement(cases, functions, inputs)
        results.append(
            Result(
                NAME,
                "gradients: gradcli API vs torch autograd",
                f"{agree}/{COUNT} cases agree within 1e-9 (relative); worst {worst:.2g}",
                status=INFO if agree == COUNT else ERROR,
            )
        )
    else:
        results.append(Result(NAME, f"gradcli check, {COUNT} cases", gradcli_text))
        results.append(
            skipped(NAME, f"check {COUNT:,} cases vs torch gradcheck", "torch", f"≤ {TARGET}")
        )

    results.append(
        Result(
            NAME,
            "gradcli check --json (no table)",
            f"{seconds(median(times['gradcli --json']))} vs {seconds(g)} with the table",
            median(times["gradcli --json"]) / g,
            note="ratio: gradcli check --json / gradcli check",
        )
    )
    if have_jax:
        j = median(times["jax"])
        note = f"ratio: gradcli / jax. check_grads failures at its default eps: {len(jax_failures)}"
        if jax_failures:
            note += f"; still failing with eps=1e-6: {recheck(1e-6)}"
        results.append(
            Result(
                NAME,
                "jax check_grads(order=1, modes=['rev'])",
                f"jax {seconds(j)} (eager, no jit, float64, in-process) vs gradcli {seconds(g)}",
                g / j,
                note=note,
            )
        )
    else:
        results.append(skipped(NAME, "jax check_grads(order=1, modes=['rev'])", "jax"))
    return results
