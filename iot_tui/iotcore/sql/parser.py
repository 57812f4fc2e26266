"""The AWS IoT SQL grammar (lark, LALR) and its translation into ``nodes``.

Keywords are case-insensitive and reserved only where the grammar needs them: function names
are plain identifiers, so ``timestamp``, ``topic`` and ``value`` are fields unless followed by
``(``; ``VALUE`` after SELECT is the keyword only when an expression follows it
(``SELECT VALUE color`` versus ``SELECT value, x`` or ``SELECT value FROM``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from iot_tui.iotcore.topics import TopicError, validate_topic_filter

from .functions import CASTS, FUNCTIONS
from .nodes import (
    ArrayLiteral,
    Binary,
    Call,
    Case,
    Cast,
    Field,
    Index,
    Literal,
    Member,
    Node,
    ObjectLiteral,
    Select,
    SelectItem,
    Star,
    Subquery,
    Unary,
)
from .values import UNDEFINED, normalize

__all__ = ["SqlParseError", "Statement", "parse_expression", "parse_statement"]

GRAMMAR: Final = r"""
start: _SELECT select_clause [_FROM topic] [_WHERE expr]

select_clause: VALUE expr                       -> select_value
             | select_item ("," select_item)*   -> select_items
select_item: "*" [_AS alias]                    -> star_item
           | expr [_AS alias]                   -> expr_item
alias: NAME ("." NAME)*
topic: STRING

?expr: or_expr
?or_expr: and_expr | or_expr _OR and_expr       -> or_
?and_expr: not_expr | and_expr _AND not_expr    -> and_
?not_expr: cmp_expr | _NOT not_expr             -> not_
?cmp_expr: sum_expr
    | cmp_expr "=" sum_expr                     -> eq
    | cmp_expr "<>" sum_expr                    -> ne
    | cmp_expr "!=" sum_expr                    -> ne
    | cmp_expr "<" sum_expr                     -> lt
    | cmp_expr "<=" sum_expr                    -> le
    | cmp_expr ">" sum_expr                     -> gt
    | cmp_expr ">=" sum_expr                    -> ge
    | cmp_expr _IN sum_expr                     -> in_
?sum_expr: product
    | sum_expr "+" product                      -> add
    | sum_expr "-" product                      -> sub
?product: unary
    | product "*" unary                         -> mul
    | product "/" unary                         -> div
    | product "%" unary                         -> mod
?unary: postfix
    | "-" unary                                 -> neg
    | "+" unary
?postfix: atom
    | postfix "." NAME                          -> member
    | postfix "[" expr "]"                      -> index
?atom: NUMBER                                   -> number
    | STRING                                    -> string
    | _TRUE                                     -> true
    | _FALSE                                    -> false
    | _NULL                                     -> null
    | NAME                                      -> field
    | NAME "(" [arg ("," arg)*] ")"             -> call
    | NAME "(" expr _AS NAME ")"                -> cast
    | "(" expr ")"
    | "(" _SELECT select_clause _FROM expr [_WHERE expr] ")" -> subquery
    | "[" [expr ("," expr)*] "]"                -> array
    | "{" [pair ("," pair)*] "}"                -> object
    | _CASE expr when+ [_ELSE expr] _END        -> simple_case
    | _CASE when+ [_ELSE expr] _END             -> searched_case
?arg: expr
    | "*"                                       -> star
pair: STRING ":" expr
when: _WHEN expr _THEN expr

_SELECT.2: /select\b/i
_FROM.2: /from\b/i
_WHERE.2: /where\b/i
_AS.2: /as\b/i
_AND.2: /and\b/i
_OR.2: /or\b/i
_NOT.2: /not\b/i
_IN.2: /in\b/i
_CASE.2: /case\b/i
_WHEN.2: /when\b/i
_THEN.2: /then\b/i
_ELSE.2: /else\b/i
_END.2: /end\b/i
_TRUE.2: /true\b/i
_FALSE.2: /false\b/i
_NULL.2: /null\b/i
VALUE.3: /value(?=\s+(?!(?:as|from|and|or|in)\b)[a-z0-9_'"(\[{])/i
NAME: /(?!(?:select|from|where|as|and|or|not|in|case|when|then|else|end|true|false|null)\b)[a-z_][a-z0-9_]*/i
NUMBER: /\d+(\.\d+)?(e[+-]?\d+)?/i
STRING: /'(?:[^'\\]|\\.)*'/s | /"(?:[^"\\]|\\.)*"/s

%ignore /\s+/
"""

_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}


class SqlParseError(ValueError):
    """A statement AWS would refuse with ``SqlParseException``; ``line`` and ``column`` are 1-based."""

    aws_code: Final = "SqlParseException"

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} at {line}:{column}")
        self.message = message
        self.line = line
        self.column = column


def _unquote(token: Token) -> str:
    """The text of a quoted literal: backslash escapes as in JSON, others keep the escaped character."""
    body = token[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        hex_digits = body[i + 2 : i + 6]
        if nxt == "u" and len(hex_digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in hex_digits):
            out.append(chr(int(hex_digits, 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out)


def _error_at(token: Token, message: str) -> SqlParseError:
    return SqlParseError(message, token.line or 1, token.column or 1)


@v_args(inline=True)
class _ToNodes(Transformer[Token, Any]):
    """Builds ``nodes`` as the LALR parser reduces, checking names the grammar cannot."""

    def start(self, select: Select, topic: str | None, where: Node | None) -> Statement:
        return Statement(select, topic, where)

    def select_value(self, _keyword: Token, expr: Node) -> Select:
        return Select((SelectItem(expr),), value=True)

    def select_items(self, *items: SelectItem) -> Select:
        return Select(items)

    def star_item(self, alias: str | None) -> SelectItem:
        return SelectItem(Star(), alias)

    def expr_item(self, expr: Node, alias: str | None) -> SelectItem:
        return SelectItem(expr, alias)

    def alias(self, *names: Token) -> str:
        return ".".join(names)

    def topic(self, token: Token) -> str:
        topic_filter = _unquote(token)
        try:
            validate_topic_filter(topic_filter)
        except TopicError as exc:
            raise _error_at(token, f"Invalid topic filter in FROM: {exc.reason}") from None
        return topic_filter

    def or_(self, left: Node, right: Node) -> Node:
        return Binary("OR", left, right)

    def and_(self, left: Node, right: Node) -> Node:
        return Binary("AND", left, right)

    def not_(self, operand: Node) -> Node:
        return Unary("NOT", operand)

    def in_(self, left: Node, right: Node) -> Node:
        return Binary("IN", left, right)

    def eq(self, left: Node, right: Node) -> Node:
        return Binary("=", left, right)

    def ne(self, left: Node, right: Node) -> Node:
        return Binary("<>", left, right)

    def lt(self, left: Node, right: Node) -> Node:
        return Binary("<", left, right)

    def le(self, left: Node, right: Node) -> Node:
        return Binary("<=", left, right)

    def gt(self, left: Node, right: Node) -> Node:
        return Binary(">", left, right)

    def ge(self, left: Node, right: Node) -> Node:
        return Binary(">=", left, right)

    def add(self, left: Node, right: Node) -> Node:
        return Binary("+", left, right)

    def sub(self, left: Node, right: Node) -> Node:
        return Binary("-", left, right)

    def mul(self, left: Node, right: Node) -> Node:
        return Binary("*", left, right)

    def div(self, left: Node, right: Node) -> Node:
        return Binary("/", left, right)

    def mod(self, left: Node, right: Node) -> Node:
        return Binary("%", left, right)

    def neg(self, operand: Node) -> Node:
        # Fold ``-5`` into a literal so a negative number reads as one in the tree.
        if isinstance(operand, Literal) and type(operand.value) in (int, float):
            return Literal(-operand.value)
        return Unary("-", operand)

    def member(self, base: Node, name: Token) -> Node:
        return Member(base, str(name))

    def index(self, base: Node, index: Node) -> Node:
        return Index(base, index)

    def number(self, token: Token) -> Node:
        text = str(token)
        try:
            value = normalize(float(text)) if "." in text or "e" in text or "E" in text else int(text)
        except ValueError:
            value = UNDEFINED
        if value is UNDEFINED:
            raise _error_at(token, f"Number literal out of range: {text[:40]}")
        return Literal(value)

    def string(self, token: Token) -> Node:
        return Literal(_unquote(token))

    def true(self) -> Node:
        return Literal(True)

    def false(self) -> Node:
        return Literal(False)

    def null(self) -> Node:
        return Literal(None)

    def field(self, name: Token) -> Node:
        return Field(str(name))

    def star(self) -> Node:
        return Star()

    def call(self, name: Token, *args: Node | None) -> Node:
        lowered = name.lower()
        if lowered == "cast":
            raise _error_at(name, "cast requires the form cast(<expression> AS <type>)")
        if lowered not in FUNCTIONS:
            raise _error_at(name, f"Undefined function: {name}")
        return Call(lowered, tuple(a for a in args if a is not None))

    def cast(self, name: Token, operand: Node, type_name: Token) -> Node:
        if name.lower() != "cast":
            raise _error_at(name, f"Unexpected AS in call to {name}")
        if type_name.lower() not in CASTS:
            raise _error_at(type_name, f"Unsupported cast type: {type_name}")
        return Cast(operand, type_name.lower())

    def array(self, *items: Node | None) -> Node:
        return ArrayLiteral(tuple(i for i in items if i is not None))

    def object(self, *pairs: tuple[str, Node] | None) -> Node:
        return ObjectLiteral(tuple(p for p in pairs if p is not None))

    def subquery(self, select: Select, source: Node, where: Node | None) -> Node:
        return Subquery(select, source, where)

    def pair(self, key: Token, value: Node) -> tuple[str, Node]:
        return _unquote(key), value

    def when(self, condition: Node, result: Node) -> tuple[Node, Node]:
        return condition, result

    def simple_case(self, operand: Node, *rest: Any) -> Node:
        *whens, default = rest
        return Case(operand, tuple(whens), default)

    def searched_case(self, *rest: Any) -> Node:
        *whens, default = rest
        return Case(None, tuple(whens), default)


@dataclass(frozen=True)
class Statement:
    """A parsed statement: what ``parse`` compiles into a ``Rule``."""

    select: Select
    topic_filter: str | None
    where: Node | None


@cache
def _parser() -> Lark:
    """Built on first use: building the LALR tables costs a few hundred ms that startup need not pay."""
    return Lark(
        GRAMMAR,
        parser="lalr",
        lexer="contextual",
        start=["start", "expr"],
        transformer=_ToNodes(),
        maybe_placeholders=True,
    )

_TERMINAL_TEXT: Final = {
    "NAME": "an identifier",
    "NUMBER": "a number",
    "STRING": "a string",
    "$END": "end of input",
    "VALUE": "VALUE",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_TEXT:
        return _TERMINAL_TEXT[name]
    pattern = _parser().get_terminal(name).pattern
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return name.lstrip("_")


# Operators collapse into one word: after a complete expression nearly all of them may follow.
_OPERATORS: Final = {"!=", "%", "*", "+", "-", "/", "<", "<=", "<>", "=", ">", ">=", ".", "["}
_OPERATOR_WORDS: Final = {"AND", "OR", "IN"}


def _expected(names: set[str]) -> str:
    if {"NAME", "NUMBER", "STRING"} <= names:
        return "an expression"
    described = {_describe_terminal(n) for n in names if n != "VALUE"}
    operators = {d for d in described if d.strip("'") in _OPERATORS or d in _OPERATOR_WORDS}
    if len(operators) > 2:
        described = (described - operators) | {"an operator"}
    described = sorted(described)
    if len(described) <= 2:
        return " or ".join(described)
    return "one of " + ", ".join(described)


def _end_position(text: str) -> tuple[int, int]:
    line = text.count("\n") + 1
    return line, len(text) - (text.rfind("\n") + 1) + 1


def _translate(exc: UnexpectedInput, text: str) -> SqlParseError:
    """Lark's exception as AWS's ``SqlParseException`` text: what was expected, what was found, where."""
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            line, column = _end_position(text)
            return SqlParseError(
                f"Expected {_expected(exc.accepts or exc.expected)} but found end of input", line, column
            )
        return SqlParseError(
            f"Expected {_expected(exc.accepts or exc.expected)} but found '{token}'", token.line or 1, token.column or 1
        )
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        message = "Unterminated string literal" if char in ("'", '"') else f"Unexpected character '{char}'"
        return SqlParseError(message, exc.line, exc.column)
    line, column = _end_position(text)
    return SqlParseError("Unexpected end of input", line, column)


def _parse(text: str, start: str) -> Any:
    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        raise _translate(exc, text) from None


def parse_statement(sql: str) -> Statement:
    """Parse a whole ``SELECT ... [FROM ...] [WHERE ...]`` statement."""
    return _parse(sql, "start")


def parse_expression(text: str) -> Node:
    """Parse one expression, as substitution templates hold them."""
    return _parse(text, "expr")
