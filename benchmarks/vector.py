"""Vector throughput: value and gradient of sum(x*y + x/y) over 10^6-element float64 arrays.

Compared, in-process and in turn (one call of each per round, median over the rounds), each
against numpy timed in the same rounds; gradcli's rounds run before torch and jax are imported:

- numpy by hand: value = np.sum(x*y + x/y), gx = y + 1/y, gy = x - x/y**2;
- gradcli's Python API, `evaluate(program, {"x": x, "y": y})` with the program compiled once
  (`compile_program`), and, for information, `evaluate(text, ...)` from the text every time;
- torch eager: tensors sharing the arrays' memory (torch.from_numpy) with requires_grad, the
  sum, backward();
- jax.jit(jax.value_and_grad(f, argnums=(0, 1))) in float64, after a warm-up call that compiles
  it, on arrays already on the device, waiting for the result (block_until_ready).

Every result is compared with numpy's (np.allclose) before anything is timed.

Target: gradcli (compiled program) ≤ 1.0 × numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from common import ERROR, INFO, Result, installed, interleaved, median, seconds, skipped, verdict

NAME = "vector"
SIZE = 1_000_000
TARGET = 1.0
TEXT = "sum(x*y + x/y)"


def _numpy(x: np.ndarray, y: np.ndarray):
    return np.sum(x * y + x / y), y + 1 / y, x - x / y**2


def _gradcli(x, y) -> tuple[Callable, Callable]:
    from gradcli.api import compile_program, evaluate

    program = compile_program(TEXT)

    def compiled():
        r = evaluate(program, {"x": x, "y": y})
        return r.value, r.gradient["x"], r.gradient["y"]

    def from_text():
        r = evaluate(TEXT, {"x": x, "y": y})
        return r.value, r.gradient["x"], r.gradient["y"]

    return compiled, from_text


def _torch(x, y) -> tuple[Callable, str]:
    import torch

    def run():
        xt = torch.from_numpy(x).requires_grad_()
        yt = torch.from_numpy(y).requires_grad_()
        value = (xt * yt + xt / yt).sum()
        value.backward()
        return value.detach().numpy(), xt.grad.numpy(), yt.grad.numpy()

    return run, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def _jax(x, y) -> tuple[Callable, str]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    f = jax.jit(jax.value_and_grad(lambda a, b: jnp.sum(a * b + a / b), argnums=(0, 1)))
    xj, yj = jax.device_put(jnp.asarray(x)), jax.device_put(jnp.asarray(y))

    def run():
        value, (gx, gy) = jax.block_until_ready(f(xj, yj))
        return value, gx, gy

    run()  # compile
    return run, f"jax {jax.__version__}, jit, {xj.dtype}, {jax.devices()[0].platform}"


def _same(a, b) -> bool:
    return all(np.allclose(np.asarray(p), np.asarray(q)) for p, q in zip(a, b, strict=True))


def run(quick: bool = False) -> list[Result]:
    repeats = 5 if quick else 15
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SIZE)
    y = rng.uniform(0.5, 2.0, SIZE) * rng.choice([-1.0, 1.0], SIZE)  # |y| ≥ 0.5
    reference = _numpy(x, y)
    # Two rounds, each against numpy in the same round: gradcli first, before torch and jax are
    # imported, since their thread pools keep running after their calls (torch's OpenMP threads
    # spin) and would take the cores from whatever runs next in this process.
    ours: dict[str, Callable] = {"numpy": lambda: _numpy(x, y)}
    ours["gradcli"], ours["gradcli from text"] = _gradcli(x, y)
    wrong = [name for name, fn in ours.items() if not _same(fn(), reference)]
    times = interleaved(ours, repeats, warmup=1)
    bases = {key: median(times["numpy"]) for key in ours}
    about = {"numpy": f"numpy {np.__version__}"}
    theirs: dict[str, Callable] = {"numpy": lambda: _numpy(x, y)}
    if installed("torch"):
        theirs["torch"], about["torch"] = _torch(x, y)
    if installed("jax"):
        theirs["jax"], about["jax"] = _jax(x, y)
    wrong += [name for name, fn in theirs.items() if not _same(fn(), reference)]
    other = interleaved(theirs, repeats, warmup=1)
    bases |= {key: median(other["numpy"]) for key in theirs if key != "numpy"}
    times |= {key: value for key, value in other.items() if key != "numpy"}
    runners = {**ours, **theirs}
    results = []
    rows = {
        "gradcli": "gradcli evaluate, compiled once",
        "gradcli from text": "gradcli evaluate from text",
        "torch": "torch eager (backward)",
        "jax": "jax.jit(value_and_grad)",
    }
    for key, label in rows.items():
        if key not in runners:
            results.append(skipped(NAME, label, key))
            continue
        t = median(times[key])
        base = bases[key]
        ratio = t / base
        targeted = key == "gradcli"
        status = verdict(ratio <= TARGET) if targeted else INFO
        if key in wrong:
            status = ERROR
        results.append(
            Result(
                NAME,
                label,
                f"{seconds(t)} vs numpy {seconds(base)} (10^6 float64, median of {repeats})",
                ratio,
                f"≤ {TARGET}" if targeted else "",
                status,
                ("results differ from numpy's; " if key in wrong else "same numbers as numpy; ")
                + about.get(key, about["numpy"]),
            )
        )
    return results
