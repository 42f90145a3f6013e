"""The command line, through typer's CliRunner and through the installed console script."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcli import __version__
from gradcli.cli.app import app

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def strict_json(text: str):
    """Parse as RFC 8259 JSON: NaN, Infinity and -Infinity are not JSON."""

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_table_shows_value_and_gradients():
    result = run("eval", "x*y + x/y", "--x", "5", "--y", "2")
    assert result.exit_code == 0, result.stderr
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.stdout.splitlines()
        if line.count("│") == 3
    }
    assert rows == {"f": "12.5", "∂f/∂x": "2.5", "∂f/∂y": "3.75"}
    assert result.stderr == ""


def test_json_output_is_one_strict_document():
    result = run("eval", "x*y + x/y", "--x", "5", "--y", "2", "--json")
    assert result.exit_code == 0
    doc = strict_json(result.stdout)
    assert doc["expression"] == "x*y + x/y"
    assert doc["value"] == 12.5
    assert doc["gradient"] == {"x": 2.5, "y": 3.75}
    assert doc["variables"] == {"x": 5.0, "y": 2.0}
    assert doc["gradient_of"] == "value" and doc["finite"] is True and doc["faults"] == []
    assert result.stderr == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--x=5", "--y=2"],
        ["--y", "2", "--x", "5"],
        ["--var", "x=5", "--var", "y=2"],
        ["--x", "5", "--var", "y=2"],
    ],
)
def test_variable_forms(args):
    result = run("eval", "x*y + x/y", *args, "--json")
    assert strict_json(result.stdout)["gradient"] == {"x": 2.5, "y": 3.75}


def test_variables_may_come_before_the_expression_and_be_negative():
    result = run("eval", "--x", "-3", "x^2", "--json")
    doc = strict_json(result.stdout)
    assert doc["value"] == 9.0 and doc["gradient"] == {"x": -6.0}


def test_variable_named_like_an_option():
    result = run("eval", "json*2 + file", "--var", "json=3", "--var", "file=1", "--json")
    assert strict_json(result.stdout)["value"] == 7.0


def test_expression_starting_with_minus_after_double_dash():
    result = run("eval", "--x", "2", "--json", "--", "-x^2")
    assert strict_json(result.stdout)["value"] == -4.0


def test_array_values_comma_list_and_json():
    result = run("eval", "sin(x)*y", "--x", "0,1,2", "--y", "[1, 2, 3]", "--json")
    doc = strict_json(result.stdout)
    assert doc["shape"] == [3] and doc["gradient_of"] == "sum"
    import numpy as np

    np.testing.assert_allclose(doc["gradient"]["x"], np.cos([0, 1, 2]) * [1, 2, 3], rtol=1e-15)
    result = run("eval", "sin(x)*y", "--x", "0,1,2", "--y", "[1, 2, 3]")
    assert "sum of its elements" in result.stdout


def test_nested_json_array():
    result = run("eval", "x*2", "--x", "[[1, 2], [3, 4]]", "--json")
    doc = strict_json(result.stdout)
    assert doc["value"] == [[2.0, 4.0], [6.0, 8.0]] and doc["gradient"]["x"] == [
        [2.0, 2.0],
        [2.0, 2.0],
    ]


def test_wrt():
    result = run("eval", "x*y*z", "--x", "1", "--y", "2", "--z", "3", "--wrt", "z,x", "--json")
    assert strict_json(result.stdout)["gradient"] == {"z": 2.0, "x": 6.0}
    result = run("eval", "x*y", "--x", "1", "--y", "2", "--wrt", "q")
    assert result.exit_code == 2 and "q is not a variable" in result.stderr


def test_program_from_file_and_stdin(tmp_path):
    path = tmp_path / "model.grad"
    path.write_text("# comment\na = x*y\na + x/y\n")
    result = run("eval", "-f", str(path), "--x", "5", "--y", "2", "--json")
    doc = strict_json(result.stdout)
    assert doc["gradient"] == {"x": 2.5, "y": 3.75} and doc["source"] == str(path)
    result = run("eval", "-", "--x", "5", "--y", "2", "--json", input="x*y + x/y\n")
    assert strict_json(result.stdout)["value"] == 12.5
    result = run("eval", "-f", "-", "--x", "5", "--y", "2", "--json", input="x*y + x/y\n")
    assert strict_json(result.stdout)["value"] == 12.5


def test_file_errors_are_located_in_the_file(tmp_path):
    path = tmp_path / "bad.grad"
    path.write_text("a = x^2\nb = a +* 2\n")
    result = run("eval", "-f", str(path), "--x", "1")
    assert result.exit_code == 2
    assert f"{path}:2:8" in result.stderr
    assert "b = a +* 2" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["eval", "x*y", "--x", "1"], "missing value for y"),
        (
            ["eval", "x*y", "--x", "1", "--y", "2", "--z", "3"],
            "z is not a variable of the expression",
        ),
        (["eval", "x*y", "--x", "1", "--y", "2", "--jsn"], "unknown option --jsn"),
        (["eval", "x*y", "--x", "1", "--y", "2", "--jsn", "1"], "did you mean --json"),
        (["eval", "x*y", "--x", "a", "--y", "2"], "the value of x is not a number"),
        (["eval", "x", "--x", "[[1, 2], [3]]"], "ragged"),
        (["eval", "x", "--x", "[1, true]"], "only numbers"),
        (["eval", "x", "--x", "NaN"], "must be a finite number, not NaN"),
        (["eval", "x", "--x", "1e999"], "too large"),
        (["eval", "x", "--x", "1", "--x", "2"], "more than once"),
        (["eval", "x", "--x"], "--x needs a value"),
        (["eval"], "no expression given"),
        (["eval", "x", "y", "--x", "1"], "expected one expression"),
        (["eval", "-f", "/nonexistent/model.grad"], "cannot read /nonexistent/model.grad"),
        (["eval", "x*", "--x", "1"], "unexpected end of input"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(args, needle):
    result = run(*args)
    assert result.exit_code == 2, result.stdout
    assert needle in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_missing_variable_lists_what_was_expected():
    result = run("eval", "x*y + z", "--y", "1")
    assert "give --x, --z" in result.stderr and "variables are x, y, z" in result.stderr


def test_parse_error_shows_the_line_and_a_caret():
    result = run("eval", "x*y + sinn(x)", "--x", "1", "--y", "2")
    lines = result.stderr.splitlines()
    assert lines[0] == "error: unknown function 'sinn'"
    assert lines[3].endswith("| x*y + sinn(x)")
    assert lines[4].endswith("|       ^^^^")
    assert "did you mean 'sin'" in lines[5]


def test_nonfinite_result_exits_1_with_strict_json_and_a_located_warning():
    result = run("eval", "log(x)*y", "--x", "-1", "--y", "2", "--json")
    assert result.exit_code == 1
    doc = strict_json(result.stdout)
    assert doc["value"] is None and doc["finite"] is False
    assert doc["faults"][0]["column"] == 1 and "log(x) is nan" in doc["faults"][0]["message"]
    assert "warning: log(x) is nan" in result.stderr


def test_version_and_help():
    assert run("--version").stdout.strip() == f"gradcli {__version__}"
    for flag in ("-h", "--help"):
        text = run("eval", flag).stdout
        assert "Examples" in text and "Exit codes" in text and "--json" in text
    assert "Exit codes" in run("--help").stdout


def gradcli_script() -> str:
    script = shutil.which("gradcli", path=str(Path(sys.executable).parent))
    assert script, "the gradcli console script is not installed next to this Python"
    return script


def test_installed_console_script_and_python_m(tmp_path):
    env = {**os.environ, "NO_COLOR": "1"}
    for command in ([gradcli_script()], [sys.executable, "-m", "gradcli"]):
        out = subprocess.run(
            [*command, "eval", "x*y + x/y", "--x", "5", "--y", "2", "--json"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert strict_json(out.stdout)["gradient"] == {"x": 2.5, "y": 3.75}
        bad = subprocess.run(
            [*command, "eval", "x*"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            check=False,
        )
        assert bad.returncode == 2 and "unexpected end of input" in bad.stderr and bad.stdout == ""


def test_no_color_is_respected_and_color_is_used_when_forced(tmp_path):
    command = [gradcli_script(), "eval", "x*", "--x", "1"]
    forced = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color"}
    forced.pop("NO_COLOR", None)
    colored = subprocess.run(command, capture_output=True, text=True, env=forced, check=False)
    assert "\x1b[" in colored.stderr
    plain = subprocess.run(
        command, capture_output=True, text=True, env={**forced, "NO_COLOR": "1"}, check=False
    )
    assert "\x1b[" not in plain.stderr and "error:" in plain.stderr


def test_sample_programs_run_from_the_command_line():
    result = run("eval", "-f", str(SAMPLES / "tutorial.grad"), "--x", "5", "--y", "2", "--json")
    assert strict_json(result.stdout)["gradient"] == {"x": 2.5, "y": 3.75}
