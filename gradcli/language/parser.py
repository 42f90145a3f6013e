"""Text to syntax tree: an LALR(1) parser of grammar/gradcli.lark, driven by tables.

Lark builds the tables from the grammar ahead of time (grammar/generate.py writes
gradcli/_tables.py), and this module runs them with one loop and one regular expression, so that
starting the command neither imports Lark nor compiles the grammar. The loop keeps its own stacks
and each reduction builds one `syntax` node, so nothing recurses on the input's depth. Errors
become `GradcliError`s that name tokens the way a user would.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from ..graph.nodes import collector_paused
from . import syntax as ast
from ._tables import END, IGNORE, RULES, START, STATES, TERMINALS
from .limits import check_source
from .source import GradcliError, Source, Span, underflows

_OPERATORS = {
    **{"PLUS": "+", "MINUS": "-", "STAR": "*", "SLASH": "/", "POW": "^", "MATMUL": "@"},
    **{"LESS": "<", "LESSEQUAL": "<=", "MORE": ">", "MOREEQUAL": ">=", "EQEQUAL": "=="},
    **{"NOTEQUAL": "!=", "AND": "and", "OR": "or", "NOT": "not"},
}
# Words that are operators: the scanner reads them as names, and `tokens` gives them their kind.
_KEYWORDS = {"and": "AND", "or": "OR", "not": "NOT"}
_COMPARISONS = frozenset({"LESS", "LESSEQUAL", "MORE", "MOREEQUAL", "EQEQUAL", "NOTEQUAL"})

# After these tokens a newline cannot end a statement, so it continues the expression.
_CONTINUES = frozenset(
    {"PLUS", "MINUS", "STAR", "SLASH", "POW", "MATMUL", "COMMA", "EQUAL", "COLON", "LPAR", "LSQB"}
    | {"AND", "OR", "NOT"}
    | _COMPARISONS
)
_OPENING, _CLOSING = frozenset({"LPAR", "LSQB"}), frozenset({"RPAR", "RSQB"})
_SEPARATORS = frozenset({"NEWLINE", "SEMI"})
_IGNORED = frozenset(IGNORE)
_UNDECODABLE = re.compile("[\ud800-\udfff]")
_SCANNER = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in TERMINALS))

_DESCRIPTIONS = {
    "NUMBER": "a number",
    "NAME": "a name",
    "STRING": "a string",
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
_OPERAND_START = frozenset({"NUMBER", "STRING", "NAME", "LPAR", "LSQB"})
_OPERATOR_TOKENS = frozenset({"PLUS", "STAR", "SLASH", "POW", "MATMUL", "AND", "OR"} | _COMPARISONS)


class Token:
    """A terminal of the grammar: its kind (NAME, PLUS, …), its text and where it is."""

    __slots__ = ("end_pos", "start_pos", "type", "value")

    def __init__(self, kind: str, value: str, start: int, end: int) -> None:
        self.type, self.value, self.start_pos, self.end_pos = kind, value, start, end

    def __repr__(self) -> str:
        return f"Token({self.type}, {self.value!r})"


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
    check_source(text, "the program" if name in ("<expr>", "<stdin>") else name)
    source = Source(text, name, origin, frame, columns)
    undecodable = _UNDECODABLE.search(text)
    if undecodable is not None:  # bytes that were not UTF-8, kept by Python as surrogates
        at = undecodable.start()
        raise GradcliError(
            "the program is not valid UTF-8 text", Span(at, at + 1), source=source
        ) from None
    lexer = _Lexer(text)
    try:
        with collector_paused():
            statements = _run(lexer)
    except _Unexpected as exc:
        raise _translate(exc, source, lexer) from None
    except _LiteralError as exc:
        raise GradcliError(exc.message, exc.span, source=source) from None
    return ast.Program(statements, source)


class _Unexpected(Exception):
    """The input stops fitting the grammar: at a character no token starts with (`token` None),
    or at a token that no rule accepts in the parser's `state`."""

    def __init__(self, pos: int, token: Token | None = None, stack: list[int] | None = None):
        self.pos, self.token, self.stack = pos, token, stack


def _run(lexer: _Lexer) -> list[ast.Statement]:
    """The LALR(1) loop: shift tokens, reduce by rules, until the start rule covers the input."""
    states, rules, callbacks = STATES, RULES, _CALLBACKS
    stack = [START]
    values: list = []
    end = Token("$END", "", len(lexer.text), len(lexer.text))
    for token in _chain(lexer.tokens(), end):
        kind = token.type
        while True:
            action = states[stack[-1]].get(kind)
            if action is None:
                raise _Unexpected(token.start_pos, token, stack)
            if action >= 0:
                stack.append(action)
                values.append(token)
                break
            origin, size, callback, splice, single = rules[~action]
            if single and size == 1:  # ?rule: the child passes up unchanged
                stack.pop()
                stack.append(states[stack[-1]][origin])
                continue
            children = values[-size:]
            del values[-size:], stack[-size:]
            if splice:
                children = _splice(children, splice)
            if callback is not None:
                children = callbacks[callback](children)
            values.append(children)
            stack.append(states[stack[-1]][origin])
            if kind == "$END" and stack[-1] == END:
                return values[-1]
    raise AssertionError("the parser stopped before the end of its input")  # pragma: no cover


def _chain(tokens: Iterator[Token], end: Token) -> Iterator[Token]:
    yield from tokens
    yield end


def _splice(children: list, positions: tuple[int, ...]) -> list:
    """Take in the children of spliced rules (`_sep`, Lark's `__x_star` repetitions).

    A repetition is left-recursive, so its list comes first: extend it in place, as Lark does,
    so that a list of n items costs O(n) and not O(n²).
    """
    if positions[0] == 0:
        out = children[0]
        rest = 1
    else:
        out = []
        rest = 0
    for i in range(rest, len(children)):
        if i in positions:
            out.extend(children[i])
        else:
            out.append(children[i])
    return out


class _Lexer:
    """Tokens of the text, with separators tidied so that the grammar can stay LALR(1).

    Drops leading, trailing and repeated separators, and newlines inside parentheses or after a
    token that needs a right operand. Remembers the last tokens for error messages.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.previous: Token | None = None  # the token before the last one yielded
        self.last: Token | None = None

    def tokens(self) -> Iterator[Token]:
        text, match, ignored = self.text, _SCANNER.match, _IGNORED
        pos, size = 0, len(text)
        depth = 0
        pending: Token | None = None
        while pos < size:
            found = match(text, pos)
            if found is None:
                raise _Unexpected(pos)
            kind = found.lastgroup
            end = found.end()
            if kind == "NAME":
                kind = _KEYWORDS.get(found.group(), kind)
            if kind in ignored:
                pos = end
                continue
            tok = Token(kind, found.group(), pos, end)
            pos = end
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


class _Build:
    """One callback per grammar rule or alias; each builds a syntax node with its span."""

    def start(self, children: list) -> list[ast.Statement]:
        return [c for c in children if not isinstance(c, Token)]

    def assign(self, children: list) -> ast.Assign:
        target, _, value = children
        return ast.Assign(target, value, _span(target).cover(value.span))

    def binary(self, children: list) -> ast.Binary:
        left, op, right = children
        return ast.Binary(_OPERATORS[op.type], left, right, left.span.cover(right.span), _span(op))

    def compare(self, children: list) -> ast.Binary:
        """a < b < c is (a < b) and (b < c), as in Python: b is one node, computed once."""
        operands, ops = children[::2], children[1::2]
        pairs = [
            ast.Binary(_OPERATORS[op.type], a, b, a.span.cover(b.span), _span(op))
            for a, op, b in zip(operands, ops, operands[1:], strict=False)
        ]
        out = pairs[0]
        for pair, op in zip(pairs[1:], ops[1:], strict=True):
            out = ast.Binary("and", out, pair, out.span.cover(pair.span), _span(op))
        return out

    def unary(self, children: list) -> ast.Unary:
        op, operand = children
        return ast.Unary(_OPERATORS[op.type], operand, _span(op).cover(operand.span))

    def call(self, children: list) -> ast.Call:
        name, *rest = children
        args = rest[1] if len(rest) == 3 else []
        return ast.Call(name.value, _span(name), args, _span(name).cover(_span(rest[-1])))

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

    def subscripts(self, children: list) -> list[ast.Expr | ast.Slice | ast.NewAxis]:
        return [
            ast.NewAxis(c.span) if isinstance(c, ast.Name) and c.id in ("None", "newaxis") else c
            for c in children
            if not isinstance(c, Token)
        ]

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
        value = float(tok.value)
        if not math.isfinite(value):
            raise _LiteralError(f"the number {tok.value} is too large for a float64", _span(tok))
        if value == 0 and underflows(tok.value):
            raise _LiteralError(
                f"the number {tok.value} is too small for a float64 (it would be 0)", _span(tok)
            )
        return ast.Number(value, _span(tok))

    def string(self, children: list) -> ast.String:
        (tok,) = children
        return ast.String(tok.value[1:-1], _span(tok))

    def name(self, children: list) -> ast.Name:
        (tok,) = children
        return ast.Name(tok.value, _span(tok))

    def paren(self, children: list) -> ast.Expr:
        lpar, inner, rpar = children
        inner.span = Span(lpar.start_pos, rpar.end_pos)
        return inner


_BUILD = _Build()
_CALLBACKS = {
    "start": _BUILD.start,
    "assign": _BUILD.assign,
    "binary": _BUILD.binary,
    "unary": _BUILD.unary,
    "compare": _BUILD.compare,
    "call": _BUILD.call,
    "args": _BUILD.args,
    "keyword": _BUILD.keyword,
    "array": _BUILD.array,
    "elements": _BUILD.elements,
    "index": _BUILD.index,
    "subscripts": _BUILD.subscripts,
    "slice": _BUILD.slice,
    "number": _BUILD.number,
    "string": _BUILD.string,
    "name": _BUILD.name,
    "paren": _BUILD.paren,
}


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of input"
    if tok.type == "NUMBER":
        return f"number {tok.value}"
    if tok.type == "NAME":
        return f"name '{tok.value}'"
    if tok.type == "STRING":
        return f"string {tok.value}"
    if tok.type == "NEWLINE":
        return "new line"
    return f"'{tok.value}'"


def _describe_expected(expected: set[str]) -> str:
    parts = []
    expected = expected - {"EQUAL"}  # valid after any expression only to give a better message
    if {"SEMI", "NEWLINE", "$END"} <= expected:
        parts.append("the end of the statement")
        expected = expected - {"SEMI", "NEWLINE", "$END"}
    if expected >= _OPERAND_START:
        parts.append("an expression")
        expected = expected - _OPERAND_START - {"PLUS", "MINUS", "NOT"}
    if expected >= _OPERATOR_TOKENS:
        parts.append("an operator")
        expected = expected - _OPERATOR_TOKENS - {"MINUS"}
    parts += sorted(_DESCRIPTIONS.get(t, f"'{t.lower()}'") for t in expected)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _accepted(stack: list[int]) -> set[str]:
    """The tokens that the parser would shift next from this stack, after any reductions."""
    candidates = {kind for kind in STATES[stack[-1]] if kind.isupper() or kind == "$END"}
    return {kind for kind in candidates if _accepts(list(stack), kind)}


def _accepts(stack: list[int], kind: str) -> bool:
    while True:
        action = STATES[stack[-1]].get(kind)
        if action is None:
            return False
        if action >= 0:
            return True
        origin, size = RULES[~action][:2]
        del stack[len(stack) - size :]
        stack.append(STATES[stack[-1]][origin])
        if kind == "$END" and stack[-1] == END:
            return True


def _translate(exc: _Unexpected, source: Source, tokens: _Lexer) -> GradcliError:
    text = source.text
    previous = tokens.previous
    tok = exc.token
    if tok is None:
        pos = exc.pos
        char = text[pos]
        hint = None
        if char in "{}":
            hint = "use parentheses ( ) to group, or [ ] for an array"
        elif char == "!":
            hint = "there is no factorial; use gamma functions or a product"
        elif char in "&|":
            hint = "the logical operators are written and, or, not: (x > 0) and (y > 0)"
        elif char in "'\"":
            return GradcliError(
                "this string has no closing quote",
                Span(pos, pos + 1),
                source=source,
                hint=f"a string ends with {char} on the line where it starts, as in "
                "einsum('ij,jk->ik', a, b)",
            )
        return GradcliError(
            f"unexpected character {char!r}", Span(pos, pos + 1), source=source, hint=hint
        )
    expected = _accepted(exc.stack) or {k for k in STATES[exc.stack[-1]] if k.isupper()}
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
        hint = f"multiplication is written with '*', as in {previous.value}*{tok.value}"
    elif tok.type == "EQUAL":
        hint = "'=' binds a name (name = expression); a comparison is written =="
    return GradcliError(
        f"{message}; expected {_describe_expected(expected)}", span, source=source, hint=hint
    )
