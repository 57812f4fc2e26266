"""Input validation from botocore's shapes: types, required members, lengths, ranges, patterns, enums.

Messages follow AWS's form: "1 validation error detected: Value 'a b' at 'thingName' failed to
satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from botocore.model import Shape

from iot_tui.local.http.errors import ApiError

MAX_REPORTED_ERRORS = 3


@lru_cache(maxsize=2048)
def _pattern(pattern: str) -> re.Pattern[str] | None:
    """Models use Java regexes; the few Python cannot compile are not checked."""
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check(shape: Shape, value: Any, where: str, errors: list[str], name: Callable[[str], str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be an object")
            return
        for required in shape.required_members:
            if value.get(required) is None:
                errors.append(
                    f"Value null at '{_join(where, name(required))}' failed to satisfy constraint: Member must not be null"
                )
        for key, item in value.items():
            member = shape.members.get(key)
            if member is not None and item is not None:
                _check(member, item, _join(where, name(key)), errors, name)
        return
    if kind == "list":
        if not isinstance(value, list):
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be a list")
            return
        _check_size(len(value), meta, where, value, errors, "length")
        for index, item in enumerate(value):
            _check(shape.member, item, f"{where}.{index + 1}", errors, name)
        return
    if kind == "map":
        if not isinstance(value, dict):
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be a map")
            return
        _check_size(len(value), meta, where, value, errors, "length")
        for key, item in value.items():
            _check(shape.key, key, f"{where}.key", errors, name)
            _check(shape.value, item, f"{where}.{key}", errors, name)
        return
    if kind == "string":
        if shape.serialization.get("jsonvalue"):
            return
        if not isinstance(value, str):
            errors.append(f"Value '{_short(value)}' at '{where}' failed to satisfy constraint: Member must be a string")
            return
        _check_size(len(value), meta, where, value, errors, "length")
        if "enum" in meta and value not in meta["enum"]:
            errors.append(
                f"Value '{_short(value)}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]"
            )
        pattern = meta.get("pattern")
        compiled = _pattern(pattern) if pattern else None
        if compiled is not None and compiled.fullmatch(value) is None:
            errors.append(
                f"Value '{_short(value)}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"Value '{_short(value)}' at '{where}' failed to satisfy constraint: Member must be an integer")
            return
        _check_range(value, meta, where, errors)
        return
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"Value '{_short(value)}' at '{where}' failed to satisfy constraint: Member must be a number")
            return
        _check_range(value, meta, where, errors)
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"Value '{_short(value)}' at '{where}' failed to satisfy constraint: Member must be a boolean")
        return
    if kind == "blob":
        if not isinstance(value, (bytes, bytearray)):
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be base64-encoded binary")
            return
        _check_size(len(value), meta, where, "<blob>", errors, "length")
        return
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            errors.append(f"Value '{_short(value)}' at '{where}' failed to satisfy constraint: Member must be a timestamp")


def _check_size(size: int, meta: dict, where: str, value: Any, errors: list[str], what: str) -> None:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and size < low:
        errors.append(
            f"Value '{_short(value)}' at '{where}' failed to satisfy constraint: "
            f"Member must have {what} greater than or equal to {low}"
        )
    if high is not None and size > high:
        errors.append(
            f"Value '{_short(value)}' at '{where}' failed to satisfy constraint: "
            f"Member must have {what} less than or equal to {high}"
        )


def _check_range(value: float, meta: dict, where: str, errors: list[str]) -> None:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and value < low:
        errors.append(
            f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have value greater than or equal to {low}"
        )
    if high is not None and value > high:
        errors.append(
            f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have value less than or equal to {high}"
        )


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def validate_input(
    shape: Shape,
    params: dict[str, Any],
    code: str = "InvalidRequestException",
    member_name: Callable[[str], str] = str,
) -> None:
    """Raise `code` (400) listing what is wrong; `member_name` spells members as the service does."""
    errors: list[str] = []
    _check(shape, params, "", errors, member_name)
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        shown = "; ".join(errors[:MAX_REPORTED_ERRORS])
        raise ApiError(code, f"{count} validation {noun} detected: {shown}", 400)
