"""A parsed, compiled rule statement and its evaluation against one message."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from iot_tui.iotcore.topics import SHARE_PREFIX, matches

from .compiler import Evaluator, Selector, TooDeep, compile_expr, compile_select
from .context import EvalContext, Scope, rule_topic
from .nodes import Node, Select
from .parser import SqlParseError, parse_statement
from .values import load_json, to_bool

__all__ = ["Incoming", "Rule", "parse", "prepare"]


@dataclass(frozen=True)
class Rule:
    """An AWS IoT SQL statement (version 2016-03-23), compiled for evaluation.

    ``topic_filter`` is None when the statement has no FROM (a rule only Basic Ingest triggers).
    """

    sql: str
    select: Select
    topic_filter: str | None
    where: Node | None
    _select: Selector = field(repr=False, compare=False)
    _where: Evaluator | None = field(repr=False, compare=False)
    _matches: Callable[[str], Any] = field(repr=False, compare=False)

    def reads(self, topic: str) -> bool:
        """Whether FROM matches a message published to `topic` (Basic Ingest aside)."""
        return bool(self._matches(topic))

    def evaluate(self, payload: bytes, context: EvalContext) -> dict[str, Any] | bytes | None:
        """The message the rule's actions would send, or None when FROM or WHERE rejects it.

        A dict for a JSON object; bytes when the result is not an object: ``SELECT *`` of a
        payload that is not a JSON object passes it through untouched, ``SELECT VALUE`` gives JSON.
        """
        topic, ingested = rule_topic(context.topic)
        if not ingested and not self._matches(topic):
            return None
        return self._apply(load_json(payload), Scope(payload, context, topic))

    def evaluate_prepared(self, incoming: Incoming) -> dict[str, Any] | bytes | None:
        """`evaluate` for a message an engine prepared once for all the rules that read it."""
        if not incoming.ingested and not self._matches(incoming.topic):
            return None
        return self._apply(incoming.doc, incoming.scope)

    def _apply(self, doc: Any, scope: Scope) -> dict[str, Any] | bytes | None:
        if self._where is not None:
            verdict = self._where(doc, scope)
            if verdict is not True and to_bool(verdict) is not True:
                return None
        return self._select(doc, scope)


@dataclass(frozen=True)
class Incoming:
    """One message decoded once, with one scope (topic levels, one timestamp) for every rule."""

    topic: str
    ingested: bool
    doc: Any
    scope: Scope


def prepare(payload: bytes, context: EvalContext) -> Incoming:
    topic, ingested = rule_topic(context.topic)
    return Incoming(topic, ingested, load_json(payload), Scope(payload, context, topic))


def _never(topic: str) -> bool:
    return False


def _topic_matcher(topic_filter: str | None) -> Callable[[str], Any]:
    """``topics.matches`` for one filter, compiled: equality, or one regular expression."""
    if topic_filter is None:
        return _never
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter.__eq__
    if topic_filter.startswith(SHARE_PREFIX):
        return partial(matches, topic_filter)
    levels = topic_filter.split("/")
    pattern = "/".join("[^/]*" if v == "+" else ".*" if v == "#" else re.escape(v) for v in levels)
    # Wildcards in the first level never match reserved ``$`` topics.
    if levels[0] in ("+", "#"):
        pattern = r"(?!\$)" + pattern
    return re.compile(pattern, re.DOTALL).fullmatch


def parse(sql: str) -> Rule:
    """Parse and compile ``sql``; raises SqlParseError with the line and column of the problem."""
    statement = parse_statement(sql)
    try:
        select = compile_select(statement.select)
        where = None if statement.where is None else compile_expr(statement.where)
    except TooDeep:
        raise SqlParseError("Expression is nested too deeply", 1, 1) from None
    return Rule(
        sql,
        statement.select,
        statement.topic_filter,
        statement.where,
        select,
        where,
        _topic_matcher(statement.topic_filter),
    )
