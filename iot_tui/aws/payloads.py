"""What users type as a message or a state: JSON, or `key=value key2=value2` pairs typed as JSON.

Shared by the MQTT publish form and the shadow editor, so both accept the same input and report
the same errors, with line and column so a form can point at them. Typing JSON quotes in a
terminal is tedious, hence the key=value shorthand.
"""

from __future__ import annotations

import json
import re
from typing import Any

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
# key=value, where value is "double quoted" (JSON escapes), 'single quoted' or a bare word.
_PAIR = re.compile(r"""\s*(?P<key>[^\s=]+)=(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|\S*)""")


class PayloadError(ValueError):
    """Input that does not parse as its kind; `line` and `column` are 1-based, for the form."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"{message} (line {line}, column {column})")
        self.reason = message
        self.line = line
        self.column = column


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PayloadError(f"invalid JSON: {error.msg}", error.lineno, error.colno) from None


def _typed(raw: str) -> Any:
    if raw.startswith('"'):
        return json.loads(raw)
    if raw.startswith("'"):
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    if _NUMBER.fullmatch(raw):
        number = float(raw)
        return int(raw) if number.is_integer() and not any(c in raw for c in ".eE") else number
    return raw


def parse_key_values(text: str) -> dict[str, Any]:
    """`temp=21.5 on=true name="room 1" a.b=2` -> {"temp": 21.5, "on": true, "name": "room 1", "a": {"b": 2}}.

    Dotted keys nest, so shadow-like documents can be typed in one line. Quoted values stay strings.
    """
    result: dict[str, Any] = {}
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _PAIR.match(text, position)
        if match is None:
            start = len(text) - len(text[position:].lstrip())
            word = text[start:].split(maxsplit=1)[0]
            raise PayloadError(f"expected key=value, found {word!r}", *_line_column(text, start))
        key, raw = match["key"], match["value"]
        try:
            value = _typed(raw)
        except json.JSONDecodeError as error:
            raise PayloadError(f"bad quoted value: {error.msg}", *_line_column(text, match.start("value"))) from None
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PayloadError(f"{part!r} is both a value and an object", *_line_column(text, match.start("key")))
            node = child
        node[parts[-1]] = value
        position = match.end()
    return result


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def parse_object(text: str) -> dict[str, Any]:
    """A JSON object, or key=value pairs when the text does not start like JSON."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        value = parse_json(stripped)
        if not isinstance(value, dict):
            raise PayloadError("expected a JSON object")
        return value
    if not stripped:
        raise PayloadError("give a JSON object or at least one key=value pair")
    return parse_key_values(stripped)
