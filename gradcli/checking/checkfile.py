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

This module loads a file (`load`) and is the home of the public names callers use. The pieces
live beside it: the case model (Case, Sample, Domain, CheckFileError) in `cases`, finding files
and the project's root and [tool.gradcli] settings in `project`, and the located reader of TOML
in `reader`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from ..language.limits import read_text
from ..language.source import GradcliError
from .cases import CASE_KEYS, OPTION_KEYS, Case, CheckFileError, Domain, Sample, parse_domain
from .project import (
    FORMATS,
    PROJECT_KEYS,
    SKIP_DIRS,
    ProjectSettings,
    find,
    project_root,
    project_settings,
)
from .reader import KeyLines, Reader
from .verdicts import CheckOptions

__all__ = [
    "CASE_KEYS",
    "FORMATS",
    "OPTION_KEYS",
    "PROJECT_KEYS",
    "SKIP_DIRS",
    "Case",
    "CheckFileError",
    "Domain",
    "ProjectSettings",
    "Sample",
    "find",
    "load",
    "parse_domain",
    "project_root",
    "project_settings",
]


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
    lines = KeyLines(text)
    reader = Reader(path, full.parent, lines)
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
