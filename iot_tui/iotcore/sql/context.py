"""What a rule sees besides the payload: the message's topic and sender, a clock, ids, shadows.

Everything the SQL functions would otherwise fetch from the world is injected here, so the
evaluator stays pure and tests pin the clock, the uuids and the shadows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iot_tui.iotcore.topics import basic_ingest_rule

__all__ = ["EvalContext", "Scope", "ShadowGetter", "rule_topic"]

ShadowGetter = Callable[[str, str, str | None], dict[str, Any] | None]
"""``(thing_name, role_arn, shadow_name) -> shadow document``, or None when there is no shadow."""


def _new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class EvalContext:
    """The message's metadata and the engine's services, as AWS's SQL functions read them.

    ``topic`` is the topic the message was published to; for Basic Ingest
    (``$aws/rules/<rule>/<rest>``) the prefix is dropped for ``topic()`` and FROM is not checked,
    since the publisher named the rule (the caller runs only that rule). ``client_id`` None means
    the message did not come over MQTT (``clientid()`` answers ``n/a``); ``principal``,
    ``account_id`` and ``trace_id`` None make their functions Undefined, unless ``make_trace_id``
    makes one on first use (a uuid costs more than most WHERE clauses, and few rules read it).
    ``timestamp_ms`` None reads the wall clock once per evaluation.
    """

    topic: str
    client_id: str | None = None
    principal: str | None = None
    account_id: str | None = None
    timestamp_ms: int | None = None
    trace_id: str | None = None
    newuuid: Callable[[], str] = _new_uuid
    get_thing_shadow: ShadowGetter | None = None
    make_trace_id: Callable[[], str] | None = None

    def trace(self) -> str | None:
        """``traceid()``: the given trace id, or one made now and kept for the message."""
        if self.trace_id is None and self.make_trace_id is not None:
            self.trace_id = self.make_trace_id()
        return self.trace_id


def rule_topic(topic: str) -> tuple[str, bool]:
    """The topic ``topic()`` sees, and whether the message came through Basic Ingest.

    ``$aws/rules/<rule>/<rest>`` gives ``(rest, True)``: AWS hides the prefix from the rule.
    """
    ingest = basic_ingest_rule(topic) if topic.startswith("$") else None
    return (topic, False) if ingest is None else (ingest[1], True)


class Scope:
    """One evaluation: the raw payload (for ``*``), the topic levels and the clock read at most once.

    ``topic`` is what ``topic()`` answers (the Basic Ingest prefix already dropped).
    """

    __slots__ = ("_levels", "_now", "ctx", "payload", "topic")

    def __init__(self, payload: bytes, ctx: EvalContext, topic: str) -> None:
        self.payload = payload
        self.ctx = ctx
        self.topic = topic
        self._levels: list[str] | None = None
        self._now = ctx.timestamp_ms

    def levels(self) -> list[str]:
        """The topic split on ``/``, for ``topic(n)``."""
        if self._levels is None:
            self._levels = self.topic.split("/")
        return self._levels

    def now(self) -> int:
        """``timestamp()``: the same instant however often a rule asks."""
        if self._now is None:
            self._now = int(time.time() * 1000)
        return self._now
