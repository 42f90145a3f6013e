"""[tool.gradcli] in pyproject.toml: paths, case defaults, sample size and output format, below
a check file's own settings and the command line's flags."""

from __future__ import annotations

import pytest
from support import cli, strict

CHECKS = """\
[[case]]
name = "sampled"
expr = "sin(x)"
sample = { n = 100, seed = 1, domains = { x = "-1:1" } }

[[case]]
name = "its own method"
expr = "x^3"
at = { x = 2 }
method = "richardson"
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "model.grad.toml").write_text(CHECKS)
    monkeypatch.chdir(tmp_path)

    def configure(text: str) -> None:
        (tmp_path / "pyproject.toml").write_text("[tool.gradcli]\n" + text)

    return configure


def _records(r) -> dict[str, tuple[str, int]]:
    return {rec["case"]: (rec["method"], rec["points"]) for rec in strict(r.stdout)["records"]}


def test_the_project_sets_paths_defaults_sample_size_and_format(project):
    project('paths = ["checks"]\nmethod = "central"\nsamples = 7\nformat = "json"\n')
    r = cli("check")
    assert r.exit_code == 0, r.stderr
    # the project's method and sample size; a case's own method wins over the project's
    assert _records(r) == {"sampled": ("central", 7), "its own method": ("richardson", 1)}


def test_command_line_flags_override_the_project(project):
    project('paths = ["checks"]\nmethod = "central"\nsamples = 7\nformat = "json"\n')
    r = cli("check", "--method", "forward", "--samples", "3")
    assert _records(r) == {"sampled": ("forward", 3), "its own method": ("forward", 1)}
    r = cli("check", "--format", "table")
    assert "2 cases: 2 passed" in r.stdout


def test_an_expression_takes_the_project_defaults_but_not_its_sample_size(project):
    project('method = "central"\nsamples = 7\nrtol = 1e-3\n')
    r = cli("check", "x^2", "--x", "1", "--json")
    assert r.exit_code == 0, r.stderr
    (record,) = strict(r.stdout)["records"]
    assert (record["method"], record["points"]) == ("central", 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('mehtod = "central"\n', "unknown key 'mehtod'"),
        ('method = "fancy"\n', "method must be one of"),
        ("samples = 0\n", "samples must be a whole number ≥ 1"),
        ('format = "xml"\n', "format must be one of table, json, github"),
        ("rtol = -1\n", "rtol must be a number ≥ 0"),
        ('paths = "checks"\n', "paths must be a list of strings"),
    ],
)
def test_a_mistake_in_the_project_settings_says_where(project, text, message):
    project(text)
    r = cli("check")
    assert r.exit_code == 2
    assert "pyproject.toml:2" in r.stderr and message in r.stderr
