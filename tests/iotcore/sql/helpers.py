"""Shared helpers: evaluate a statement or one expression against a payload."""

from __future__ import annotations

import json
from typing import Any

from iot_tui.iotcore.sql import UNDEFINED, EvalContext, parse

TOPIC = "things/thing-1/temperature"


def context(topic: str = TOPIC, **overrides: Any) -> EvalContext:
    """A context with every injectable fixed."""
    fields: dict[str, Any] = {
        "client_id": "client-1",
        "principal": "ab" * 32,
        "account_id": "123456789012",
        "timestamp_ms": 1_700_000_000_123,
        "trace_id": "11111111-2222-3333-4444-555555555555",
        "newuuid": lambda: "00000000-0000-4000-8000-000000000000",
    }
    fields.update(overrides)
    return EvalContext(topic=topic, **fields)


def encode(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def run(sql: str, payload: Any = None, topic: str = TOPIC, **overrides: Any) -> Any:
    """Evaluate ``sql`` on ``payload`` (JSON-encoded unless bytes) published to ``topic``."""
    return parse(sql).evaluate(encode({} if payload is None else payload), context(topic, **overrides))


def value(expression: str, payload: Any = None, **overrides: Any) -> Any:
    """The value of one expression, UNDEFINED when SELECT omits it."""
    out = run(f"SELECT {expression} AS r FROM 'things/#'", payload, **overrides)
    assert isinstance(out, dict)
    return out.get("r", UNDEFINED)


def where(condition: str, payload: Any = None) -> bool:
    """Does WHERE ``condition`` let the message through?"""
    return run(f"SELECT * FROM 'things/#' WHERE {condition}", payload) is not None
