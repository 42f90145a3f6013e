"""`gradcli check`: expressions at a point or on a sample, check files, their discovery, and the
machine-readable outputs (strict JSON, JUnit XML, GitHub annotations) with their exit codes."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcli.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
GRADCLI = shutil.which("gradcli", path=str(Path(sys.executable).parent))
runner = CliRunner()

TUTORIAL = ("x*y + x/y", "--x", "5", "--y", "2")  # ∂/∂x = y + 1/y = 2.5, ∂/∂y = x - x/y² = 3.75


# --- helpers ----------------------------------------------------------------------------------


def check(*args: str):
    return runner.invoke(app, ["check", *args])


def strict_json(text: str):
    """Parse as RFC 8259 JSON: NaN, Infinity and -Infinity are not JSON."""

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def check_json(*args: str, code: int = 0) -> dict:
    """Run `gradcli check ARGS --json`, assert its exit code, return the parsed document."""
    result = check(*args, "--json")
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    doc = strict_json(result.stdout)
    assert set(doc) == {"summary", "records", "errors"}
    assert doc["summary"]["exit_code"] == code
    return doc


def records(doc: dict, kind: str = "autograd", case: str | None = None) -> dict[str, dict]:
    """The records of one kind (autograd, hand-derived), by variable."""
    return {
        r["variable"]: r
        for r in doc["records"]
        if r["kind"] == kind and (case is None or r["case"] == case)
    }


def assert_usage_error(result, *fragments: str) -> None:
    """Exit 2, nothing on stdout, and a message on stderr containing every fragment."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def assert_tolerance_rule(rec: dict, rtol: float, atol: float = 0.0) -> None:
    """tolerance = atol + rtol·|r| + 4·e, give or take a rounding term of order ε·|g|."""
    r = abs(rec["reference"])
    rule = atol + rtol * r + 4 * rec["error_estimate"]
    assert rule * (1 - 1e-12) <= rec["tolerance"] <= rule + 1e-12 * (1 + r), (rec, rule)


def detail_rows(stdout: str) -> dict[str, list[str]]:
    """The rows of the per-variable table (one case in full), by label: ∂f/∂x, … ."""
    rows = {}
    for line in stdout.splitlines():
        if line.lstrip().startswith("∂"):
            cells = re.split(r"\s{2,}", line.strip())
            rows[cells[0]] = cells[1:]
    return rows


def summary_rows(stdout: str) -> dict[str, list[str]]:
    """The rows of the files-mode table, by case name: [where, variables, points, result]."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 5 and cells[0] != "case":
            rows[cells[0]] = cells[1:]
    return rows


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """The 1-based number of the line of `path` where `needle` occurs for the n-th time."""
    hits = [n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def annotations(stdout: str) -> list[tuple[dict[str, str], str]]:
    """GitHub `::error k=v,k=v::message` lines as (properties, message)."""
    out = []
    for line in stdout.splitlines():
        assert line.startswith("::error "), line
        props, sep, message = line[len("::error ") :].partition("::")
        assert sep, line
        out.append((dict(p.split("=", 1) for p in props.split(",")), message))
    return out


def pointer(stderr: str) -> tuple[str, int, int, str, int]:
    """From a located error: file, line, column, the file line shown, the caret's index in it."""
    where = re.search(r"^\s*--> (.+):(\d+):(\d+)$", stderr, re.M)
    shown = re.search(r"^(\d+) \| (.*)$", stderr, re.M)
    caret = re.search(r"^ +\| ( *)\^", stderr, re.M)
    assert where and shown and caret, stderr
    assert int(shown.group(1)) == int(where.group(2))
    return (
        where.group(1),
        int(where.group(2)),
        int(where.group(3)),
        shown.group(2),
        len(caret.group(1)),
    )


# --- ad hoc: an expression at a point ---------------------------------------------------------


def test_expression_at_a_point_passes_with_a_table():
    result = check(*TUTORIAL)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "x*y + x/y  at x = 5.0, y = 2.0" in result.stdout
    rows = detail_rows(result.stdout)
    assert set(rows) == {"∂f/∂x", "∂f/∂y"}
    assert rows["∂f/∂x"][0] == "2.5" and rows["∂f/∂x"][-1] == "pass"
    assert rows["∂f/∂y"][0] == "3.75" and rows["∂f/∂y"][-1] == "pass"


def test_expression_json_is_strict_with_summary_and_a_record_per_variable():
    doc = check_json(*TUTORIAL)
    summary = doc["summary"]
    assert {k: summary[k] for k in ("files", "cases", "passed", "failed", "errors")} == {
        "files": 0,
        "cases": 1,
        "passed": 1,
        "failed": 0,
        "errors": 0,
    }
    assert summary["verdicts"] == {"pass": 2}
    assert doc["errors"] == []
    recs = records(doc)
    assert set(recs) == {"x", "y"} and len(doc["records"]) == 2
    for name, expected in (("x", 2.5), ("y", 3.75)):
        rec = recs[name]
        assert rec["autograd"] == expected
        assert rec["reference"] == pytest.approx(expected, rel=1e-12)
        assert rec["verdict"] == "pass" and rec["passed"] is True
        assert rec["method"] == "complex"  # auto: every node x and y reach is analytic
        assert rec["file"] is None and rec["line"] is None and rec["case"] == "x*y + x/y"
        assert rec["point"] == {"x": 5.0, "y": 2.0} and rec["points"] == 1
        assert rec["left"] is None and rec["right"] is None and rec["message"] is None
        assert_tolerance_rule(rec, rtol=1e-7)


def test_format_json_is_the_same_as_json():
    result = check(*TUTORIAL, "--format", "json")
    assert result.exit_code == 0
    assert strict_json(result.stdout)["summary"]["passed"] == 1


@pytest.mark.parametrize("method", ["forward", "central", "richardson", "complex"])
def test_method_is_used_and_reported(method):
    recs = records(check_json(*TUTORIAL, "--method", method))
    for name, expected in (("x", 2.5), ("y", 3.75)):
        assert recs[name]["method"] == method
        assert recs[name]["how"] == method
        assert recs[name]["verdict"] == "pass"
        assert recs[name]["reference"] == pytest.approx(expected, rel=1e-6)
        assert abs(recs[name]["reference"] - expected) <= recs[name]["tolerance"]


def test_dtype_float32_uses_its_own_epsilon_and_rtol():
    f64 = records(check_json(*TUTORIAL))
    f32 = records(check_json(*TUTORIAL, "--dtype", "float32"))
    eps32 = float(np.finfo(np.float32).eps)
    for name, x in (("x", 5.0), ("y", 2.0)):
        rec = f32[name]
        assert rec["verdict"] == "pass" and rec["method"] == "complex"
        assert rec["reference"] == pytest.approx(f64[name]["reference"], rel=1e-5)
        # complex step: h = ε^(5/4)·min(1, |x|), rounded down to a power of two
        h = eps32**1.25 * min(1.0, x)
        assert h / 2 < rec["step"] <= h
        assert rec["step"] > 1e6 * f64[name]["step"]
        assert rec["tolerance"] >= 1e-3 * abs(rec["reference"])  # float32's default rtol


def test_eps_sets_the_step_coefficient():
    recs = records(check_json(*TUTORIAL, "--method", "central", "--eps", "1e-4"))
    for name, x in (("x", 5.0), ("y", 2.0)):
        h = 1e-4 * max(1.0, x)  # h = c·max(1, |x|), down to a power of two
        assert h / 2 < recs[name]["step"] <= h
        assert recs[name]["verdict"] == "pass"


@pytest.mark.parametrize(
    ("options", "rtol", "atol"),
    [
        ((), 1e-7, 0.0),
        (("--rtol", "1e-3"), 1e-3, 0.0),
        (("--atol", "0.5"), 1e-7, 0.5),
        (("--rtol", "1e-3", "--atol", "0.5"), 1e-3, 0.5),
    ],
)
def test_rtol_and_atol_set_the_tolerance(options, rtol, atol):
    recs = records(check_json(*TUTORIAL, *options))
    for rec in recs.values():
        assert_tolerance_rule(rec, rtol, atol)


def test_rtol_and_atol_shift_the_tolerance_exactly():
    base = records(check_json(*TUTORIAL))
    wide = records(check_json(*TUTORIAL, "--rtol", "1e-3", "--atol", "0.5"))
    for name in ("x", "y"):
        r = abs(base[name]["reference"])
        shift = wide[name]["tolerance"] - base[name]["tolerance"]
        assert shift == pytest.approx(0.5 + (1e-3 - 1e-7) * r, rel=1e-9)


def test_wrt_checks_only_the_named_variables():
    doc = check_json(*TUTORIAL, "--wrt", "y")
    assert list(records(doc)) == ["y"]


SAMPLED = ("log(x)*y", "--samples", "200", "--domain", "x=0.1:10", "--domain", "y=-3:3")


def test_samples_are_reproducible_for_a_seed():
    first = check_json(*SAMPLED, "--seed", "1")
    again = check_json(*SAMPLED, "--seed", "1")
    other = check_json(*SAMPLED, "--seed", "2")
    for name in ("x", "y"):
        a, b, c = (records(d)[name] for d in (first, again, other))
        assert a["points"] == 200 and a["counts"] == {"pass": 200}
        assert a["point"] == b["point"] and a["point_index"] == b["point_index"]
        assert a["point"] != c["point"]
        assert 0.1 <= a["point"]["x"] <= 10 and -3 <= a["point"]["y"] <= 3
    assert first["summary"]["verdicts"] == {"pass": 400}


def test_table_of_a_sample_says_how_many_points():
    result = check(*SAMPLED, "--seed", "1")
    assert result.exit_code == 0
    assert "log(x)*y  at 200 points (the worst is shown)" in result.stdout
    assert {row[-1] for row in detail_rows(result.stdout).values()} == {"pass"}


def test_log_domain_draws_log_uniformly():
    doc = check_json("log(x)", "--samples", "200", "--seed", "4", "--domain", "x=1e-3:1e3:log")
    rec = records(doc)["x"]
    assert rec["points"] == 200 and rec["verdict"] == "pass"
    # the one variable drawn: exp(uniform(log lo, log hi)) from the seed's generator
    xs = np.exp(np.random.default_rng(4).uniform(np.log(1e-3), np.log(1e3), 200))
    assert rec["point"]["x"] == pytest.approx(xs[rec["point_index"]], rel=1e-12)
    linear = check_json("log(x)", "--samples", "200", "--seed", "4", "--domain", "x=1e-3:1e3")
    assert records(linear)["x"]["point"] != rec["point"]


def test_a_point_on_a_kink_is_not_differentiable_and_passes():
    result = check("relu(x)*y", "--x", "0", "--y", "3")
    assert result.exit_code == 0, result.stderr
    rows = detail_rows(result.stdout)
    assert rows["∂f/∂x"][-1] == "not differentiable"
    assert rows["∂f/∂x"][1] == "0 … 3"  # left … right derivative
    assert rows["∂f/∂y"][-1] == "pass"
    assert "left derivative 0, right derivative 3" in result.stdout

    doc = check_json("relu(x)*y", "--x", "0", "--y", "3")
    rec = records(doc)["x"]
    assert rec["verdict"] == "not differentiable" and rec["passed"] is True
    assert (rec["left"], rec["right"], rec["autograd"]) == (0.0, 3.0, 0.0)
    assert doc["summary"]["verdicts"] == {"not differentiable": 1, "pass": 1}


# ∂/∂x is inf, then inf·0 = nan (a factor that is 0 here, not the constant 0, whose path is
# no path: sqrt(x)*0 is 0 wherever it is defined, and its derivative 0)
@pytest.mark.parametrize("expr", ["sqrt(x)", "sqrt(x)*(x - x)"])
def test_a_non_finite_gradient_fails_with_exit_1(expr):
    result = check(expr, "--x", "0")
    assert result.exit_code == 1
    assert detail_rows(result.stdout)["∂f/∂x"][-1] == "non-finite"
    doc = check_json(expr, "--x", "0", code=1)
    rec = records(doc)["x"]
    assert rec["verdict"] == "non-finite" and rec["passed"] is False
    assert rec["autograd"] is None  # JSON has no inf or nan
    assert "sqrt(x)" in rec["message"]
    assert doc["summary"]["failed"] == 1


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("x*y", "--x", "5"), ["missing value for y"]),
        (("x*y", "--x", "5", "--y", "2", "--domain", "x=0:1"), ["--domain needs --samples"]),
        (
            ("x*y", "--samples", "9", "--domain", "x=1:0", "--domain", "y=0:1"),
            ["--domain x=1:0", "lo < hi"],
        ),
        (("x*y", "--samples", "9", "--domain", "x=-1:1:log", "--domain", "y=0:1"), ["log"]),
        (("x*y", "--samples", "9", "--domain", "x", "--domain", "y=0:1"), ["NAME=LO:HI"]),
        (
            ("x*y", "--samples", "9", "--domain", "x=0:1", "--domain", "z=0:1"),
            ["z is not a variable"],
        ),
        ((*TUTORIAL, "--method", "fancy"), ["unknown method 'fancy'", "richardson"]),
        ((*TUTORIAL, "--format", "xml"), ["unknown format 'xml'", "github"]),
        ((*TUTORIAL, "--dtype", "float16"), ["unknown dtype 'float16'"]),
        (("x*y", "--samples", "9", "--domain", "x=0:1"), ["no value or domain for y"]),
        ((*TUTORIAL, "--sample", "10"), ["unknown option --sample", "did you mean --samples?"]),
        ((*TUTORIAL, "--jsn"), ["unknown option --jsn", "did you mean --json?"]),
        ((*TUTORIAL, "--x", "1"), ["x is given more than once"]),
        ((*TUTORIAL, "--samples", "0"), ["--samples"]),
        (("x*y +", "--x", "1", "--y", "2"), ["expected an expression"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_usage_errors_exit_2_with_a_message_on_stderr(args, fragments):
    assert_usage_error(check(*args), *fragments)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_eps_zero_is_a_usage_error():
    assert_usage_error(check(*TUTORIAL, "--eps", "0"), "eps")


# --- check files ------------------------------------------------------------------------------

GOOD = """
    # defaults for every case, overridden per case
    method = "richardson"
    rtol = 1e-6

    [[case]]
    name = "tutorial, formulas"
    expr = "x*y + x/y"
    at = { x = 5, y = 2 }
    value = 12.5
    grad = { x = "y + 1/y", y = "x - x/y^2" }
    method = "complex"

    [[case]]
    name = "tutorial, numbers"
    expr = "x*y + x/y"
    at = { x = 5, y = 2 }
    grad = { x = 2.5, y = 3.75 }

    [[case]]
    name = "program on a sample"
    program = "models/model.grad"
    sample = { n = 50, seed = 1, domains = { x = "-2:2", y = [1, 3] } }
    grad = { x = "2*x*cos(x^2)*y", y = "sin(x^2)" }
    rtol = 1e-5
"""

MODEL = """
    # a program: a = x², then sin(a)·y
    a = x^2
    sin(a) * y
"""


@pytest.fixture
def good_file(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "models" / "model.grad", MODEL)
    return write(tmp_path / "good.grad.toml", GOOD)


def test_a_correct_check_file_passes(good_file):
    result = check("good.grad.toml")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stderr == ""
    rows = summary_rows(result.stdout)
    assert rows == {
        "tutorial, formulas": [
            f"good.grad.toml:{line_of(good_file, '[[case]]', 1)}",
            "x, y",
            "1",
            "passed",
        ],
        "tutorial, numbers": [
            f"good.grad.toml:{line_of(good_file, '[[case]]', 2)}",
            "x, y",
            "1",
            "passed",
        ],
        "program on a sample": [
            f"good.grad.toml:{line_of(good_file, '[[case]]', 3)}",
            "x, y",
            "50",
            "passed",
        ],
    }
    assert "3 cases: 3 passed, 0 failed, 0 errors" in result.stdout


def test_a_correct_check_file_in_json(good_file):
    doc = check_json("good.grad.toml")
    summary = doc["summary"]
    counts = (summary["files"], summary["cases"], summary["passed"], summary["failed"])
    assert counts == (1, 3, 3, 0)
    assert all(r["passed"] and r["file"] == "good.grad.toml" for r in doc["records"])

    formulas = "tutorial, formulas"
    for kind in ("autograd", "hand-derived"):
        recs = records(doc, kind, formulas)
        assert set(recs) == {"x", "y"}
        for rec in recs.values():
            assert rec["method"] == "complex"  # the case's method beats the file's
            assert rec["line"] == line_of(good_file, "[[case]]", 1)
            assert_tolerance_rule(rec, rtol=1e-6)  # the file's rtol
    hand = records(doc, "hand-derived", formulas)
    assert (hand["x"]["expected"], hand["y"]["expected"]) == (2.5, 3.75)
    assert "autograd" not in hand["x"]
    (value,) = [r for r in doc["records"] if r["kind"] == "value"]
    assert (value["case"], value["expected"], value["actual"], value["verdict"]) == (
        formulas,
        12.5,
        12.5,
        "pass",
    )

    numbers = records(doc, "hand-derived", "tutorial, numbers")
    assert (numbers["x"]["expected"], numbers["y"]["expected"]) == (2.5, 3.75)
    assert {r["method"] for r in numbers.values()} == {"richardson"}  # the file's method

    sampled = records(doc, "hand-derived", "program on a sample")
    for rec in sampled.values():
        assert rec["points"] == 50 and rec["counts"] == {"pass": 50}
        assert rec["method"] == "richardson"
        assert_tolerance_rule(rec, rtol=1e-5)  # the case's rtol beats the file's
        assert -2 <= rec["point"]["x"] <= 2 and 1 <= rec["point"]["y"] <= 3
    x, y = sampled["x"]["point"]["x"], sampled["x"]["point"]["y"]
    assert sampled["x"]["expected"] == pytest.approx(2 * x * math.cos(x**2) * y, rel=1e-12)


BAD = """
    [[case]]
    name = "correct"
    expr = "x^2"
    at = { x = 3 }
    grad = { x = "2*x" }

    [[case]]
    name = "wrong by hand"
    expr = "x*y + x/y"
    at = { x = 5, y = 2 }
    grad = { x = "y - 1/y", y = "x - x/y^2" }

    [[case]]
    name = "wrong value"
    expr = "x^2"
    at = { x = 3 }
    value = 10
"""


@pytest.fixture
def bad_file(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write(tmp_path / "bad.grad.toml", BAD)


def test_a_wrong_hand_derived_gradient_fails_naming_case_variable_file_and_line(bad_file):
    result = check("bad.grad.toml")
    assert result.exit_code == 1, result.stdout + result.stderr
    line = line_of(bad_file, "[[case]]", 2)
    rows = summary_rows(result.stdout)
    assert rows["correct"][-1] == "passed"
    assert rows["wrong by hand"] == [f"bad.grad.toml:{line}", "x, y", "1", "failed"]
    assert rows["wrong value"][-1] == "failed"
    assert f"wrong by hand  (bad.grad.toml:{line})" in result.stdout
    details = detail_rows(result.stdout)
    assert details["∂f/∂x (hand-derived)"][:2] == ["1.5", "2.5"]
    assert details["∂f/∂x (hand-derived)"][-1] == "fail"
    assert "3 cases: 1 passed, 2 failed, 0 errors" in result.stdout


def test_a_wrong_hand_derived_gradient_in_json(bad_file):
    doc = check_json("bad.grad.toml", code=1)
    assert (doc["summary"]["passed"], doc["summary"]["failed"]) == (1, 2)
    hand = records(doc, "hand-derived", "wrong by hand")
    rec = hand["x"]
    assert (rec["file"], rec["line"], rec["variable"]) == (
        "bad.grad.toml",
        line_of(bad_file, "[[case]]", 2),
        "x",
    )
    assert rec["verdict"] == "fail" and rec["passed"] is False
    assert rec["expected"] == 1.5 and rec["reference"] == pytest.approx(2.5)
    assert "hand-derived" in rec["message"]
    assert hand["y"]["verdict"] == "pass"
    assert all(r["passed"] for r in records(doc, "autograd", "wrong by hand").values())
    (value,) = [r for r in doc["records"] if r["kind"] == "value"]
    assert (value["case"], value["verdict"], value["expected"], value["actual"]) == (
        "wrong value",
        "fail",
        10.0,
        9.0,
    )


ERROR_CASES = {
    "unknown key": (
        """
        [[case]]
        name = "a"
        expr = "x^2"
        at = { x = 1 }
        grads = { x = "2*x" }
        """,
        "grads =",
        "grads",
        ["unknown key 'grads'", "did you mean 'grad'?"],
    ),
    "unknown key at the top": (
        """
        methd = "central"

        [[case]]
        name = "a"
        expr = "x^2"
        at = { x = 1 }
        """,
        "methd",
        "methd",
        ["unknown key 'methd'", "did you mean 'method'?"],
    ),
    "missing name": (
        """
        [[case]]
        expr = "x^2"
        at = { x = 1 }
        """,
        "[[case]]",
        None,
        ["every case needs a name"],
    ),
    "expr and program": (
        """
        [[case]]
        name = "a"
        expr = "x^2"
        program = "model.grad"
        at = { x = 1 }
        """,
        "[[case]]",
        None,
        ["exactly one of expr and program"],
    ),
    "variable without value or domain": (
        """
        [[case]]
        name = "a"
        expr = "x*y"
        at = { x = 1 }
        """,
        "at =",
        "at",
        ["no value for y", "domain"],
    ),
    "value with sample": (
        """
        [[case]]
        name = "a"
        expr = "x^2"
        sample = { n = 5, domains = { x = "0:1" } }
        value = 3
        """,
        "value =",
        "value",
        ["expected value needs fixed points"],
    ),
    "grad for a non-variable": (
        """
        [[case]]
        name = "a"
        expr = "x^2"
        at = { x = 1 }
        grad = { z = "2" }
        """,
        "grad =",
        "grad",
        ["grad names z", "not a variable"],
    ),
    "bad domain": (
        """
        [[case]]
        name = "a"
        expr = "x^2"
        sample = { n = 5, domains = { x = "1:0" } }
        """,
        "sample =",
        "sample",
        ["domain of x", "lo < hi"],
    ),
    "bad method": (
        """
        [[case]]
        name = "a"
        expr = "x^2"
        at = { x = 1 }
        method = "fancy"
        """,
        "method =",
        "method",
        ["method must be one of", "'fancy'"],
    ),
    "missing program": (
        """
        [[case]]
        name = "a"
        program = "missing.grad"
        at = { x = 1 }
        """,
        "program =",
        "program",
        ["cannot read the program missing.grad"],
    ),
    "two cases with one name": (
        """
        [[case]]
        name = "a"
        expr = "x^2"
        at = { x = 1 }

        [[case]]
        name = "a"
        expr = "x^3"
        at = { x = 1 }
        """,
        "[[case]]",
        "name",
        ["two cases are named 'a'"],
    ),
    "invalid TOML": (
        """
        # a comment
        [[case]]
        name = "a"
        expr = "x^2
        at = { x = 1 }
        """,
        'expr = "x^2',
        None,
        ["not valid TOML", "line 4"],
    ),
}


@pytest.mark.parametrize(
    ("text", "needle", "key", "fragments"), ERROR_CASES.values(), ids=ERROR_CASES
)
def test_mistakes_in_check_files_exit_2_with_file_line_and_key(
    tmp_path, monkeypatch, text, needle, key, fragments
):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "case.grad.toml", text)
    line = line_of(path, needle)

    result = check("case.grad.toml")
    assert result.exit_code == 2, result.stdout + result.stderr
    where = f"case.grad.toml:{line}" + (f" ({key})" if key else ":")
    assert where in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr

    doc = check_json("case.grad.toml", code=2)
    assert doc["summary"]["errors"] == 1
    (error,) = doc["errors"]
    assert (error["file"], error["line"], error.get("key")) == ("case.grad.toml", line, key)


def test_one_broken_case_does_not_stop_the_others(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "mixed.grad.toml",
        """
        [[case]]
        name = "fine"
        expr = "x^2"
        at = { x = 1 }

        [[case]]
        name = "broken"
        expr = "x^2"
        """,
    )
    doc = check_json("mixed.grad.toml", code=2)
    summary = doc["summary"]
    assert (summary["cases"], summary["passed"], summary["errors"]) == (1, 1, 1)
    assert doc["errors"][0]["message"].endswith("no value for x")


PARSE_ERRORS = {  # the lines between `name` and `at`; where the error is; the character there
    "expr": ('expr = "x * (y + )"', "expr = ", ")"),
    "grad formula in an inline table": (
        'expr = "x*y"\ngrad = { x = "y", y = "x +" }',
        "grad = ",
        '"',  # the end of the formula: its closing quote
    ),
    "multi-line expr": ('expr = """\nx^2 +\n  (y + )"""', "(y + )", ")"),
    "unicode before the mistake": ('expr = "θ² + (y + )"', "expr = ", ")"),
}


@pytest.mark.parametrize(("body", "needle", "char"), PARSE_ERRORS.values(), ids=PARSE_ERRORS)
def test_a_parse_error_in_a_formula_points_at_the_file(tmp_path, monkeypatch, body, needle, char):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "case.grad.toml"
    path.write_text(f'[[case]]\nname = "a"\n{body}\nat = {{ x = 1, y = 2 }}\n', encoding="utf-8")
    result = check("case.grad.toml")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stdout == ""  # nothing ran: only the error, on stderr
    file, line, column, shown, caret = pointer(result.stderr)
    file_line = path.read_text().splitlines()[line - 1]
    assert (file, line) == ("case.grad.toml", line_of(path, needle))
    assert needle in shown and file_line.startswith(shown)  # the file's line, not the formula's
    assert caret == column - 1
    assert file_line[caret] == char
    assert file_line.rfind(char) == caret  # the last one on the line, for these mistakes

    (error,) = check_json("case.grad.toml", code=2)["errors"]
    assert (error["file"], error["line"], error["column"]) == ("case.grad.toml", line, column)


def test_a_parse_error_in_a_later_case(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path / "case.grad.toml",
        """
        [[case]]
        name = "a"
        expr = "x^2"
        at = { x = 1 }

        [[case]]
        name = "b"
        expr = "x^^2"
        at = { x = 1 }
        """,
    )
    result = check("case.grad.toml")
    file, line, column, shown, caret = pointer(result.stderr)
    assert (file, line, column) == ("case.grad.toml", line_of(path, "x^^2"), 11)
    assert shown[caret:] == '^2"'


def test_a_parse_error_in_a_program_points_at_the_program(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "sub" / "model.grad", "a = x^2\nb = (a + )\nb\n")
    write(
        tmp_path / "sub" / "case.grad.toml",
        """
        [[case]]
        name = "a"
        program = "model.grad"
        at = { x = 1 }
        """,
    )
    result = check("sub")
    assert result.exit_code == 2
    file, line, column, shown, caret = pointer(result.stderr)
    assert (file, line, column, shown) == (str(Path("sub", "model.grad")), 2, 10, "b = (a + )")
    assert shown[caret] == ")"


def test_a_parse_error_after_an_escape_sequence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path / "case.grad.toml",
        r"""
        [[case]]
        name = "a"
        expr = "x *\t(y + )"
        at = { x = 1, y = 2 }
        """,
    )
    _, line, column, shown, caret = pointer(check("case.grad.toml").stderr)
    assert line == line_of(path, "expr =")
    assert shown[caret] == ")" and column == shown.index(")") + 1  # got column 10: the space


def test_a_parse_error_in_a_grad_subtable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path / "case.grad.toml",
        """
        [[case]]
        name = "a"
        expr = "x^2"
        [case.at]
        x = 1
        [case.grad]
        x = "2*x +"
        """,
    )
    _, line, _, shown, _ = pointer(check("case.grad.toml").stderr)
    assert (line, shown) == (line_of(path, "2*x +"), 'x = "2*x +"')  # got line 5, `x = 1`


def test_an_unknown_key_in_sample_is_on_the_sample_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path / "case.grad.toml",
        """
        [[case]]
        name = "a"
        expr = "x^2"
        sample = { n = 5, sed = 1, domains = { x = "0:1" } }
        """,
    )
    result = check("case.grad.toml")
    assert "unknown key 'sed' in sample" in result.stderr
    assert "did you mean 'seed'?" in result.stderr
    assert f"case.grad.toml:{line_of(path, 'sample =')}" in result.stderr  # got :1, the header


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (("--x=1",), ["variables are given in check files"]),
        (("--domain", "x=0:1"), ["--domain is for an expression"]),
        (("--wrt", "x"), ["--wrt is for an expression"]),
        (("--jsn",), ["unknown option --jsn", "did you mean --json?"]),
    ],
)
def test_expression_options_with_check_files_are_usage_errors(bad_file, extra, fragments):
    assert_usage_error(check("bad.grad.toml", *extra), *fragments)


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (("--x", "1"), ["variables are given in check files"]),  # got: parse error in the path
        (("--var", "x=1"), ["variables are given in check files"]),  # got: did you mean --var?
        (("--sampels", "3"), ["did you mean --samples?"]),  # got: parse error in the path
    ],
)
def test_variables_with_check_files_are_explained(bad_file, extra, fragments):
    assert_usage_error(check("bad.grad.toml", *extra), *fragments)


def test_a_missing_path_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in ("nowhere.grad.toml", "nowhere/"):
        result = check(path)
        assert result.exit_code == 2
        assert f"no such file or folder: {path}" in result.stderr
        assert result.stdout == ""


def test_nothing_collected_exits_5(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    result = check("empty")
    assert result.exit_code == 5
    assert "nothing collected" in result.stdout
    doc = check_json("empty", code=5)
    assert (doc["summary"]["files"], doc["summary"]["cases"], doc["records"]) == (0, 0, [])
    assert check().exit_code == 5  # no path, no pyproject.toml, an empty folder


# --- discovery --------------------------------------------------------------------------------

OK_CASE = """
    [[case]]
    name = "{name}"
    expr = "x^2"
    at = {{ x = 3 }}
    grad = {{ x = "2*x" }}
"""
BROKEN = """
    [[case]]
    nme = "broken"
"""


def collected(*args: str) -> list[tuple[str, str]]:
    doc = check_json(*args)
    return sorted({(r["file"], r["case"]) for r in doc["records"]})


def test_a_folder_is_searched_recursively(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "checks" / "a.grad.toml", OK_CASE.format(name="a"))
    write(tmp_path / "checks" / "deep" / "er" / "b.grad.toml", OK_CASE.format(name="b"))
    write(tmp_path / "checks" / "not-a-check.toml", BROKEN)
    write(tmp_path / "checks" / "model.grad", "x^2")
    expected = [("checks/a.grad.toml", "a"), ("checks/deep/er/b.grad.toml", "b")]
    assert collected("checks") == expected
    assert collected("checks/") == expected
    assert collected("checks/deep") == [("checks/deep/er/b.grad.toml", "b")]
    assert collected("checks/a.grad.toml", "checks/deep") == expected
    assert check_json("checks")["summary"]["files"] == 2


def test_without_paths_pyproject_names_the_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pyproject.toml", '[tool.gradcli]\npaths = ["checks", "more/one.grad.toml"]\n')
    write(tmp_path / "checks" / "a.grad.toml", OK_CASE.format(name="a"))
    write(tmp_path / "more" / "one.grad.toml", OK_CASE.format(name="one"))
    write(tmp_path / "more" / "two.grad.toml", BROKEN)  # not named: not read
    write(tmp_path / "elsewhere" / "x.grad.toml", BROKEN)
    assert collected() == [("checks/a.grad.toml", "a"), ("more/one.grad.toml", "one")]


def test_pyproject_paths_that_do_not_exist_are_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pyproject.toml", '[tool.gradcli]\npaths = ["gone"]\n')
    result = check()
    assert result.exit_code == 2
    assert "no such file or folder: gone" in result.stderr


def test_without_paths_or_config_the_current_folder_is_searched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pyproject.toml", '[project]\nname = "other"\n')  # no [tool.gradcli]
    write(tmp_path / "top.grad.toml", OK_CASE.format(name="top"))
    write(tmp_path / "tests" / "t.grad.toml", OK_CASE.format(name="t"))
    assert collected() == [("tests/t.grad.toml", "t"), ("top.grad.toml", "top")]


SKIPPED = {
    ".git": None,
    ".hidden": None,
    "node_modules": None,
    "venv": "pyvenv.cfg",  # a virtual environment, whatever its name
    "build/env": "pyvenv.cfg",
    "__pycache__": None,
}


@pytest.mark.parametrize(("folder", "marker"), SKIPPED.items(), ids=SKIPPED)
def test_discovery_skips_vcs_hidden_node_modules_and_virtual_envs(
    tmp_path, monkeypatch, folder, marker
):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "top.grad.toml", OK_CASE.format(name="top"))
    write(tmp_path / folder / "nested" / "broken.grad.toml", BROKEN)
    if marker:
        (tmp_path / folder / marker).write_text("home = /usr/bin\n")
    assert collected() == [("top.grad.toml", "top")]
    assert collected(".") == [("top.grad.toml", "top")]
    # the skipped file is really broken: named explicitly, it is read and fails
    result = check(str(Path(folder, "nested", "broken.grad.toml")))
    assert result.exit_code == 2 and "unknown key 'nme'" in result.stderr


# --- outputs: JUnit XML and GitHub annotations ------------------------------------------------


def test_junit_xml_is_written_even_when_the_run_fails(bad_file):
    result = check("bad.grad.toml", "--junit-xml", "report.xml")
    assert result.exit_code == 1
    root = ET.parse("report.xml").getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "2", "0")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "bad.grad.toml"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == ["correct", "wrong by hand", "wrong value"]
    assert cases["correct"].find("failure") is None
    wrong = cases["wrong by hand"]
    failure = wrong.find("failure")
    assert failure is not None
    where = f"bad.grad.toml:{line_of(bad_file, '[[case]]', 2)}: "
    assert failure.get("message").startswith(where + "∂f/∂x (hand-derived): fail: got 1.5, ref")
    assert_junit_10(root)
    assert "disagrees with the finite-difference reference" in failure.text
    assert "value: expected 10.0, got 9.0" in cases["wrong value"].find("failure").text


def assert_junit_10(root: ET.Element) -> None:
    """The rules of the Jenkins junit-10 schema (xunit-plugin's junit-10.xsd) that a report must
    keep: which attributes each element may have, which are required, which children it holds,
    and the number format of `time`."""
    time = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")
    allowed = {
        "testsuites": ({"name", "time", "tests", "failures", "errors"}, set()),
        "testsuite": (
            {
                "name",
                "tests",
                "failures",
                "errors",
                "group",
                "time",
                "skipped",
                "timestamp",
                "hostname",
                "id",
                "package",
                "file",
                "log",
                "url",
            },
            {"name", "tests", "failures", "errors"},
        ),
        "testcase": ({"name", "time", "classname", "group"}, {"name"}),
        "failure": ({"type", "message"}, set()),
        "error": ({"type", "message"}, set()),
    }
    children = {
        "testsuites": {"testsuite"},
        "testsuite": {"testsuite", "properties", "testcase", "system-out", "system-err"},
        "testcase": {"skipped", "error", "failure", "system-out", "system-err"},
        "failure": set(),
        "error": set(),
    }
    assert root.tag == "testsuites"
    for element in root.iter():
        names, required = allowed[element.tag]
        assert set(element.attrib) <= names, (element.tag, element.attrib)
        assert required <= set(element.attrib), (element.tag, element.attrib)
        assert {child.tag for child in element} <= children[element.tag]
        if "time" in element.attrib:
            assert time.fullmatch(element.get("time")), element.get("time")


def test_junit_xml_counts_broken_files_as_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bad.grad.toml", BAD)
    write(tmp_path / "broken.grad.toml", BROKEN)
    (tmp_path / "out").mkdir()
    result = check("bad.grad.toml", "broken.grad.toml", "--junit-xml", "out/report.xml")
    assert result.exit_code == 2
    root = ET.parse(tmp_path / "out" / "report.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "2", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    (broken,) = suites["check files"].findall("testcase")
    assert broken.get("name") == "broken.grad.toml:2"
    assert "unknown key 'nme'" in broken.find("error").get("message")
    assert_junit_10(root)


def test_junit_xml_for_an_expression(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check(*TUTORIAL, "--junit-xml", "ok.xml").exit_code == 0
    root = ET.parse("ok.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "0", "0")
    (case,) = root.iter("testcase")
    assert case.get("name") == "x*y + x/y" and len(case) == 0
    assert_junit_10(root)


def test_junit_xml_into_a_missing_folder_makes_it_as_pytest_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = check(*TUTORIAL, "--junit-xml", "missing/deeper/report.xml")
    assert result.exit_code == 0
    assert ET.parse(tmp_path / "missing" / "deeper" / "report.xml").getroot().get("tests") == "1"
    (tmp_path / "file").write_text("not a folder")
    result = check(*TUTORIAL, "--junit-xml", "file/report.xml")  # a parent that cannot be made
    assert result.exit_code == 2
    assert "cannot write file/report.xml" in result.stderr
    assert (tmp_path / "file").read_text() == "not a folder"


def test_junit_xml_with_nothing_collected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check("--junit-xml", "empty.xml").exit_code == 5
    root = ET.parse("empty.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("0", "0", "0")


GITHUB = r"""
    [[case]]
    name = "ratio: 50%, x\r\ny"
    expr = "x*y"
    at = { x = 5, y = 2 }
    grad = { x = "y + 1" }

    [[case]]
    name = "fine"
    expr = "x*y"
    at = { x = 5, y = 2 }
"""


def test_github_annotations_escape_data_and_properties(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "we,ird:dir" / "e.grad.toml", GITHUB)
    result = check("--format", "github")
    assert result.exit_code == 1
    ((props, message),) = annotations(result.stdout)  # only the failing case
    assert props == {
        "file": "we%2Cird%3Adir/e.grad.toml",
        "line": "1",
        "title": "gradcli%3A ratio%3A 50%25%2C x%0D%0Ay",
    }
    first, second = message.split("%0A")  # two lines: the verdict, then why
    assert first.startswith("∂f/∂x (hand-derived): fail: got 3.0, reference 2.0")
    assert second == "  the hand-derived gradient disagrees with the finite-difference reference"
    assert "\r" not in result.stdout


def test_github_annotations_for_broken_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "broken.grad.toml",
        """
        [[case]]
        name = "a"
        expr = "x^2"
        at = { x = 1 }
        "rate%" = 1
        """,
    )
    result = check("broken.grad.toml", "--format", "github")
    assert result.exit_code == 2
    ((props, message),) = annotations(result.stdout)
    assert (props["file"], props["line"]) == ("broken.grad.toml", "5")
    assert "unknown key 'rate%25'" in message  # '%' escaped in the data
    assert "unknown key 'rate%'" in result.stderr  # and the error on stderr as usual


def test_github_annotation_title_of_a_broken_file_is_escaped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "broken.grad.toml", BROKEN)
    line = check("broken.grad.toml", "--format", "github").stdout.strip()
    assert ",title=gradcli%3A unusable input::" in line  # got `title=gradcli: unusable input`


def test_github_annotations_for_an_expression(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok = check(*TUTORIAL, "--format", "github")
    assert (ok.exit_code, ok.stdout) == (0, "")
    failed = check("sqrt(x)", "--x", "0", "--format", "github")
    assert failed.exit_code == 1
    ((props, message),) = annotations(failed.stdout)
    assert props == {"title": "gradcli%3A sqrt(x)"}  # no file for an expression
    assert message.startswith("∂f/∂x: non-finite")


def test_failure_text_of_a_non_finite_gradient_says_inf():
    line = check("sqrt(x)", "--x", "0", "--format", "github").stdout
    assert "got inf" in line and "None" not in line  # got "got None, … tolerance None"


def test_non_finite_message_has_no_index_for_a_scalar():
    (rec,) = check_json("sqrt(x)", "--x", "0", code=1)["records"]
    assert "index" not in rec["message"]  # got "… is inf at index [0] at 0.5/sqrt(x) …"


# --- bugs with fixed values mixed with sampled ones, and with the worst point -----------------

MIXED = """
    [[case]]
    name = "mixed"
    expr = "sin(x)*y"
    at = {{ x = 2 }}
    sample = {{ n = 20, seed = 3, domains = {{ y = "1:2" }} }}
    grad = {{ x = "{grad}" }}
"""


@pytest.mark.parametrize("output", ["--json", "--format=table", "--format=github"])
def test_a_case_with_fixed_and_sampled_variables_can_be_reported(tmp_path, monkeypatch, output):
    monkeypatch.chdir(tmp_path)
    # wrong only where y > 1.5: the reported point is not the first of the sample
    write(tmp_path / "m.grad.toml", MIXED.format(grad="cos(x)*y + relu(y - 1.5)"))
    result = check("m.grad.toml", output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1


def test_a_case_with_fixed_and_sampled_variables_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "m.grad.toml", MIXED.format(grad="cos(x)*y"))
    result = check("m.grad.toml")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert summary_rows(result.stdout)["mixed"][1:] == ["x, y", "20", "passed"]


def test_the_reported_point_is_the_worst(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "w.grad.toml",
        """
        [[case]]
        name = "worst"
        expr = "x*y"
        sample = { n = 20, seed = 3, domains = { x = "1:2", y = "1:2" } }
        grad = { x = "y + (x - 1)^2" }
        """,
    )
    rec = records(check_json("w.grad.toml", code=1), "hand-derived")["x"]
    assert rec["abs_error"] == pytest.approx((rec["point"]["x"] - 1) ** 2)
    assert rec["point"]["x"] > 1.9  # the largest of the 20 draws (1.956); got the first (1.086)


# --- the installed console script -------------------------------------------------------------


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert GRADCLI is not None, "the gradcli console script is not installed next to python"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}  # whole tables in failure reports
    return subprocess.run(
        [GRADCLI, "check", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_console_script_checks_files_and_writes_junit(bad_file):
    done = run_script("--json", "--junit-xml", "r.xml", cwd=bad_file.parent)
    assert done.returncode == 1, done.stderr
    doc = strict_json(done.stdout)
    assert (doc["summary"]["cases"], doc["summary"]["failed"]) == (3, 2)
    assert ET.parse(bad_file.parent / "r.xml").getroot().get("failures") == "2"


def test_console_script_usage_error(tmp_path):
    done = run_script("x*y", "--x", "1", "--sample", "10", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "did you mean --samples?" in done.stderr


SAMPLE_CHECKS = sorted((ROOT / "samples").glob("**/*.grad.toml"))


@pytest.mark.skipif(not SAMPLE_CHECKS, reason="samples/ has no *.grad.toml check files")
def test_gradcli_check_samples_passes():
    """The documented `gradcli check samples/` passes on the repository's own samples."""
    done = run_script("samples/", cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_blame_from_the_command_line_names_the_wrong_primitive(monkeypatch):
    """A wrong rule injected into the registry: --blame names it, its argument and its span."""
    import dataclasses

    from gradcli.primitives import REGISTRY
    from gradcli.primitives._common import cos

    wrong = dataclasses.replace(REGISTRY["sin"], partials=(lambda ans, x: -cos(x),))
    monkeypatch.setitem(REGISTRY, "sin", wrong)
    result = check("y*sin(x*y) + x", "--x", "0.7", "--y", "1.3", "--blame", "--json")
    assert result.exit_code == 1
    records = {r["variable"]: r for r in strict_json(result.stdout)["records"]}
    for name in ("x", "y"):
        (blame,) = records[name]["blame"]
        assert (blame["primitive"], blame["argument"]) == ("sin", 1)
        assert (blame["line"], blame["column"]) == (1, 3)
        assert math.isclose(blame["rule"], -math.cos(0.7 * 1.3), rel_tol=1e-12)
        assert math.isclose(blame["finite_difference"], math.cos(0.7 * 1.3), rel_tol=1e-9)


def test_a_nan_value_is_a_non_finite_verdict_naming_its_source():
    result = check("y*log(x) + y", "--x", "-1", "--y", "2", "--json")
    assert result.exit_code == 1
    records = strict_json(result.stdout)["records"]
    assert {r["variable"]: r["verdict"] for r in records} == {"x": "non-finite", "y": "non-finite"}
    assert all(r["message"].startswith("log(x) is nan") for r in records)


def test_a_long_run_lists_only_the_cases_that_did_not_pass(tmp_path, monkeypatch):
    """Past 100 cases the table shows the failures (a thousand 'passed' rows would bury them);
    --json still has every case."""
    import dataclasses

    from gradcli.primitives import REGISTRY
    from gradcli.primitives._common import cos

    cases = "".join(
        f'[[case]]\nname = "case {i}"\nexpr = "{"sin(x)" if i == 77 else "x^2"}"\n'
        f"at = {{ x = {i / 10} }}\n"
        for i in range(150)
    )
    path = tmp_path / "many.grad.toml"
    path.write_text(cases)
    wrong = dataclasses.replace(REGISTRY["sin"], partials=(lambda ans, x: -cos(x),))
    monkeypatch.setitem(REGISTRY, "sin", wrong)
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ case")]
    assert len(rows) == 1 and "case 77" in rows[0] and "failed" in rows[0]
    assert "149 passed cases not listed" in result.stdout
    assert "150 cases: 149 passed, 1 failed" in result.stdout
    doc = json.loads(CliRunner().invoke(app, ["check", str(path), "--json"]).stdout)
    assert len({r["case"] for r in doc["records"]}) == 150


# --- found by tests/test_fuzz.py: each raised TypeError, ValueError or OSError before ---------

FUZZED_ERROR_CASES = {
    "dtype is a list": (
        """
        [[case]]
        name = "a"
        expr = "x^2"
        at = { x = 1 }
        dtype = []
        """,
        "dtype =",
        "dtype",
        ["dtype must be float64 or float32, not []"],
    ),
    "a NUL in the path of a program": (
        """
        [[case]]
        name = "a"
        program = "\\u0000.grad"
        at = { x = 1 }
        """,
        "program =",
        "program",
        ["cannot read the program", "embedded null byte"],
    ),
    "a NUL in the path of a value file": (
        """
        [[case]]
        name = "a"
        expr = "x^2"
        at = { x = "@\\u0000.csv" }
        """,
        "at =",
        "at",
        ["cannot read", "embedded null byte"],
    ),
}


@pytest.mark.parametrize(
    ("text", "needle", "key", "fragments"), FUZZED_ERROR_CASES.values(), ids=FUZZED_ERROR_CASES
)
def test_mistakes_found_by_fuzzing_exit_2_with_file_line_and_key(
    tmp_path, monkeypatch, text, needle, key, fragments
):
    test_mistakes_in_check_files_exit_2_with_file_line_and_key(
        tmp_path, monkeypatch, text, needle, key, fragments
    )


def test_a_configured_path_too_long_for_the_system_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pyproject.toml", f'[tool.gradcli]\npaths = ["{"b" * 300}"]\n')
    result = check()
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "cannot read bbb" in result.stderr and "Traceback" not in result.stderr


def test_case_names_are_shown_as_written_not_read_as_markup(tmp_path):
    """Rich reads "[/x]" as a closing tag (it made gradcli exit 3) and "[x, y]" as a style."""
    name = "max [x, y] and [/x] [bold]"
    path = tmp_path / "m.grad.toml"
    path.write_text(f'[[case]]\nname = "{name}"\nexpr = "x*y"\nat = {{ x = 1, y = 2 }}\n')
    r = check(str(path))
    assert r.exit_code == 0, r.output
    assert name in r.stdout
