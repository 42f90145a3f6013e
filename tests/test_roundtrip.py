"""Printed derivatives parse back to the same numbers.

Every gradient (and, for the Hessian cases, every second derivative) of every case in the
primitive and array test tables is printed in gradcli's language with `to_source`, parsed and
lowered again, and evaluated at the case's point: the values must be the same floats. This is
what lets `gradcli diff` print derivatives that a user can paste back into a program.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_array_primitives as arrays
import test_primitives as elementwise

from gradcli import compile_program
from gradcli.evaluation.interpreter import evaluate as run
from gradcli.language.printer import to_source
from gradcli.transforms.reverse import grad


def assert_round_trip(nodes, env) -> None:
    (*want,), _, _ = run(nodes, env)
    for node, value in zip(nodes, want, strict=True):
        text = to_source(node)
        again = compile_program(text)
        used = {n: env[n] for n in again.variables}
        (got,), _, _ = run([again.output], used)
        np.testing.assert_array_equal(
            np.broadcast_to(got, np.shape(value)), value, err_msg=f"printed as:\n{text}"
        )


def _elementwise():
    for case in elementwise.CASES:
        point = case.points[len(case.points) // 2]
        yield pytest.param(case, point, id=case.expr)


@pytest.mark.parametrize(("case", "point"), list(_elementwise()))
def test_elementwise_first_and_second_derivatives_round_trip(case, point) -> None:
    program = compile_program(case.expr)
    env = dict(zip(case.params, point.args, strict=True))
    wrt = [program.variables[n] for n in case.params if n in program.variables]
    firsts = grad(program.output, wrt)
    seconds = [s for g in firsts for s in grad(g, wrt)]
    assert_round_trip([*firsts, *seconds], env)


@pytest.mark.parametrize("c", [c.param() for c in arrays.ALL_CASES])
def test_array_gradients_round_trip(c) -> None:
    program = compile_program(c.expr)
    shapes = {n: np.shape(v) for n, v in c.env.items()}
    grads = grad(program.output, list(program.variables.values()), shapes)
    assert_round_trip(grads, c.env)


@pytest.mark.parametrize("h", [h.param() for h in (*arrays.HESSIANS, *arrays.PROD_HESSIANS)])
def test_hessian_rows_round_trip(h) -> None:
    program = compile_program(h.expr)
    shapes = {n: np.shape(v) for n, v in h.env.items()}
    assert_round_trip(arrays.hessian_nodes(program, shapes, h.wrt), h.env)
