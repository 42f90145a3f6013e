"""Text to syntax tree: the Lark LALR parser with the tree built directly by callbacks.

The transformer is handed to the parser, so no parse tree is built and nothing recurses: the LALR
parser keeps its own stack, and each reduction builds one `syntax` node. Lark's exceptions are
translated into `GradcliError`s that name tokens the way a user would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import syntax as ast
from .source import GradcliError, Source, Span

_OPERATORS = {"PLUS": "+", "MINUS": "-", "STAR": "*", "SLASH": "/", "POW": "^", "MATMUL": "@"}

# After these tokens a newline cannot end a statement, so it continues the expression.
_CONTINUES = frozenset(
    {"PLUS", "MINUS", "STAR", "SLASH", "POW", "MATMUL", "COMMA", "EQUAL", "COLON", "LPAR", "LSQB"}
)
_OPENING, _CLOSING = frozenset({"LPAR", "LSQB"}), frozenset({"RPAR", "RSQB"})
_SEPARATORS = frozenset({"NEWLINE", "SEMI"})

_DESCRIPTIONS = {
    "NUMBER": "a number",
    "NAME": "a name",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COLON": "':'",
    "COMMA": "','",
    "EQUAL": "'='",
    "SEMI": "';'",
    "NEWLINE": "a new line",
    "$END": "the end of the input",
}
_OPERAND_START = frozenset({"NUMBER", "NAME", "LPAR", "LSQB"})
_OPERATOR_TOKENS = frozenset({"PLUS", "STAR", "SLASH", "POW", "MATMUL"})


def parse(
    text: str,
    name: str = "<expr>",
    origin: tuple[int, int] = (1, 1),
    frame: str | None = None,
    columns: tuple[int, ...] | None = None,
) -> ast.Program:
    """Parse a program; raise `GradcliError` with a located message if it is not well formed.

    For an expression inside a check file, `origin` is where it starts in the file and `frame`
    the file's line, so that messages point into the file.
    """
    source = Source(text, name, origin, frame, columns)
    parser, separators = _parser()
    try:
        statements = parser.parse(text)
    except UnexpectedInput as exc:
        raise _translate(exc, source, separators) from None
    except _LiteralError as exc:
        raise GradcliError(exc.message, exc.span, source=source) from None
    return ast.Program(statements, source)


def grammar_text() -> str:
    """The grammar: inside the installed package, or at the top of a source checkout."""
    packaged = files("gradcli").joinpath("grammar", "gradcli.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parent.parent / "grammar" / "gradcli.lark"
    return checkout.read_text(encoding="utf-8")


@cache
def _parser() -> tuple[Lark, _Separators]:
    grammar = grammar_text()
    separators = _Separators()
    parser = Lark(
        grammar,
        parser="lalr",
        lexer="basic",
        postlex=separators,
        transformer=_Build(),
        maybe_placeholders=False,
    )
    return parser, separators


class _Separators:
    """Post-lexer: tidy statement separators so that the grammar can stay LALR(1).

    Drops leading, trailing and repeated separators, and newlines inside parentheses or after a
    token that needs a right operand. Remembers the last tokens for error messages.
    """

    always_accept = ()

    def __init__(self) -> None:
        self.previous: Token | None = None  # the token before the last one yielded
        self.last: Token | None = None

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        pending: Token | None = None
        self.previous = self.last = None
        for tok in stream:
            kind = tok.type
            if kind in _SEPARATORS:
                if self.last is None or pending is not None:
                    continue
                if kind == "NEWLINE" and (depth > 0 or self.last.type in _CONTINUES):
                    continue
                pending = tok
                continue
            if pending is not None:
                self.previous, self.last = self.last, pending
                yield pending
                pending = None
            if kind in _OPENING:
                depth += 1
            elif kind in _CLOSING:
                depth = max(0, depth - 1)
            self.previous, self.last = self.last, tok
            yield tok


def _span(item: ast.Expr | Token) -> Span:
    if isinstance(item, Token):
        return Span(item.start_pos, item.end_pos)
    return item.span


class _LiteralError(Exception):
    def __init__(self, message: str, span: Span) -> None:
        self.message = message
        self.span = span


class _Build(Transformer):
    """One callback per grammar alias; each builds a syntax node with its span."""

    def start(self, children: list) -> list[ast.Statement]:
        return [c for c in children if not isinstance(c, Token)]

    def assign(self, children: list) -> ast.Assign:
        target, _, value = children
        return ast.Assign(target, value, _span(target).cover(value.span))

    def binary(self, children: list) -> ast.Binary:
        left, op, right = children
        return ast.Binary(_OPERATORS[op.type], left, right, left.span.cover(right.span), _span(op))

    def unary(self, children: list) -> ast.Unary:
        op, operand = children
        return ast.Unary(_OPERATORS[op.type], operand, _span(op).cover(operand.span))

    def call(self, children: list) -> ast.Call:
        name, *rest = children
        args = rest[1] if len(rest) == 3 else []
        return ast.Call(str(name), _span(name), args, _span(name).cover(_span(rest[-1])))

    def args(self, children: list) -> list[ast.Expr | ast.Keyword]:
        return [c for c in children if not isinstance(c, Token)]

    def keyword(self, children: list) -> ast.Keyword:
        target, _, value = children
        return ast.Keyword(target, value, target.span.cover(value.span))

    def array(self, children: list) -> ast.Array:
        lsqb, elements, rsqb = children
        return ast.Array(elements, Span(lsqb.start_pos, rsqb.end_pos))

    def elements(self, children: list) -> list[ast.Expr]:
        return [c for c in children if not isinstance(c, Token)]

    def index(self, children: list) -> ast.Index:
        target, _, subscripts, rsqb = children
        return ast.Index(target, subscripts, target.span.cover(_span(rsqb)))

    def subscripts(self, children: list) -> list[ast.Expr | ast.Slice]:
        return [c for c in children if not isinstance(c, Token)]

    def slice(self, children: list) -> ast.Slice:
        parts: list[list[ast.Expr]] = [[]]
        for child in children:
            if isinstance(child, Token):
                parts.append([])
            else:
                parts[-1].append(child)
        start, stop, step = ([p[0] if p else None for p in parts] + [None, None])[:3]
        span = _span(children[0]).cover(_span(children[-1]))
        return ast.Slice(start, stop, step, span)

    def number(self, children: list) -> ast.Number:
        (tok,) = children
        value = float(tok)
        if not math.isfinite(value):
            raise _LiteralError(f"the number {tok} is too large for a float64", _span(tok))
        return ast.Number(value, _span(tok))

    def name(self, children: list) -> ast.Name:
        (tok,) = children
        return ast.Name(str(tok), _span(tok))

    def paren(self, children: list) -> ast.Expr:
        lpar, inner, rpar = children
        inner.span = Span(lpar.start_pos, rpar.end_pos)
        return inner


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of input"
    if tok.type == "NUMBER":
        return f"number {tok}"
    if tok.type == "NAME":
        return f"name '{tok}'"
    if tok.type == "NEWLINE":
        return "new line"
    return f"'{tok}'"


def _describe_expected(expected: set[str]) -> str:
    parts = []
    expected = expected - {"EQUAL"}  # valid after any expression only to give a better message
    if {"SEMI", "NEWLINE", "$END"} <= expected:
        parts.append("the end of the statement")
        expected = expected - {"SEMI", "NEWLINE", "$END"}
    if expected >= _OPERAND_START:
        parts.append("an expression")
        expected = expected - _OPERAND_START - {"PLUS", "MINUS"}
    if expected >= _OPERATOR_TOKENS:
        parts.append("an operator")
        expected = expected - _OPERATOR_TOKENS - {"MINUS"}
    parts += sorted(_DESCRIPTIONS.get(t, f"'{t.lower()}'") for t in expected)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _translate(exc: UnexpectedInput, source: Source, tokens: _Separators) -> GradcliError:
    text = source.text
    previous = tokens.previous
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = text[pos]
        hint = None
        if char in "{}":
            hint = "use parentheses ( ) to group, or [ ] for an array"
        elif char == "!":
            hint = "there is no factorial; use gamma functions or a product"
        return GradcliError(
            f"unexpected character {char!r}", Span(pos, pos + 1), source=source, hint=hint
        )
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        expected = set(exc.accepts or exc.expected)
        if tok.type == "$END":
            end = tokens.last.end_pos if tokens.last is not None else len(text)
            span = Span(end, end + 1)  # just after the last token, not after trailing blank lines
            message = "unexpected end of input"
            previous = tokens.last
            if previous is None:
                return GradcliError(
                    "the program is empty",
                    span,
                    source=source,
                    hint="write an expression, such as x*y + x/y",
                )
        else:
            span = _span(tok)
            message = f"unexpected {_describe_token(tok)}"
        hint = None
        if (
            previous is not None
            and previous.type in ("NUMBER", "RPAR", "NAME")
            and tok.type in ("NAME", "NUMBER", "LPAR")
        ):
            hint = f"multiplication is written with '*', as in {previous}*{tok}"
        elif tok.type == "EQUAL":
            hint = "'=' binds a name (name = expression); it is not a comparison"
        return GradcliError(
            f"{message}; expected {_describe_expected(expected)}", span, source=source, hint=hint
        )
    if isinstance(exc, UnexpectedEOF):  # pragma: no cover - LALR reports $END as a token
        return GradcliError(
            "unexpected end of input", Span(len(text), len(text) + 1), source=source
        )
    return GradcliError(str(exc), source=source)  # pragma: no cover
