"""What the package's source must never do, checked on its syntax trees, and files that are
written whole or not at all."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from support import cli, strict

from gradcli.output import reports as report

PACKAGE = Path(__file__).resolve().parent.parent / "gradcli"
SOURCES = sorted(PACKAGE.rglob("*.py"))

_FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint", "input"}
_FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "cloudpickle", "joblib"}


def _trees():
    assert len(SOURCES) > 30
    for path in SOURCES:
        yield path.name, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            yield name, node


def test_no_eval_exec_or_dynamic_import_anywhere_in_the_package():
    found = [
        f"{file}:{node.lineno} {name}()"
        for file, tree in _trees()
        for name, node in _calls(tree)
        if name in _FORBIDDEN_CALLS and isinstance(node.func, ast.Name)
    ]
    # The one import by name: check --python imports the user's module, as the user asked.
    found += [
        f"{file}:{node.lineno} {name}()"
        for file, tree in _trees()
        for name, node in _calls(tree)
        if name == "import_module" and file != "pyfunc.py"
    ]
    assert found == []


def test_no_pickle_or_its_relatives_is_imported():
    found = []
    for file, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            found += [f"{file}:{node.lineno} {n}" for n in names if n in _FORBIDDEN_MODULES]
    assert found == []


def test_getattr_never_takes_a_name_from_outside_the_code():
    """getattr and setattr appear only with a literal name or a loop over literal names."""
    found = []
    for file, tree in _trees():
        literal_loops = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, (ast.For, ast.comprehension))
            and isinstance(node.iter, (ast.Tuple, ast.List))
            and all(isinstance(e, ast.Constant) for e in node.iter.elts)
            for target in [node.target]
            if isinstance(target, ast.Name)
        }
        for name, node in _calls(tree):
            if name in ("getattr", "setattr", "delattr") and isinstance(node.func, ast.Name):
                arg = node.args[1]
                if isinstance(arg, ast.Constant) or (
                    isinstance(arg, ast.Name) and arg.id in literal_loops
                ):
                    continue
                found.append(f"{file}:{node.lineno} {ast.unparse(node)}")
    assert found == [], "a getattr whose name is not visibly the code's own"


def test_numpy_never_loads_pickles_and_no_shell_is_started():
    found = []
    for file, tree in _trees():
        for name, node in _calls(tree):
            keywords = {k.arg: k.value for k in node.keywords}
            if name == "load" and "allow_pickle" in keywords:
                if not (
                    isinstance(keywords["allow_pickle"], ast.Constant)
                    and keywords["allow_pickle"].value is False
                ):
                    found.append(f"{file}:{node.lineno} allow_pickle")
            elif name == "load" and ast.unparse(node.func).startswith("np."):
                found.append(f"{file}:{node.lineno} np.load without allow_pickle=False")
            if "shell" in keywords:
                found.append(f"{file}:{node.lineno} shell=")
            if name in ("system", "popen") and ast.unparse(node.func).startswith("os."):
                found.append(f"{file}:{node.lineno} {ast.unparse(node.func)}")
    assert found == []


def test_json_is_always_written_strict():
    """Every JSON encoder in the package refuses nan and inf (RFC 8259 has neither)."""
    found = []
    encoders = 0
    for file, tree in _trees():
        for name, node in _calls(tree):
            if name in ("dumps", "dump", "JSONEncoder") and "json" in ast.unparse(node.func):
                if file == "values.py" and name == "dumps":  # quoting one item in a message
                    continue
                encoders += 1
                keywords = {k.arg: k.value for k in node.keywords}
                value = keywords.get("allow_nan")
                if not (isinstance(value, ast.Constant) and value.value is False):
                    found.append(f"{file}:{node.lineno}")
    assert encoders >= 2 and found == []


def test_every_file_the_package_writes_goes_through_the_atomic_writer():
    found = []
    for file, tree in _trees():
        for name, node in _calls(tree):
            text = ast.unparse(node)
            if name in ("write_text", "write_bytes"):
                found.append(f"{file}:{node.lineno} {text}")
            # report.py holds the writer itself: a device or FIFO is written in place there.
            if name == "open" and isinstance(node.func, ast.Name) and file != "reports.py":
                mode = node.args[1] if len(node.args) > 1 else None
                mode = mode or {k.arg: k.value for k in node.keywords}.get("mode")
                if isinstance(mode, ast.Constant) and set(mode.value) & set("wax+"):
                    found.append(f"{file}:{node.lineno} {text}")
            if name == "fdopen" and file != "reports.py":
                found.append(f"{file}:{node.lineno} {text}")
    assert found == []


# --- the atomic writer --------------------------------------------------------------------


def test_an_interrupted_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    path = tmp_path / "report.xml"
    path.write_text("<old/>\n")
    os.chmod(path, 0o640)

    def fail(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        report.write_atomically(path, "<new>" + "x" * 100_000 + "</new>\n")
    monkeypatch.undo()
    assert path.read_text() == "<old/>\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.xml"]
    report.write_atomically(path, "<new/>\n")
    assert path.read_text() == "<new/>\n"
    assert path.stat().st_mode & 0o777 == 0o640  # the mode of the file it replaces
    assert [p.name for p in tmp_path.iterdir()] == ["report.xml"]


def test_a_killed_writer_never_leaves_a_half_written_file(tmp_path):
    """SIGKILL a writer at 12 moments while it writes 100 MB: the file on disk is always the
    old one or the complete new one. (A plain open-and-write, killed the same way, left files
    of 2 MB to 59 MB when this test was written.)"""
    path = tmp_path / "report.xml"
    path.write_text("old\n")
    child = (
        "import sys, gradcli.output.reports as r; data = b'x' * 100_000_000;"
        "print('ready', flush=True); r.write_atomically(sys.argv[1], data)"
    )
    sizes = []
    for k in range(12):
        proc = subprocess.Popen([sys.executable, "-c", child, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(0.015 * k)  # from before the write starts to after it ends
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        sizes.append(path.stat().st_size)
    assert set(sizes) <= {4, 100_000_000}, sizes
    debris = [p.name for p in tmp_path.iterdir() if p.name != "report.xml"]
    assert all(name.startswith(".report.xml.") for name in debris)  # a killed writer's temp file


def test_the_junit_report_of_a_check_run_goes_through_the_atomic_writer(tmp_path, monkeypatch):
    written = []
    real = report.write_atomically
    monkeypatch.setattr(report, "write_atomically", lambda p, c: written.append(p) or real(p, c))
    junit = tmp_path / "junit.xml"
    r = cli("check", "sin(x)*y", "--x", "0.5", "--y", "2", "--junit-xml", str(junit))
    assert r.exit_code == 0 and written == [junit]
    assert int(ET.parse(junit).getroot().get("tests")) == 1


# --- strict JSON, nan and inf included ----------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "log(x) + 1/y", "--x", "-1", "--y", "0"],
        ["eval", "exp(x)", "--x", "1000,1,-1"],
        ["jacobian", "[log(x), 1/x, exp(x)]", "--x", "0"],
        ["jvp", "log(x)*y", "--x", "-1", "--y", "1", "--direction", "x=1"],
        ["hessian", "log(x)*y + exp(y)", "--x", "-1", "--y", "800"],
        ["explain", "sqrt(x) + 1/x", "--x", "0"],
        ["diff", "log(x)/y"],
        ["check", "sqrt(x)", "--x", "0"],
        ["check", "1/x", "--x", "1e-320"],
        ["check", "x^2", "--x", "1", "--sweep"],
        ["minimize", "exp(w)^2", "--w", "100", "--params", "w", "--steps", "3"],
    ],
)
def test_every_json_output_is_strict_even_with_nan_and_inf(args):
    r = cli(*args, "--json")
    assert ("Traceback" not in r.stderr and r.exception is None) or isinstance(
        r.exception, SystemExit
    )
    assert r.stdout.strip(), (args, r.stderr)
    doc = strict(r.stdout)  # NaN, Infinity and -Infinity would fail here
    assert isinstance(doc, dict)
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout


def test_batch_output_is_strict_json_lines_with_nan_and_inf(tmp_path):
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"x": -1}\n{"x": 0}\n{"x": [1, -1, 0]}\n{"x": 1e308}\n')
    r = cli("eval", "log(x) + x*x", "--batch", str(lines))
    records = [strict(line) for line in r.stdout.splitlines()]
    assert len(records) == 4
    assert records[0]["value"] is None and records[1]["value"] is None  # nan, -inf -> null


# --- no traceback, even for a bug -------------------------------------------------------------

_BROKEN = (
    "import dataclasses, sys; from gradcli.primitives import REGISTRY;"
    "REGISTRY['sin'] = dataclasses.replace(REGISTRY['sin'], forward=lambda x: 1 / 0);"
    "sys.argv = ['gradcli', 'eval', 'sin(x)', '--x', '1'];"
    "from gradcli.cli.entry import main; main()"
)


def test_a_bug_is_reported_as_one_without_a_traceback():
    out = subprocess.run([sys.executable, "-c", _BROKEN], capture_output=True, text=True)
    assert out.returncode == 3
    assert out.stderr.startswith("internal error: ZeroDivisionError: division by zero")
    assert "this is a bug in gradcli" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_gradcli_debug_shows_the_traceback_of_a_bug():
    env = {**os.environ, "GRADCLI_DEBUG": "1"}
    out = subprocess.run([sys.executable, "-c", _BROKEN], capture_output=True, text=True, env=env)
    assert out.returncode == 1 and "Traceback" in out.stderr and "ZeroDivisionError" in out.stderr


# --- found by fuzzing: no numpy warning, no crash -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "x ** 1e308", "--x", "1,2,3"],  # the norm column overflows
        ["jvp", "1e308*x", "--x", "1,2,3", "--direction", "x=1"],  # so does vᵀ∇f
        ["hessian", "1e300*x^2*y", "--x", "1e10", "--y", "1"],
    ],
)
def test_an_overflow_is_a_warning_of_gradcli_not_of_numpy(args):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy warning would be printed on stderr
        r = cli(*args)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code in (0, 1) and "RuntimeWarning" not in r.stderr


def test_an_expression_longer_than_a_file_name_is_checked_as_an_expression():
    expr = "sin(x)*" * 40 + "1"  # 281 characters: not a path (the system refuses such names)
    r = cli("check", expr, "--x", "1", "--json")
    assert r.exit_code == 0, r.stderr
    assert strict(r.stdout)["summary"]["passed"] == 1


def test_a_jacobian_with_an_empty_side_is_a_table_with_no_rows():
    r = cli("jacobian", "--", "[1, x][-1:-5:2]", "--x", "1")
    assert r.exit_code == 0, r.stderr
    assert "∂/∂x" in r.stdout


def test_program_text_that_is_not_utf8_is_refused_and_json_stays_utf8(tmp_path):
    bad = os.fsdecode(b"x # \xff")  # how Python hands such argv bytes over: a surrogate
    r = cli("eval", bad, "--x", "1", "--json")
    assert r.exit_code == 2 and "not valid UTF-8" in r.stderr
    path = tmp_path / os.fsdecode(b"\xff.grad")
    path.write_text("x*2")
    r = cli("eval", "-f", str(path), "--x", "1", "--json")
    assert r.exit_code == 0
    r.stdout.encode("utf-8")  # strict JSON is UTF-8: the file name is escaped, not raw bytes
    assert strict(r.stdout)["source"] == str(path)


def test_a_folded_constant_respects_the_element_limit():
    """unindex(1, shape=60000000) would be folded into 60 million elements before any shape
    inference; folding first asks whether the result fits."""
    r = cli("eval", "sum(unindex(1, shape=60000000))")
    assert r.exit_code == 2
    assert "60,000,000 elements, more than the limit of 50,000,000" in r.stderr


def test_explain_gives_0_for_a_variable_no_gradient_reaches():
    r = cli("explain", "heaviside(v, -1)*w", "--v", "1", "--w", "2")
    assert r.exit_code == 0
    assert "gradient: ∂f/∂v = 0.0 (#1), ∂f/∂w = 1.0 (#4)" in r.stdout


# --- found by review ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["jacobian", "x*2", "--x", "@X"],  # 500 seeds × 500 elements
        ["hessian", "sum(x*x)", "--x", "@X"],  # 500 × 500
        ["check", "sum(x*x)", "--x", "1,2,3", "--samples", "2000", "--domain", "x=0:1"],
        ["eval", "sum(unindex(x, shape=[900000]))", "--x", "1"],  # 1-D, under a million
    ],
)
def test_batches_of_values_respect_the_element_limit(args, tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.ones(500))
    monkeypatch.setenv("GRADCLI_MAX_ELEMENTS", "1000")
    r = cli(*[a.replace("@X", f"@{tmp_path / 'x.npy'}") for a in args])
    assert r.exit_code == 2, r.stdout
    assert "more than the limit of 1,000 elements" in r.stderr


def test_a_programs_own_negations_keep_its_form_and_spans():
    r = cli("eval", "x + -y", "--x", "1e308", "--y", "-1e308")
    assert r.exit_code == 1
    assert r.stderr.startswith("warning: x + -y is inf") and "--> <expr>:1:1" in r.stderr


@pytest.mark.parametrize("variable", ["COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE"])
def test_what_changes_richs_drawing_sends_eval_to_the_full_command_line(variable, monkeypatch):
    from gradcli.cli.entry import quick_eval

    argv = ["eval", "x*y", "--x", "5", "--y", "2"]
    assert quick_eval(argv) is not None
    monkeypatch.setenv(variable, "40")
    assert quick_eval(argv) is None


def test_an_ascii_terminal_and_a_closed_stdout_are_errors_not_bugs():
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    out = subprocess.run(
        [sys.executable, "-m", "gradcli", "eval", "x*y", "--x", "5", "--y", "2"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 2 and "PYTHONIOENCODING=utf-8" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; os.close(1); sys.stdout = None;"
            "sys.argv = ['gradcli', 'eval', 'x', '--x', '1'];"
            "from gradcli.cli.entry import main; main()",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "standard output is closed" in out.stderr


def test_forward_mode_of_one_variable_is_not_spoiled_by_anothers_infinite_partial():
    r = cli("check", "x*y + sqrt(y)", "--x", "1", "--y", "0", "--json")
    forward = {rec["variable"]: rec["forward"] for rec in strict(r.stdout)["records"]}
    assert forward["x"] == 0.0  # ∂/∂x = y = 0; sqrt's inf partial in y is y's alone


@pytest.mark.parametrize(("depth", "message"), [(100_000, "nested too deeply"), (70, "32 axes")])
def test_deeply_nested_values_are_bad_values_not_bugs(tmp_path, depth, message):
    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "1" + "]" * depth)
    r = cli("eval", "sum(x)", "--x", f"@{path}")
    assert r.exit_code == 2 and message in r.stderr
