"""The language's syntax: numbers, names, precedence, programs, and located parse errors."""

import math
import random
import re
from pathlib import Path

import pytest

from gradcli import GradcliError, compile_program, evaluate
from gradcli.language.printer import to_source


def value(text: str, **variables: float) -> float:
    return float(evaluate(text, variables).value)


def same_structure(a: str, b: str) -> bool:
    """Two programs lower to the same graph shape (compared through the printer)."""
    return to_source(compile_program(a).output) == to_source(compile_program(b).output)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 2.0),
        ("2.5", 2.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e-3", 1e-3),
        ("6.02E23", 6.02e23),
        ("1E+2", 100.0),
        ("0.000125e4", 1.25),
    ],
)
def test_numbers(text, expected):
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "explicit", "reference"),
    [
        ("-x^2", "-(x^2)", lambda x, y: -(x**2)),
        ("2^-x", "2^(-x)", lambda x, y: 2 ** (-x)),
        ("x^2^y", "x^(2^y)", lambda x, y: x ** (2**y)),
        ("x**2**y", "x^(2^y)", lambda x, y: x ** (2**y)),
        ("x/y/3", "(x/y)/3", lambda x, y: (x / y) / 3),
        ("x-y-3", "(x-y)-3", lambda x, y: (x - y) - 3),
        ("x+y*3", "x+(y*3)", lambda x, y: x + y * 3),
        ("x*y^2", "x*(y^2)", lambda x, y: x * y**2),
        ("-x*y", "(-x)*y", lambda x, y: -x * y),
        ("x*-y", "x*(-y)", lambda x, y: x * -y),
        ("--x", "x", lambda x, y: x),
        ("+x - +y", "x - y", lambda x, y: x - y),
        ("x^-y^2", "x^(-(y^2))", lambda x, y: x ** (-(y**2))),
        ("(x+y)^2", "(x+y)^2", lambda x, y: (x + y) ** 2),
        ("x − y", "x - y", lambda x, y: x - y),
        ("2*x/y*3", "((2*x)/y)*3", lambda x, y: ((2 * x) / y) * 3),
    ],
)
def test_precedence(text, explicit, reference):
    assert same_structure(text, explicit)
    x, y = 1.7, 1.3
    assert value(text, **_used(text, x=x, y=y)) == pytest.approx(reference(x, y), rel=1e-15)


def _used(text, **values):
    names = compile_program(text).variables
    return {k: v for k, v in values.items() if k in names}


def test_names_may_be_unicode_and_contain_digits_and_underscores():
    assert value("α_1 * β2 + _z", **{"α_1": 2, "β2": 3, "_z": 1}) == 7.0


def test_constants_and_shadowing():
    assert value("pi") == math.pi
    assert value("e") == math.e
    assert value("e = 2; e^2") == 4.0
    assert value("pi = x; pi*2", x=1.5) == 3.0


def test_a_function_name_not_called_is_a_variable():
    """gamma and beta are the scale and shift of a normalization layer, and var a variance: as
    values they are variables; called, the functions Γ, B and the variance."""
    import mpmath

    point = {"x": 3.0, "gamma": 1.5, "beta": 2.0, "var": 0.5}
    got = evaluate("gamma*x + beta + beta(x, gamma) + var*var([x, gamma])", point)
    assert got.value == pytest.approx(1.5 * 3 + 2 + float(mpmath.beta(3, 1.5)) + 0.5 * 0.5625)
    d_beta_dx = float(mpmath.diff(lambda a: mpmath.beta(a, 1.5), 3))
    d_var_dx = 0.5 * 2 * (3 - 2.25) / 2
    assert got.gradient["x"] == pytest.approx(1.5 + d_beta_dx + d_var_dx, rel=1e-13)
    assert got.gradient["beta"] == 1.0
    assert got.gradient["var"] == pytest.approx(0.5625)
    with pytest.raises(GradcliError, match="'f' is a function, not a value"):
        compile_program("f(t) = t^2; f + 1")


def test_program_bindings_comments_and_separators():
    text = """
    # a comment on its own line
    a = x^2   # a trailing comment
    b = a +
        1        ; c = sin(a,
    )
    ;; b * 2
    """
    with pytest.raises(GradcliError):  # sin takes one argument: the trailing comma is an error
        compile_program(text)
    text = "\n\n# comment\na = x^2; b = a +\n  1\n\nb * (a\n + 2)\n\n"
    assert value(text, x=3.0) == (9 + 1) * (9 + 2)


def test_value_of_a_program_is_its_last_statement_even_a_binding():
    assert value("a = x + 1; b = a * 2", x=1.0) == 4.0


def test_a_binding_used_twice_is_one_node():
    program = compile_program("a = sin(x); a*a + a")
    sines = [n for n in program.graph._table.values() if n.op == "sin"]
    assert len(sines) == 1
    program = compile_program("sin(x)*sin(x)")  # identical subexpressions are hash-consed too
    assert len([n for n in program.graph._table.values() if n.op == "sin"]) == 1


def test_line_continuation_with_backslash():
    assert value("x + \\\n 1", x=1.0) == 2.0


def error_of(text: str) -> GradcliError:
    with pytest.raises(GradcliError) as info:
        compile_program(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("x +", "unexpected end of input; expected an expression", 4),
        ("sin(", "expected an expression or ')'", 5),
        ("(x", "expected ')'", 3),
        ("x)", "unexpected ')'", 2),
        ("x $ y", "unexpected character '$'", 3),
        ("2 x", "unexpected name 'x'", 3),
        ("x * * y", "unexpected '*'", 5),
        ("1e999", "too large", 1),
        ("", "the program is empty", 1),
        ("sinn(x)", "unknown function 'sinn'", 1),
        ("x + 1 = 2", "the left side of '=' must be a name", 1),
        ("sin(x, y)", "sin takes 1 argument, but 2 were given", 1),
        ("atan2(x)", "atan2 takes 2 arguments, but 1 was given", 1),
        ("max()", "max takes one array, or two or more values", 1),
        (
            "sum(x, axis=y)",
            "axis must be a whole number (or a list of them) written in the program",
            13,
        ),
        ("sum(x, ax=0)", "sum takes no argument named ax", 8),
        ("f(t) = f(t) + 1; f(x)", "f calls itself", 8),
        ("f(t, t) = t; f(x, y)", "the parameter t appears twice", 6),
        ("f(t) = t; f(x, y)", "f takes 1 argument, but 2 were given", 11),
        ("sin(t) = t; sin(x)", "built-in function and cannot be redefined", 1),
        ("x[0.5]", "an index must be a whole number", 3),
        ("x[1:, y]", "arrays of indices combine only with ':'", 1),
        ("f(t) = t^2", "the program only defines functions", 1),
        ("a = 1\nb = 2\nc = a + * b", "unexpected '*'", 9),
        ("einsum('ij, A)", "this string has no closing quote", 8),
        ("einsum(\"ij', A)", "this string has no closing quote", 8),
        ("x + 'ij'", "a string is not a value", 5),
        ("s = 'ij'; x", "a string is not a value", 5),
        ('sin("x")', "sin takes no string", 5),
        ("x 'ij'", "unexpected string 'ij'", 3),
    ],
)
def test_errors_point_at_the_problem(text, message, column):
    err = error_of(text)
    assert message in err.message
    lines = str(err).splitlines()
    line = text.count("\n") + 1 if "\n" in text else 1
    assert lines[1].endswith(f"<expr>:{line}:{column}")
    source_line, caret_line = lines[3], lines[4]
    gutter = source_line.index("| ") + 2
    assert source_line[gutter:] == text.split("\n")[line - 1]
    assert caret_line.index("^") - gutter == column - 1


def test_error_hints():
    assert "did you mean 'sin'" in error_of("sinn(x)").hint
    assert "x*(" in error_of("x(2)").hint
    assert "2*x" in error_of("2 x").hint
    with pytest.raises(GradcliError) as info:
        evaluate("sin + 1", {})  # a variable named sin, given no value: a call, most likely
    assert "sin is also a function: to call it, write sin(x)" in info.value.hint
    assert info.value.span is not None and info.value.span.start == 0


def test_no_message_ever_shows_an_anonymous_terminal():
    bad = [
        "x +",
        "(",
        ")",
        "x ==",
        "f(,)",
        "1 2",
        "x ^^ 2",
        "a = = 1",
        "x;;*",
        "{1}",
        "x @@ y",
        "x[",
        "[1, 2",
        "x[1:2:3:4]",
        "f(a=)",
        "3!",
        "1.2.3",
        "'ab",
        "x 'a'",
        "einsum('ij' 'jk', x)",
    ]
    for text in bad:
        with pytest.raises(GradcliError) as info:
            compile_program(text)
        rendered = str(info.value)
        assert not re.search(r"__ANON|\$END|[A-Z]{4,}", rendered.split("\n")[0]), rendered


def test_a_new_primitive_needs_only_a_registry_entry(monkeypatch):
    """Names are resolved against the registry after parsing: no grammar change for a function."""
    import numpy as np

    from gradcli.primitives import REGISTRY, Primitive

    cube = Primitive("cube", 1, lambda x: x**3, "x^3", partials=(lambda ans, x: 3 * x**2,))
    monkeypatch.setitem(REGISTRY, "cube", cube)
    r = evaluate("cube(x) + 1", {"x": 2.0})
    assert float(r.value) == 9.0 and float(r.gradient["x"]) == 12.0
    assert np.isclose(float(evaluate("cube(-x)", {"x": 1.5}).gradient["x"]), -3 * 1.5**2)


# --- The table-driven parser against Lark itself -------------------------------------------------


def test_the_committed_tables_are_generated_from_the_committed_grammar():
    generate = _generator()
    grammar = generate.GRAMMAR.read_text(encoding="utf-8")
    assert generate.TABLES.read_text(encoding="utf-8") == generate.render(grammar), (
        "gradcli/language/_tables.py is stale: run python grammar/generate.py"
    )


def _generator():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "grammar" / "generate.py"
    spec = importlib.util.spec_from_file_location("generate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lark_tokens(text: str) -> list[tuple[str, str, int, int]]:
    """Lark's own basic lexer on the grammar, as the reference for the scanner."""
    from lark import Lark
    from lark.exceptions import UnexpectedCharacters

    lark = (
        _LARK_LEXER
        or _LARK_LEXER.append(
            Lark(_generator().GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="basic")
        )
        or _LARK_LEXER
    )
    out = []
    try:
        for t in lark[0].lex(text):
            out.append((t.type, str(t), t.start_pos, t.end_pos))
    except UnexpectedCharacters as exc:
        out.append(("error", "", exc.pos_in_stream, exc.pos_in_stream))
    return out


_LARK_LEXER: list = []


def _our_tokens(text: str) -> list[tuple[str, str, int, int]]:
    from gradcli.language import parser

    out = []
    pos = 0
    while pos < len(text):
        found = parser._SCANNER.match(text, pos)
        if found is None:
            return [*out, ("error", "", pos, pos)]
        if found.lastgroup not in parser._IGNORED:
            out.append((found.lastgroup, found.group(), pos, found.end()))
        pos = found.end()
    return out


_PIECES = [
    "x", "y1", "é", "_a", "2", "2.", ".5", "1e3", "1.5E-2", "1e", "+", "-", "−", "*", "**", "^",
    "/", "@", "(", ")", "[", "]", ",", ":", ";", "=", "\n", "\r\n", " ", "\t", "# c\n", "\\\n",
    "sin", "sum(", "axis=", "!", "{", "$", "'", "0x1", "1_0", "'ij,jk->ik'", '"fro"', '"', "''",
]  # fmt: skip


def _soup(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, n)))


def test_the_scanner_splits_text_exactly_as_lark_does():
    rng = random.Random(6)
    texts = [_soup(rng, 30) for _ in range(3000)]
    for text in texts:
        assert _our_tokens(text) == _lark_tokens(text), text


def test_the_table_driven_parser_builds_what_lark_builds():
    """Lark's LALR parser and tree builder, fed the same tokens and running the same callbacks,
    accept the same programs, build equal syntax trees and reject the same token."""
    rng = random.Random(7)
    texts = [_soup(rng, 25) for _ in range(4000)] + [_program(rng) for _ in range(1000)]
    accepted = 0
    for text in texts:
        ours, theirs = _parse_ours(text), _parse_lark(text)
        assert ours == theirs, text
        accepted += ours[0] == "ok"
    assert accepted > 800  # the comparison covers well-formed programs, not only errors


def _program(rng: random.Random, depth: int = 0) -> str:
    """A random well-formed program: the soup above rarely is one."""
    if depth > 4 or rng.random() < 0.3:
        return rng.choice(["x", "y", "2", "1.5e-3", "pi"])
    sub = lambda: _program(rng, depth + 1)  # noqa: E731
    return rng.choice(
        [
            lambda: f"{sub()} {rng.choice(['+', '-', '*', '/', '^', '@', '**'])} {sub()}",
            lambda: f"-{sub()}",
            lambda: f"({sub()})",
            lambda: f"sin({sub()})",
            lambda: f"sum({sub()}, axis=0)",
            lambda: f"einsum('ij,jk->ik', {sub()}, {sub()})",
            lambda: f"[{sub()}, {sub()},]",
            lambda: f"{sub()}[0:2, ::-1]",
            lambda: f"a = {sub()}; {sub()}\n",
        ]
    )()


def _parse_ours(text: str):
    from gradcli.language import parser

    lexer = parser._Lexer(text)
    try:
        return ("ok", _shape(parser._run(lexer)))
    except parser._Unexpected as exc:
        where = exc.token.start_pos if exc.token is not None else exc.pos
        kind = exc.token.type if exc.token is not None else "char"
        return ("error", kind, where, sorted(parser._accepted(exc.stack)) if exc.stack else [])
    except parser._LiteralError as exc:
        return ("literal", exc.span)


def _parse_lark(text: str):
    if not _LARK_PARSER:
        _LARK_PARSER.append(_lark_parser())
    return _run_lark(_LARK_PARSER[0], text)


_LARK_PARSER: list = []


def _lark_parser():
    from lark import Lark, Token, Transformer
    from lark.lexer import Lexer

    from gradcli.language import parser

    class Feed(Lexer):
        """Lark's parser, fed gradcli's tokens (separators tidied), as Lark tokens."""

        def __init__(self, conf):
            pass

        def lex(self, text):
            for tok in parser._Lexer(text).tokens():
                yield Token(tok.type, tok.value, tok.start_pos, end_pos=tok.end_pos)

    def adapt(callback):
        def run(children):
            return callback(
                [
                    parser.Token(c.type, str(c), c.start_pos, c.end_pos)
                    if isinstance(c, Token)
                    else c
                    for c in children
                ]
            )

        return run

    class Build(Transformer):
        pass

    for name, callback in parser._CALLBACKS.items():
        setattr(Build, name, staticmethod(adapt(callback)))
    lark = Lark(
        _generator().GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer=Feed,
        transformer=Build(),
        maybe_placeholders=False,
    )
    return lark


def _run_lark(lark, text: str):
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    from gradcli.language import parser

    try:
        return ("ok", _shape(lark.parse(text)))
    except UnexpectedToken as exc:
        tok = exc.token
        kind = tok.type
        where = tok.start_pos if kind != "$END" else len(text)
        return ("error", kind, where, sorted(exc.accepts or []))
    except parser._Unexpected as exc:  # raised by gradcli's scanner inside Feed
        return ("error", "char", exc.pos, [])
    except UnexpectedCharacters:  # pragma: no cover - Feed raises gradcli's error first
        raise
    except Exception as exc:
        inner = getattr(exc, "orig_exc", exc)
        if isinstance(inner, parser._LiteralError):
            return ("literal", inner.span)
        raise


def _shape(node):
    """A syntax tree as nested tuples (syntax nodes compare by identity)."""
    from dataclasses import fields, is_dataclass

    if isinstance(node, list):
        return tuple(_shape(n) for n in node)
    if is_dataclass(node):
        return (type(node).__name__, *(_shape(getattr(node, f.name)) for f in fields(node)))
    return node
