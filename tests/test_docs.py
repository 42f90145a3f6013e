"""docs/: every console example of the tutorial prints what gradcli prints, and the GitHub
Actions example is a workflow whose check step annotates a failing case on its line."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _examples(text: str) -> list[tuple[str, str]]:
    """($ command, expected output) pairs from the ```console blocks."""
    pairs = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            pairs.append((command, output))
    return pairs


TUTORIAL = [
    example
    for page in ("tutorial.md", "language.md")
    for example in _examples((DOCS / page).read_text(encoding="utf-8"))
]


def test_the_tutorial_has_its_examples():
    commands = [c.split()[1] for c, _ in TUTORIAL]
    assert {"eval", "graph", "explain", "diff", "check"} <= set(commands)


@pytest.mark.parametrize(("command", "expected"), TUTORIAL, ids=[c for c, _ in TUTORIAL])
def test_each_tutorial_example_prints_what_it_shows(command, expected):
    program, *args = shlex.split(command)
    assert program == "gradcli"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # 160 wide
    out = subprocess.run(
        [sys.executable, "-m", "gradcli", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )

    def lines(text: str) -> list[str]:
        return [line.rstrip() for line in text.rstrip("\n").split("\n")]

    assert lines(out.stdout + out.stderr) == lines(expected)  # an error example shows stderr


def test_the_github_actions_example_runs_gradcli_check_with_annotations(tmp_path):
    workflow = yaml.safe_load((DOCS / "github-actions.yml").read_text(encoding="utf-8"))
    (job,) = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    (command,) = [r for r in runs if r.startswith("gradcli check")]
    assert "--format github" in command and workflow[True] is not None  # `on:` parses as True
    # The command, run in a repository with a failing case, annotates that case's line.
    case = tmp_path / "model.grad.toml"
    case.write_text(
        '[[case]]\nname = "slip"\nexpr = "x*y"\nat = { x = 2, y = 3 }\ngrad = { x = "x" }\n'
    )
    args = shlex.split(command)[1:]
    out = subprocess.run(
        [sys.executable, "-m", "gradcli", *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 1
    assert re.search(r"^::error file=model\.grad\.toml,line=1[,:]", out.stdout, re.M), out.stdout
    assert (tmp_path / "gradients.xml").is_file()


def test_the_check_file_reference_documents_every_key_and_its_example_passes(tmp_path):
    from gradcli.checking.checkfile import CASE_KEYS, OPTION_KEYS, PROJECT_KEYS

    reference = (DOCS / "check-files.md").read_text(encoding="utf-8")
    for key in {*CASE_KEYS, *OPTION_KEYS, *PROJECT_KEYS, "n", "seed", "domains"}:
        assert f"`{key}`" in reference, f"docs/check-files.md does not document {key}"
    (example,) = re.findall(r"```toml\n(.*?)```", reference, re.S)
    (tmp_path / "example.grad.toml").write_text(example)
    out = subprocess.run(
        [sys.executable, "-m", "gradcli", "check", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["summary"]["cases"] == 3


def test_the_comparison_with_autograd_and_jax_names_only_functions_gradcli_has():
    """Each name in gradcli's column of the comparison table is a function of the registry (or
    a word of the language), so that the table cannot claim what gradcli lacks."""
    from gradcli.primitives import public_names

    text = (DOCS / "language.md").read_text(encoding="utf-8")
    section = text.split("## Compared with HIPS autograd and JAX")[1].split("\n## ")[0]
    names = set(public_names()) | {"and", "or", "not", "x", "idx", "A", "rows", "cols", "None"}
    cells = [line.split("|")[2] for line in section.splitlines() if line.startswith("| `")]
    assert len(cells) > 25
    for cell in cells:
        for span in re.findall(r"`([^`]*)`", cell):
            for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span):
                assert word in names, (word, cell)
