"""Limits on program text, graph nodes and array elements: a clear message that names the
environment variable that raises the limit, before the memory is spent."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from support import cli

from gradcli import GradcliError, compile_program, evaluate

# Runs gradcli as the only child of a fresh interpreter, which then reports that child's peak
# resident memory (RUSAGE_CHILDREN of this test process would include every earlier child).
_MEASURE = (
    "import resource, subprocess, sys;"
    "out = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True, text=True);"
    "sys.stderr.write(out.stderr); sys.stdout.write(out.stdout);"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, file=sys.stderr);"
    "sys.exit(out.returncode)"
)


def _run(*args: str, input: str | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """gradcli's result, and its peak resident memory in MiB."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "gradcli", *args],
        capture_output=True,
        text=True,
        input=input,
    )
    *lines, peak = out.stderr.rstrip("\n").split("\n")
    out.stderr = "\n".join(lines)
    return out, float(peak)


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_a_10_mb_expression_is_refused_in_bounded_memory(tmp_path, via):
    text = "x+" * 5_000_000 + "x"  # 10 MB
    path = tmp_path / "big.grad"
    path.write_text(text)
    if via == "file":
        out, peak = _run("eval", "-f", str(path), "--x", "1")
    else:
        out, peak = _run("eval", "-", "--x", "1", input=text)
    assert out.returncode == 2
    assert "more than the limit of 300,000 characters" in out.stderr
    assert "GRADCLI_MAX_SOURCE" in out.stderr and "Traceback" not in out.stderr
    # The interpreter with numpy is about 40 MB; reading is capped at the limit (4 MB of text).
    assert peak < 150


def test_a_check_file_over_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCLI_MAX_SOURCE", "1000")
    path = tmp_path / "big.grad.toml"
    path.write_text('[[case]]\nexpr = "x"\nat = { x = 1 }\n' + "# padding\n" * 200)
    r = cli("check", str(path))
    assert r.exit_code == 2, r.stdout
    assert "more than the limit of 1,000 characters" in r.stderr


def test_raising_the_source_limit_lets_the_program_through(monkeypatch):
    text = "+".join(["x"] * 600)
    monkeypatch.setenv("GRADCLI_MAX_SOURCE", "1000")
    with pytest.raises(GradcliError, match="GRADCLI_MAX_SOURCE"):
        compile_program(text)
    monkeypatch.setenv("GRADCLI_MAX_SOURCE", "2000")
    assert float(evaluate(text, {"x": 2.0}).gradient["x"]) == 600.0
    monkeypatch.setenv("GRADCLI_MAX_SOURCE", "0")  # no limit
    assert float(evaluate(text, {"x": 2.0}).value) == 1200.0


def test_the_graph_size_limit(monkeypatch):
    text = " + ".join(f"sin({i}*x)" for i in range(1, 200))
    monkeypatch.setenv("GRADCLI_MAX_NODES", "300")
    r = cli("eval", text, "--x", "1")
    assert r.exit_code == 2
    assert "the graph has more than the limit of 300 nodes" in r.stderr
    assert "GRADCLI_MAX_NODES" in r.stderr
    monkeypatch.setenv("GRADCLI_MAX_NODES", "5000")
    r = cli("eval", text, "--x", "1", "--json")
    assert r.exit_code == 0
    want = sum(i * np.cos(i) for i in range(1, 200))
    assert json.loads(r.stdout)["gradient"]["x"] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    ("expr", "values"),
    [
        ("sum(x + transpose(x))", {"x": "@BIG"}),  # broadcasting (n,1) with (1,n)
        ("sum(x @ transpose(x))", {"x": "@BIG"}),  # an outer product
        ("sum(broadcast_to(x, shape=[100000, 100000]))", {"x": "1"}),
    ],
)
def test_arrays_that_would_not_fit_are_refused_before_they_are_made(tmp_path, expr, values):
    big = tmp_path / "column.npy"
    np.save(big, np.zeros((100_000, 1)))
    args = ["eval", expr]
    for name, value in values.items():
        args += [f"--{name}", value.replace("BIG", str(big))]
    out, peak = _run(*args)
    assert out.returncode == 2, out.stderr
    assert "more than the limit of 50,000,000 elements" in out.stderr
    assert "GRADCLI_MAX_ELEMENTS" in out.stderr and "Traceback" not in out.stderr
    assert peak < 300


def test_a_huge_npy_file_is_refused_from_its_header(tmp_path):
    """A 10 GB array (a sparse file: no disk is spent) is refused without being read."""
    path = tmp_path / "huge.npy"
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (1_250_000_000,)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.truncate(f.tell() + 8 * 1_250_000_000)
    r = cli("eval", "sum(x)", "--x", f"@{path}")
    assert r.exit_code == 2
    assert "1,250,000,000 elements, more than the limit of 50,000,000" in r.stderr


def test_a_bad_limit_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("GRADCLI_MAX_NODES", "lots")
    r = cli("eval", "x*y", "--x", "1", "--y", "2")
    assert r.exit_code == 2
    assert "GRADCLI_MAX_NODES='lots' is not a whole number" in r.stderr


def test_an_overlong_batch_line_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCLI_MAX_SOURCE", "100")
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"x": 1}\n{"x": [' + ", ".join(["1"] * 100) + "]}\n")
    r = cli("eval", "x*2", "--batch", str(lines))
    assert r.exit_code == 2
    assert "a line of --batch has more than the limit of 100 characters" in r.stderr


def test_a_sample_budget_is_counted_against_the_limit_before_anything_is_drawn():
    """--samples 10,000,000 peaked at 5.9 GB: each array was under the element limit, but the
    check held about 16 of them per value of the program at every point."""
    out, peak = _run("check", "sin(x)*x + x^2", "--samples", "10000000", "--domain", "x=-1:1")
    assert out.returncode == 2, out.stderr
    assert "a check at 10,000,000 points of 1 derivative each" in out.stderr
    assert "check at most 2,083,333 points here" in out.stderr
    assert "GRADCLI_MAX_ELEMENTS" in out.stderr and "Traceback" not in out.stderr
    assert peak < 150  # refused before the points were drawn


def test_a_large_sample_is_checked_a_chunk_at_a_time_in_bounded_memory():
    """1,000,000 points of a 6-value program were refused (they would have held 96 million
    elements at once); in chunks the check holds one chunk's evaluation beside the result."""
    out, peak = _run(
        "check", "sin(x)*x + x^2", "--samples", "1000000", "--domain", "x=-1:1", "--json"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["summary"]["verdicts"] == {"pass": 1_000_000}
    # The result, 24 float64s a point (192 MB), beside the interpreter's 40 MB and one chunk's
    # evaluation; all points at once took 695 MB.
    assert peak < 400
