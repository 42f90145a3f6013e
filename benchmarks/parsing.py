"""Parsing: tokens per second of `gradcli.language.parser.parse` on a large generated program.

The program is 8,000 bindings in three rotating forms (calls, powers, unary minus, numbers with
exponents, brackets), about 272,000 tokens. Tokens are counted with a simple regular expression
that follows the grammar's terminals: numbers, names, operators, brackets, punctuation and
newlines (whitespace and comments are not tokens; on this program the count is the same as
that of the grammar's own lexer, which Lark gives). Median of repeated parses.

Target: at least 150,000 tokens per second.
"""

from __future__ import annotations

import re

from common import Result, median, repeat, seconds, verdict

NAME = "parsing"
TARGET = 150_000
LINES = 8_000
TOKEN = re.compile(
    r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"  # numbers
    r"|[^\W\d]\w*"  # names
    r"|\*\*|[-+*/^@()\[\],:;=\n]"  # operators, brackets, punctuation, newlines
)
COMMENT = re.compile(r"#[^\n]*")


def program(lines: int = LINES) -> str:
    out = ["a0 = x*y + z"]
    for i in range(1, lines):
        p, k = f"a{i - 1}", i % 97 + 1
        if i % 3 == 0:
            out.append(f"a{i} = sin(x*{k}.25 + y^2) / ({p} + {k}) - cos(-z)*exp({p}/{k}.5e-1)")
        elif i % 3 == 1:
            out.append(f"a{i} = ({p} - x)*(y + {k}) + tanh({p}*z - 1.5) ** 2 + sqrt(1 + {p}^2)")
        else:
            out.append(f"a{i} = max({p}, x, -y) + log(1 + exp(-{p}*{k}e-3)) - [x, y, z][{i % 3}]")
    out.append(f"a{lines - 1} + 1  # the value of the program")
    return "\n".join(out) + "\n"


def count_tokens(text: str) -> int:
    return len(TOKEN.findall(COMMENT.sub("", text)))


def run(quick: bool = False) -> list[Result]:
    from gradcli.language.parser import parse

    text = program()
    tokens = count_tokens(text)
    times = repeat(lambda: parse(text), 2 if quick else 5, warmup=1)
    t = median(times)
    rate = tokens / t
    return [
        Result(
            NAME,
            "parse a large program",
            f"{rate:,.0f} tokens/s ({tokens:,} tokens, {len(text):,} characters, "
            f"{LINES:,} lines in {seconds(t)}, median of {len(times)})",
            None,
            f"≥ {TARGET:,} tokens/s",
            verdict(rate >= TARGET),
        )
    ]
