"""Forward mode and Hessians, against references that share no code with gradcli.

- Every elementwise primitive at every point of `test_primitives`: the forward-mode derivative
  along a random direction against Σ v_i ∂f/∂x_i from mpmath at 50 digits (or the documented
  closed form at kinks).
- Every array case of `test_array_primitives`: the tangent, shaped like f, against an mpmath
  central difference of f along the direction (smooth cases), and its sum against the closed-form
  gradient dotted with the direction (all cases, ties included).
- Hessians in both modes against the closed forms and mpmath second differences there.
- The 100,000-term chain and 20,000-deep nesting through forward mode with a shallow stack.
- `gradcli jvp` and `gradcli hessian` through the command line.

Tolerance: |got - want| <= RTOL · (Σ|v_i ∂f/∂x_i| or the largest |want|), since a directional
derivative is a sum whose terms may cancel.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import test_array_primitives as arrays
import test_primitives as elementwise
from mpmath import mp, mpf
from support import cli, strict
from test_scale import shallow_stack

from gradcli import GradcliError, compile_program
from gradcli.api import directional, hessian
from gradcli.evaluation.interpreter import evaluate as run
from gradcli.transforms.forward import jvp

RTOL = 1e-12
RNG = np.random.default_rng(20261121)


# --- elementwise primitives -----------------------------------------------------------------


def _elementwise_params():
    for case in elementwise.CASES:
        for point in case.points:
            if point.xfail:
                continue
            direction = tuple(float(d) for d in RNG.uniform(-2, 2, len(case.params)))
            where = ",".join(f"{n}={a!r}" for n, a in zip(case.params, point.args, strict=True))
            yield pytest.param(case, point, direction, id=f"{case.expr}[{where}]")


@pytest.mark.parametrize(("case", "point", "direction"), list(_elementwise_params()))
def test_elementwise_forward_mode_matches_mpmath(case, point, direction) -> None:
    values = dict(zip(case.params, point.args, strict=True))
    moves = dict(zip(case.params, direction, strict=True))
    r = directional(case.expr, values, moves)
    with mp.workdps(elementwise.DPS):
        args = [mpf(a) for a in point.args]
        terms = []
        for i, v in enumerate(direction):
            if case.partials is not None:
                partial = case.partials[i](*args)
            else:
                partial = elementwise.mp_partial(case.oracle, args, i)
            terms.append(mpf(v) * partial)
        want = mpmath.fsum(terms)
        scale = max(mpmath.fsum(abs(t) for t in terms), mpf(point.scale))
        for got, what in ((r.derivative, "forward"), (r.reverse, "reverse")):
            err = abs(mpf(float(got)) - want)
            assert err <= point.rtol * scale, (
                f"{what}: got {float(got)!r}, want {mpmath.nstr(want, 17)}"
            )
    assert r.faults == []


def test_every_elementwise_primitive_has_a_jvp_path() -> None:
    """A primitive without elementwise partials needs a jvp rule, or forward mode cannot run
    (a macro, with no forward of its own, is rewritten before any pass sees it)."""
    from gradcli.primitives import REGISTRY

    missing = [
        n
        for n, p in REGISTRY.items()
        if p.forward is not None and p.partials is None and p.jvp is None
    ]
    assert not missing, f"primitives without a forward-mode rule: {missing}"


# --- array primitives -----------------------------------------------------------------------


def _direction(env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: RNG.standard_normal(np.shape(v)) for n, v in env.items()}


def mp_directional(f, env, direction) -> np.ndarray:
    """(f(x + h v) - f(x - h v)) / 2h at 60 digits, elementwise over f.

    h = 2^-80 of the largest input element, so the step is resolved next to every input and
    its O(h²) error (relative ~1e-48) is below any float64 tolerance; where the exact answer is
    0 (a product with two zeros) that error is what remains, hence ATOL.
    """
    with mp.workdps(60):
        largest = max(float(np.max(np.abs(v), initial=0.0)) for v in env.values())
        h = mpmath.ldexp(mpf(largest or 1.0), -80)
        up = {n: arrays.to_mp(v) + h * arrays.to_mp(direction[n]) for n, v in env.items()}
        down = {n: arrays.to_mp(v) - h * arrays.to_mp(direction[n]) for n, v in env.items()}
        return arrays.mp_float((f(**up) - f(**down)) / (2 * h))


ATOL = 1e-40


ARRAY_CASES = [(c, _direction(c.env)) for c in arrays.ALL_CASES]


@pytest.mark.parametrize(
    ("c", "direction"), [pytest.param(c, d, id=c.id) for c, d in ARRAY_CASES if c.smooth]
)
def test_array_tangent_matches_mpmath_directional_difference(c, direction) -> None:
    r = directional(c.expr, c.env, direction)
    assert r.faults == []
    want = mp_directional(c.mp, c.env, direction)
    assert np.shape(r.derivative) == np.shape(r.value) == np.shape(want)
    err = np.abs(np.asarray(r.derivative, dtype=float) - want)
    bound = RTOL * np.max(np.abs(want), initial=0.0) + ATOL
    assert np.all(err <= bound), f"tangent {r.derivative} vs mpmath {want}"


@pytest.mark.parametrize(("c", "direction"), [pytest.param(c, d, id=c.id) for c, d in ARRAY_CASES])
def test_array_tangent_sums_to_the_closed_form_gradient_along_the_direction(c, direction) -> None:
    r = directional(c.expr, c.env, direction)
    grads = c.grads(**c.env)
    terms = [
        np.broadcast_to(grads[n], np.shape(c.env[n])) * direction[n] for n in c.env if n in grads
    ]
    want = math.fsum(float(t) for term in terms for t in np.ravel(term))
    scale = math.fsum(abs(float(t)) for term in terms for t in np.ravel(term))
    for got in (float(np.sum(r.derivative)), r.reverse):
        assert abs(got - want) <= 1e-11 * max(scale, 1e-300), (got, want)


def test_omitted_variables_stay_fixed() -> None:
    r = directional("x*y + x/y", {"x": 5.0, "y": 2.0}, {"y": 1.0})
    assert float(r.derivative) == pytest.approx(5.0 - 5.0 / 4.0, rel=1e-15)
    r = directional("sum(a * b)", {"a": [1.0, 2.0], "b": [3.0, 4.0]}, {"a": [1.0, -1.0]})
    assert float(r.derivative) == 3.0 - 4.0


def test_a_scalar_direction_is_spread_over_an_array_variable() -> None:
    r = directional("x^2", {"x": [1.0, 2.0, 3.0]}, {"x": 1.0})
    np.testing.assert_array_equal(r.derivative, [2.0, 4.0, 6.0])


def test_direction_errors_are_clear() -> None:
    with pytest.raises(GradcliError, match="z is not a variable"):
        directional("x*y", {"x": 1.0, "y": 2.0}, {"z": 1.0})
    with pytest.raises(GradcliError, match=r"x has shape \(2,\), its direction \(3,\)"):
        directional("sum(x)", {"x": [1.0, 2.0]}, {"x": [1.0, 2.0, 3.0]})


# --- Hessians -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("h", [h.param() for h in arrays.HESSIANS])
def test_hessian_in_both_modes_matches_closed_forms_and_mpmath(h, mode) -> None:
    got = hessian(h.expr, h.env, [h.wrt], mode)
    assert got.faults == []
    assert got.asymmetry <= 1e-13
    if h.closed is not None:
        arrays.assert_close(got.matrix, h.closed(**h.env), what="vs closed form")
    arrays.assert_close(got.matrix, arrays.mp_hessian(h.mp, h.env, h.wrt), what="vs mpmath")


def test_hessian_over_several_variables_has_the_mixed_blocks() -> None:
    """f = x²y + sin(xy): every second partial in closed form."""
    x, y = 0.7, -1.3
    s, c = math.sin(x * y), math.cos(x * y)
    want = np.array(
        [
            [2 * y - y * y * s, 2 * x + c - x * y * s],
            [2 * x + c - x * y * s, -x * x * s],
        ]
    )
    for mode in ("forward", "reverse"):
        got = hessian("x^2*y + sin(x*y)", {"x": x, "y": y}, mode=mode)
        assert got.labels == ["x", "y"]
        np.testing.assert_allclose(got.matrix, want, rtol=1e-14, atol=0)
        np.testing.assert_allclose(got.gradient, [2 * x * y + y * c, x * x + x * c], rtol=1e-14)


def test_hessian_labels_name_array_elements() -> None:
    got = hessian("sum(A @ x) * t^2", {"A": np.eye(2), "x": [1.0, 2.0], "t": 3.0}, ["x", "t"])
    assert got.labels == ["x[0]", "x[1]", "t"]
    # d²/dx dt = 2t·(column sums of A) = 6, d²/dt² = 2 sum(Ax) = 6, d²/dx² = 0
    np.testing.assert_array_equal(got.matrix, [[0, 0, 6], [0, 0, 6], [6, 6, 6]])


def test_hessian_errors() -> None:
    with pytest.raises(GradcliError, match="unknown mode"):
        hessian("x^2", {"x": 1.0}, mode="sideways")
    with pytest.raises(GradcliError, match="q is not a variable"):
        hessian("x^2", {"x": 1.0}, ["q"])


# --- scale: forward mode does not recurse either --------------------------------------------


@pytest.mark.usefixtures("no_size_limits")
def test_forward_mode_through_100000_terms() -> None:
    n = 100_000
    with shallow_stack():
        program = compile_program(" + ".join(["x"] * n))
        tangent = jvp(program.output, {program.variables["x"]: program.graph.const(1.0)})
        (d,), faults, _ = run([tangent], {"x": 0.25})
    assert float(d) == n and not faults


def test_forward_mode_through_20000_nested_sines() -> None:
    depth, x = 20_000, 0.5
    with shallow_stack():
        program = compile_program("sin(" * depth + "x" + ")" * depth)
        tangent = jvp(program.output, {program.variables["x"]: program.graph.const(1.0)})
        (d,), _, _ = run([tangent], {"x": x})
    v, want = x, 1.0
    for _ in range(depth):
        v, want = math.sin(v), want * math.cos(v)
    assert float(d) == pytest.approx(want, rel=1e-10)


# --- the command line -----------------------------------------------------------------------


def test_jvp_command_prints_both_modes() -> None:
    r = cli("jvp", "x*y + x/y", "--x", "5", "--y", "2", "--direction", "x=1,y=0", "--json")
    assert r.exit_code == 0, r.output
    doc = strict(r.stdout)
    assert doc["value"] == 12.5 and doc["derivative"] == 2.5 and doc["reverse"] == 2.5
    r = cli("jvp", "x*y + x/y", "--x", "5", "--y", "2", "--direction", "x=0,y=1")
    assert r.exit_code == 0 and "3.75" in r.stdout


def test_jvp_takes_the_direction_in_several_options() -> None:
    r = cli(
        "jvp", "sum(v*v)*x", "--v", "1,2,3", "--x", "2",
        "--direction", "x=1e-3", "--direction", "v=[0,0,1]", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert strict(r.stdout)["derivative"] == pytest.approx(2 * 3 * 2 + 14e-3, rel=1e-15)
    r = cli("jvp", "sum(v*v)*x", "--v", "1,2,3", "--x", "2", "--direction", "v=[1,2]")
    assert r.exit_code == 2 and "v has shape (3,), its direction (2,)" in r.stderr


def test_jvp_direction_of_an_array_variable() -> None:
    r = cli("jvp", "x^2", "--x", "1,2,3", "--direction", "x=1,0,2", "--json")
    assert r.exit_code == 0, r.output
    doc = strict(r.stdout)
    assert doc["derivative"] == [2.0, 0.0, 12.0] and doc["reverse"] == 14.0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["x*y", "--x", "1", "--y", "2"], "--direction is needed"),
        (["x*y", "--x", "1", "--y", "2", "--direction", "x"], "is not NAME=VALUE"),
        (["x*y", "--x", "1", "--y", "2", "--direction", "z=1"], "z is not a variable"),
        (["x*y", "--x", "1", "--y", "2", "--direction", "x=abc"], "direction of x"),
        (["x*y", "--x", "1", "--y", "2", "--direction", "x=1,x=2"], "x is given twice"),
        (["2+3", "--direction", "x=1"], "x is not a variable"),
    ],
)
def test_jvp_usage_errors(args, needle) -> None:
    r = cli("jvp", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "Traceback" not in r.output


def test_hessian_command_json_and_table() -> None:
    r = cli("hessian", "x^3*y", "--x", "2", "--y", "1", "--json")
    assert r.exit_code == 0, r.output
    doc = strict(r.stdout)
    assert doc["labels"] == ["x", "y"]
    assert doc["hessian"] == [[12.0, 12.0], [12.0, 0.0]]  # 6xy, 3x², 0
    r = cli("hessian", "x^3*y", "--x", "2", "--y", "1", "--mode", "reverse")
    assert r.exit_code == 0 and "max |H - Hᵀ| / max |H| = 0" in r.stdout
    assert "indefinite" in r.stdout  # eigenvalues 6 ± √180: one of each sign


def test_hessian_of_a_constant_is_a_clear_error() -> None:
    r = cli("hessian", "2+3")
    assert r.exit_code == 2 and "nothing to differentiate" in r.stderr


def test_hessian_command_errors() -> None:
    r = cli("hessian", "x^2", "--x", "1", "--mode", "sideways")
    assert r.exit_code == 2 and "unknown mode" in r.stderr
    r = cli("hessian", "x^2", "--x", "1", "--wrt", "y")
    assert r.exit_code == 2 and "y is not a variable" in r.stderr
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("x*y + sin(x*z)/y", {"x": 0.7, "y": -1.3, "z": 2.1}),
        ("sum(A @ v) * w + prod(v)", {"A": [[1, 2], [3, 4]], "v": [0.5, -2], "w": 3}),
        ("softmax(v) * w", {"v": [0.1, 0.2, 0.3], "w": 2}),
    ],
)
def test_forward_mode_for_all_variables_at_once_matches_one_at_a_time(text, values):
    """check computes forward mode for every variable in one pass: the same numbers."""
    from gradcli.checking.engine import CheckOptions, _Run
    from gradcli.checking.probes import Probes

    program = compile_program(text)
    points = {n: np.asarray(v, dtype=float)[None] for n, v in values.items()}
    names = list(program.variables)
    together = _Run(program, points, CheckOptions())
    together.prefetch_forward(names)
    alone = _Run(program, points, CheckOptions())
    assert set(together._prefetched) == set(names)
    for name in names:
        size = int(np.prod(np.shape(values[name]), dtype=int))
        probes = Probes(np.zeros(size, int), np.arange(size), None)
        np.testing.assert_allclose(
            together._forward(name, probes), alone._forward(name, probes), rtol=1e-15, atol=0
        )
