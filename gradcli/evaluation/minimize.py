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

from ..language.lower import Lowered
from ..language.source import GradcliError
from ..transforms.reverse import grad
from .interpreter import evaluate

OPTIMIZERS = ("adam", "gd")
REDUCTIONS = ("mean", "sum")


@dataclass
class TrainResult:
    params: dict[str, np.ndarray]  # where the run stopped
    best: dict[str, np.ndarray]  # the parameters of the lowest loss seen
    best_loss: float
    best_step: int
    history: list[float] = field(default_factory=list)  # the loss before each step
    # "completed", "interrupted", "diverged" (the loss became nan or inf), "overflowed" (a
    # gradient or an update did: no finite step exists) or "stuck" (no parameter ever moved,
    # though the gradient was not 0: the steps are below the parameters' rounding)
    stopped: str = "completed"

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
    if not (math.isfinite(lr) and lr > 0):
        raise GradcliError(f"--lr must be a finite number above 0, not {lr}")
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
    moved = pushed = False  # a parameter changed; a gradient was not 0
    try:
        with np.errstate(all="ignore"):  # what goes wrong is said by `stopped`, not by numpy
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
                updates = [
                    update(name, np.broadcast_to(g, env[name].shape))
                    for name, g in zip(params, gradient, strict=True)
                ]
                if not all(np.all(np.isfinite(u)) for u in updates) or not all(
                    np.all(np.isfinite(g)) for g in gradient
                ):
                    result.stopped = "overflowed"
                    break
                pushed = pushed or any(np.any(np.asarray(g) != 0) for g in gradient)
                for name, u in zip(params, updates, strict=True):
                    new = env[name] - u
                    moved = moved or bool(np.any(new != env[name]))
                    env[name] = new
    except KeyboardInterrupt:
        result.stopped = "interrupted"
    if result.stopped == "completed" and pushed and not moved:
        result.stopped = "stuck"
    result.params = {n: env[n] for n in params}
    if not result.best:  # not a single finite loss
        result.best = {n: np.array(values[n], dtype=np.float64) for n in params}
    return result


def _plain(lr: float) -> Callable[[str, np.ndarray], np.ndarray]:
    return lambda name, g: lr * g


def _adam(
    lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
) -> Callable[[str, np.ndarray], np.ndarray]:
    """Adam (Kingma & Ba, 2015), with its bias corrections.

    The moments are kept in units of a power of two at least as large as every gradient seen
    (exact to rescale), so that g² cannot overflow: at exp(w), w = 700, the gradient 1e304
    made the second moment inf and every step 0. Adam's step m/√v does not depend on that
    unit, and eps is taken in the gradient's own units as usual."""
    first: dict[str, np.ndarray] = {}
    second: dict[str, np.ndarray] = {}
    unit: dict[str, float] = {}
    count: dict[str, int] = {}

    def update(name: str, g: np.ndarray) -> np.ndarray:
        t = count[name] = count.get(name, 0) + 1
        top = float(np.max(np.abs(g), initial=0.0))
        old = unit.get(name, 1.0)
        new = max(old, 2.0 ** math.frexp(top)[1]) if math.isfinite(top) else old
        if new != old:
            first[name] = first.get(name, 0.0) * (old / new)
            second[name] = second.get(name, 0.0) * (old / new) ** 2
        unit[name] = new
        gs = g / new
        first[name] = beta1 * first.get(name, 0.0) + (1 - beta1) * gs
        second[name] = beta2 * second.get(name, 0.0) + (1 - beta2) * gs * gs
        m_hat = first[name] / (1 - beta1**t)
        v_hat = second[name] / (1 - beta2**t)
        return lr * m_hat / (np.sqrt(v_hat) + eps / new)

    return update
