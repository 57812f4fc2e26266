"""Opaque pagination tokens over keyset pages: the token carries the last key of the page."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from iot_tui.local.http.errors import invalid_request

T = TypeVar("T")


def encode_token(last_key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([last_key]).encode()).decode()


def decode_token(token: str | None, default: Any = "") -> Any:
    if not token:
        return default
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))[0]
    except (ValueError, IndexError, TypeError):
        raise invalid_request("The pagination token is invalid") from None


def page(
    fetch: Callable[[Any, int], Sequence[T]], token: str | None, size: int, key: Callable[[T], Any]
) -> tuple[list[T], str | None]:
    """Fetch one more row than asked to know whether a next page exists, without a COUNT."""
    rows = list(fetch(decode_token(token), size + 1))
    if len(rows) > size:
        rows = rows[:size]
        return rows, encode_token(key(rows[-1]))
    return rows, None
