"""Helpers shared by the command-line tests."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from gradcli.cli.app import app

_runner = CliRunner()


def cli(*args: str, input: str | None = None):
    """Run `gradcli ARGS…` in-process; stdout and stderr are kept apart."""
    return _runner.invoke(app, list(args), input=input)


def strict(text: str) -> Any:
    """Parse as RFC 8259 JSON: NaN, Infinity and -Infinity are not JSON."""

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)
