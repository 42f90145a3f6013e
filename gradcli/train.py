"""Training, as in the tutorials: gradient descent on a program's loss, plain or with Adam.

The loss is the program's value (its mean over the elements, or its sum, when it is an array of
per-sample losses). Its gradient with respect to the parameters is built once, as a graph, and
evaluated at every step: one numpy pass per step, whatever the size of the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .autodiff import grad
from .compute import evaluate
from .lower import Lowered
from .source import GradcliError

OPTIMIZERS = ("adam", "gd")
REDUCTIONS = ("mean", "sum")


@dataclass
class TrainResult:
    params: dict[str, np.ndarray]  # where the run stopped
    best: dict[str, np.ndarray]  # the parameters of the lowest loss seen
    best_loss: float
    best_step: int
    history: list[float] = field(default_factory=list)  # the loss before each step
    stopped: str = "completed"  # "completed", "interrupted" or "diverged"

    @property
    def steps(self) -> int:
        return len(self.history)


def minimize(
    program: Lowered,
    params: Sequence[str],
    values: Mapping[str, Any],
    steps: int,
    lr: float,
    optimizer: str = "adam",
    reduce: str = "mean",
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Run `steps` updates of the `params` (starting from their entries in `values`)."""
    if optimizer not in OPTIMIZERS:
        raise GradcliError(f"unknown optimizer {optimizer!r}", hint="use adam or gd")
    if reduce not in REDUCTIONS:
        raise GradcliError(f"unknown reduction {reduce!r}", hint="use mean or sum")
    for name in params:
        if name not in program.variables:
            known = ", ".join(program.variables) or "(none)"
            raise GradcliError(
                f"--params: {name} is not a variable of the program", hint=f"they are {known}"
            )
    env = {name: np.array(v, dtype=np.float64) for name, v in values.items()}
    shapes = {name: a.shape for name, a in env.items()}
    loss = program.output
    try:
        loss = program.graph.apply(reduce, loss, attrs=(None,))
        grads = grad(loss, [program.variables[n] for n in params], shapes)
    except GradcliError as err:
        raise err.with_source(program.source) from None
    update = _adam(lr) if optimizer == "adam" else _plain(lr)
    result = TrainResult({}, {}, math.inf, -1)
    try:
        for step in range(steps + 1):
            (current, *gradient), _, _ = evaluate([loss, *grads], env)
            current = float(current)
            if not math.isfinite(current):
                result.stopped = "diverged"
                break
            result.history.append(current)
            if current < result.best_loss:
                result.best_loss, result.best_step = current, step
                result.best = {n: env[n].copy() for n in params}
            if on_step is not None:
                on_step(step, current)
            if step == steps:
                break
            for name, g in zip(params, gradient, strict=True):
                env[name] = env[name] - update(name, np.broadcast_to(g, env[name].shape))
    except KeyboardInterrupt:
        result.stopped = "interrupted"
    result.params = {n: env[n] for n in params}
    if not result.best:  # not a single finite loss
        result.best = {n: np.array(values[n], dtype=np.float64) for n in params}
    return result


def _plain(lr: float) -> Callable[[str, np.ndarray], np.ndarray]:
    return lambda name, g: lr * g


def _adam(
    lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
) -> Callable[[str, np.ndarray], np.ndarray]:
    """Adam (Kingma & Ba, 2015), with its bias corrections."""
    first: dict[str, np.ndarray] = {}
    second: dict[str, np.ndarray] = {}
    count: dict[str, int] = {}

    def update(name: str, g: np.ndarray) -> np.ndarray:
        t = count[name] = count.get(name, 0) + 1
        first[name] = beta1 * first.get(name, 0.0) + (1 - beta1) * g
        second[name] = beta2 * second.get(name, 0.0) + (1 - beta2) * g * g
        m_hat = first[name] / (1 - beta1**t)
        v_hat = second[name] / (1 - beta2**t)
        return lr * m_hat / (np.sqrt(v_hat) + eps)

    return update
