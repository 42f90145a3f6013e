"""gradcli at its edges, run as the installed command in a subprocess: report targets that are
not regular files, check files that name files outside their project, user text with control
characters, and output streams that fail (a full disk, a reader that left)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import mpmath
import pytest

GRADCLI = str(Path(sys.executable).with_name("gradcli"))
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CASE = '[[case]]\nname = "ok"\nexpr = "x*x"\nat = { x = 3 }\ngrad = { x = "2*x" }\n'


def run(*args: str, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **kw.pop("env", {})}
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        [GRADCLI, *args], cwd=cwd, stderr=subprocess.PIPE, text=True, env=env, timeout=120, **kw
    )


def one_line_error(err: str, words: str) -> None:
    assert words in err and "Traceback" not in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 1, err


# --- report targets --------------------------------------------------------------------------


def test_a_report_to_a_fifo_is_written_through_it_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = run("check", "x*x", "--x", "3", "--junit-xml", str(fifo))
    reader.join(30)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert ET.fromstring(got[0]).get("tests") == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["report.fifo"]  # no temporary left


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_a_report_to_a_character_device_leaves_the_device(tmp_path: Path) -> None:
    before = os.stat("/dev/null")
    r = run("check", "x*x", "--x", "3", "--junit-xml", "/dev/null")
    after = os.stat("/dev/null")
    assert r.returncode == 0, r.stderr
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert Path("/dev/null").read_bytes() == b""


def test_a_symlinked_report_is_written_through_the_link(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    target = tmp_path / "reports" / "junit.xml"
    target.write_text("old")
    link = tmp_path / "junit.xml"
    link.symlink_to(target)
    r = run("check", "x*x", "--x", "3", "--junit-xml", str(link))
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert ET.parse(target).getroot().get("tests") == "1"
    dangling = tmp_path / "later.xml"
    dangling.symlink_to(tmp_path / "reports" / "new.xml")
    assert run("check", "x*x", "--x", "3", "--junit-xml", str(dangling)).returncode == 0
    assert (
        dangling.is_symlink() and ET.parse(tmp_path / "reports" / "new.xml").getroot() is not None
    )


def test_a_missing_report_folder_is_made_and_a_folder_is_never_replaced(tmp_path: Path) -> None:
    deep = tmp_path / "out" / "ci" / "junit.xml"
    assert run("check", "x*x", "--x", "3", "--junit-xml", str(deep)).returncode == 0
    assert ET.parse(deep).getroot().get("tests") == "1"
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    r = run("check", "x*x", "--x", "3", "--junit-xml", str(folder))
    assert r.returncode == 2
    assert f"cannot write {folder}" in r.stderr and "not replaced" in r.stderr
    assert (folder / "keep.txt").read_text() == "mine"


# --- files named in check files ----------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project (pyproject.toml) with a secret beside it, outside."""
    (tmp_path / "secret.grad").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "w.json").write_text("[1, 2]")
    root = tmp_path / "proj"
    (root / "checks").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n')
    (root / "model.grad").write_text("x*x\n")
    (root / "checks" / "link.grad").symlink_to(tmp_path / "secret.grad")
    return root


@pytest.mark.parametrize(
    "key, value",
    [
        ("program", "/etc/passwd"),
        ("program", "../../secret.grad"),
        ("program", "link.grad"),  # a symlink inside, to a file outside
        ("at", "@../../w.json"),
    ],
)
def test_a_check_file_cannot_read_outside_its_project(project: Path, key: str, value: str) -> None:
    body = f'program = "{value}"\nat = {{ x = 1 }}' if key == "program" else 'expr = "sum(w*w)"'
    if key == "at":
        body += f'\nat = {{ w = "{value}" }}'
    (project / "checks" / "a.grad.toml").write_text(f'[[case]]\nname = "c"\n{body}\n')
    r = run("check", "checks", cwd=project)
    assert r.returncode == 2
    assert "outside the project" in r.stderr and "--allow-outside-paths" in r.stderr
    assert "root:x" not in r.stderr + r.stdout
    opted = run("check", "checks", "--allow-outside-paths", cwd=project)
    assert "outside the project" not in opted.stderr
    if value == "/etc/passwd" and not Path(value).exists():
        return
    assert ("root:x" in opted.stderr) or opted.returncode == 0  # read, as the user asked
    (project / "pyproject.toml").write_text("[tool.gradcli]\nallow_outside_paths = true\n")
    assert "outside the project" not in run("check", "checks", cwd=project).stderr


def test_files_inside_the_project_are_read_from_the_check_files_folder(project: Path) -> None:
    (project / "checks" / "w.json").write_text("[1, 2]")
    (project / "checks" / "a.grad.toml").write_text(
        '[[case]]\nname = "up"\nprogram = "../model.grad"\nat = { x = 3 }\ngrad = { x = "6" }\n'
        '[[case]]\nname = "here"\nexpr = "sum(w*w)"\nat = { w = "@w.json" }\n'
        'grad = { w = "[2, 4]" }\n'
    )
    r = run("check", "checks/a.grad.toml", "--json", cwd=project)
    assert r.returncode == 0, r.stderr


# --- control characters in user text ---------------------------------------------------------

NASTY = "a\\u0000b\\u001b]0;owned\\u0007c\\u001b[31mred\\u009b"


def test_control_characters_in_case_names_reach_no_output_raw(tmp_path: Path) -> None:
    (tmp_path / "a.grad.toml").write_text(CASE.replace('"ok"', f'"{NASTY}"'))
    junit = tmp_path / "junit.xml"
    for args in ([], ["--format", "github"]):
        r = run("check", "a.grad.toml", "--junit-xml", str(junit), *args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        for text in (r.stdout, r.stderr):
            assert not any(c in text for c in "\x00\x1b\x07\x9b"), repr(text)
        case = ET.parse(junit).getroot().find("testsuite/testcase")
        assert case.get("name") == "a\\x00b\\x1b]0;owned\\x07c\\x1b[31mred\\x9b"
    r = run("check", "a.grad.toml", "--json", cwd=tmp_path)
    assert "\x1b" not in r.stdout and "\x00" not in r.stdout
    assert "\x9b" not in r.stdout  # JSON allows it raw; a terminal could obey it
    records = json.loads(r.stdout)["records"]
    assert (
        records and records[0]["case"] == "a\x00b\x1b]0;owned\x07c\x1b[31mred\x9b"
    )  # JSON carries it all


def test_an_escape_sequence_in_a_program_is_shown_not_obeyed() -> None:
    r = run("eval", "x\x1b]0;owned\x07 + 1", "--x", "1")
    assert r.returncode == 2 and "\\x1b" in r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr


# --- output streams ---------------------------------------------------------------------------

FULL = Path("/dev/full")
WRITES = [
    ["eval", "x*y", "--x", "1", "--y", "2"],  # the quick path
    ["eval", "x*y", "--x", "1", "--y", "2", "--json"],
    ["eval", "x*y", "--x", "1,2", "--y", "2"],  # through Rich
    ["check", "x*y", "--x", "1", "--y", "2"],
    ["check", "x*y", "--x", "1", "--y", "2", "--json"],
    ["diff", "x*y", "--wrt", "x"],
]


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
@pytest.mark.parametrize("args", WRITES, ids=" ".join)
def test_a_full_disk_is_one_line_and_exit_code_2(args: list[str]) -> None:
    with FULL.open("w") as full:
        r = run(*args, stdout=full)
    assert r.returncode == 2
    one_line_error(r.stderr, "cannot write the output: No space left on device")


@pytest.mark.skipif(not hasattr(signal, "SIGPIPE"), reason="no SIGPIPE")
@pytest.mark.parametrize(
    "args", [*WRITES, ["check", str(SAMPLES)], ["check", str(SAMPLES), "--json"]], ids=" ".join
)
def test_a_reader_that_leaves_ends_the_run_as_sigpipe_does(args: list[str]) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [GRADCLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read()
    assert proc.wait(120) == -signal.SIGPIPE, err
    assert err == b""


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["github", "table"])
def test_json_with_another_format_is_an_error_that_says_the_fix(fmt: str) -> None:
    r = run("check", "x*x", "--x", "1", "--json", "--format", fmt)
    assert r.returncode == 2 and r.stdout == ""
    assert f"--json and --format {fmt}" in r.stderr and "give one of them" in r.stderr
    assert run("check", "x*x", "--x", "1", "--json", "--format", "json").returncode == 0


# --- --python mistakes --------------------------------------------------------------------------

MODEL = """
import numpy as np

def f(W, b):
    return float(np.sum(np.tanh(W @ b)))

def _t(W, b):
    return 1 - np.tanh(W @ b) ** 2

def right(W, b):
    return {"W": np.outer(_t(W, b), b), "b": W.T @ _t(W, b)}

def transposed(W, b):
    return {"W": np.outer(_t(W, b), b).T, "b": W.T @ _t(W, b)}

def keepdims(W, b):
    return {"W": np.outer(_t(W, b), b), "b": (W.T @ _t(W, b))[None, :]}

def broadcast(W, b):
    return {"W": np.outer(_t(W, b), b)[0], "b": W.T @ _t(W, b)}

def size(W, b):
    return {"W": np.zeros(4), "b": W.T @ _t(W, b)}

def nothing(W, b):
    return None

def entry_none(W, b):
    return {"W": None, "b": W.T @ _t(W, b)}

def only_W(W, b):
    return {"W": np.outer(_t(W, b), b)}

def scaled(W, b):
    return {"W": 1.1 * np.outer(_t(W, b), b), "b": W.T @ _t(W, b)}

def f_none(W, b):
    return None
"""
POINT = ["--W", "[[1, 2, 3], [4, 5, 6]]", "--b", "0.1,0.2,-0.1"]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    (tmp_path / "model.py").write_text(MODEL)
    return tmp_path


@pytest.mark.parametrize(
    "grad, words",
    [
        ("transposed", ["entry for W has shape (3, 2), and W has shape (2, 3)", "transpose"]),
        ("keepdims", ["entry for b has shape (1, 3), and b has shape (3,)", "keepdims"]),
        ("broadcast", ["entry for W has shape (3,), and W has shape (2, 3)", "broadcasts"]),
        ("size", ["entry for W has shape (4,), and W has shape (2, 3)"]),
        ("nothing", ["model:nothing returned None, not a gradient"]),
        ("entry_none", ["model:entry_none returned None for the gradient's entry for W"]),
        ("only_W", ["has no entry for b", "--wrt"]),
    ],
)
def test_a_gradient_of_the_wrong_shape_or_kind_says_which_and_how(
    model: Path, grad: str, words: list[str]
) -> None:
    r = run("check", "--python", "model:f", "--grad", f"model:{grad}", *POINT, cwd=model)
    assert r.returncode == 2, r.stdout + r.stderr
    for w in words:
        assert w in r.stderr
    assert "internal error" not in r.stderr and "(1, 2, 3)" not in r.stderr  # no batch axis


def test_a_function_returning_none_says_so(model: Path) -> None:
    r = run("check", "--python", "model:f_none", "--grad", "model:right", *POINT, cwd=model)
    assert r.returncode == 2 and "model:f_none returned None for its value" in r.stderr


def test_wrt_asks_only_for_the_entries_it_checks(model: Path) -> None:
    args = ["check", "--python", "model:f", "--grad", "model:only_W", *POINT, "--json"]
    r = run(*args, "--wrt", "W", cwd=model)
    assert r.returncode == 0, r.stderr
    assert [rec["variable"] for rec in json.loads(r.stdout)["records"]] == ["W"]


def test_failing_array_elements_are_counted_and_shown_beside_the_reference(model: Path) -> None:
    args = ["check", "--python", "model:f", "--grad", "model:scaled", *POINT]
    r = run(*args, cwd=model)
    assert r.returncode == 1
    assert "∂f/∂W: 6 of 6 elements failed" in r.stdout
    assert "autograd" in r.stdout and "reference" in r.stdout
    (w,) = [
        rec
        for rec in json.loads(run(*args, "--json", cwd=model).stdout)["records"]
        if rec["variable"] == "W"
    ]
    assert (w["elements"], w["failed_elements"]) == (6, 6)
    import numpy as np

    W, b = np.array([[1.0, 2, 3], [4, 5, 6]]), np.array([0.1, 0.2, -0.1])
    exact = np.outer(1 - np.tanh(W @ b) ** 2, b)  # the closed form of ∂/∂W Σ tanh(W b)
    assert np.allclose(w["arrays"]["autograd"], 1.1 * exact, rtol=1e-12)
    assert np.allclose(w["arrays"]["reference"], exact, rtol=1e-8)


# --- hostile and mistaken inputs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (["eval", "x*1e-400", "--x", "1"], "the number 1e-400 is too small for a float64"),
        (["eval", "x*1e309", "--x", "1"], "the number 1e309 is too large for a float64"),
        (["eval", "x*x", "--x", "1e-400"], "the value of x is too small for a float64"),
        (["eval", "x*x", "--x", "1e309"], "the value of x is too large for a float64"),
        (["eval", "sum(x)", "--x", "[1, 1e-400]"], "1e-400 is too small for a float64"),
        (["eval", "sum(x)", "--x", "2,1e-999"], "the value of x is too small for a float64"),
    ],
)
def test_literals_that_underflow_are_refused_like_those_that_overflow(args, words) -> None:
    r = run(*args)
    assert r.returncode == 2 and words in r.stderr and r.stdout == ""


@pytest.mark.parametrize("text", ["0e-400", "0.0e-999", "5e-324", "1e-310"])
def test_zero_and_subnormal_literals_are_numbers(text: str) -> None:
    r = run("eval", f"x + {text}", "--x", text, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["value"] == 2 * float(text)


def test_a_domain_as_wide_as_float64_is_sampled_not_an_internal_error(tmp_path: Path) -> None:
    (tmp_path / "a.grad.toml").write_text(
        '[[case]]\nname = "wide"\nexpr = "x/4"\n'
        'sample = { n = 50, domains = { x = "-1e308:1e308" } }\n'
    )
    r = run("check", "a.grad.toml", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (rec,) = json.loads(r.stdout)["records"]
    assert rec["points"] == 50 and rec["autograd"] == 0.25 and rec["verdict"] == "pass"
    assert abs(rec["point"]["x"]) <= 1e308


@pytest.mark.parametrize(
    "args, value",
    [
        (["eval", "-sum(f*x)", "--x", "2", "--f", "3", "--json"], -6.0),  # holds an f: not -f
        (["eval", "-h*x", "--x", "2", "--h", "3", "--json"], -6.0),  # holds an h: not -h
        (["eval", "--x", "2", "-x^2", "--json"], -4.0),
        (["eval", "--", "-x", "--x", "2", "--json"], -2.0),  # "--" is not needed, and harmless
        (["eval", "x*y", "--x", "-1e-3", "--y", "-4", "--json"], 0.004),
    ],
)
def test_a_program_or_value_starting_with_a_dash_is_never_an_option(args, value) -> None:
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["value"] == pytest.approx(value, rel=1e-15)


def test_short_options_written_alone_still_work(tmp_path: Path) -> None:
    (tmp_path / "m.grad").write_text("x*y + x/y\n")
    r = run("eval", "-f", str(tmp_path / "m.grad"), "--x", "5", "--y", "2", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["value"] == 12.5
    assert "Usage: gradcli eval" in run("eval", "-h").stdout


@pytest.mark.parametrize("value", ["-inf", "inf", "nan", "-Infinity"])
def test_an_infinite_value_says_values_must_be_finite(value: str) -> None:
    r = run("eval", "x*x", "--x", value)
    assert r.returncode == 2
    one_line_error(r.stderr.splitlines()[0], f"the value of x must be a finite number, not {value}")


def test_a_variable_named_like_an_option_is_given_with_var() -> None:
    r = run("check", "eps*x", "--x", "1", "--eps", "1e-6")
    assert r.returncode == 2
    assert "--eps is an option of this command" in r.stderr and "--var eps=VALUE" in r.stderr
    r = run("check", "eps*x", "--x", "1", "--var", "eps=2", "--json")
    assert r.returncode == 0, r.stderr
    assert {rec["variable"]: rec["autograd"] for rec in json.loads(r.stdout)["records"]} == {
        "eps": 1.0,
        "x": 2.0,
    }


@pytest.mark.parametrize(
    "arg, words",
    [
        ("/home/me/proj/nonexistent", "no such file or folder: /home/me/proj/nonexistent"),
        ("./missing", "no such file or folder: ./missing"),
        ("checks/", "no such file or folder: checks/"),
        ("model.grad.toml", "no such file or folder: model.grad.toml"),
        ("samples", "no file or folder named 'samples' here"),
    ],
)
def test_a_path_that_does_not_exist_says_so(tmp_path: Path, arg: str, words: str) -> None:
    r = run("check", arg, cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert "unexpected" not in r.stderr and "give --samples" not in r.stderr


@pytest.mark.parametrize(
    "text, words",
    [
        ("x > 0 && x < 1", "the logical operators are written and, or, not"),
        ("x = = 1", "a comparison is written =="),
    ],
)
def test_what_the_language_lacks_is_said(text: str, words: str) -> None:
    r = run("eval", text, "--x", "1,2")
    assert r.returncode == 2 and words in r.stderr


@pytest.mark.parametrize(
    "value, words",
    [
        (float("nan"), "holds nan or inf"),
        (float("-inf"), "holds nan or inf"),
        ([1.0, float("nan")], "holds nan or inf"),
        ("abc", "is not a number or an array of numbers"),
        ([1, [2, 3]], "is not a number or an array of numbers"),
    ],
)
def test_the_python_api_refuses_bad_values_with_its_own_error(value, words: str) -> None:
    import gradcli
    from gradcli.language.source import GradcliError

    for call in (gradcli.evaluate, gradcli.jacobian, gradcli.hessian):
        with pytest.raises(GradcliError, match=words):
            call("x*x", {"x": value})


def test_integer_exponents_stay_exact_in_diff(tmp_path: Path) -> None:
    """a1 = x*x; a_{k+1} = a_k*a_k, 54 times, is x^(2^54): its derivative 2^54·x^(2^54 - 1) has
    an odd exponent, which float sums of powers rounded to 2^54 (even: the wrong sign at
    x = -1), and printed as 1.8014398509481984e+16."""
    lines = ["a1 = x*x", *(f"a{i} = a{i - 1}*a{i - 1}" for i in range(2, 55)), "a54"]
    (tmp_path / "a54.grad").write_text("\n".join(lines) + "\n")
    r = run("diff", "-f", str(tmp_path / "a54.grad"), "--wrt", "x")
    assert r.returncode == 0, r.stderr
    printed = r.stdout.strip()
    assert "e+16" not in printed and "18014398509481984" in printed
    for x in ("-1", "1", "-0.9999999999999999"):
        got = run("eval", printed, "--x", x, "--json")
        assert got.returncode == 0, got.stderr
        with mpmath.workdps(60):  # the closed form
            exact = 2**54 * mpmath.power(mpmath.mpf(float(x)), 2**54 - 1)
        assert json.loads(got.stdout)["value"] == pytest.approx(float(exact), rel=1e-12)


def _adam_reference(dfdw, w: float, lr: float, steps: int) -> list:
    """Adam as Kingma & Ba write it, in mpmath at 50 digits, where nothing overflows."""
    with mpmath.workdps(50):
        w, m, v = mpmath.mpf(w), mpmath.mpf(0), mpmath.mpf(0)
        path = []
        for t in range(1, steps + 1):
            g = dfdw(w)
            m = 0.9 * m + 0.1 * g
            v = mpmath.mpf("0.999") * v + mpmath.mpf("0.001") * g * g
            m_hat, v_hat = m / (1 - mpmath.mpf("0.9") ** t), v / (1 - mpmath.mpf("0.999") ** t)
            w -= lr * m_hat / (mpmath.sqrt(v_hat) + mpmath.mpf("1e-8"))
            path.append(w)
    return path


@pytest.mark.parametrize("steps", [1, 5, 40])
def test_adam_moves_where_the_square_of_the_gradient_overflows(steps: int) -> None:
    """exp(w) at w = 700 with --lr 10: g² (1e608) overflowed Adam's second moment, every step
    was 0, stderr filled with numpy warnings and the run "completed". Now it follows Adam."""
    args = ["minimize", "exp(w)", "--params", "w", "--w", "700", "--lr", "10"]
    r = run(*args, "--steps", str(steps), "--json")
    assert r.returncode == 0 and "Warning" not in r.stderr, r.stderr
    got = json.loads(r.stdout)
    expected = _adam_reference(mpmath.exp, 700.0, 10.0, steps)[-1]
    assert got["last_params"]["w"] == pytest.approx(float(expected), rel=1e-12)
    assert got["stopped"] == "completed" and got["last_params"]["w"] < 700 - 9


def test_a_run_that_cannot_move_says_so_and_fails() -> None:
    r = run("minimize", "w", "--params", "w", "--w", "1e20", "--lr", "1e-3", "--optimizer", "gd")
    assert r.returncode == 1
    assert "no parameter moved in 500 steps" in r.stdout and "Warning" not in r.stderr
    r = run("minimize", "w", "--params", "w", "--w", "1e20", "--lr", "1e-3", "--json",
            "--optimizer", "gd")  # fmt: skip
    assert r.returncode == 1 and json.loads(r.stdout)["stopped"] == "stuck"


@pytest.mark.parametrize("lr", ["nan", "inf", "0"])
def test_a_learning_rate_that_is_not_a_step_is_refused(lr: str) -> None:
    r = run("minimize", "exp(w)", "--params", "w", "--w", "1", f"--lr={lr}", "--json")
    assert r.returncode == 2 and r.stdout == ""
    assert "--lr must be a finite number above 0" in r.stderr and "internal" not in r.stderr


def test_a_batch_line_past_the_limit_is_an_error_record_and_the_rest_runs(tmp_path: Path) -> None:
    lines = ['{"x": 1}', '{"x": [' + ", ".join(["2"] * 2000) + "]}", '{"x": 3}', ""]
    (tmp_path / "b.jsonl").write_text("\n".join(lines))
    r = run("eval", "x*x", "--batch", str(tmp_path / "b.jsonl"), env={"GRADCLI_MAX_SOURCE": "1000"})
    assert r.returncode == 2  # a line was bad: documented exit code of --batch
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["line"] for rec in records] == [1, 2, 3]
    assert records[0]["gradient"]["x"] == 2.0 and records[2]["gradient"]["x"] == 6.0
    assert "more than the limit of 1,000 characters" in records[1]["error"]


# --- terminals ---------------------------------------------------------------------------------

DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_the_check_table_is_readable_in_full_at_every_width(width: int) -> None:
    """At 80 columns the table showed `∂…  -345…  ver…`: every column cut. Now the columns that
    fit are shown whole, by priority, and the others below, entry by entry."""
    r = run("check", "x*y + x/y", "--x", "5", "--y", "2", env={"COLUMNS": str(width)})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "…" not in r.stdout
    assert all(len(line.rstrip()) <= width for line in lines[1:] if not line.startswith("∂"))
    for field in ("∂f/∂x", "∂f/∂y", "2.5", "3.75", "complex", "2.71051e-20", "pass"):
        assert field in r.stdout, (field, r.stdout)
    assert r.stdout.count("1.11022e-15") == 1 and r.stdout.count("1.66533e-15") == 1


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_the_summary_shows_case_names_whole_and_says_what_it_leaves_out(width: int) -> None:
    r = run("check", str(DATA / "wrong_gradient.grad.toml"), env={"COLUMNS": str(width)})
    assert r.returncode == 1
    head = r.stdout.split("\n\n")[0]
    assert "…" not in head
    assert all(len(line) <= width for line in head.splitlines())
    words = " ".join(line.strip("│┃ ").split("│")[0].strip() for line in head.splitlines())
    for name in ("a sign slip in d/dy of x*y + x/y", "the chain rule forgotten in sin(x^2)"):
        assert all(word in words for word in name.split()), (name, head)
    # a column of one word per line cannot hold "forgotten in": the name column is wide enough
    assert any("forgotten in" in line or "rule forgotten" in line for line in head.splitlines())
    if width < 100:
        assert "not shown at this width; --json has every field" in r.stdout


def _stderr_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe); what the terminal received."""
    import pty
    import select

    main, child = pty.openpty()
    full = {k: v for k, v in os.environ.items() if k != "CI"} | {"COLUMNS": "100"} | env
    proc = subprocess.Popen([GRADCLI, *args], stdout=subprocess.PIPE, stderr=child, env=full)
    os.close(child)
    got = b""
    while True:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            got += chunk
        elif proc.poll() is not None:
            break
    proc.stdout.read()
    os.close(main)
    return proc.wait(120), got.decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="no pty")
def test_a_long_check_shows_progress_on_a_terminal_and_none_in_ci_or_pipes() -> None:
    code, seen = _stderr_on_a_terminal(["check", str(SAMPLES)], {})
    assert code == 0
    assert "checking" in seen and "cases/s" in seen and "0 failed" in seen, seen[-500:]
    code, seen = _stderr_on_a_terminal(["check", str(SAMPLES)], {"CI": "true"})
    assert code == 0 and "checking" not in seen
    piped = run("check", str(SAMPLES))
    assert piped.returncode == 0 and "checking" not in piped.stderr


def test_a_case_of_many_passing_entries_prints_a_summary_not_every_row() -> None:
    x = ",".join(str(i / 50) for i in range(50))
    r = run("check", "sum(x*x)*sum(x)", "--x", f"[{x}]", "--order", "2")
    assert r.returncode == 0, r.stderr
    assert "50 of 50 entries passed and are not listed (--json lists every entry)" in r.stdout
    assert "∂²f/∂x" not in r.stdout and "symmetry:" in r.stdout
    doc = json.loads(
        run("check", "sum(x*x)*sum(x)", "--x", f"[{x}]", "--order", "2", "--json").stdout
    )
    assert len(doc["records"]) == 50 and all(rec["verdict"] == "pass" for rec in doc["records"])


# --- fuzz: report targets, check-file paths, output streams -----------------------------------

_TARGETS = ("new", "existing", "symlink", "dangling", "folder", "deep", "file-as-parent")
_PATHS = ("inside", "up-inside", "absolute-outside", "dotdot-outside", "symlink-outside", "nul")


def _target(kind: str, root: Path, k: int) -> tuple[Path, Path | None]:
    """A report target of `kind`, and the file it must end up in (None: refused)."""
    out = root / f"r{k}"
    out.mkdir()
    if kind == "new":
        return out / "a.xml", out / "a.xml"
    if kind == "existing":
        (out / "a.xml").write_text("old")
        return out / "a.xml", out / "a.xml"
    if kind == "symlink":
        (out / "real.xml").write_text("old")
        (out / "a.xml").symlink_to(out / "real.xml")
        return out / "a.xml", out / "real.xml"
    if kind == "dangling":
        (out / "a.xml").symlink_to(out / "sub" / "real.xml")
        return out / "a.xml", out / "sub" / "real.xml"
    if kind == "folder":
        (out / "a.xml").mkdir()
        return out / "a.xml", None
    if kind == "deep":
        return out / "x" / "y" / "a.xml", out / "x" / "y" / "a.xml"
    (out / "f").write_text("keep")
    return out / "f" / "a.xml", None


def _program_path(kind: str, project: Path) -> str:
    outside = project.parent / "outside.grad"
    return {
        "inside": "model.grad",
        "up-inside": "../model.grad",
        "absolute-outside": str(outside),
        "dotdot-outside": "../../outside.grad",
        "symlink-outside": "link.grad",
        "nul": "a\\u0000b.grad",
    }[kind]


def test_fuzz_report_targets_and_check_file_paths(tmp_path: Path) -> None:
    """Random pairs of a report target and a program path: the run never shows a traceback,
    never replaces a folder or a file in the way, always writes the report it can, and never
    reads a file outside the project."""
    import random

    (tmp_path / "outside.grad").write_text("secret_outside_value\n")
    project = tmp_path / "proj"
    (project / "checks").mkdir(parents=True)
    (project / ".git").mkdir()
    (project / "checks" / "model.grad").write_text("x*x\n")
    (project / "model.grad").write_text("x*x\n")
    (project / "checks" / "link.grad").symlink_to(tmp_path / "outside.grad")
    rng = random.Random(12)
    for k in range(40):
        target_kind, path_kind = rng.choice(_TARGETS), rng.choice(_PATHS)
        target, lands = _target(target_kind, tmp_path, k)
        program = _program_path(path_kind, project)
        (project / "checks" / "a.grad.toml").write_text(
            f'[[case]]\nname = "c"\nprogram = "{program}"\nat = {{ x = 2 }}\ngrad = {{ x = "4" }}\n'
        )
        r = run("check", "checks", "--junit-xml", str(target), cwd=project)
        where = f"{target_kind} × {path_kind}: {r.stderr}"
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, where
        assert "secret_outside_value" not in r.stdout + r.stderr, where
        if path_kind in ("inside", "up-inside"):
            assert r.returncode == (0 if lands is not None else 2), where
        else:
            assert r.returncode == 2, where
            if path_kind != "nul":
                assert "outside the project" in r.stderr, where
        if lands is None:
            assert f"cannot write {target}" in r.stderr, where
            assert not (target.parent.is_file() and target.parent.read_text() != "keep"), where
        else:
            assert ET.parse(lands).getroot().get("tests") == "1", where


_STREAM_COMMANDS = (
    ["eval", "x*y", "--x", "1", "--y", "2"],
    ["eval", "x*y", "--x", "1,2,3", "--y", "2", "--json"],
    ["check", str(DATA / "wrong_gradient.grad.toml"), "--format", "github"],
    ["check", "sin(x)", "--samples", "30", "--domain", "x=-3:3"],
    ["jacobian", "[x*y, x/y]", "--x", "1", "--y", "2"],
    ["diff", "sin(x)*y", "--wrt", "x,y", "--format", "latex"],
    ["explain", "x*y + x", "--x", "2", "--y", "3"],
    ["graph", "x*y + x", "--format", "mermaid"],
)


@pytest.mark.skipif(not FULL.exists() or not hasattr(signal, "SIGPIPE"), reason="Linux only")
@pytest.mark.parametrize("seed", range(6))
def test_fuzz_output_streams_that_fail(seed: int) -> None:
    """A random command to a full disk or to a reader that left: one line and exit 2, or a
    quiet end by SIGPIPE; never a traceback, never 'internal error', never status 1."""
    import random

    rng = random.Random(seed)
    args = rng.choice(_STREAM_COMMANDS)
    if rng.random() < 0.5:
        with FULL.open("w") as full:
            r = run(*args, stdout=full)
        assert r.returncode == 2, (args, r.stderr)
        one_line_error(r.stderr, "cannot write the output")
    else:
        proc = subprocess.Popen([GRADCLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(120) == -signal.SIGPIPE and err == b"", (args, err)


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_the_explain_table_fits_rather_than_cuts(width: int) -> None:
    r = run("explain", "x*y + x", "--x", "2", "--y", "3", env={"COLUMNS": str(width)})
    assert r.returncode == 0 and "…" not in r.stdout
    for word in ("seed:", "∂/∂#3", "∂/∂#1", "#3 ← 1.0 × 1.0 = 1.0", "sends", "∂f/∂x = 4.0"):
        assert word in r.stdout, (word, r.stdout)
    # Below its natural width the table becomes a block per node: no cell is broken mid-word
    # ("derivativ|es") and every line of it fits (the prose after it is wrapped by the terminal).
    table = r.stdout.split("Read from the top")[0]
    assert all(len(line.rstrip()) <= width for line in table.splitlines()), table
    assert "derivativ\n" not in table and "derivativ " not in table
