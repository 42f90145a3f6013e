"""tests/data holds check files that fail on purpose: gradcli's pytest plugin would collect them
as tests. The plugin itself is tested through pytester (tests/test_pytest_plugin.py)."""

import os

import pytest

collect_ignore = ["data"]
pytest_plugins = ["pytester"]

# GNU readline, which pytest loads, exports LINES and COLUMNS behind os.environ's back (setenv
# in C): every subprocess would inherit a terminal width of 80, and gradcli's output depends on
# COLUMNS. Unset them for real (del os.environ[...] calls unsetenv) unless the user set them.
for _key in ("COLUMNS", "LINES"):
    if _key not in os.environ:
        os.environ[_key] = ""
        del os.environ[_key]


@pytest.fixture
def no_size_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests about depth and length rather than the default size limits (those are
    tests/test_limits.py's): 100,000-term programs, and derivatives printed and read back."""
    monkeypatch.setenv("GRADCLI_MAX_SOURCE", "0")
    monkeypatch.setenv("GRADCLI_MAX_NODES", "0")
