"""Check files (`*.grad.toml`): finding them, reading them, and turning each case into a check.

A file has optional defaults at the top level (method, rtol, atol, eps, dtype, fast, wrt, order:
1 for the gradient, 2 for the Hessian) and any number
of `[[case]]` tables:

    method = "auto"

    [[case]]
    name = "tutorial"
    expr = "x*y + x/y"                      # or: program = "model.grad" (relative to this file)
    at = { x = 5, y = 2 }                   # fixed values; or with sample, the fixed ones
    sample = { n = 100, seed = 1, domains = { x = "0.1:10", y = [-3, 3] } }
    value = 12.5                            # optional: the expected value (with `at` only)
    grad = { x = "y + 1/y", y = "x - x/y^2" }   # optional: hand-derived, formulas or numbers

Every mistake is reported with the file, the line and the key it is about.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.values import parse_value
from ..language.limits import check_elements, read_text
from ..language.lower import Lowered
from ..language.program import compile_program, wrt_names
from ..language.source import GradcliError
from .engine import DTYPES, CheckOptions, check_budget
from .finite_diff import METHODS

OPTION_KEYS = ("method", "rtol", "atol", "eps", "dtype", "fast", "wrt", "order")
CASE_KEYS = ("name", "expr", "program", "at", "sample", "value", "grad", *OPTION_KEYS)
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", "site-packages"})


@dataclass(frozen=True)
class Domain:
    low: float
    high: float
    log: bool = False

    def draw(self, rng: np.random.Generator, n: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        if self.log:
            sign = -1.0 if self.high < 0 else 1.0
            lo, hi = sorted((np.log(abs(self.low)), np.log(abs(self.high))))
            return sign * np.exp(rng.uniform(lo, hi, (n, *shape)))
        u = rng.random((n, *shape))
        return self.low * (1 - u) + self.high * u  # high - low may overflow (-1e308:1e308)


@dataclass(frozen=True)
class Sample:
    n: int
    seed: int
    domains: dict[str, Domain]


@dataclass
class Case:
    """One `[[case]]`, ready to run; `file` is None for an expression given on the command line."""

    name: str
    program: Lowered
    at: dict[str, np.ndarray] = field(default_factory=dict)
    sample: Sample | None = None
    value: np.ndarray | None = None
    grad: dict[str, Lowered | np.ndarray] = field(default_factory=dict)
    options: CheckOptions = field(default_factory=CheckOptions)
    file: Path | None = None
    line: int = 1

    def points(
        self, samples: int | None = None, options: CheckOptions | None = None
    ) -> dict[str, np.ndarray]:
        """Every variable with a leading point axis: sampled ones drawn, fixed ones of length 1.

        A variable with both a value and a domain is drawn in the shape of its value. A sample
        whose check (with `options`, else the case's) would hold more than the element limit is
        refused before anything is drawn.
        """
        out = {name: np.asarray(v, dtype=np.float64)[None] for name, v in self.at.items()}
        if self.sample is not None:
            n = samples or self.sample.n
            for name in self.sample.domains:
                shape = np.shape(self.at[name]) if name in self.at else ()
                check_elements((n, *shape), f"{name} at {n:,} sample points")
            options = options or self.options
            names = wrt_names(self.program, options.wrt)
            sizes = [math.prod(np.shape(self.at.get(name, 0.0))) for name in names]
            check_budget(n, sizes, options.order)
            rng = np.random.default_rng(self.sample.seed)
            for name in self.program.variables:  # a fixed order, so that a seed means one set
                domain = self.sample.domains.get(name)
                if domain is not None:
                    shape = np.shape(self.at[name]) if name in self.at else ()
                    out[name] = domain.draw(rng, n, shape)
        return out

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file is not None else self.name


class CheckFileError(GradcliError):
    """A mistake in a check file, with its file, line and key."""

    def __init__(
        self, message: str, file: Path, line: int, key: str | None = None, hint: str | None = None
    ):
        where = f"{file}:{line}" + (f" ({key})" if key else "")
        super().__init__(f"{where}: {message}", hint=hint)
        self.file, self.line, self.key, self.detail = file, line, key, message


def find(
    paths: Iterable[str], cwd: Path | None = None, configured: Iterable[str] = ()
) -> tuple[list[Path], list[GradcliError]]:
    """The check files named by `paths` (files, or folders searched recursively).

    With no paths: the `configured` ones (`[tool.gradcli] paths`), else the current folder.
    """
    cwd = cwd or Path.cwd()
    paths = list(paths) or list(configured) or ["."]
    errors: list[GradcliError] = []
    found: list[Path] = []
    for raw in paths:
        path = Path(raw) if Path(raw).is_absolute() else cwd / raw
        shown = Path(raw)
        try:
            is_dir, is_file = path.is_dir(), path.is_file()
        except OSError as exc:  # a name too long, say: is_dir only says False for a few errors
            errors.append(GradcliError(f"cannot read {raw}: {exc.strerror or exc}"))
            continue
        if is_dir:
            found += [shown / p.relative_to(path) for p in _walk(path)]
        elif is_file:
            found.append(shown)
        else:
            errors.append(GradcliError(f"no such file or folder: {raw}"))
    return list(dict.fromkeys(found)), errors


# [tool.gradcli] in pyproject.toml: where the check files are, the defaults of every case, and
# how `gradcli check` reports. Command-line flags override all of them.
PROJECT_KEYS = ("paths", *OPTION_KEYS, "samples", "format", "allow_outside_paths")
FORMATS = ("table", "json", "github")


@dataclass
class ProjectSettings:
    paths: list[str] = field(default_factory=list)
    options: CheckOptions = field(default_factory=CheckOptions)
    samples: int | None = None
    format: str | None = None
    allow_outside_paths: bool = False


def project_settings(cwd: Path) -> tuple[ProjectSettings, list[GradcliError]]:
    """[tool.gradcli] of `cwd`'s pyproject.toml, checked like a check file's own settings."""
    settings = ProjectSettings()
    pyproject = cwd / "pyproject.toml"
    if not pyproject.is_file():
        return settings, []
    try:
        text = pyproject.read_text(encoding="utf-8")
        table = tomllib.loads(text).get("tool", {}).get("gradcli", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return settings, [GradcliError(f"cannot read {pyproject}: {exc}")]
    if not isinstance(table, dict):
        return settings, [CheckFileError("[tool.gradcli] must be a table", pyproject, 1)]
    reader = _Reader(pyproject, cwd, _KeyLines(text))
    try:
        for key in table:
            if key not in PROJECT_KEYS:
                raise reader.unknown(key, None, PROJECT_KEYS)
        paths = table.get("paths", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise reader.error("paths must be a list of strings", "paths")
        settings.paths = paths
        settings.options = reader.options(table, None, CheckOptions())
        samples = table.get("samples")
        if samples is not None:
            if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
                raise reader.error(
                    f"samples must be a whole number ≥ 1, not {samples!r}", "samples"
                )
            settings.samples = samples
        outside = table.get("allow_outside_paths", False)
        if not isinstance(outside, bool):
            raise reader.error("allow_outside_paths must be true or false", "allow_outside_paths")
        settings.allow_outside_paths = outside
        output = table.get("format")
        if output is not None:
            if output not in FORMATS:
                raise reader.error(
                    f"format must be one of {', '.join(FORMATS)}, not {output!r}", "format"
                )
            settings.format = output
    except CheckFileError as err:
        return ProjectSettings(), [err]
    return settings, []


def _walk(root: Path) -> list[Path]:
    """`*.grad.toml` under `root`, skipping version control, caches and virtual environments."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIP_DIRS
            and not d.startswith(".")
            and not (Path(folder) / d / "pyvenv.cfg").exists()
        )
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".grad.toml")]
    return found


def project_root(folder: Path) -> Path:
    """The nearest folder at or above `folder` that holds pyproject.toml or .git; else `folder`."""
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").exists() or (candidate / ".git").exists():
            return candidate
    return folder


def load(
    path: Path,
    cwd: Path | None = None,
    base: CheckOptions | None = None,
    allow_outside_paths: bool = False,
) -> tuple[list[Case], list[GradcliError]]:
    """The cases of one check file, and the mistakes found in it (each with file, line, key).

    `base` holds the project's defaults ([tool.gradcli]); the file's own settings override them.
    The files it names (programs, @values) are read only inside its project (`project_root`),
    unless `allow_outside_paths`: in CI, a check file from an untrusted change must not be able
    to print /etc/passwd or a secret in an error message.
    """
    full = path if path.is_absolute() else (cwd or Path.cwd()) / path
    try:
        text = read_text(full, str(path))
    except (OSError, UnicodeDecodeError) as exc:
        return [], [GradcliError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")]
    except GradcliError as err:
        return [], [err]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = int(m.group(1)) if (m := re.search(r"line (\d+)", str(exc))) else 1
        return [], [CheckFileError(f"not valid TOML: {exc}", path, line)]
    lines = _KeyLines(text)
    reader = _Reader(path, full.parent, lines)
    reader.root = None if allow_outside_paths else project_root(full.parent.resolve())
    cases, errors = [], []
    try:
        defaults = reader.options(data, None, base or CheckOptions())
        for key in data:
            if key not in (*OPTION_KEYS, "case"):
                raise reader.unknown(key, None, (*OPTION_KEYS, "case"))
        raw_cases = data.get("case", [])
        if not isinstance(raw_cases, list):
            raise CheckFileError(
                "write each case as a [[case]] table", path, lines.line(None, "case")
            )
    except GradcliError as err:
        return [], [err]
    for index, raw in enumerate(raw_cases):
        try:
            cases.append(reader.case(raw, index, defaults))
        except GradcliError as err:
            errors.append(err)
    names = [c.name for c in cases]
    for case in cases:
        if names.count(case.name) > 1:
            errors.append(
                CheckFileError(f"two cases are named {case.name!r}", path, case.line, "name")
            )
            break
    return cases, errors


class _KeyLines:
    """Where keys are in a TOML text: tomllib gives values, not positions."""

    _HEADER = re.compile(r"^\s*\[\[\s*case\s*\]\]")
    _SUBTABLE = re.compile(r"^\s*\[\s*case\s*\.\s*([^\]]+?)\s*\]")
    _TABLE = re.compile(r"^\s*\[")
    _PART = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)"""
    _KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")

    def __init__(self, text: str) -> None:
        self.text_lines = text.splitlines()
        self.cases: list[int] = []
        self.keys: dict[tuple[int | None, str], int] = {}
        section: int | None = None
        prefix = ""
        for number, line in enumerate(self.text_lines, start=1):
            if self._HEADER.match(line):
                self.cases.append(number)
                section, prefix = len(self.cases) - 1, ""
            elif m := self._SUBTABLE.match(line):  # [case.grad] and the like
                prefix = _dotted(m.group(1)) + "."
                self._record(section, prefix[:-1], number)
            elif self._TABLE.match(line):
                section, prefix = None, ""
            elif m := self._KEY.match(line):
                self._record(section, prefix + _dotted(m.group(1)), number)

    def _record(self, section: int | None, key: str, number: int) -> None:
        """`a.b.c` is found at this line, and so are `a.b` and `a` if not already placed."""
        parts = key.split(".")
        for k in range(len(parts), 0, -1):
            self.keys.setdefault((section, ".".join(parts[:k])), number)

    def line(self, case: int | None, key: str | None) -> int:
        if key is not None and (case, key) in self.keys:
            return self.keys[case, key]
        if case is not None and case < len(self.cases):
            return self.cases[case]
        return 1

    def text(self, line: int) -> str | None:
        return self.text_lines[line - 1] if 1 <= line <= len(self.text_lines) else None

    def string_columns(self, line: int, text: str) -> tuple[int, ...] | None:
        """The file column of each character of the string value `text` on `line`, decoding
        escapes (\\t is two columns, one character); None if no string there reads as `text`."""
        raw = self.text(line) or ""
        for start, quote in ((m.start(), m.group()) for m in re.finditer(r"[\"']", raw)):
            columns = _decode_columns(raw, start + 1, quote)
            if columns is not None and columns[1] == text:
                return (*columns[0], columns[2])  # the closing quote: just after the text
        return None


class _Reader:
    """Validates the values of one file, turning each problem into a located CheckFileError."""

    def __init__(self, path: Path, folder: Path, lines: _KeyLines) -> None:
        self.path, self.folder, self.lines = path, folder, lines
        self.case_index: int | None = None
        self.root: Path | None = None  # files named must resolve inside it (None: anywhere)

    def inside(self, rel: str, key: str) -> Path:
        """The file `rel` names, from the check file's folder; refused if it resolves (through
        "..", an absolute path or a symlink) outside the project."""
        path = self.folder / rel
        if self.root is None:
            return path
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL: read it and fail
            return path
        if resolved.is_relative_to(self.root):
            return path
        raise self.error(
            f"{key} names {rel!r}, which is outside the project ({self.root}): check files read "
            "only files inside their project",
            key,
            hint="to read it anyway, pass --allow-outside-paths, or set "
            "allow_outside_paths = true in [tool.gradcli]",
        )

    def error(
        self, message: str, key: str | None, hint: str | None = None, where: str | None = None
    ) -> CheckFileError:
        """A located error about `key`; `where` is the dotted key to find its line by."""
        line = self.lines.line(self.case_index, where or key)
        return CheckFileError(message, self.path, line, key, hint)

    def unknown(self, key: str, inside: str | None, allowed: Iterable[str]) -> CheckFileError:
        close = difflib.get_close_matches(key, list(allowed), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "the keys are " + ", ".join(allowed)
        where = f"{inside}.{key}" if inside in ("sample",) else key
        if inside == "sample" and (self.case_index, where) not in self.lines.keys:
            where = "sample"
        place = f" in {inside}" if inside else ""
        return self.error(f"unknown key {key!r}{place}", key, hint, where)

    def options(
        self, data: Mapping[str, Any], case: int | None, base: CheckOptions
    ) -> CheckOptions:
        self.case_index = case
        changes: dict[str, Any] = {}
        if "method" in data:
            method = data["method"]
            if method not in METHODS:
                raise self.error(
                    f"method must be one of {', '.join(METHODS)}, not {method!r}", "method"
                )
            changes["method"] = method
        for key in ("rtol", "atol", "eps"):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                    raise self.error(f"{key} must be a number ≥ 0, not {value!r}", key)
                if key == "eps" and value == 0:
                    raise self.error("eps must be > 0", key)
                changes[key] = float(value)
        if "dtype" in data:
            if not isinstance(data["dtype"], str) or data["dtype"] not in DTYPES:
                raise self.error(
                    f"dtype must be float64 or float32, not {data['dtype']!r}", "dtype"
                )
            changes["dtype"] = data["dtype"]
        if "fast" in data:
            if not isinstance(data["fast"], bool):
                raise self.error("fast must be true or false", "fast")
            changes["fast"] = data["fast"]
        if "order" in data:
            if data["order"] not in (1, 2) or isinstance(data["order"], bool):
                raise self.error(f"order must be 1 or 2, not {data['order']!r}", "order")
            changes["order"] = data["order"]
        if "wrt" in data:
            wrt = data["wrt"]
            if isinstance(wrt, str):
                wrt = [w.strip() for w in wrt.split(",") if w.strip()]
            if not isinstance(wrt, list) or not all(isinstance(w, str) for w in wrt):
                raise self.error("wrt must be a list of variable names", "wrt")
            changes["wrt"] = tuple(wrt)
        return replace(base, **changes)

    def case(self, raw: Any, index: int, defaults: CheckOptions) -> Case:
        self.case_index = index
        if not isinstance(raw, dict):
            raise self.error("a case must be a table", None)
        for key in raw:
            if key not in CASE_KEYS:
                raise self.unknown(key, "a case", CASE_KEYS)
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.error(
                "every case needs a name (a non-empty string)", "name" if "name" in raw else None
            )
        options = self.options(raw, index, defaults)
        self.case_index = index
        program = self.program(raw)
        at = self.at(raw.get("at", {}))
        sample = self.sample(raw["sample"]) if "sample" in raw else None
        missing = [
            v
            for v in program.variables
            if v not in at and (sample is None or v not in sample.domains)
        ]
        if missing:
            raise self.error(
                f"no value for {', '.join(missing)}",
                "at" if "at" in raw else None,
                hint="give each variable a value in `at` or a domain in `sample`",
            )
        unused = [
            v for v in (*at, *(sample.domains if sample else ())) if v not in program.variables
        ]
        if unused:
            key = "at" if unused[0] in at else "sample"
            raise self.error(
                f"{unused[0]} is not a variable of the expression",
                key,
                hint="its variables are " + (", ".join(program.variables) or "(none)"),
            )
        if options.wrt is not None:
            for w in options.wrt:
                if w not in program.variables:
                    raise self.error(f"wrt: {w} is not a variable of the expression", "wrt")
        value = None
        if "value" in raw:
            if sample is not None:
                raise self.error("an expected value needs fixed points (at), not a sample", "value")
            value = self.number_or_array(raw["value"], "value")
        if "grad" in raw and options.order == 2:
            raise self.error(
                "grad gives first derivatives, and this case checks second ones (order = 2)",
                "grad",
                hint="check the hand-derived gradient in a case of its own",
            )
        grads = self.grads(raw.get("grad", {}), program)
        line = self.lines.cases[index] if index < len(self.lines.cases) else 1
        return Case(name, program, at, sample, value, grads, options, self.path, line)

    def program(self, raw: Mapping[str, Any]) -> Lowered:
        if ("expr" in raw) == ("program" in raw):
            raise self.error("a case needs exactly one of expr and program", None)
        if "expr" in raw:
            return self.formula(raw["expr"], "expr")
        rel = raw["program"]
        if not isinstance(rel, str):
            raise self.error("program must be the path of a .grad file", "program")
        path = self.inside(rel, "program")
        try:
            text = read_text(path, str(rel))
        except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a NUL in the path
            reason = getattr(exc, "strerror", None) or str(exc)
            raise self.error(f"cannot read the program {rel}: {reason}", "program") from None
        return compile_program(text, str(self.path.parent / rel))

    def formula(self, text: Any, key: str, lookup: str | None = None) -> Lowered:
        if not isinstance(text, str):
            raise self.error(f"{key} must be a string", key)
        line = self.lines.line(self.case_index, lookup or key)
        if "\n" in text:  # a multi-line string: its text starts on the line after the quotes
            return compile_program(text, str(self.path), (line + 1, 1))
        columns = self.lines.string_columns(line, text)
        if columns is None:  # not found as written: point into the expression itself
            return compile_program(text, str(self.path), (line, 1))
        return compile_program(
            text, str(self.path), (line, columns[0]), self.lines.text(line), columns
        )

    def at(self, raw: Any) -> dict[str, np.ndarray]:
        if not isinstance(raw, dict):
            raise self.error("at must be a table of values, like at = { x = 1, y = [1, 2] }", "at")
        return {name: self.number_or_array(v, "at", name) for name, v in raw.items()}

    def number_or_array(self, raw: Any, key: str, name: str | None = None) -> np.ndarray:
        label = f"{key}.{name}" if name else key
        if isinstance(raw, str):
            if raw.strip().startswith("@"):  # a value file, from the check file's folder
                raw = "@" + str(self.inside(raw.strip()[1:], key))
            try:
                return parse_value(raw, label)
            except GradcliError as err:
                raise self.error(err.message, key) from None
        try:
            array = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.error(f"{label} must be a number or an array of numbers", key) from None
        if isinstance(raw, bool) or not np.all(np.isfinite(array)):
            raise self.error(f"{label} must be a finite number or an array of them", key)
        return array

    def sample(self, raw: Any) -> Sample:
        if not isinstance(raw, dict):
            raise self.error(
                'sample must be a table: { n = 100, seed = 1, domains = { x = "0:1" } }', "sample"
            )
        for key in raw:
            if key not in ("n", "seed", "domains"):
                raise self.unknown(key, "sample", ("n", "seed", "domains"))
        n, seed = raw.get("n", 100), raw.get("seed", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise self.error("sample.n must be a whole number ≥ 1", "sample")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise self.error("sample.seed must be a whole number ≥ 0", "sample")
        domains = raw.get("domains", {})
        if not isinstance(domains, dict) or not domains:
            raise self.error("sample.domains must name at least one variable", "sample")
        return Sample(n, seed, {name: self.domain(name, d) for name, d in domains.items()})

    def domain(self, name: str, raw: Any) -> Domain:
        try:
            return parse_domain(raw)
        except ValueError as exc:
            raise self.error(f"domain of {name}: {exc}", "sample") from None

    def grads(self, raw: Any, program: Lowered) -> dict[str, Lowered | np.ndarray]:
        if not isinstance(raw, dict):
            raise self.error('grad must be a table, like grad = { x = "2*x" }', "grad")
        out: dict[str, Lowered | np.ndarray] = {}
        for name, value in raw.items():
            if name not in program.variables:
                raise self.error(
                    f"grad names {name}, which is not a variable of the expression",
                    "grad",
                    hint="its variables are " + (", ".join(program.variables) or "(none)"),
                )
            if isinstance(value, str) and not _looks_numeric(value):
                lookup = f"grad.{name}"
                if (self.case_index, lookup) not in self.lines.keys:
                    lookup = "grad"
                formula = self.formula(value, "grad", lookup)
                extra = [v for v in formula.variables if v not in program.variables]
                if extra:
                    raise self.error(
                        f"the gradient formula for {name} uses {extra[0]}, "
                        "not a variable of the expression",
                        "grad",
                    )
                out[name] = formula
            else:
                out[name] = self.number_or_array(value, "grad", name)
        return out


_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def _decode_columns(raw: str, start: int, quote: str) -> tuple[list[int], str, int] | None:
    """Decode the TOML string starting at raw[start] (after its opening quote): the 1-based
    column of each decoded character, the text, and the column of the closing quote."""
    columns: list[int] = []
    out: list[str] = []
    i = start
    while i < len(raw):
        char = raw[i]
        if char == quote:
            return columns, "".join(out), i + 1
        if char == "\\" and quote == '"':
            code = raw[i + 1 : i + 2]
            if code in ("u", "U"):
                width = 4 if code == "u" else 8
                try:
                    out.append(chr(int(raw[i + 2 : i + 2 + width], 16)))
                except ValueError:
                    return None
                columns.append(i + 1)
                i += 2 + width
                continue
            if code not in _ESCAPES:
                return None
            out.append(_ESCAPES[code])
            columns.append(i + 1)
            i += 2
            continue
        out.append(char)
        columns.append(i + 1)
        i += 1
    return None


def _dotted(key: str) -> str:
    """A TOML dotted key without quotes or spaces: 'grad . "w1"' is 'grad.w1'."""
    return ".".join(part.strip().strip("\"'") for part in key.split("."))


def _looks_numeric(text: str) -> bool:
    return bool(re.fullmatch(r"\s*[-+\d.eE,\[\]\s]+", text))


def parse_domain(raw: Any) -> Domain:
    """A domain from "lo:hi", "lo:hi:log" or [lo, hi]."""
    log = False
    if isinstance(raw, str):
        parts = raw.split(":")
        if len(parts) == 3 and parts[2].strip() == "log":
            log, parts = True, parts[:2]
        if len(parts) != 2:
            raise ValueError(f"write it as lo:hi or lo:hi:log, not {raw!r}")
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"write it as lo:hi with numbers, not {raw!r}") from None
    elif (
        isinstance(raw, list)
        and len(raw) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
    ):
        low, high = float(raw[0]), float(raw[1])
    else:
        raise ValueError(f'write it as "lo:hi" or [lo, hi], not {raw!r}')
    if not (np.isfinite(low) and np.isfinite(high)) or not low < high:
        raise ValueError(f"it needs finite lo < hi, not {low}:{high}")
    if log and (low <= 0 < high or low < 0 <= high):
        raise ValueError("a log domain must not contain 0")
    return Domain(low, high, log)
