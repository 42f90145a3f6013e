"""Arrays from files, Jacobians, JSON Lines batches and training, through the command line."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import cli, strict

from gradcli.api import compile_program
from gradcli.evaluation.minimize import minimize
from gradcli.evaluation.values import load_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
run = cli


# --- values from files ------------------------------------------------------------------------


def test_values_from_npy_json_and_csv(tmp_path):
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.save(tmp_path / "a.npy", a)
    (tmp_path / "a.json").write_text(json.dumps(a.tolist()))
    (tmp_path / "a.csv").write_text("first,second\n1,2\n3,4\n")
    (tmp_path / "v.csv").write_text("# a comment\n1\n2\n")
    for name in ("a.npy", "a.json", "a.csv"):
        result = run("eval", "sum(A @ [1, 1])", "--A", f"@{tmp_path / name}", "--json")
        doc = strict(result.stdout)
        assert doc["value"] == 10.0 and doc["gradient"]["A"] == [[1.0, 1.0], [1.0, 1.0]], name
    np.testing.assert_array_equal(load_file(str(tmp_path / "v.csv"), "v"), [1.0, 2.0])


@pytest.mark.parametrize(
    ("content", "suffix", "needle"),
    [
        ("1,2\n3\n", ".csv", "as many numbers"),
        ("1,2\n3,x\n", ".csv", "not comma-separated numbers"),
        ("[1, NaN]", ".json", "not valid JSON"),
        ("1,2", ".txt2", "a value file is .npy, .json or .csv"),
    ],
)
def test_bad_value_files_are_clear_errors(tmp_path, content, suffix, needle):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    result = run("eval", "sum(x)", "--x", f"@{path}")
    assert result.exit_code == 2 and needle in result.stderr and result.stdout == ""


def test_a_pickled_npy_file_is_refused_not_unpickled(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    result = run("eval", "sum(x)", "--x", f"@{tmp_path / 'o.npy'}")
    assert result.exit_code == 2 and "not a numeric .npy array" in result.stderr


def test_array_table_shows_shape_and_norm():
    result = run("eval", "sum(A @ v)", "--A", "[[1, 2], [3, 4]]", "--v", "3,4")
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if "∂" in line}
    assert rows["∂f/∂v"][-2:] == ["2", "7.2111"]  # shape and norm of [4, 6]
    assert rows["∂f/∂A"][-2:] == ["2×2", "7.07107"]  # [[3, 4], [3, 4]]


# --- Jacobians ------------------------------------------------------------------------------


def test_jacobian_of_a_vector_function_against_its_closed_form():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    x = np.array([0.5, -1.0])
    result = run("jacobian", "A @ x + sin(x)", "--A", json.dumps(A.tolist()), "--x", "0.5,-1")
    assert result.exit_code == 0
    doc = strict(run("jacobian", "A @ x + sin(x)", "--A", json.dumps(A.tolist()), "--x", "0.5,-1",
                     "--json").stdout)  # fmt: skip
    np.testing.assert_allclose(doc["jacobian"]["x"], A + np.diag(np.cos(x)), rtol=1e-15)
    expected_a = np.zeros((2, 2, 2))  # ∂(A x)_i / ∂A_jk = δ_ij x_k
    for i in range(2):
        expected_a[i, i, :] = x
    np.testing.assert_array_equal(doc["jacobian"]["A"], expected_a)
    assert "∂/∂x[1]" in result.stdout and "f[1]" in result.stdout


def test_jacobian_of_softmax_and_of_a_scalar():
    x = np.array([1.0, 2.0, 3.0])
    s = np.exp(x) / np.exp(x).sum()
    doc = strict(run("jacobian", "softmax(x)", "--x", "1,2,3", "--json").stdout)
    np.testing.assert_allclose(doc["jacobian"]["x"], np.diag(s) - np.outer(s, s), atol=1e-16)
    doc = strict(run("jacobian", "x*y", "--x", "2", "--y", "3", "--json").stdout)
    assert doc["jacobian"] == {"x": 3.0, "y": 2.0} and doc["shape"] == []


def test_jacobian_of_a_matrix_valued_function_has_output_then_input_axes():
    doc = strict(run("jacobian", "transpose(A)*2", "--A", "[[1, 2, 3], [4, 5, 6]]",
                     "--json").stdout)  # fmt: skip
    jac = np.array(doc["jacobian"]["A"])
    assert jac.shape == (3, 2, 2, 3)
    expected = np.zeros((3, 2, 2, 3))
    for i in range(3):
        for j in range(2):
            expected[i, j, j, i] = 2.0
    np.testing.assert_array_equal(jac, expected)


# --- JSON Lines batches ----------------------------------------------------------------------


def test_batch_writes_one_record_per_line_in_order_and_reports_bad_lines():
    lines = [
        '{"x": 1, "y": 2}',
        '{"x": 2, "y": 0}',
        "not json",
        '{"x": [1, 2], "y": 3}',
        '{"x": 1}',
        '{"x": 1, "y": 2, "z": 3}',
        "",
        '{"x": 4, "y": true}',
        '{"x": 4, "y": 5}',
    ]
    result = run("eval", "x*y + x/y", "--batch", "-", input="\n".join(lines) + "\n")
    records = [strict(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 6, 8, 9]
    assert records[0] == {"line": 1, "value": 2.5, "gradient": {"x": 2.5, "y": 0.75},
                          "finite": True}  # fmt: skip
    assert records[1]["finite"] is False and records[1]["value"] is None
    assert "division by zero" in records[1]["faults"][0]
    assert "not a JSON object" in records[2]["error"]
    np.testing.assert_allclose(records[3]["value"], [1 * 3 + 1 / 3, 2 * 3 + 2 / 3])
    assert records[3]["gradient"]["y"] == pytest.approx(3 - 3 / 9)
    assert records[4]["error"] == "missing value for y"
    assert "z is not a variable" in records[5]["error"]
    assert "number or an array" in records[6]["error"]
    assert records[7]["value"] == pytest.approx(4 * 5 + 4 / 5)
    assert result.exit_code == 2  # some lines were not usable
    assert "8 lines: 4 evaluated, 4 errors, 1 with nan or inf" in result.stderr


def test_batch_values_on_the_command_line_hold_for_every_line(tmp_path):
    path = tmp_path / "points.jsonl"
    path.write_text('{"x": 1}\n{"x": 3}\n{"x": 2, "w": 1}\n')
    result = run("eval", "x*w", "--w", "10", "--batch", str(path))
    values = [strict(line)["value"] for line in result.stdout.splitlines()]
    assert values == [10.0, 30.0, 2.0] and result.exit_code == 0


def test_batch_agrees_with_single_evaluations():
    rng = np.random.default_rng(5)
    points = [{"x": float(a), "y": float(b)} for a, b in rng.uniform(0.5, 3, (300, 2))]
    text = "\n".join(json.dumps(p) for p in points)
    expr = "log(x)*sin(y) + sum([x, y]^2)"
    records = [
        strict(line) for line in run("eval", expr, "--batch", "-", input=text).stdout.splitlines()
    ]
    for point, record in zip(points[::37], records[::37], strict=True):
        single = strict(run("eval", expr, "--x", str(point["x"]), "--y", str(point["y"]),
                            "--json").stdout)  # fmt: skip
        assert record["value"] == single["value"] and record["gradient"] == single["gradient"]


def test_batch_streams_results_before_the_input_ends():
    """The first chunk's results arrive while stdin is still open: constant memory."""
    script = Path(sys.executable).parent / "gradcli"
    process = subprocess.Popen(
        [script, "eval", "x^2", "--batch", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert process.stdin and process.stdout
    process.stdin.write("".join(f'{{"x": {i}}}\n' for i in range(4096)))
    process.stdin.flush()
    first = process.stdout.readline()  # would block forever if output waited for the end
    assert strict(first) == {"line": 1, "value": 0.0, "gradient": {"x": 0.0}, "finite": True}
    process.stdin.close()
    rest = process.stdout.read()  # the other lines, then end of file once the input ended
    assert len(rest.splitlines()) == 4095 and process.wait(timeout=60) == 0


# --- training -------------------------------------------------------------------------------


def tutorial():
    program = compile_program((SAMPLES / "tutorial_model.grad").read_text())
    x = load_file(str(SAMPLES / "data" / "tutorial_x.csv"), "x")
    y = load_file(str(SAMPLES / "data" / "tutorial_y.csv"), "y")
    np.testing.assert_allclose(y, 4 * np.sin(x**4), rtol=1e-15)  # the data is what it says
    return program, {"x": x, "y": y, "w": [1.7, 0.2], "b": 0.6}


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 0.05), ("gd", 0.01)])
def test_minimize_trains_the_tutorial_model_below_the_stated_loss(optimizer, lr):
    program, values = tutorial()
    result = minimize(program, ["w", "b"], values, 500, lr, optimizer)
    assert result.history[0] == pytest.approx(14.014, abs=1e-3)
    assert result.best_loss < 0.1 and result.stopped == "completed"
    # The fitted parameters really give that loss (an independent numpy forward pass).
    w, b = result.best["w"], float(result.best["b"])
    a = values["x"] ** 2
    yhat = 4 * np.sin(np.maximum(w[0] * a + b, 0) + np.maximum(w[1] * a + b, 0))
    assert np.mean((values["y"] - yhat) ** 2) == pytest.approx(result.best_loss, rel=1e-12)


def test_gradient_descent_takes_exactly_the_textbook_steps():
    program = compile_program("(x - 3)^2")
    result = minimize(program, ["x"], {"x": 0.0}, 3, 0.1, "gd")
    x, expected = 0.0, []
    for _ in range(4):
        expected.append((x - 3) ** 2)
        x -= 0.1 * 2 * (x - 3)
    assert result.history == pytest.approx(expected, rel=1e-15)


def test_adam_steps_match_the_published_update():
    program = compile_program("sum((x - [1, 2])^2)")
    result = minimize(program, ["x"], {"x": [0.0, 0.0]}, 2, 0.1, "adam")
    x, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    for t in (1, 2):
        g = 2 * (x - [1, 2])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(result.params["x"], x, rtol=1e-15)


def test_interrupting_keeps_the_best_parameters_so_far():
    program = compile_program("(x - 3)^2")

    def stop_at_five(step: int, loss: float) -> None:
        if step == 5:
            raise KeyboardInterrupt

    result = minimize(program, ["x"], {"x": 0.0}, 100, 0.1, "gd", on_step=stop_at_five)
    assert result.stopped == "interrupted" and result.steps == 6
    assert result.best_step == 5 and result.best_loss == min(result.history)


def test_a_diverging_run_stops_with_the_best_parameters():
    program = compile_program("-exp(x)")  # unbounded below: descent runs off to -inf
    result = minimize(program, ["x"], {"x": 1.0}, 50, 100.0, "gd")
    assert result.stopped == "diverged" and result.best_step == len(result.history) - 1
    x = 1.0
    for _ in range(result.best_step):  # gradient descent by hand: x <- x + 100 e^x
        x += 100.0 * np.exp(x)
    assert float(result.best["x"]) == x and result.history[-1] == -np.exp(x)


def test_minimize_command_json_and_table(tmp_path):
    args = [
        "minimize", str(SAMPLES / "tutorial_model.grad"), "--params", "w,b",
        "--w", "1.7,0.2", "--b", "0.6",
        "--data", f"x=@{SAMPLES / 'data' / 'tutorial_x.csv'}",
        "--data", f"y=@{SAMPLES / 'data' / 'tutorial_y.csv'}",
        "--lr", "0.05", "--steps", "500",
    ]  # fmt: skip
    doc = strict(run(*args, "--json").stdout)
    assert doc["best_loss"] < 0.1 and len(doc["history"]) == 501 and doc["stopped"] == "completed"
    assert set(doc["params"]) == {"w", "b"} and len(doc["params"]["w"]) == 2
    table = run(*args)
    assert table.exit_code == 0 and "best value" in table.stdout and "step" in table.stdout
    assert "(loss on a log scale)" in table.stdout


def test_minimize_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "loss.png"
    result = run("minimize", "(x - 3)^2", "--params", "x", "--x", "0", "--steps", "20",
                 "--lr", "0.1", "--plot", str(path))  # fmt: skip
    assert result.exit_code == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".loss.png.*"))  # no temporary file left behind


def test_minimize_without_matplotlib_says_how_to_get_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    result = run("minimize", "x^2", "--params", "x", "--x", "1", "--plot", "l.png")
    assert result.exit_code == 2 and "pip install 'gradcli[plot]'" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["x^2", "--params", "y", "--x", "1"], "y is not a variable of the program"),
        (["x^2", "--x", "1"], "--params names no variable"),
        (["x^2", "--params", "x", "--x", "1", "--optimizer", "sgd"], "unknown optimizer"),
        (["x^2", "--params", "x"], "missing value for x"),
    ],
)
def test_minimize_usage_errors(args, needle):
    result = run("minimize", *args)
    assert result.exit_code == 2 and needle in result.stderr


def test_minimize_ctrl_c_from_the_command_line_prints_the_best_so_far(monkeypatch):
    import gradcli.evaluation.minimize as train

    real = train.evaluate
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", interrupted)
    result = run("minimize", "(x - 3)^2", "--params", "x", "--x", "0", "--optimizer", "gd",
                 "--lr", "0.1", "--json")  # fmt: skip
    doc = strict(result.stdout)
    assert result.exit_code == 130 and doc["stopped"] == "interrupted"
    assert len(doc["history"]) == 3 and math.isclose(doc["best_loss"], min(doc["history"]))


# --- value files that raised before (found by tests/test_fuzz.py) ----------------------------


def _npy_bytes() -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    np.save(buffer, np.arange(6.0).reshape(2, 3))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.npy", b"", "not a numeric .npy array"),  # EOFError
        ("cut.npy", _npy_bytes()[:60], "not a numeric .npy array"),  # ValueError
        # the header's dictionary cut short: tokenize.TokenError
        ("header.npy", _npy_bytes().replace(b"(2, 3), }", b"(2, 3 , }"), "not a numeric .npy"),
        # a header promising 240 TB (MemoryError when it was read, not mapped)
        ("huge.npy", _npy_bytes().replace(b"(2, 3)", b"(10000000000000, 3)"), ".npy"),
        ("latin1.csv", "1,2\n3,é\n".encode("latin-1"), "cannot read"),  # UnicodeDecodeError
        ("latin1.json", "[1, 2] é".encode("latin-1"), "cannot read"),
    ],
)
def test_unreadable_value_files_are_clear_errors(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    result = run("eval", "sum(x)", "--x", f"@{path}")
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_a_nul_in_the_path_of_a_value_file_is_a_clear_error():
    """Only a check file can give one (argv cannot hold a NUL): ValueError before."""
    from gradcli.language.source import GradcliError

    with pytest.raises(GradcliError, match="embedded null byte"):
        load_file("\0.csv", "x")
