"""The cases of check files: what a `[[case]]` becomes, ready to run.

A Case holds the compiled program, its fixed values (`at`), its Sample (a seed and a Domain per
variable drawn) and what it expects (value, hand-derived gradients), with the check options and
the file and line it came from; CheckFileError is a mistake in a check file, located by file,
line and key. Reading a file into cases is `checkfile.load`, with the located reader of
`reader.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..language.limits import check_elements
from ..language.lower import Lowered
from ..language.program import wrt_names
from ..language.source import GradcliError
from .engine import check_budget
from .verdicts import CheckOptions

OPTION_KEYS = ("method", "rtol", "atol", "eps", "dtype", "fast", "wrt", "order")
CASE_KEYS = ("name", "expr", "program", "at", "sample", "value", "grad", *OPTION_KEYS)


@dataclass(frozen=True)
class Domain:
    low: float
    high: float
    log: bool = False

    def draw(self, rng: np.random.Generator, n: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        if self.log:
            sign = -1.0 if self.high < 0 else 1.0
            lo, hi = sorted((np.log(abs(self.low)), np.log(abs(self.high))))
            return sign * np.exp(rng.uniform(lo, hi, (n, *shape)))
        u = rng.random((n, *shape))
        return self.low * (1 - u) + self.high * u  # high - low may overflow (-1e308:1e308)


@dataclass(frozen=True)
class Sample:
    n: int
    seed: int
    domains: dict[str, Domain]


@dataclass
class Case:
    """One `[[case]]`, ready to run; `file` is None for an expression given on the command line."""

    name: str
    program: Lowered
    at: dict[str, np.ndarray] = field(default_factory=dict)
    sample: Sample | None = None
    value: np.ndarray | None = None
    grad: dict[str, Lowered | np.ndarray] = field(default_factory=dict)
    options: CheckOptions = field(default_factory=CheckOptions)
    file: Path | None = None
    line: int = 1

    def points(
        self, samples: int | None = None, options: CheckOptions | None = None
    ) -> dict[str, np.ndarray]:
        """Every variable with a leading point axis: sampled ones drawn, fixed ones of length 1.

        A variable with both a value and a domain is drawn in the shape of its value. A sample
        whose check (with `options`, else the case's) would hold more than the element limit is
        refused before anything is drawn.
        """
        out = {name: np.asarray(v, dtype=np.float64)[None] for name, v in self.at.items()}
        if self.sample is not None:
            n = samples or self.sample.n
            for name in self.sample.domains:
                shape = np.shape(self.at[name]) if name in self.at else ()
                check_elements((n, *shape), f"{name} at {n:,} sample points")
            options = options or self.options
            names = wrt_names(self.program, options.wrt)
            sizes = [math.prod(np.shape(self.at.get(name, 0.0))) for name in names]
            check_budget(n, sizes, options.order)
            rng = np.random.default_rng(self.sample.seed)
            for name in self.program.variables:  # a fixed order, so that a seed means one set
                domain = self.sample.domains.get(name)
                if domain is not None:
                    shape = np.shape(self.at[name]) if name in self.at else ()
                    out[name] = domain.draw(rng, n, shape)
        return out

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file is not None else self.name


class CheckFileError(GradcliError):
    """A mistake in a check file, with its file, line and key."""

    def __init__(
        self, message: str, file: Path, line: int, key: str | None = None, hint: str | None = None
    ):
        where = f"{file}:{line}" + (f" ({key})" if key else "")
        super().__init__(f"{where}: {message}", hint=hint)
        self.file, self.line, self.key, self.detail = file, line, key, message


def parse_domain(raw: Any) -> Domain:
    """A domain from "lo:hi", "lo:hi:log" or [lo, hi]."""
    log = False
    if isinstance(raw, str):
        parts = raw.split(":")
        if len(parts) == 3 and parts[2].strip() == "log":
            log, parts = True, parts[:2]
        if len(parts) != 2:
            raise ValueError(f"write it as lo:hi or lo:hi:log, not {raw!r}")
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"write it as lo:hi with numbers, not {raw!r}") from None
    elif (
        isinstance(raw, list)
        and len(raw) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
    ):
        low, high = float(raw[0]), float(raw[1])
    else:
        raise ValueError(f'write it as "lo:hi" or [lo, hi], not {raw!r}')
    if not (np.isfinite(low) and np.isfinite(high)) or not low < high:
        raise ValueError(f"it needs finite lo < hi, not {low}:{high}")
    if log and (low <= 0 < high or low < 0 <= high):
        raise ValueError("a log domain must not contain 0")
    return Domain(low, high, log)
