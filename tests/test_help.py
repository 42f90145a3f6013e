"""Every command's --help has examples, and Typer's shell completion completes commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import cli

from gradcli.cli.app import app

COMMANDS = sorted(c.name for c in app.registered_commands)


def test_the_commands_are_the_documented_ones():
    assert (
        sorted(
            ["eval", "jacobian", "minimize", "jvp", "hessian", "check", "diff", "graph", "explain"]
        )
        == COMMANDS
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_examples_that_use_it(command):
    r = cli(command, "--help")
    assert r.exit_code == 0
    _, _, examples = r.stdout.partition("Examples")
    assert f"gradcli {command} " in examples, r.stdout
    assert "Exit codes" in r.stdout


def test_shell_completion_completes_commands_and_is_offered():
    env = {**os.environ, "_GRADCLI_COMPLETE": "complete_bash", "COMP_WORDS": "gradcli ch"}
    env["COMP_CWORD"] = "1"
    out = subprocess.run([sys.executable, "-m", "gradcli"], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["check"]
    assert "--install-completion" in cli("--help").stdout
