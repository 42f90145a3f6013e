"""Rule mutation: a wrong derivative rule, of any primitive, in either mode, is caught.

Each mutant of `mutants.all_mutants()` (except the EQUIVALENT ones, which cannot change any
derivative) is injected into the registry, and

- (programs) `gradcli.api.check` runs on `programs_for(its primitive)` at their points;
- (samples) the bundled check files run in-process, as `gradcli check samples/` runs them, but
  only the cases that differentiate a node of the primitive (their program's nodes, and at order
  2 also the nodes of its gradient), stopping at the first failure.

A mutant is caught at a program and point (or a case) when the check fails there, the same check
passes with the right rules, and the mutant really changes a derivative there (`mutants.change`:
what the wrong rule computes, not what the checker says). Every check runs under a wall-clock
bound (SIGALRM), so that a hang is a failure naming the mutant and the program.

KNOWN_SURVIVORS lists the mutants that are not caught today, per test; each is an xfail (not
strict), to be removed from the set as the checker or the samples are fixed.
"""

from __future__ import annotations

import json
import time
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pytest
from mutants import (
    EDGES,
    EQUIVALENT,
    INPUTS,
    NO_EDGE,
    NO_RULES,
    Mutant,
    Point,
    all_mutants,
    change,
    change_at,
    elementwise,
    in_scope,
    inject,
    mutants_of,
    programs_for,
    writable,
)
from timer import Overran, time_limit

from gradcli import api
from gradcli.api import wrt_names
from gradcli.checking.checkfile import Case, find, load, project_settings
from gradcli.checking.runner import CaseResult, run_case
from gradcli.graph.nodes import toposort
from gradcli.primitives import REGISTRY
from gradcli.transforms.reverse import grad

# The mutants that are not caught today, as "programs:<id>" (test_programs_catch) and
# "samples:<id>" (test_samples_catch). Remove an entry when its mutant is caught. Measured on
# 2026-12-01: every programs mutant is caught, and since samples/special_points.grad.toml (and the
# fixed-point cases beside the sampled ones in arrays and hessians) every samples mutant too.
# None today: the eigenvectors' and singular vectors' kink mutants, wrong only where values tie,
# are caught by the samples' cases at the identity.
KNOWN_SURVIVORS: frozenset[str] = frozenset()

SECONDS = 20.0  # the bound on one check (one program at one point, or one case)
ROOT = Path(__file__).resolve().parent.parent
MUTANTS = [m for m in all_mutants() if m.id not in EQUIVALENT]


def _params(test: str) -> list:
    """One parameter per mutant, an xfail where the mutant is a known survivor of `test`."""
    out = []
    for m in MUTANTS:
        marks = []
        if f"{test}:{m.id}" in KNOWN_SURVIVORS:
            reason = f"known survivor of the {test}: {m.description}"
            marks.append(pytest.mark.xfail(strict=False, reason=reason))
        out.append(pytest.param(m, id=m.id, marks=marks))
    return out


def _show(point: Point) -> str:
    return json.dumps(point)


# --- (a) the programs of each primitive -----------------------------------------------------


@cache
def _passes_unmutated(text: str, point: str) -> bool:
    with time_limit(SECONDS, f"unmutated {text} at {point}"):
        return api.check(text, json.loads(point)).passed


@pytest.mark.parametrize("name", writable())
def test_programs_pass_unmutated(name: str) -> None:
    """With the right rules, every program of `programs_for` passes at every point: else a
    failure under a mutant there would prove nothing."""
    failing = [
        f"{text} at {_show(point)}"
        for text, points in programs_for(name)
        for point in points
        if not _passes_unmutated(text, _show(point))
    ]
    assert not failing, f"{name}: the checker fails with the right rules at " + "; ".join(failing)


@pytest.mark.parametrize("mutant", _params("programs"))
def test_programs_catch(mutant: Mutant) -> None:
    programs = programs_for(mutant.primitive)
    assert programs, f"no program exercises {mutant.primitive}"
    passed, hung, errors, unchanged, count = [], [], [], 0, 0
    for text, points in programs:
        for point in points:
            count += 1
            where = f"{text} at {_show(point)}"
            try:
                with inject(mutant), time_limit(SECONDS, f"{mutant.id}: {where}"):
                    result = api.check(text, point)
                with time_limit(SECONDS, f"{mutant.id}: the derivatives of {where}"):
                    moved = change_at(mutant, text, point)
            except Overran as exc:
                hung.append(str(exc))
                continue
            if result.status == "error":
                errors.append(f"{where}: {result.error}")
            elif not moved.changed[0]:
                unchanged += 1
            elif result.status == "passed":
                passed.append(f"{where} ({moved.describe()})")
            elif _passes_unmutated(text, _show(point)):  # failed, and only because of the mutant
                assert not hung and not errors, f"{mutant}: {hung + errors}"
                return
    lines = [f"{mutant} is not caught by the programs of {mutant.primitive}."]
    lines.append(f"It changes no derivative at {unchanged} of the {count} points.")
    lines += [f"passed although the derivative changed: {p}" for p in passed]
    lines += [f"hung: {h}" for h in hung] + [f"error: {e}" for e in errors]
    pytest.fail("\n".join(lines))


# --- (b) the bundled samples ----------------------------------------------------------------


def _load_samples() -> list[Case]:
    settings, problems = project_settings(ROOT)
    assert not problems, problems
    paths, errors = find(["samples"], cwd=ROOT)
    assert not errors, errors
    cases = []
    for path in paths:
        found, problems = load(path, cwd=ROOT, base=settings.options)
        assert not problems, problems
        cases += found
    return cases


def _samples_size() -> int | None:
    return project_settings(ROOT)[0].samples


def _key(case: Case) -> tuple[str, int, str]:
    return str(case.file), case.line, case.name


def _differentiated(case: Case) -> set[str]:
    """The primitives whose rules a check of `case` calls: those of the program's nodes, and at
    order 2 also those of the nodes of its gradient (which the second order differentiates)."""
    program = case.program
    shapes = {n: np.shape(v)[1:] for n, v in case.points(_samples_size()).items()}
    nodes = toposort([program.output])
    if case.options.order == 2:
        wrt = [program.variables[n] for n in wrt_names(program, case.options.wrt)]
        nodes += toposort(grad(program.output, wrt, shapes))
    return {n.op for n in nodes if n.inputs}


def _run(case: Case, what: str) -> CaseResult:
    with time_limit(SECONDS, f"{what}: {case.where} ({case.name})"):
        return run_case(case, _samples_size())


@cache
def _samples_unmutated() -> dict[tuple[str, int, str], tuple[set[str], bool, float]]:
    """For each case, with the right rules: the primitives it differentiates, whether it
    passes, and how long it takes."""
    out = {}
    for case in _load_samples():
        start = time.perf_counter()
        passed = _run(case, "unmutated").passed
        out[_key(case)] = (_differentiated(case), passed, time.perf_counter() - start)
    return out


# The cases that caught a mutant of each primitive: its other mutants try them first.
_CATCHERS: dict[str, list[tuple[str, int, str]]] = {}


def _in_order(primitive: str, cases: list[Case]) -> list[Case]:
    """The cases that caught this primitive's mutants so far, then the rest, quickest first:
    a mutant is caught by its first case that fails, so the order changes no outcome, only
    how many cases run before it (the suite's time)."""
    unmutated, first = _samples_unmutated(), _CATCHERS.get(primitive, [])
    return sorted(
        cases,
        key=lambda c: (
            first.index(_key(c)) if _key(c) in first else len(first),
            unmutated[_key(c)][2],
        ),
    )


@lru_cache(maxsize=1)
def _samples_for(primitive: str) -> list[Case]:
    """The cases, loaded afresh for each primitive (its mutants share them)."""
    return _load_samples()


def test_samples_pass_unmutated() -> None:
    failing = [
        f"{k[0]}:{k[1]} ({k[2]})" for k, (_, ok, _) in _samples_unmutated().items() if not ok
    ]
    assert not failing, "failing with the right rules: " + ", ".join(failing)


@pytest.mark.parametrize("mutant", _params("samples"))
def test_samples_catch(mutant: Mutant) -> None:
    unmutated = _samples_unmutated()
    cases = [c for c in _samples_for(mutant.primitive) if mutant.primitive in unmutated[_key(c)][0]]
    cases = _in_order(mutant.primitive, cases)
    passed, hung, errors = [], [], []
    for case in cases:
        where = f"{case.where} ({case.name})"
        try:
            with inject(mutant):
                result = _run(case, mutant.id)
            with time_limit(SECONDS, f"{mutant.id}: the derivatives of {where}"):
                points = case.points(_samples_size())
                moved = change(mutant, case.program, points, case.options.order, case.options.wrt)
        except Overran as exc:
            hung.append(str(exc))
            continue
        if result.status == "error":
            errors.append(f"{where}: {result.error}")
        elif result.status == "passed":
            changed = int(moved.changed.sum())
            passed.append(f"{where}: the derivative changed at {changed} of {moved.changed.size}")
        elif unmutated[_key(case)][1] and moved.changed.any():
            assert not hung and not errors, f"{mutant}: {hung + errors}"
            catchers = _CATCHERS.setdefault(mutant.primitive, [])
            if _key(case) not in catchers:
                catchers.append(_key(case))
            return
    lines = [f"{mutant} is not caught by the samples: {len(cases)} cases differentiate it."]
    lines += [f"passed: {p} points" for p in passed]
    lines += [f"hung: {h}" for h in hung] + [f"error: {e}" for e in errors]
    pytest.fail("\n".join(lines))


# --- (c) consistency ------------------------------------------------------------------------


def test_every_primitive_has_mutants() -> None:
    """A new primitive cannot be forgotten: it has mutants and programs, or says why not."""
    names = [n for n in REGISTRY if in_scope(n)]
    without = [n for n in names if not mutants_of(n)]
    assert sorted(without) == sorted(NO_RULES), without
    assert all(
        (REGISTRY[n].partials is None and REGISTRY[n].vjp is None)
        or REGISTRY[n].positions_from == 0  # every input a position (one_hot's labels)
        for n in NO_RULES
    )
    uncovered = [n for n in writable() if not programs_for(n)]
    assert not uncovered, f"no programs for {uncovered}"
    unwritable = set(names) - set(writable())
    assert all(m.id in EQUIVALENT for n in unwritable for m in mutants_of(n)), unwritable


def test_every_domain_has_edges() -> None:
    with_domain = {n for n in REGISTRY if in_scope(n) and REGISTRY[n].domain is not None}
    assert with_domain == set(EDGES) | set(NO_EDGE)


def test_inputs_of_variadic_primitives() -> None:
    """Non-elementwise primitives that take any number of inputs have their rules mutated for
    more than `arity` inputs."""
    many = {
        n
        for n, p in REGISTRY.items()
        if in_scope(n) and p.vjp is not None and not elementwise(p) and (p.variadic or p.lower)
    }
    assert many == set(INPUTS)


def test_named_mutants_exist() -> None:
    ids = {m.id for m in all_mutants()}
    assert not set(EQUIVALENT) - ids, set(EQUIVALENT) - ids
    named = {entry.split(":", 1)[1] for entry in KNOWN_SURVIVORS}
    assert not named - {m.id for m in MUTANTS}, named - {m.id for m in MUTANTS}
    assert all(entry.split(":", 1)[0] in ("programs", "samples") for entry in KNOWN_SURVIVORS)


@pytest.mark.parametrize("mutant_id", sorted(EQUIVALENT))
def test_equivalents_change_nothing(mutant_id: str) -> None:
    """An equivalent mutant leaves every derivative as it was, at every point of the programs
    (a mutant marked equivalent by mistake would show here)."""
    (mutant,) = [m for m in all_mutants() if m.id == mutant_id]
    for text, points in programs_for(mutant.primitive):
        for point in points:
            moved = change_at(mutant, text, point)
            assert not moved.changed[0], f"{mutant} at {text}, {_show(point)}: {moved.describe()}"
