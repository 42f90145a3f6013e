"""The project around check files: finding the files, its root, and its [tool.gradcli] settings.

`find` turns the paths given (or configured) into check files, searching folders while skipping
version control, caches and virtual environments. `project_root` is the folder a check file's
project starts at: the files a check file names are read only inside it (see
`reader.Reader.inside`). `project_settings` reads [tool.gradcli] of pyproject.toml with the
same located reader as a check file's own settings.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..language.source import GradcliError
from .cases import OPTION_KEYS, CheckFileError
from .reader import KeyLines, Reader
from .verdicts import CheckOptions

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", "site-packages"})


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
    reader = Reader(pyproject, cwd, KeyLines(text))
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
