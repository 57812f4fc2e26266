"""What users type as a message or a state: JSON, or `key=value key2=value2` pairs typed as JSON.

Shared by the MQTT publish form and the shadow editor, so both accept the same input and report
the same errors (with line and column for JSON).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any


@dataclass
class PayloadError(ValueError):
    """Input that is not what it claims to be; line and column are 1-based when known."""

    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line}, column {self.column})" if self.line is not None else ""
        return f"{self.message}{where}"


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PayloadError(f"invalid JSON: {error.msg}", error.lineno, error.colno) from None


def typed_value(text: str) -> Any:
    """`40` -> 40, `2.5` -> 2.5, `true` -> True, `null` -> None, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if number == number and number not in (float("inf"), float("-inf")) else text


def parse_key_values(text: str) -> dict[str, Any]:
    """`speed=40 lights.front=on name="a b"`; dotted keys build nested objects."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise PayloadError(f"cannot split the pairs: {error}") from None
    if not words:
        raise PayloadError("give at least one key=value pair")
    result: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise PayloadError(f"'{word}' is not key=value")
        *parents, leaf = key.split(".")
        node = result
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PayloadError(f"'{key}' nests under a key that already holds a value")
            node = child
        node[leaf] = typed_value(value)
    return result


def parse_object(text: str) -> dict[str, Any]:
    """A JSON object, or key=value pairs when the text does not start like JSON."""
    stripped = text.strip()
    if stripped.startswith("{") or stripped.startswith("["):
        value = parse_json(stripped)
        if not isinstance(value, dict):
            raise PayloadError("expected a JSON object")
        return value
    return parse_key_values(stripped)
