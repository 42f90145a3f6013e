"""An adversarial sample of gradcli's gradient-check verdicts, judged against exact mpmath.

The programs, points and reference come from tests/adversarial.py (benchmarks/adversarial.py
runs the same sweep at 100,000 element checks). One fixed-seed sample of a few thousand element
checks is run once per session; the tests assert that it holds no false failure (a correct
gradient failed), no false pass (a wrong rule, injected for the run, passed) and no hang.

The first tests check the reference itself: that it covers the whole registry, that its dual
numbers agree with differences of its own values and with closed forms, that kinks get their
one-sided derivatives, and that the judgement calls what it should call false.
"""

from __future__ import annotations

import dataclasses
import math
import random

import mpmath
import numpy as np
import pytest
from adversarial import (
    ARRAY_FUNCTIONS,
    Entry,
    Generator,
    MissingReference,
    Program,
    Tally,
    elementwise_names,
    in_hull,
    judge_point,
    numeric_derivative,
    reference,
    require_references,
    sweep,
)

from gradcli.checking.engine import FAIL, KINK, KINK_FAIL, PASS
from gradcli.primitives import REGISTRY

SEED = 20250101
CHECKS = 2400  # element checks with the correct registry; twice as many with wrong rules


def _program(text: str, shapes: dict) -> Program:
    """A Program from text in the language's syntax (bindings, calls, indexing, + - * / ^ @),
    turned into a tree by Python's own parser: nothing of gradcli's is involved."""
    import ast

    def key(node: ast.AST) -> tuple:
        parts = node.elts if isinstance(node, ast.Tuple) else [node]
        out: list = []
        for part in parts:
            if isinstance(part, ast.Slice):
                ends = (part.lower, part.upper, part.step)
                out.append(("slice", *(None if e is None else ast.literal_eval(e) for e in ends)))
            else:
                out.append(ast.literal_eval(part))
        return tuple(out)

    def tree(node: ast.AST) -> tuple:
        if isinstance(node, ast.Constant):
            return ("num", repr(float(node.value)))
        if isinstance(node, ast.Name):
            return ("name", node.id)
        if isinstance(node, ast.UnaryOp):
            return ("unary", "-", tree(node.operand))
        if isinstance(node, ast.BinOp):
            ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "^"}
            ops[ast.MatMult] = "@"
            return ("binary", ops[type(node.op)], tree(node.left), tree(node.right))
        if isinstance(node, ast.Call):
            keywords = tuple((k.arg, ast.literal_eval(k.value), False) for k in node.keywords)
            keywords = tuple((k, tuple(v) if isinstance(v, list) else v, p) for k, v, p in keywords)
            return ("call", node.func.id, tuple(tree(a) for a in node.args), keywords)
        if isinstance(node, ast.List):
            return ("array", tuple(tree(e) for e in node.elts))
        if isinstance(node, ast.Subscript):
            return ("index", tree(node.value), key(node.slice))
        raise ValueError(ast.dump(node))

    body = ast.parse(text.replace("^", "**")).body
    bindings = tuple((s.targets[0].id, tree(s.value)) for s in body[:-1])
    return Program(bindings, tree(body[-1].value), shapes, "scalar")


# --- the reference -------------------------------------------------------------------------------


def test_every_function_of_the_registry_has_a_reference() -> None:
    """Every elementwise function, operator and array function can be interpreted."""
    require_references()
    assert len(elementwise_names()) >= 30


def test_a_function_without_a_reference_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new function in the registry is an error until it has a reference, never skipped."""
    fake = dataclasses.replace(REGISTRY["sin"], name="sinpi")
    monkeypatch.setitem(REGISTRY, "sinpi", fake)
    with pytest.raises(MissingReference, match="sinpi"):
        require_references()
    with pytest.raises(MissingReference):
        Generator(random.Random(0))


def test_the_generator_draws_the_whole_language() -> None:
    """Over 1,500 programs, every function, operator and array form appears."""
    rng = random.Random(SEED)
    generator = Generator(rng)
    texts = [
        generator.program(kind).text
        for _ in range(500)  # the language grows: every form must still turn up
        for kind in ("scalar", "array", "scale-free")
    ]
    joined = "\n".join(texts)
    for name in [*elementwise_names(), *ARRAY_FUNCTIONS]:
        assert f"{name}(" in joined, name
    for form in (" @ ", " ^ ", " / ", "-(", "[[", "[:, ", "::2]", "axis=", "shape=", "axes=", "; "):
        assert form in joined, form


def test_dual_numbers_agree_with_differences_of_values() -> None:
    """The derivative rules written for mpmath against differences of mpmath's values alone."""
    rng = random.Random(SEED)
    generator = Generator(rng)
    compared = 0
    while compared < 40:
        program = generator.program(rng.choice(("scalar", "array")))
        names = sorted(program.used())
        if not names:
            continue
        point = {
            n: np.array([rng.uniform(-2, 2) for _ in range(math.prod(s))]).reshape(s)
            for n, s in program.shapes.items()
        }
        ref = reference(program, point, names)
        for slot, r in ref.elements.items():
            if r.status != "smooth":
                continue
            scale = max(abs(r.derivative), r.magnitude)
            sides = numeric_derivative(program, point, names, slot, scale)
            assert sides is not None, (program.text, point, slot)
            assert abs(sides[2] - r.derivative) <= mpmath.mpf(2) ** -80 * scale + 1e-300, (
                program.text,
                point,
                slot,
            )
            compared += 1


@pytest.mark.parametrize("name", elementwise_names())
def test_every_function_is_judged_and_agrees_with_differences(name: str) -> None:
    """Each elementwise function at ordinary arguments: smooth there, with the derivative that
    differences of mpmath's own values give (a rule that fails to evaluate would be skipped in
    every sample, silently: it must not)."""
    arity = REGISTRY[name].arity
    args = ", ".join("xy"[:arity])
    program = _program(f"{name}({args})", {n: () for n in "xy"[:arity]})
    point = {"x": 1.375 if name == "acosh" else 0.375, "y": 0.625}  # acosh: x ≥ 1
    names = list("xy"[:arity])
    ref = reference(program, point, names)
    for n in names:
        r = ref.elements[n, 0]
        assert r.status == "smooth", (name, n, r)
        sides = numeric_derivative(program, point, names, (n, 0))
        assert abs(sides[2] - r.derivative) <= 1e-30 * max(1, abs(r.derivative)), (name, n)


@pytest.mark.parametrize(
    ("text", "point", "expected"),
    [
        ("x^3", {"x": 2.0}, {"x": 12.0}),
        ("sin(x)*y", {"x": 0.5, "y": 2.0}, {"x": 2 * math.cos(0.5), "y": math.sin(0.5)}),
        ("sigmoid(x)", {"x": -800.0}, {"x": math.exp(-800.0)}),
        ("softplus(x)", {"x": 1e300}, {"x": 1.0}),
        ("xlogy(x, y)", {"x": 0.0, "y": 3.0}, {"x": math.log(3.0), "y": 0.0}),
        ("pow(x, y)", {"x": 0.0, "y": 2.5}, {"x": 0.0, "y": 0.0}),
        ("(x + 1e300) - 1e300", {"x": 1e-300}, {"x": 1.0}),
        ("logsumexp(u)", {"u": np.array([0.0, 0.0])}, {"u": [0.5, 0.5]}),
        ("prod(u)", {"u": np.array([0.0, 3.0])}, {"u": [3.0, 0.0]}),
    ],
)
def test_the_reference_on_closed_forms(text: str, point: dict, expected: dict) -> None:
    """Derivatives known in closed form, at points where float64 arithmetic would fail."""
    shapes = {n: np.shape(v) for n, v in point.items()}
    ref = reference(_program(text, shapes), point, list(point))
    for name, values in expected.items():
        for e, want in enumerate(np.ravel(values)):
            r = ref.elements[name, e]
            assert r.status == "smooth", (text, name, e, r)
            assert float(r.derivative) == pytest.approx(want, rel=1e-15, abs=1e-300)


@pytest.mark.parametrize(
    ("text", "point", "name", "sides"),
    [
        ("relu(x)", {"x": 0.0}, "x", (0.0, 1.0)),
        ("abs(x)*3", {"x": 0.0}, "x", (-3.0, 3.0)),
        ("max(x, y)", {"x": 1.5, "y": 1.5}, "x", (0.0, 1.0)),
        ("min(x, y)", {"x": 1.5, "y": 1.5}, "y", (1.0, 0.0)),
        ("max(u)", {"u": np.array([2.0, 2.0])}, "u", (0.0, 1.0)),
        ("norm(u)", {"u": np.array([0.0, 0.0])}, "u", (-1.0, 1.0)),
        ("hypot(x, y)", {"x": 0.0, "y": 0.0}, "x", (-1.0, 1.0)),
        ("relu(x - 0.25)^2 + abs(x)", {"x": 0.25}, "x", (1.0, 1.0)),
    ],
)
def test_kinks_get_one_sided_derivatives(text: str, point: dict, name: str, sides: tuple) -> None:
    """At a kink, the left and right derivatives of directional forward mode."""
    shapes = {n: np.shape(v) for n, v in point.items()}
    ref = reference(_program(text, shapes), point, list(point))
    r = ref.elements[name, 0]
    assert r.status == "kink", (text, r)
    assert (float(r.left), float(r.right)) == sides


@pytest.mark.parametrize(
    ("text", "point", "ill"),
    [
        # norm(W) is 1.7e190 rounded by an ulp of 2e174: float64's sine is at an arbitrary
        # phase; the rounding runs alone missed it whenever they landed on the same sign of cos.
        (
            "acos(sin(norm(W)))",
            {"W": np.array([1.746811334177444e190, -9.698457129764783e177])},
            True,
        ),
        ("sin(x*y)", {"x": 3e10, "y": 7e9}, True),  # 2.1e20, rounded by 16 000 radians
        ("sin(x)", {"x": 1e300}, False),  # an exact input: float64's sine of it is exact
        ("sin(x*y)", {"x": 3.0, "y": 7.0}, False),
    ],
)
def test_a_periodic_function_of_a_huge_computed_argument_is_ill_conditioned(
    text: str, point: dict, ill: bool
) -> None:
    shapes = {n: np.shape(v) for n, v in point.items()}
    ref = reference(_program(text, shapes), point, list(point))
    for key, r in ref.elements.items():
        assert r.status == "smooth" and r.ill is ill, (text, key, r)


def test_jumps_and_domains_are_skipped_with_reasons() -> None:
    """What mpmath cannot compare with float64 is skipped, and says why."""
    cases = [
        ("sign(x)", {"x": 0.0}, "on a jump"),
        ("log(x)", {"x": -1.0}, "outside the real domain"),
        ("sqrt(x)", {"x": 0.0}, "an infinite or undefined derivative"),
        ("exp(x)", {"x": 800.0}, "the exact value overflows float64"),
        ("1/x", {"x": 0.0}, "division by zero"),
        ("atan2(y, x)", {"x": -1.0, "y": 0.0}, "on the cut of atan2 or at its origin"),
    ]
    for text, point, reason in cases:
        shapes = {n: () for n in point}
        ref = reference(_program(text, shapes), point, list(point))
        assert ref.elements[next(iter(point)), 0].reason == reason, text


def test_the_hull_of_a_tie() -> None:
    """At a tie of max(x, y) the subgradients are (λ, 1 - λ): (0.5, 0.5) is one, (1, 1) not."""
    pieces = [{"x": mpmath.mpf(1), "y": mpmath.mpf(0)}, {"x": mpmath.mpf(0), "y": mpmath.mpf(1)}]
    tol = {"x": 1e-9, "y": 1e-9}
    assert in_hull(pieces, {"x": 0.5, "y": 0.5}, tol) is True
    assert in_hull(pieces, {"x": 1.0, "y": 1.0}, tol) is False
    assert in_hull(pieces, {"x": 0.0, "y": 1.0}, tol) is True


def test_the_judgement_of_verdicts() -> None:
    """What is called false: a failed right gradient, a passed wrong one, a passed gradient
    that is no subgradient as a whole; and what is not."""
    program = _program("max(x, y)", {"x": (), "y": ()})
    tie = reference(program, {"x": 1.0, "y": 1.0}, ["x", "y"])
    smooth = reference(program, {"x": 2.0, "y": 1.0}, ["x", "y"])

    def entries(verdicts: tuple, values: tuple) -> dict:
        return {(n, 0): Entry(v, g, 1e-9) for n, v, g in zip("xy", verdicts, values, strict=True)}

    assert judge_point(smooth, entries((FAIL, PASS), (1.0, 0.0)))[0] == {("x", 0): "false failure"}
    assert judge_point(smooth, entries((FAIL, PASS), (1.1, 0.0)))[0] == {}
    assert judge_point(smooth, entries((PASS, PASS), (1.1, 0.0)))[0] == {("x", 0): "false pass"}
    assert judge_point(tie, entries((KINK, KINK), (0.5, 0.5)))[0] == {}
    assert judge_point(tie, entries((KINK_FAIL, KINK), (0.5, 0.5)))[0] == {
        ("x", 0): "false failure"
    }
    assert judge_point(tie, entries((KINK, KINK), (1.0, 1.0)))[0] == {
        ("x", 0): "false pass (as a whole)"
    }
    assert judge_point(tie, entries((KINK_FAIL, KINK_FAIL), (1.0, 1.0)))[0] == {}
    assert judge_point(tie, entries((KINK, KINK), (1.5, 0.0)))[0] == {("x", 0): "false pass"}


# --- the sample ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> tuple[Tally, Tally]:
    """The fixed-seed sweep, run once for the tests below."""
    return sweep(SEED, CHECKS, mutants=2, points=24, seconds=20.0)


def _listing(records: list, kind: str) -> str:
    """The records of one kind, for an assertion's message."""
    chosen = [r for r in records if r.kind.startswith(kind)]
    return f"{len(chosen)} {kind}(s):\n" + "\n".join(r.describe() for r in chosen[:10])


def test_the_sample_is_large_and_mostly_judged(sample: tuple[Tally, Tally]) -> None:
    """The sample is what it claims: thousands of checks, most judged, no crash of gradcli."""
    correct, wrong = sample
    assert correct.checks >= CHECKS and wrong.checks >= CHECKS // 2
    assert correct.judged >= correct.checks // 2, correct.skipped
    assert correct.errors == wrong.errors == 0, _listing(correct.records + wrong.records, "error")


def test_no_hangs(sample: tuple[Tally, Tally]) -> None:
    """Every check of the sample ends within its wall-clock bound."""
    correct, wrong = sample
    assert correct.hangs + wrong.hangs == 0, _listing(correct.records + wrong.records, "hang")


def test_no_false_failures(sample: tuple[Tally, Tally]) -> None:
    """No correct gradient is failed."""
    correct, _ = sample
    assert correct.false_failures == 0, _listing(correct.records, "false failure")


def test_no_false_passes(sample: tuple[Tally, Tally]) -> None:
    """No gradient that is off mpmath by more than its tolerance passes."""
    correct, wrong = sample
    records = correct.records + wrong.records
    assert correct.false_passes + wrong.false_passes == 0, _listing(records, "false pass")


def test_wrong_rules_are_mostly_caught(sample: tuple[Tally, Tally]) -> None:
    """The mutants are wrong where they matter: far more failures than with the right rules."""
    correct, wrong = sample
    failing = {FAIL, KINK_FAIL}
    assert sum(wrong.verdicts.get(v, 0) for v in failing) > 2 * sum(
        correct.verdicts.get(v, 0) for v in failing
    )
    assert PASS in correct.verdicts
