"""Fuzzing: whatever a user types, gradcli answers with a clear error, never a traceback.

Inputs are random bytes, "token soups" (random sequences of the language's tokens, numbers such
as 1e999 or 0x1, brackets, keywords, Unicode, NUL bytes, very long names), programs made by a
small grammar of the whole language (arrays, indexing, keyword arguments, user functions) and
random edits of those. Every generator draws from `random.Random(seed)` with a fixed seed, so a
run is reproducible; a failure names the input that caused it.

- The bulk (more than 100,000 inputs) goes in-process through what `gradcli eval` does with its
  text: `compile_program`, then `evaluate` with values for the variables (some of them parsed by
  `parse_value` from random text), with Python warnings turned into errors. Any exception other
  than a `GradcliError` with a message is a failure, and so is a leaked warning (it would be
  printed on stderr, with a file name and a line of numpy's source).
- A few thousand go through the real command line in-process (Typer's runner on gradcli's own
  command): the exit code is 0, 1 or 2, nothing looks like a traceback, an exit 2 comes with an
  error message on stderr, and --json output is strict JSON.
- A handful go through `python -m gradcli eval` in subprocesses, with raw bytes in argv.
- Check files: random edits of the samples in samples/*.grad.toml through the check-file loader,
  and some of them through `gradcli check`.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import typer
import typer.testing
from support import strict
from typer.testing import CliRunner

from gradcli import compile_program, evaluate
from gradcli.checking.checkfile import load
from gradcli.cli.app import app
from gradcli.evaluation.values import parse_value
from gradcli.language.source import GradcliError
from gradcli.primitives import REGISTRY, public_names

SEED = 20240606
SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# --- generators -----------------------------------------------------------------------------

NAMES = (
    "x", "y", "z", "A", "v", "w_1", "α", "_", "é", "𝑥", "x²", "pi", "e", "f", "g", "t",
    "axis", "shape", "axes", "start", "stop", "step", "inf", "nan", "None", "lambda",
    "__import__", "x" * 5000, "a" * 300 + "1",
)  # fmt: skip
NUMBERS = (
    "0", "1", "2", "-1", "2.5", ".5", "5.", "1e-3", "6.02E23", "1e999", "1e308", "1e-400",
    "5e-324", "0x1", "0b1", "1_000", "00", "007", "1e", "1e+", "1.2.3", "9" * 400, "٣", "３",
    "∞", "NaN", "inf", "1e-3e3", "1.e5", "0.0", "-0",
)  # fmt: skip
SYMBOLS = (
    "+", "-", "*", "/", "^", "**", "@", "−", "=", ";", "\n", "(", ")", "[", "]", ",", ":", "#",
    "\\\n", "\\", " ", "\t", "\r", "\r\n", "\0", "{", "}", "!", "$", "'", '"', "`", "~", "&",
    "|", "<", ">", "?", ".", "...", "axis=", "shape=", "axes=", "=>", "->", "//", "%", "\u200b",
    "\ufeff", "\u2028", "\x0b", "\x0c", "\udcff", "🙂", "\u0301", "×", "÷", "√", "·",
)  # fmt: skip
PIECES = (
    "f(t) = t^2 + 1", "f(t, u) = t*u", "sum(x, axis=0)", "x[0]", "x[1:3]", "x[::2]", "x[0, 1:]",
    "[1, 2, 3]", "[[1, 2], [3, 4]]", "A @ v", "max(x, axis=-1)", "reshape(x, shape=[2, 3])",
    "transpose(A, axes=[1, 0])", "unindex(x, shape=[4], start=[1], stop=[3], step=[1])",
    "prod_pairs(x, v)", "sum_to(x, shape=[3])", "broadcast_to(x, shape=[2, 3])",
)  # fmt: skip
FUNCTIONS = (*public_names(), "sinn", "eval", "exec", "print", "f", "g")
SHAPES = ((), (), (), (3,), (2, 3), (1,), (0,), (3, 1), (2, 2))
VALUE_TEXTS = (
    "1", "-2.5", "0", "1,2,3", "[[1, 2], [3, 4]]", "1e999", "nan", "inf", "[1,", "@missing.npy",
    "@.json", "", " ", "0x1", "[]", "[[]]", "[[1], [2, 3]]", "1e308", "-0", "[true]", '["1"]',
    "[1e999]", "1,,2", "[NaN]", "{}", "@", "\0", "٣",
)  # fmt: skip


def soup(rng: random.Random) -> str:
    """A random sequence of the language's tokens (and some that are not)."""
    out = []
    for _ in range(rng.randint(1, 30)):
        r = rng.random()
        if r < 0.25:
            out.append(rng.choice(NAMES))
        elif r < 0.4:
            out.append(rng.choice(FUNCTIONS) + rng.choice(("(", "", "()", "(x)")))
        elif r < 0.55:
            out.append(rng.choice(NUMBERS))
        elif r < 0.6:
            out.append(rng.choice(PIECES))
        else:
            out.append(rng.choice(SYMBOLS))
    return rng.choice(("", " ", "")).join(out)


def random_bytes(rng: random.Random) -> str:
    """Random bytes, decoded as Python decodes a command line (undecodable bytes are kept as
    lone surrogates), or as Latin-1."""
    data = rng.randbytes(rng.randint(0, 60))
    if rng.random() < 0.5:
        return data.decode("utf-8", "surrogateescape")
    return data.decode("latin-1")


def expression(rng: random.Random, depth: int) -> str:
    """A program fragment from a grammar of the whole language: mostly well formed, and often
    meaningful (shapes and attributes are drawn to fit only some of the time)."""
    r = rng.random()
    if depth <= 0 or r < 0.15:
        c = rng.random()
        if c < 0.5:
            return rng.choice(("x", "y", "z", "A", "v"))
        if c < 0.85:
            return rng.choice(("0", "1", "2", "0.5", "-1", "1e308", "1e-320", "pi", "e", "3"))
        return "[" + ", ".join(expression(rng, depth - 1) for _ in range(rng.randint(0, 3))) + "]"
    if r < 0.4:
        op = rng.choice(
            ("+", "-", "*", "/", "^", "@", "**", "−", "<", ">=", "==", "!=", "and", "or")
        )
        return f"{expression(rng, depth - 1)} {op} {expression(rng, depth - 1)}"
    if r < 0.45:
        return f"{rng.choice(('-', '-', 'not '))}{expression(rng, depth - 1)}"
    if r < 0.5:
        return f"({expression(rng, depth - 1)})"
    if r < 0.6:
        subscripts = []
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.5:
                subscripts.append(rng.choice(("0", "1", "-1", "2", "5", "-7", "x", "1.5")))
            else:
                parts = [rng.choice(("", "0", "1", "-1", "2", "-5", "10")) for _ in range(3)]
                subscripts.append(":".join(parts[: rng.randint(2, 3)]))
        return f"{expression(rng, depth - 1)}[{', '.join(subscripts)}]"
    name = rng.choice(FUNCTIONS)
    prim = REGISTRY.get(name)
    arity = prim.arity if prim is not None else 1
    count = max(0, arity + rng.choice((0, 0, 0, 0, 1, -1)))
    args = [expression(rng, depth - 1) for _ in range(count)]
    attributes = ("0", "1", "-1", "2", "[0, 1]", "[1, 0]", "[2, 3]", "[3]", "[]", "[6]")
    attributes += ("1.5", "[[1]]", "1e999", "x", "[-1]", "100000000000", "[0, 0]")
    for param, _ in prim.attr_params if prim is not None else ():
        if rng.random() < 0.5:
            args.append(f"{param}={rng.choice(attributes)}")
    if rng.random() < 0.05:
        args.append(f"{rng.choice(('axis', 'shape', 'foo', 'x', '1'))}={rng.choice(attributes)}")
    return f"{name}({', '.join(args)})"


def program(rng: random.Random) -> str:
    statements = []
    for _ in range(rng.randint(0, 2)):
        r = rng.random()
        if r < 0.2:
            statements.append(f"f(t) = {expression(rng, 2).replace('x', 't')}")
        elif r < 0.25:
            statements.append(f"g(t, u) = f(t) * {expression(rng, 1)}")
        else:
            name = rng.choice(("a", "b", "x", "e", "pi", "f", "sin"))
            statements.append(f"{name} = {expression(rng, 3)}")
    statements.append(expression(rng, rng.randint(1, 4)))
    return rng.choice(("; ", "\n", ";")).join(statements)


def mutated(rng: random.Random, text: str) -> str:
    """A few random edits: characters deleted, replaced or inserted, tokens spliced in."""
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(chars))
        r = rng.random()
        if r < 0.3 and chars:
            del chars[min(at, len(chars) - 1)]
        elif r < 0.6:
            chars[at:at] = rng.choice((*SYMBOLS, *NUMBERS[:12], "x", "sin(", ")", "]"))
        elif chars:
            chars[min(at, len(chars) - 1)] = rng.choice("()[],;=+-*/^@:.0123456789xyze ")
    return "".join(chars)


def huge(rng: random.Random) -> str:
    """Deep nesting and long chains, which recursive code would not survive."""
    n = rng.choice((1000, 5000))
    return rng.choice(
        (
            "(" * n + "x" + ")" * n,
            "-" * n + "x",
            "sin(" * n + "x" + ")" * n,
            "x" + "+x" * n,
            "[" * n + "x" + "]" * n,
            "x" + "^x" * n,
            "(" * n,
            "a0 = x\n" + "".join(f"a{i} = a{i - 1}*a{i - 1}\n" for i in range(1, n // 10)) + "a1",
        )
    )


def point(rng: random.Random, names, parse: Callable[[str, str], np.ndarray]) -> dict:
    """Values for the variables: random arrays of random shapes, some parsed from random text
    (parse_value raises GradcliError for what it refuses)."""
    values = {}
    for name in names:
        if rng.random() < 0.1:
            values[name] = parse(rng.choice(VALUE_TEXTS), name)
            continue
        shape = rng.choice(SHAPES)
        special = rng.choice((0.0, -0.0, 1.0, -1.0, 1e308, 5e-324, 0.5, 2.0))
        array = np.round(rng.uniform(-3, 3), 1) + np.zeros(shape)
        if rng.random() < 0.2:
            array = np.full(shape, special)
        values[name] = array
    return values


# --- in-process: text to program to value and gradient --------------------------------------


class Failures:
    """Unexpected exceptions, by kind, each with the shortest input that raised it."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], str] = {}

    def add(self, exc: BaseException, described: str) -> None:
        key = (type(exc).__name__, re.sub(r"\d+", "N", str(exc))[:80])
        if key not in self.seen or len(described) < len(self.seen[key]):
            self.seen[key] = described

    def report(self) -> str:
        return "\n".join(
            f"{kind}: {message}\n    input: {text[:500]}"
            for (kind, message), text in sorted(self.seen.items())
        )


def run_pipeline(text: str, rng: random.Random, failures: Failures) -> bool:
    """What `gradcli eval TEXT --NAME VALUE …` computes; True if it evaluated."""
    values: dict | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning would reach the user's terminal
            program = compile_program(text)
            values = point(rng, program.variables, parse_value)
            wrt = None
            if program.variables and rng.random() < 0.1:
                wrt = rng.sample(list(program.variables), 1)
            evaluate(program, values, wrt)
        return True
    except GradcliError as err:
        if not str(err).strip():
            failures.add(AssertionError("a GradcliError without a message"), repr(text))
    except Exception as exc:  # anything else is a bug: a traceback for the user
        shapes = {k: np.shape(v) for k, v in (values or {}).items()}
        failures.add(exc, f"{text!r} with shapes {shapes}")
    return False


def inputs(rng: random.Random) -> Iterator[tuple[str, str]]:
    """(kind, text): the mix of the bulk run, 111,000 inputs."""
    for _ in range(55_000):
        yield "soup", soup(rng)
    for _ in range(15_000):
        yield "bytes", random_bytes(rng)
    for _ in range(30_000):
        yield "grammar", program(rng)
    for _ in range(11_000):
        yield "edited", mutated(rng, program(rng))


def test_bulk_fuzz_raises_only_gradcli_errors() -> None:
    rng = random.Random(SEED)
    failures = Failures()
    counts: dict[str, int] = {}
    evaluated = 0
    for kind, text in inputs(rng):
        counts[kind] = counts.get(kind, 0) + 1
        evaluated += run_pipeline(text, rng, failures)
    for _ in range(12):
        counts["huge"] = counts.get("huge", 0) + 1
        evaluated += run_pipeline(huge(rng), rng, failures)
    assert not failures.seen, "exceptions other than GradcliError:\n" + failures.report()
    assert sum(counts.values()) >= 100_000, counts
    # The mix reaches evaluation, not only the parser's errors.
    assert evaluated >= 5_000, (evaluated, counts)


# --- the command line, in-process ------------------------------------------------------------

_RUNNER = CliRunner()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable:
    """`gradcli ARGS…` in-process, as tests/support.py runs it, but with the command built once:
    Typer builds it again on every invoke, which is nine tenths of the time of a short run."""
    command = typer.main.get_command(app)
    monkeypatch.setattr(typer.testing, "_get_command", lambda _: command)
    return lambda *args, input="": _RUNNER.invoke(app, list(args), input=input)


def cli_arguments(rng: random.Random) -> list[str]:
    r = rng.random()
    text = soup(rng) if r < 0.35 else program(rng) if r < 0.7 else random_bytes(rng)
    if r >= 0.9:
        text = mutated(rng, program(rng))
    args = ["eval", "--", text] if rng.random() < 0.3 else ["eval", text]
    for name in ("x", "y", "z", "A", "v", "a", "t"):
        if re.search(rf"\b{name}\b", text) and rng.random() < 0.8:  # not the a of "and"
            value = rng.choice((*VALUE_TEXTS, "1", "0.5", "2", "1,2,3", "-3"))
            args += [f"--{name}", value] if rng.random() < 0.8 else [f"--{name}={value}"]
    extra = rng.random()
    if extra < 0.2:
        args.append("--json")
    elif extra < 0.25:
        args += ["--wrt", rng.choice(("x", "y", "q", ",", "", "x,x"))]
    elif extra < 0.28:
        args += ["--var", rng.choice(("json=3", "x", "=1", "x=", "1x=2"))]
    elif extra < 0.3:
        args.append(rng.choice(("--jsn", "--", "-", "--x", "-f", "--batch", "--help")))
    return args


def test_command_line_exits_0_1_or_2_and_never_shows_a_traceback(cli) -> None:
    rng = random.Random(SEED + 1)
    problems = []
    codes: dict[int, int] = {}
    evaluated = 0
    for _ in range(3_600):  # more functions, more ways to be wrong: 80 still get evaluated
        args = cli_arguments(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning would be printed on stderr
            result = cli(*args)
        codes[result.exit_code] = codes.get(result.exit_code, 0) + 1
        if result.exit_code in (0, 1) and "Usage:" not in result.stdout:
            evaluated += 1
        problem = _problem(args, result.exit_code, result.stdout, result.stderr)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            problem = f"raised {result.exception!r}"
        if problem:
            problems.append(f"gradcli {args!r}: {problem}")
    assert not problems, "\n".join(problems[:20])
    # Some inputs were programs, evaluated (not the help: "-tanh(x)" was once read as -h).
    assert evaluated >= 80, (evaluated, codes)


def test_the_norm_column_of_a_table_prints_no_numpy_warning(cli) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = cli("eval", "x ** 1e308", "--x", "1,2,3")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1


def _problem(args: list[str], code: int, stdout: str, stderr: str) -> str | None:
    """What is wrong with a run of `gradcli eval`, if anything."""
    if code not in (0, 1, 2):
        return f"exit code {code}"
    if "Traceback" in stdout + stderr or re.search(r"\w+Warning: ", stdout + stderr):
        return f"a traceback or a Python warning:\n{stderr[-2000:]}"
    if code == 2 and not re.search(r"(?i)error", stderr):
        return f"exit 2 without an error message on stderr: {stderr!r}"
    if code in (0, 1) and "--json" in args and "Usage:" not in stdout:  # -h…: the help
        try:
            strict(stdout)
        except ValueError as exc:
            return f"--json printed what is not strict JSON ({exc}): {stdout[:300]!r}"
    if code in (0, 1) and not stdout.strip():
        return "exit 0 or 1 with nothing on stdout"
    return None


# --- the command line, in subprocesses --------------------------------------------------------


def test_python_m_gradcli_prints_errors_not_tracebacks() -> None:
    rng = random.Random(SEED + 2)
    argvs: list[list[bytes]] = [
        [b"\xff\xfe"],  # not UTF-8
        [b"x # \xff", b"--x", b"1"],
        [b"x", b"--x", b"\xff"],
        [b"x", b"--\xc3", b"1"],
        [b"sin(" * 3000 + b"x" + b")" * 3000, b"--x", b"1"],
        [b"(" * 3000],
        [b"1e999"],
        [b"x*y + x/y", b"--x", b"5", b"--y", b"2", b"--json"],
        [b"log(x)", b"--x", b"-3", b"--json"],
        [b"unindex(x, start=[-1])", b"--x", b"1,2"],
    ]
    for _ in range(6):
        args = cli_arguments(rng)[1:]
        argvs.append([a.encode("utf-8", "surrogateescape").replace(b"\0", b"") for a in args])
    env = {**os.environ, "NO_COLOR": "1"}
    processes = [
        (
            argv,
            subprocess.Popen(
                [sys.executable, "-m", "gradcli", "eval", *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            ),
        )
        for argv in argvs
    ]
    problems = []
    for argv, process in processes:
        out, err = process.communicate(timeout=120)
        stdout, stderr = (b.decode("utf-8", "replace") for b in (out, err))
        json_ok = all(b.isascii() for b in argv)  # undecodable bytes cannot be JSON text
        args = [a.decode("utf-8", "replace") for a in argv if json_ok or a != b"--json"]
        problem = _problem(args, process.returncode, stdout, stderr)
        if problem:
            problems.append(f"python -m gradcli eval {argv!r}: {problem}")
    assert not problems, "\n".join(problems)


# --- check files ------------------------------------------------------------------------------

TOML_TOKENS = (
    '"', "'", '"""', "[", "]", "{", "}", "=", ",", ".", "\\u0000", "\\", "1e999", "nan", "inf",
    "-inf", "-1", "0", "1e-300", "true", "1979-05-27", "[[case]]", "[case]", "[case.grad]",
    "\n", "#", "x", "y", "name", "expr", "program", "at", "sample", "value", "grad", "method",
    "rtol", "atol", "eps", "dtype", "fast", "wrt", "order", "n", "seed", "domains", "log", ":",
    '"1:2"', '"0:0"', '"-1:1:log"', '"0:1:log"', '"x*"', '"sinn(x)"', '"../../etc/passwd"',
    '"samples"', '"data"', "é", "∂", "\x00", "9" * 40, "[1, [2]]", "[]", "{}", '"@x.npy"',
    '"@data/tutorial_x.csv"', '"[1,2]"', '"1,2"', "3", "2", '"float32"', '"complex"', '"x,y"',
    '"@\\u0000.csv"', '"\\u0000"', "{ x = 1 }", "{ n = 2, seed = 1 }", "{ x = [1, 2] }",
)  # fmt: skip


def edited_check_file(rng: random.Random, text: str) -> str:
    """Lines deleted, duplicated or edited; keys with random values added; expressions replaced
    by random programs."""
    lines = text.split("\n")
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.15 and lines:
            del lines[rng.randrange(len(lines))]
        elif r < 0.25 and lines:
            lines.insert(rng.randrange(len(lines)), rng.choice(lines))
        elif r < 0.6 and lines:
            i = rng.randrange(len(lines))
            start = rng.randint(0, len(lines[i]))
            end = min(len(lines[i]), start + rng.choice((0, 0, 1, 3, 10)))
            lines[i] = lines[i][:start] + rng.choice(TOML_TOKENS) + lines[i][end:]
        elif r < 0.8:
            key = rng.choice(TOML_TOKENS[20:45])
            lines.insert(rng.randint(0, len(lines)), f"{key} = {rng.choice(TOML_TOKENS)}")
        else:
            expr = (soup if rng.random() < 0.5 else program)(rng)
            quoted = expr.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            quoted = quoted.replace("\r", "\\r").replace("\0", "\\u0000")
            lines.insert(rng.randint(0, len(lines)), f'expr = "{quoted}"')
    return "\n".join(lines)


@pytest.fixture
def samples_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "samples"
    shutil.copytree(SAMPLES, folder)
    return folder


def test_check_file_loader_reports_mistakes_as_located_errors(samples_copy: Path) -> None:
    rng = random.Random(SEED + 3)
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLES.glob("*.grad.toml"))]
    assert len(texts) >= 5
    path = samples_copy / "fuzzed.grad.toml"
    failures = Failures()
    loaded = mistakes = 0
    for _ in range(3_000):
        text = edited_check_file(rng, rng.choice(texts))
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                cases, errors = load(path)
        except Exception as exc:  # load reports every mistake in its list of errors
            failures.add(exc, text)
            continue
        loaded += len(cases)
        mistakes += len(errors)
        for err in errors:
            if not isinstance(err, GradcliError) or path.name not in str(err):
                failures.add(AssertionError(f"an error that does not name the file: {err}"), text)
    assert not failures.seen, "check files that broke the loader:\n" + failures.report()
    assert loaded >= 1000 and mistakes >= 1000, (loaded, mistakes)


def test_gradcli_check_on_edited_check_files(samples_copy: Path, cli) -> None:
    rng = random.Random(SEED + 4)
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLES.glob("*.grad.toml"))]
    path = samples_copy / "fuzzed.grad.toml"
    problems = []
    codes: dict[int, int] = {}
    for _ in range(200):
        text = edited_check_file(rng, rng.choice(texts))
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        result = cli("check", str(path), "--samples", "2")
        codes[result.exit_code] = codes.get(result.exit_code, 0) + 1
        output = result.stdout + result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            problems.append(f"raised {result.exception!r} on:\n{text}")
        elif result.exit_code not in (0, 1, 2) or "Traceback" in output:
            problems.append(f"exit {result.exit_code}:\n{output[-1000:]}\non:\n{text}")
    assert not problems, "\n\n".join(problems[:5])
    assert codes.get(0, 0) + codes.get(1, 0) >= 5, codes
