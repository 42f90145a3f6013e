"""What a check returns: the verdicts, the options a check takes, and its results by variable.

These records are the checker's vocabulary, shared by the engine that fills them, the chunks
that are joined (`merging`), the runner of check files and every output format above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..graph.nodes import Node
from ..language.lower import Lowered
from ..language.source import GradcliError
from .kinks import Directional
from .tolerances import DEFAULT_RTOL

PASS = "pass"
FAIL = "fail"
KINK = "not differentiable"
KINK_FAIL = "not differentiable, not a subgradient"
NONFINITE = "non-finite"
UNCHECKED = "unchecked"
FAILING = frozenset({FAIL, KINK_FAIL, NONFINITE})
_RANK = {NONFINITE: 5, KINK_FAIL: 4, FAIL: 3, UNCHECKED: 2, KINK: 1, PASS: 0}
DTYPES = {"float64": np.float64, "float32": np.float32}


@dataclass(frozen=True)
class CheckOptions:
    method: str = "auto"
    eps: float | None = None  # overrides the step coefficient c in h = c·max(1, |x|)
    dtype: str = "float64"
    rtol: float | None = None
    atol: float = 0.0
    blame: bool = False
    fast: bool = False
    wrt: Sequence[str] | None = None
    order: int = 1  # 2: check the Hessian, as the gradient of each gradient component
    max_elements: int = 1 << 21  # elements of a variable per batched pass, to bound memory

    @property
    def effective_rtol(self) -> float:
        return DEFAULT_RTOL[self.dtype] if self.rtol is None else self.rtol


@dataclass
class Blame:
    """A primitive whose own derivative rule disagrees with a finite difference of its forward."""

    node: Node
    argument: int
    rule: float
    numeric: float
    message: str


@dataclass
class VariableCheck:
    """The check of one variable at every point, as arrays indexed [point, element].

    With --fast, when the directional check agrees, there is one entry per point: the derivative
    along a random unit direction (`direction`).
    """

    name: str
    shape: tuple[int, ...]
    method: str
    autograd: np.ndarray
    reference: np.ndarray
    error: np.ndarray
    step: np.ndarray
    tolerance: np.ndarray
    verdict: np.ndarray  # object array of verdict strings
    how: np.ndarray  # object array: the method actually used for each entry
    left: np.ndarray
    right: np.ndarray
    direction: np.ndarray | None = None  # with --fast: the unit direction of the entries
    forward: np.ndarray | None = None  # the same derivatives by forward mode (autograd only)
    of: str | None = None  # order 2: the gradient component differentiated, as "x" or "x[1]"
    source: str = "autograd"  # or "expected": a hand-derived gradient judged the same way
    messages: dict[tuple[int, int], str] = field(default_factory=dict)
    blame: list[Blame] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(v in FAILING for v in self.verdict.flat)

    def worst(self) -> tuple[int, int]:
        """The entry to show: the gravest verdict, then the largest error relative to tolerance."""
        rank = np.vectorize(_RANK.__getitem__, otypes=[int])(self.verdict).ravel()
        with np.errstate(all="ignore"):
            ratio = (np.abs(self.autograd - self.reference) / self.tolerance).ravel()
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        flat = int(np.lexsort((ratio, rank))[-1])  # by rank, then by ratio
        p, e = divmod(flat, self.verdict.shape[1])
        return p, e

    def counts(self) -> dict[str, int]:
        values, counts = np.unique(self.verdict.astype(str), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts, strict=True)}

    def index(self, element: int) -> tuple[int, ...] | None:
        """The array index of a flat element, or None for a scalar or a direction."""
        if self.direction is not None or not self.shape:
            return None
        return tuple(int(i) for i in np.unravel_index(element, self.shape))


@dataclass
class CheckResult:
    program: Lowered
    points: dict[str, np.ndarray]  # each variable with a leading axis of `count` points
    count: int
    value: np.ndarray  # the value at each point (leading axis: points)
    variables: list[VariableCheck]
    faults: list[GradcliError]
    options: CheckOptions
    symmetry: float | None = None  # order 2: the largest |H - Hᵀ| / max |H| over the points
    symmetric: bool | None = None  # order 2: |H_ij - H_ji| within the two entries' tolerances
    # Where several variables meet a kink: the one-sided derivatives along directions that any
    # gradient there (a hand-derived one too) is judged by, as a whole.
    directional: Directional | None = None
    # The same along directions that move only some variables: (names) -> Directional | None,
    # for a hand-derived gradient of some of the variables.
    directional_for: Callable[[Sequence[str]], Directional | None] | None = None

    @property
    def passed(self) -> bool:
        return not any(v.failed for v in self.variables)

    def point(self, index: int) -> dict[str, np.ndarray]:
        """The coordinates of point `index` (a fixed variable has one value for all points)."""
        return {name: v[index if len(v) > 1 else 0] for name, v in self.points.items()}
