"""The pytest plugin: each [[case]] of a *.grad.toml file is a test item, with gradcli's report
of the case as the failure text."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

# Imported here, before pytester's in-process runs, which forget the modules they import (numpy
# cannot be imported twice in one process).

ROOT = Path(__file__).resolve().parent.parent

CASES = """\
[[case]]
name = "the tutorial"
expr = "x*y + x/y"
at = { x = 5, y = 2 }

[[case]]
name = "sampled"
expr = "sin(x)*y"
at = { x = 0.5, y = 2 }
sample = { n = 20, seed = 1, domains = { x = "-3:3" } }

[[case]]
name = "a sign slip"
expr = "x*y + x/y"
at = { x = 5, y = 2 }
grad = { x = "y + 1/y", y = "x + x/y^2" }
"""


def test_the_plugin_is_registered_for_pytest():
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("gradcli") == "gradcli.pytest_plugin"


def test_each_case_is_an_item_and_a_failure_shows_gradclis_report(pytester):
    pytester.path.joinpath("model.grad.toml").write_text(CASES)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*model.grad.toml::the tutorial PASSED*",
            "*model.grad.toml::sampled PASSED*",
            "*model.grad.toml::a sign slip FAILED*",
        ]
    )
    text = result.stdout.str()
    assert "∂f/∂y (hand-derived): the hand-derived gradient disagrees" in text
    assert "6.25" in text and "3.75" in text  # the hand value and the reference, in full
    assert "Traceback" not in text


def test_a_mistake_in_a_check_file_is_a_failing_item_that_says_where(pytester):
    pytester.path.joinpath("broken.grad.toml").write_text(
        '[[case]]\nname = "ok"\nexpr = "x^2"\nat = { x = 1 }\n\n'
        '[[case]]\nname = "typo"\nexpr = "x^2 +"\nat = { x = 1 }\n'
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "unexpected end of input" in text and "broken.grad.toml" in text


def test_pytest_on_the_samples_runs_every_case_of_gradcli_check(pytester):
    listed = subprocess.run(
        [sys.executable, "-m", "gradcli", "check", str(ROOT / "samples"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    cases = json.loads(listed.stdout)["summary"]["cases"]
    assert cases >= 118
    result = pytester.runpytest(str(ROOT / "samples"), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=cases)


def test_the_plugin_can_be_turned_off(pytester):
    pytester.path.joinpath("model.grad.toml").write_text(CASES)
    result = pytester.runpytest("-p", "no:gradcli")
    assert result.ret == 5  # nothing collected
