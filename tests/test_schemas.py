"""docs/schemas: a JSON Schema for every --json output, checked against real outputs of many
kinds (scalars, arrays, nan and inf, failures, errors in files); the schemas forbid fields they
do not describe, so an output that changes without its schema fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from support import cli, strict

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = {
    p.name.removesuffix(".schema.json"): p for p in (ROOT / "docs" / "schemas").glob("*.json")
}

WRONG = '[[case]]\nname = "slip"\nexpr = "x*y"\nat = { x = 2, y = 3 }\ngrad = { x = "x" }\n'
MIXED = (
    '[[case]]\nname = "value"\nexpr = "x^2"\nat = { x = 3 }\nvalue = 9\n\n'
    '[[case]]\nname = "array"\nexpr = "sum(A @ v)"\nat = { A = [[1, 2], [3, 4]], v = [1, -1] }\n\n'
    '[[case]]\nname = "hessian"\nexpr = "x^2*y"\nat = { x = 1, y = 2 }\norder = 2\n\n'
    '[[case]]\nname = "broken"\nexpr = "log(x)"\nat = { x = -1 }\n'
)

CALLS = {
    "eval": [
        ["eval", "x*y + x/y", "--x", "5", "--y", "2"],
        ["eval", "sin(x)*y", "--x", "0,1,2", "--y", "[1, 2, 3]"],
        ["eval", "log(x) + 1/y", "--x", "-1", "--y", "0"],
        ["eval", "A @ v", "--A", "[[1, 2], [3, 4]]", "--v", "1,-1"],
    ],
    "jacobian": [
        ["jacobian", "[x*y, x/y]", "--x", "5", "--y", "2"],
        ["jacobian", "softmax(v)", "--v", "1,2,3"],
        ["jacobian", "[log(x), 1/x]", "--x", "0"],
    ],
    "hessian": [
        ["hessian", "x^2*y + sin(x*y)", "--x", "0.7", "--y", "-1.3"],
        ["hessian", "sum(v*v*v)", "--v", "1,2", "--mode", "reverse"],
        ["hessian", "log(x)*y", "--x", "-1", "--y", "1"],
    ],
    "jvp": [
        ["jvp", "x*y", "--x", "5", "--y", "2", "--direction", "x=1"],
        ["jvp", "v*w", "--v", "1,2", "--w", "3", "--direction", "v=[1,0]"],
        ["jvp", "log(x)", "--x", "-1", "--direction", "x=1"],
    ],
    "diff": [
        ["diff", "x*y + x/y"],
        ["diff", "x^3*y", "--order", "2"],
        ["diff", "sum(v*v)", "--v", "1,2"],
    ],
    "explain": [
        ["explain", "x*y + x/y", "--x", "5", "--y", "2"],
        ["explain", "sqrt(x) + 1/x", "--x", "0"],
        ["explain", "sum(v*v)", "--v", "1,2"],
    ],
    "check": [
        ["check", "x*y + x/y", "--x", "5", "--y", "2"],
        ["check", "abs(x)*y", "--x", "0", "--y", "2", "--blame"],
        ["check", "x^2", "--x", "1", "--sweep"],
        ["check", "sin(x)", "--samples", "20", "--domain", "x=-3:3", "--order", "2"],
        ["check", "FILE:wrong.grad.toml"],
        ["check", "FILE:mixed.grad.toml"],
        ["check", "FILE:broken.grad.toml"],
    ],
    "minimize": [
        ["minimize", "(w-3)^2", "--w", "0", "--params", "w", "--steps", "5"],
        ["minimize", "exp(w)^2", "--w", "100", "--params", "w", "--steps", "3"],
    ],
}


def test_every_schema_is_valid_and_every_json_output_has_one():
    for path in SCHEMAS.values():
        Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
    assert set(CALLS) | {"eval-batch-line"} == set(SCHEMAS)


@pytest.mark.parametrize(
    ("name", "args"), [(n, a) for n, calls in CALLS.items() for a in calls], ids=str
)
def test_real_outputs_match_their_schema(name, args, tmp_path):
    (tmp_path / "wrong.grad.toml").write_text(WRONG)
    (tmp_path / "mixed.grad.toml").write_text(MIXED)
    (tmp_path / "broken.grad.toml").write_text('[[case]]\nname = "b"\nexpr = "x +"\nat = {x=1}\n')
    args = [str(tmp_path / a[5:]) if a.startswith("FILE:") else a for a in args]
    r = cli(*args, "--json")
    assert r.stdout.strip(), r.stderr
    validator = Draft202012Validator(json.loads(SCHEMAS[name].read_text(encoding="utf-8")))
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(strict(r.stdout))
    ]
    assert errors == []


def test_batch_lines_match_their_schema(tmp_path):
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"x": 1}\n{"x": "a"}\n{"x": -1}\n{"x": [1, -1, 0]}\n')
    r = cli("eval", "log(x) + x", "--batch", str(lines))
    schema = json.loads(SCHEMAS["eval-batch-line"].read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    records = [strict(line) for line in r.stdout.splitlines()]
    assert len(records) == 4 and any("error" in rec for rec in records)
    for record in records:
        assert list(validator.iter_errors(record)) == [], record
