"""`gradcli minimize`: the progress bar with the current loss, the report of the run (the best
parameters and the loss curve drawn in block characters), its JSON, and the curve as a PNG.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.table import Table
from rich.text import Text

from ..evaluation.values import to_json
from . import console
from .console import short


@contextmanager
def training_progress(steps: int, enabled: bool = True):
    """A progress bar with the current loss, on stderr; yields the per-step callback."""
    if not enabled or not console.stderr.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("minimizing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console.stderr, transient=True) as progress:
        task = progress.add_task("minimize", total=steps, loss="…")

        def on_step(step: int, loss: float) -> None:
            progress.update(task, completed=step, loss=f"{loss:.6g}")

        yield on_step


def training_json(result, optimizer: str, lr: float) -> dict[str, Any]:
    return {
        "optimizer": optimizer,
        "lr": lr,
        "steps": max(0, result.steps - 1),
        "stopped": result.stopped,
        "loss": to_json(result.history[-1]) if result.history else None,
        "best_loss": to_json(result.best_loss) if result.history else None,
        "best_step": result.best_step,
        "params": {name: to_json(v) for name, v in result.best.items()},
        "last_params": {name: to_json(v) for name, v in result.params.items()},
        "history": [to_json(v) for v in result.history],
    }


def training_report(result) -> None:
    """The best parameters, how the run ended, and the loss curve."""
    what = {
        "completed": f"{max(0, result.steps - 1)} steps",
        "interrupted": f"interrupted after {max(0, result.steps - 1)} steps",
        "diverged": f"stopped after {max(0, result.steps - 1)} steps: the loss became nan or inf",
        "overflowed": f"stopped after {max(0, result.steps - 1)} steps: the gradient or the "
        "update overflowed (no finite step exists; start closer, or lower --lr)",
        "stuck": f"no parameter moved in {max(0, result.steps - 1)} steps, though the gradient "
        "is not 0: the steps are below the parameters' rounding (raise --lr, or rescale)",
    }[result.stopped]
    heading = Text(f"minimize: {what}", style="bold")
    if result.history:
        heading.append(
            f"; loss {result.history[0]:.6g} → {result.history[-1]:.6g}, "
            f"best {result.best_loss:.6g} at step {result.best_step}"
        )
    console.stdout.print(heading, soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("parameter", style="cyan", no_wrap=True)
    table.add_column("best value", justify="right")
    for name, value in result.best.items():
        table.add_row(name, short(value))
    console.stdout.print(table)
    if len(result.history) > 1:
        for line in loss_curve(result.history):
            console.stdout.print(line, highlight=False, soft_wrap=True)


_BLOCKS = " ▁▂▃▄▅▆▇█"


def loss_curve(history: list[float], width: int = 60, height: int = 10) -> list[str]:
    """The loss against the step, drawn with block characters; on a log scale when the loss
    spans more than two decades and stays positive."""
    losses = np.asarray(history, dtype=float)
    log = losses.min() > 0 and losses.max() / losses.min() > 100
    values = np.log10(losses) if log else losses
    columns = np.array_split(values, min(width, len(values)))
    tops = np.array([c.min() for c in columns])
    low, high = values.min(), values.max()
    span = high - low or 1.0
    levels = np.rint((tops - low) / span * (height * 8 - 1)).astype(int) + 1
    rows = []
    for row in range(height - 1, -1, -1):
        cells = "".join(_BLOCKS[min(8, max(0, lv - row * 8))] for lv in levels)
        label = ""
        if row == height - 1:
            label = f"{(10**high if log else high):.3g}"
        elif row == 0:
            label = f"{(10**low if log else low):.3g}"
        rows.append(f"{label:>10} │{cells}")
    rows.append(f"{'':>10} └{'─' * len(levels)}")
    steps = len(history) - 1
    rows.append(f"{'':>10}  0{'step':^{max(0, len(levels) - 2 - len(str(steps)))}}{steps}")
    if log:
        rows.append(f"{'':>10}  (loss on a log scale)")
    return rows


def loss_plot(history: list[float], path: Path) -> None:
    """The loss curve as a PNG, written atomically (matplotlib, an optional dependency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .reports import write_atomically

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(len(history)), history)
    losses = np.asarray(history)
    if len(losses) and losses.min() > 0 and losses.max() / losses.min() > 100:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("gradcli minimize")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomically(path, buffer.getvalue())
