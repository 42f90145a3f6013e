"""gradcli check --python mod:f --grad mod:df: a Python function and its hand-written gradient,
checked against the same finite-difference references, verdicts and reports as expressions."""

from __future__ import annotations

import textwrap

import pytest
from support import cli, strict

MODULE = textwrap.dedent(
    """
    import numpy as np

    def loss(w, x):
        return np.sum((np.tanh(w * x) - 0.5) ** 2)

    def dloss(w, x):
        t = np.tanh(w * x)
        common = 2 * (t - 0.5) * (1 - t * t)
        return {"w": np.sum(common * x), "x": common * w}

    def dloss_slip(w, x):  # forgot the inner derivative in w
        t = np.tanh(w * x)
        return {"w": np.sum(2 * (t - 0.5) * (1 - t * t)), "x": 2 * (t - 0.5) * (1 - t * t) * w}

    def as_list(w, x):
        g = dloss(w, x)
        return [g["w"], g["x"]]

    def both(w, x):
        return loss(w, x), dloss(w, x)

    def vector(w, x):
        return w * x

    def broken(w, x):
        raise RuntimeError("no")

    def hinge(w, x):  # 3·relu(w·x), summed: a kink where w·x = 0
        return np.sum(3.0 * np.maximum(w * x, 0.0))

    def dhinge(w, x):  # the subgradient 0 on the kink
        on = (w * x > 0).astype(float)
        return {"w": np.sum(3.0 * on * x), "x": 3.0 * on * w}

    def dhinge_slip(w, x):  # 6 on the kink: outside [0, 3]
        on = (w * x > 0) + 2.0 * (w * x == 0)
        return {"w": np.sum(3.0 * on * x), "x": 3.0 * on * w}

    def tie(w, x):
        return float(np.maximum(w, np.sum(x)))

    def dtie(w, x):  # half to each side of the tie
        return {"w": 0.5, "x": np.full_like(x, 0.5)}

    def dtie_both(w, x):  # the whole derivative to both sides: each in [0, 1], no subgradient
        return {"w": 1.0, "x": np.ones_like(x)}

    def jump(w, x):
        return float(np.heaviside(w, 0.5) + np.sum(x))

    def djump(w, x):
        return {"w": 0.0, "x": np.ones_like(x)}
    """
)


@pytest.fixture(autouse=True)
def _registry_restored():
    """Each checked function registers primitives of its own: other tests that walk the
    registry must not see them."""
    from gradcli.primitives import REGISTRY

    before = dict(REGISTRY)
    yield
    REGISTRY.clear()
    REGISTRY.update(before)


@pytest.fixture(autouse=True)
def project(tmp_path, monkeypatch):
    name = f"usermodel_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _check(*args):
    return cli("check", *args, "--w", "0.7", "--x", "1,2,-1", "--json")


def test_a_right_gradient_passes_against_the_expressions_reference(project):
    r = _check("--python", f"{project}:loss", "--grad", f"{project}:dloss")
    assert r.exit_code == 0, r.stdout + r.stderr
    records = {rec["variable"]: rec for rec in strict(r.stdout)["records"]}
    # the same function as an expression: gradcli's own gradient is the independent reference
    same = strict(
        cli("eval", "sum((tanh(w*x) - 0.5)^2)", "--w", "0.7", "--x", "1,2,-1", "--json").stdout
    )
    assert records["w"]["reference"] == pytest.approx(same["gradient"]["w"], rel=1e-9)
    assert records["w"]["method"] == "richardson"  # a Python function need not take complex


@pytest.mark.parametrize("grad", ["as_list", None])
def test_gradients_as_a_list_or_returned_with_the_value(project, grad):
    args = ["--python", f"{project}:{'both' if grad is None else 'loss'}"]
    if grad is not None:
        args += ["--grad", f"{project}:{grad}"]
    assert _check(*args).exit_code == 0


def test_a_wrong_gradient_fails_on_the_variable_it_gets_wrong(project):
    r = _check("--python", f"{project}:loss", "--grad", f"{project}:dloss_slip")
    assert r.exit_code == 1
    verdicts = {rec["variable"]: rec["verdict"] for rec in strict(r.stdout)["records"]}
    assert verdicts == {"w": "fail", "x": "pass"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--python", "no_such_module:f"], "cannot import no_such_module"),
        (["--python", "{m}:nope"], "has no function nope"),
        (["--python", "not a target"], "is not MODULE:FUNCTION"),
        (["--grad", "{m}:dloss"], "--grad is the gradient of a --python function"),
    ],
)
def test_unusable_targets_are_clear_errors(project, args, message):
    r = _check(*[a.format(m=project) for a in args])
    assert r.exit_code == 2 and message in r.stderr


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("loss", "returns no gradient"),
        ("vector", "must return a number"),
        ("broken", "raised RuntimeError: no"),
    ],
)
def test_what_the_users_code_does_wrong_is_reported_on_the_case(project, function, message):
    r = _check("--python", f"{project}:{function}", "--grad", f"{project}:dloss")
    if function == "loss":
        r = _check("--python", f"{project}:loss")  # no --grad, and no gradient returned
    assert r.exit_code == 2 and "Traceback" not in r.stdout + r.stderr  # unusable, as in files
    (record,) = strict(r.stdout)["records"]
    assert record["kind"] == "error" and message in record["message"]


def test_options_for_expressions_are_refused_with_python_and_wrt_narrows_it(project):
    r = _check("--python", f"{project}:loss", "--grad", f"{project}:dloss", "--samples", "5")
    assert r.exit_code == 2 and "--samples is not for --python" in r.stderr
    r = _check("--python", f"{project}:loss", "--grad", f"{project}:dloss_slip", "--wrt", "x")
    assert r.exit_code == 0  # the slip is in w, which --wrt leaves out
    assert {rec["variable"] for rec in strict(r.stdout)["records"]} == {"x"}


def test_the_complex_step_is_refused_for_a_python_function(project):
    """A Python function need not accept complex numbers (np.sum(x**2) takes them and returns a
    complex sum; np.abs or float() would not): the complex step is refused, never run."""
    r = _check("--python", f"{project}:loss", "--grad", f"{project}:dloss", "--method", "complex")
    assert r.exit_code == 2 and "Traceback" not in r.stdout + r.stderr
    (record,) = strict(r.stdout)["records"]
    assert "a Python function need not accept complex numbers" in record["message"]
    assert "use the method richardson" in record["message"]


def _at(*args, w="0.7", x="1,2,-1"):
    return cli("check", *args, "--w", w, "--x", x, "--json")


@pytest.mark.parametrize(
    ("grad", "verdict"),
    [("dhinge", "not differentiable"), ("dhinge_slip", "not differentiable, not a subgradient")],
)
def test_a_kink_inside_a_python_function_is_found_from_its_sides(project, grad, verdict):
    """3·relu(w·x) at x[0] = 0: left derivative 0, right derivative 3·w = 2.1 (closed forms)."""
    r = _at("--python", f"{project}:hinge", "--grad", f"{project}:{grad}", x="0,2,-1")
    assert r.exit_code == (0 if verdict == "not differentiable" else 1), r.stdout + r.stderr
    (rec,) = [rec for rec in strict(r.stdout)["records"] if rec["variable"] == "x"]
    assert rec["verdict"] == verdict and rec["index"] == [0]
    assert rec["left"] == pytest.approx(0.0, abs=1e-9)
    assert rec["right"] == pytest.approx(2.1, rel=1e-9)


@pytest.mark.parametrize(("grad", "passed"), [("dtie", True), ("dtie_both", False)])
def test_a_tie_inside_a_python_function_is_judged_as_a_vector(project, grad, passed):
    """max(w, Σx) at w = Σx = 2: the subgradients are t·(1, 0, 0, 0) + (1 - t)·(0, 1, 1, 1)."""
    r = _at("--python", f"{project}:tie", "--grad", f"{project}:{grad}", w="2")
    assert (r.exit_code == 0) == passed, r.stdout + r.stderr
    verdicts = {rec["verdict"] for rec in strict(r.stdout)["records"]}
    assert verdicts == (
        {"not differentiable"} if passed else {"not differentiable, not a subgradient"}
    )


def test_a_jump_inside_a_python_function_is_not_differentiable_never_a_pass(project):
    r = _at("--python", f"{project}:jump", "--grad", f"{project}:djump", w="0")
    assert r.exit_code == 0, r.stdout + r.stderr
    (rec,) = [rec for rec in strict(r.stdout)["records"] if rec["variable"] == "w"]
    assert rec["verdict"] == "not differentiable" and "jumps" in rec["message"]
