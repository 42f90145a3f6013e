"""The located reader of check files: every mistake names its file, line and key.

tomllib gives values, not positions: `KeyLines` finds the line of each key (and of each
`[[case]]`) in the text itself, and the columns of a string's characters, so that an error in an
expression points into the file. `Reader` validates the values of one file (a check file's
cases and defaults, or [tool.gradcli]) and turns each problem into a CheckFileError at its line;
it also refuses files named from outside the project.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.values import parse_value
from ..language.limits import read_text
from ..language.lower import Lowered
from ..language.program import compile_program
from ..language.source import GradcliError
from .cases import CASE_KEYS, Case, CheckFileError, Domain, Sample, parse_domain
from .finite_diff import METHODS
from .verdicts import DTYPES, CheckOptions


class KeyLines:
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


class Reader:
    """Validates the values of one file, turning each problem into a located CheckFileError."""

    def __init__(self, path: Path, folder: Path, lines: KeyLines) -> None:
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
