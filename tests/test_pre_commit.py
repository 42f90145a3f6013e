"""The pre-commit hook file: valid by pre-commit's own schema, and its entry runs the checks."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from pre_commit.clientlib import load_manifest

ROOT = Path(__file__).resolve().parent.parent
CASE = """\
[[case]]
name = "product"
expr = "x*y"
at = {{ x = 2, y = 3 }}
grad = {{ x = "{hand}" }}
"""


def test_the_hook_file_is_valid_by_pre_commits_schema():
    (hook,) = load_manifest(ROOT / ".pre-commit-hooks.yaml")
    assert hook["id"] == "gradcli-check" and hook["language"] == "python"
    assert hook["entry"] == "gradcli check" and hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    assert files.search("models/net.grad.toml") and files.search("tutorial.grad")
    assert not files.search("notes.toml") and not files.search("grad.py")


def test_the_hooks_entry_fails_a_wrong_gradient_and_passes_a_right_one(tmp_path):
    """What pre-commit runs (the entry, no file names) in a repository with check files."""
    (hook,) = load_manifest(ROOT / ".pre-commit-hooks.yaml")
    *_, subcommand = shlex.split(hook["entry"])
    command = [sys.executable, "-m", "gradcli", subcommand]
    (tmp_path / "pyproject.toml").write_text('[tool.gradcli]\npaths = ["checks"]\n')
    (tmp_path / "checks").mkdir()
    case = tmp_path / "checks" / "model.grad.toml"
    case.write_text(CASE.format(hand="y"))
    ok = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    case.write_text(CASE.format(hand="x"))  # wrong: ∂(x*y)/∂x is y
    bad = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 1 and "1 failed" in bad.stdout
