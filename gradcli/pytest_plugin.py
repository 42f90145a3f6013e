"""A pytest plugin: every `[[case]]` of a `*.grad.toml` file is a test item.

Installed with gradcli (the `pytest11` entry point `gradcli`), so that `pytest samples/` runs
the same checks as `gradcli check samples/`, each case passing or failing on its own with
gradcli's report of the case as the failure text. `-p no:gradcli` turns it off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SUFFIX = ".grad.toml"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return CheckFile.from_parent(parent, path=file_path)
    return None


class CheckFile(pytest.File):
    """A check file: its cases, and an item for each mistake in it (which fails)."""

    def collect(self):
        from .checking.checkfile import load

        cases, errors = load(self.path)
        for err in errors:
            yield FileError.from_parent(self, name=f"line {_line(err)}", error=err)
        seen: dict[str, int] = {}
        for case in cases:
            seen[case.name] = seen.get(case.name, 0) + 1
            name = case.name if seen[case.name] == 1 else f"{case.name} ({seen[case.name]})"
            yield CaseItem.from_parent(self, name=name, case=case)


class CheckFailed(Exception):
    """A case that did not pass; its report is the failure text."""


class CaseItem(pytest.Item):
    def __init__(self, *, case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        from .checking.runner import run_case
        from .output.check_tables import check_details_text

        outcome = run_case(self.case)
        if outcome.status != "passed":
            raise CheckFailed(check_details_text(outcome))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"gradcli check: {self.case.name}"


class FileError(pytest.Item):
    """A mistake in a check file: reported where it is, as `gradcli check` reports it."""

    def __init__(self, *, error: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise CheckFailed(str(self.error))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, _line(self.error) - 1, "gradcli check file"


def _line(err: Any) -> int:
    from .language.source import error_location

    where = error_location(err)
    return where[1] if where is not None else 1
