"""Probes and their entries: the per-probe state while one variable is checked.

A probe is a direction to differentiate along from one point (one element, or a shared unit
direction); its entry holds the autograd value, the reference and its error estimate, the step,
the verdict and why. The engine's passes (probing, confirmation, kinks) read and write them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .verdicts import FAIL, NONFINITE, PASS, UNCHECKED, VariableCheck

# The most steps a ladder (of confirmation or refinement) tries. Each rung divides the step by 8
# or 32 and no step is below the smallest normal number, so a ladder ends long before this; the
# bound makes sure that it ends whatever the arithmetic does.
MAX_RUNGS = 40

# Points on a kink re-evaluated in extended precision, per check (`underflowed_switches`).
MAX_WIDE_ROWS = 256

UNSETTLED = (
    "no two trusted references agree at any step down to the rounding floor: the function "
    "cannot be resolved by differences at this point"
)


@dataclass(frozen=True)
class Probes:
    """Directions to differentiate along: from point `points[k]`, along a one-hot element or `v`."""

    points: np.ndarray  # (P,) index of the base point
    elements: np.ndarray | None  # (P,) flat element moved, for element probes
    direction: np.ndarray | None  # (E,) unit direction shared by all probes

    def select(self, which: np.ndarray) -> Probes:
        elements = None if self.elements is None else self.elements[which]
        return Probes(self.points[which], elements, self.direction)

    def shift(self, sl: slice, m: int, moves: np.ndarray, size: int) -> np.ndarray:
        """The shifts for the probes in `sl`, at `m` stencil moves each: (rows, size)."""
        if self.direction is not None:
            return moves[:, None] * self.direction[None, :]
        shift = np.zeros((len(moves), size), dtype=moves.dtype)
        shift[np.arange(len(moves)), np.repeat(self.elements[sl], m)] = moves
        return shift


class Entries:
    """Per-probe arrays while a variable is being checked."""

    def __init__(self, autograd, reference, error, step, n, method):
        self.autograd, self.reference, self.error, self.step = autograd, reference, error, step
        self.how = labels(n, method)
        self.verdict = labels(n, PASS)
        self.left = np.full(n, np.nan)
        self.right = np.full(n, np.nan)
        self.edge = np.zeros(n, bool)  # reference from one side only, at a domain edge or kink
        self.rounding = np.zeros(n)  # ε·s: the rounding scale of the chain-rule terms
        self.trusted = np.ones(n, bool)  # the reference's error estimate can be believed
        # At a kink: the tolerance the value was judged with between the one-sided derivatives
        # (the reference, their midpoint, has an error of half their gap: no tolerance of it).
        self.kink_tolerance = np.full(n, np.nan)
        self.notes: dict[int, str] = {}

    def take(self, idx: np.ndarray, other: Entries) -> None:
        """Replace the probes at `idx` by those of `other`, computed for exactly these probes."""
        for name in ("autograd", "reference", "error", "step", "how", "verdict", "left", "right"):
            getattr(self, name)[idx] = getattr(other, name)
        self.edge[idx], self.rounding[idx] = other.edge, other.rounding
        self.trusted[idx] = other.trusted
        self.kink_tolerance[idx] = other.kink_tolerance
        for k in idx:
            self.notes.pop(int(k), None)
        self.notes |= {int(idx[k]): note for k, note in other.notes.items()}

    def judge(self, tolerance: np.ndarray, value_finite: np.ndarray) -> None:
        """Verdicts from the tolerance; nan or inf in the value or the gradient is its own."""
        plain = self.verdict == PASS
        with np.errstate(all="ignore"):
            ok = np.abs(self.autograd - self.reference) <= tolerance
        self.verdict[plain & ~ok] = FAIL
        self.verdict[plain & ~ok & self.edge] = UNCHECKED
        self.verdict[plain & ~np.isfinite(self.reference)] = UNCHECKED
        # A bound of nan or inf judges nothing: an infinite error estimate (a difference of
        # 1e-291 lost in a sum of 1e273) passed every autograd value.
        self.verdict[plain & ~np.isfinite(tolerance)] = UNCHECKED
        self.verdict[~np.isfinite(self.autograd) | ~value_finite] = NONFINITE

    def as_check(self, var, shape, method, tolerance, count, columns) -> VariableCheck:
        def grid(a):
            return np.asarray(a).reshape(count, columns)

        return VariableCheck(
            var,
            tuple(shape),
            method,
            *(grid(a) for a in (self.autograd, self.reference, self.error, self.step, tolerance)),
            *(grid(a) for a in (self.verdict, self.how, self.left, self.right)),
        )


def labels(n: int, label: str) -> np.ndarray:
    """An object array of one string: np.full would store a new copy of it in every element
    (56 bytes each, a third of a large check's memory)."""
    out = np.empty(n, dtype=object)
    out.fill(label)
    return out


def subset(entries: Entries, which: np.ndarray) -> Entries:
    """The probes `which` of `entries`, as entries of their own."""
    out = Entries(
        entries.autograd[which],
        entries.reference[which],
        entries.error[which],
        entries.step[which],
        len(which),
        "",
    )
    for name in (
        "how",
        "verdict",
        "left",
        "right",
        "edge",
        "rounding",
        "trusted",
        "kink_tolerance",
    ):
        setattr(out, name, getattr(entries, name)[which])
    position = {int(k): i for i, k in enumerate(which)}
    out.notes = {position[k]: v for k, v in entries.notes.items() if k in position}
    return out


def jump_note(left: float, right: float, here: float) -> str:
    """Words for a jump: a step between two sides, or a single point off the value around it."""
    if abs(left - right) <= 1e-9 * abs(here - (left + right) / 2):
        return (
            f"the value breaks at this single point: it is {here:.17g} here and "
            f"{left:.17g} on both sides"
        )
    return f"the value jumps here, from {left:.17g} on the left to {right:.17g} on the right"


def believable(reference: np.ndarray, error: np.ndarray, rounding: np.ndarray) -> np.ndarray:
    """Whether an error estimate can be believed: the truncation error has converged (small
    next to the reference) or the estimate is at the level of rounding (a derivative of 0).
    Out of the asymptotic regime, references at a step too large can agree with each other,
    each with a large error estimate, and must not confirm a failure (a failure also needs a
    second reference that rules the autograd value out: see `_settle`)."""
    with np.errstate(all="ignore"):
        return (error <= 0.1 * np.abs(reference)) | (error <= 4 * rounding)
