"""Numbers in and out: parsing variable values from the command line, and writing them back.

A value is a number (`5`, `-2.5e-3`), a comma list (`1,2,3`), a JSON array (`[[1, 2], [3, 4]]`),
or `@file` with an array in a .npy (never unpickled), .json or .csv file.
Values must be finite: nan and inf are refused where they come in, so that every nan or inf gradcli
reports was produced by the expression itself.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..language.limits import check_elements, read_text
from ..language.source import GradcliError, underflows

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_value(text: str, name: str) -> np.ndarray:
    """The array a command-line value stands for; a clear error if it is not one."""
    stripped = text.strip()
    if stripped.startswith("@"):
        array = load_file(stripped[1:], name)
    elif stripped.startswith("["):
        array = _from_json(stripped, name)
    elif "," in stripped:
        array = np.array([_number(part, name, text) for part in stripped.split(",")])
    else:
        array = np.array(_number(stripped, name, text))
    if not np.all(np.isfinite(array)):
        raise GradcliError(f"the value of {name} is too large for a float64: {text}")
    check_elements(array.shape, f"the value of {name}")
    return array


def load_file(path: str, name: str) -> np.ndarray:
    """An array from a .npy file (never unpickled), a .json file or a .csv file."""
    from pathlib import Path  # values from files only: not at start-up

    file = Path(path)
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            try:
                # Mapped, not read: the header gives the size before the memory is spent.
                array = np.load(file, allow_pickle=False, mmap_mode="r")
                check_elements(array.shape, f"{path}")
            except (OSError, GradcliError):
                raise
            except Exception as exc:  # a bad header: ValueError, EOFError, TokenError, MemoryError…
                raise GradcliError(f"{path} is not a numeric .npy array: {exc}") from None
            if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
                raise GradcliError(f"{path} holds {array.dtype} values, not real numbers")
            array = np.array(array, dtype=np.float64)
        elif suffix == ".json":
            array = _from_json(read_text(file, path).strip(), f"{name} ({path})")
        elif suffix in (".csv", ".txt"):
            array = _from_csv(read_text(file, path), path)
        else:
            raise GradcliError(
                f"cannot read {path}: a value file is .npy, .json or .csv",
                hint=f"for example --{name} @data.npy",
            )
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, or text not UTF-8
        raise GradcliError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not np.all(np.isfinite(array)):
        raise GradcliError(f"{path} holds nan or inf: values must be finite")
    return array


def _from_csv(text: str, path: str) -> np.ndarray:
    """Rows of comma-separated numbers; a first row that is not numbers is a header."""
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if rows and not all(_NUMBER.fullmatch(c.strip()) for c in rows[0].split(",")):
        rows = rows[1:]
    values = []
    for k, line in enumerate(rows, start=1):
        cells = [c.strip() for c in line.split(",")]
        if not all(_NUMBER.fullmatch(c) for c in cells):
            raise GradcliError(f"{path}: row {k} is not comma-separated numbers: {line[:60]!r}")
        values.append([float(c) for c in cells])
    if not values:
        raise GradcliError(f"{path} holds no numbers")
    if len({len(r) for r in values}) > 1:
        raise GradcliError(f"{path}: every row must have as many numbers as the first")
    array = np.array(values)
    return array[:, 0] if array.shape[1] == 1 else array


def _number(text: str, name: str, whole: str) -> float:
    text = text.strip()
    if text.lower().lstrip("+-") in ("inf", "infinity", "nan"):
        raise GradcliError(
            f"the value of {name} must be a finite number, not {text}",
            hint="nan and inf are refused where they come in, so that every nan or inf "
            "reported was made by the program",
        )
    if not _NUMBER.fullmatch(text):
        raise GradcliError(
            f"the value of {name} is not a number: {whole!r}",
            hint="give a number (5, -2.5e-3), a comma list (1,2,3) "
            "or a JSON array ([[1, 2], [3, 4]])",
        )
    value = float(text)
    if value == 0 and underflows(text):
        raise GradcliError(
            f"the value of {name} is too small for a float64 (it would be 0): {whole}",
            hint="the smallest is about 5e-324; give 0 if 0 is meant",
        )
    return value


def _reject(constant: str) -> float:
    raise ValueError(f"{constant} is not allowed")


def _json_float(literal: str) -> float:
    value = float(literal)
    if value == 0 and underflows(literal):
        raise ValueError(f"{literal} is too small for a float64 (it would be 0)")
    return value


def _from_json(text: str, name: str) -> np.ndarray:
    try:
        import json  # array values only: not at start-up

        data = json.loads(text, parse_constant=_reject, parse_float=_json_float)
    except ValueError as exc:
        raise GradcliError(f"the value of {name} is not valid JSON: {exc}") from None
    except RecursionError:  # Python's JSON reader recurses on nesting
        raise GradcliError(f"the value of {name} is nested too deeply") from None
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            if depth >= 32:
                raise GradcliError(f"the value of {name} has more than 32 axes")
            stack.extend((x, depth + 1) for x in item)
        elif isinstance(item, bool) or not isinstance(item, int | float):
            raise GradcliError(
                f"the value of {name} must hold only numbers, not {json.dumps(item)}"
            )
    try:
        return np.array(data, dtype=np.float64)
    except ValueError:
        raise GradcliError(
            f"the value of {name} is a ragged array: every row must have the same length"
        ) from None


def format_number(value: Any) -> str:
    """The shortest text that reads back as the same float: 12.5, 2.5, 1e-300."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e16:
        return f"{value:.1f}"
    return repr(value)


def to_json(value: Any) -> Any:
    """A number or nested list for `json.dumps`, with nan and inf as null (RFC 8259 has neither)."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        number = float(array)
        return number if np.isfinite(number) else None
    if np.all(np.isfinite(array)):
        return array.tolist()
    return np.where(np.isfinite(array), array, None).tolist()
