"""The README tells the truth: CI runs its commands, and it documents every function."""

import re
from pathlib import Path

from gradcli.primitives import public_names

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block, "the README starts with a ```sh block of two commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_two_commands_that_ci_runs():
    commands = readme_commands()
    assert len(commands) == 2
    assert "gradcli" in commands[0] and "samples/" in commands[0]
    assert "[test]" in commands[1] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for command in commands:
        assert command in ci, f"CI does not run the README command: {command}"


def test_the_language_reference_documents_every_function():
    reference = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    for name in public_names():
        assert f"`{name}(" in reference, f"docs/language.md's function tables lack {name}"


def test_readme_states_the_tolerance_rule_of_the_code():
    assert "|g − r| ≤ atol + rtol·|r| + 4·(e + ε·s)" in README
    from gradcli.checking.tolerances import DEFAULT_RTOL, SAFETY, TOLERANCE_RULE

    assert SAFETY == 4.0 and DEFAULT_RTOL == {"float64": 1e-7, "float32": 1e-3}
    assert "4·(e + ε·s)" in TOLERANCE_RULE and "rtol 1e-7 in float64, 1e-3 in float32" in README


def test_the_readmes_python_examples_run():
    import doctest

    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner()
    for k, block in enumerate(blocks):
        runner.run(parser.get_doctest(block, {}, f"README python block {k}", "README.md", 0))
    assert runner.summarize(verbose=False).failed == 0
