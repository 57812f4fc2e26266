"""Substitution templates in rule actions: ``republish/${topic(2)}/${clientid()}``.

AWS evaluates each ``${expression}`` against the incoming message, separately from the SELECT
(so aliases made with AS are not visible), and writes the result as a string; Undefined
becomes the empty string.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .compiler import Evaluator, TooDeep, compile_expr
from .context import EvalContext, Scope, rule_topic
from .parser import SqlParseError, parse_expression
from .values import UNDEFINED, load_json, to_string

__all__ = ["substitute_template"]


def _closing_brace(template: str, start: int) -> int:
    """Index of the ``}`` closing the expression that starts at ``start``, skipping quoted text and ``{...}``."""
    depth = 0
    quote = ""
    i = start
    while i < len(template):
        ch = template[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _line_column(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _shift(error: SqlParseError, expression: str, template: str, start: int) -> SqlParseError:
    """An error in the expression at ``template[start:]``, positioned within the whole template."""
    lines = expression.split("\n")
    index = sum(len(line) + 1 for line in lines[: error.line - 1]) + error.column - 1
    return SqlParseError(error.message, *_line_column(template, start + index))


@lru_cache(maxsize=512)
def _compile(template: str) -> tuple[str | Evaluator, ...]:
    parts: list[str | Evaluator] = []
    position = 0
    while (start := template.find("${", position)) >= 0:
        end = _closing_brace(template, start + 2)
        if end < 0:
            raise SqlParseError("Unterminated substitution template '${'", *_line_column(template, start))
        if start > position:
            parts.append(template[position:start])
        expression = template[start + 2 : end]
        try:
            parts.append(compile_expr(parse_expression(expression)))
        except SqlParseError as exc:
            raise _shift(exc, expression, template, start + 2) from None
        except TooDeep:
            raise SqlParseError("Expression is nested too deeply", *_line_column(template, start + 2)) from None
        position = end + 1
    if position < len(template):
        parts.append(template[position:])
    return tuple(parts)


def substitute_template(template: str, message: bytes | Any, context: EvalContext) -> str:
    """Expand every ``${expression}`` in ``template`` for one message.

    ``message`` is the incoming payload (bytes), or the payload already decoded from JSON.
    Raises SqlParseError for a malformed template (the column counts from the template's start).
    """
    parts = _compile(template)
    if isinstance(message, bytes | bytearray):
        payload = bytes(message)
        doc = load_json(payload)
    else:
        doc = message
        text = to_string(message)
        payload = b"" if text is UNDEFINED else text.encode()
    scope = Scope(payload, context, rule_topic(context.topic)[0])
    out: list[str] = []
    for part in parts:
        if type(part) is str:
            out.append(part)
            continue
        text = to_string(part(doc, scope))
        out.append("" if text is UNDEFINED else text)
    return "".join(out)
