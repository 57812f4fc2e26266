"""The rules engine: every enabled topic rule runs on each matching message, as on AWS IoT Core.

It listens on the core's message path (MQTT, the iot-data Publish API and shadow messages alike),
evaluates each rule with the same IoT SQL evaluator the app's dry run uses, and runs the rule's
actions. Republish is the action that can run locally; any other action fails the way an
unreachable resource fails on AWS, which triggers the rule's error action.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from iot_tui.iotcore.shadow import ShadowError
from iot_tui.iotcore.sql import EvalContext, Incoming, Rule, SqlParseError, parse, prepare, substitute_template
from iot_tui.iotcore.topics import TopicError, basic_ingest_rule, validate_topic_name
from iot_tui.local.core import CoreState, Message, make_message
from iot_tui.local.mqtt5_headers import HEADER_NAMES, header_properties
from iot_tui.local.shadows import ShadowService
from iot_tui.local.store.resources import TopicRule

log = logging.getLogger("iot_tui.local.rules")

# Republishing into a topic that triggers the same rules again would loop forever; AWS warns
# against it and we stop after this many rule hops.
MAX_RULE_HOPS = 8


@dataclass(frozen=True)
class CompiledRule:
    name: str
    rule: Rule
    actions: list[dict[str, Any]]
    error_action: dict[str, Any] | None


class ActionFailed(Exception):
    def __init__(self, action: str, resource: str, message: str):
        super().__init__(message)
        self.action = action
        self.resource = resource
        self.message = message


def action_name(action: dict[str, Any]) -> str:
    """`{"republish": {...}}` -> "RepublishAction", as AWS names it in error messages."""
    key = next(iter(action), "unknown")
    return key[:1].upper() + key[1:] + "Action"


class RulesEngine:
    """Compiled rules per region, rebuilt when a rule changes (the core's rules generation)."""

    def __init__(self, core: CoreState):
        self.core = core
        self.shadows = ShadowService(core)
        self._compiled: dict[str, tuple[int, list[CompiledRule]]] = {}
        self._lock = threading.Lock()

    def attach(self) -> None:
        self.core.listeners.append(self.on_message)

    def detach(self) -> None:
        if self.on_message in self.core.listeners:
            self.core.listeners.remove(self.on_message)

    def rules(self, region: str) -> list[CompiledRule]:
        generation = self.core.rules_generation
        with self._lock:
            cached = self._compiled.get(region)
            if cached is not None and cached[0] == generation:
                return cached[1]
            compiled = [self._compile(rule) for rule in self.core.store.enabled_topic_rules(region)]
            rules = [rule for rule in compiled if rule is not None]
            self._compiled[region] = (generation, rules)
            return rules

    @staticmethod
    def _compile(stored: TopicRule) -> CompiledRule | None:
        try:
            return CompiledRule(stored.name, parse(stored.sql), stored.actions, stored.error_action)
        except SqlParseError as error:  # stored before the parser existed, or by an older core
            log.warning("rule %s cannot run: %s", stored.name, error)
            return None

    def on_message(self, message: Message) -> None:
        if message.rule_hops >= MAX_RULE_HOPS:
            log.warning("rule loop stopped after %d hops at topic %s", message.rule_hops, message.topic)
            return
        ingest = basic_ingest_rule(message.topic) if message.topic.startswith("$aws/rules/") else None
        if ingest is not None:  # Basic Ingest names the one rule that runs
            rules = [compiled for compiled in self.rules(message.region) if compiled.name == ingest[0]]
        else:
            rules = [compiled for compiled in self.rules(message.region) if compiled.rule.reads(message.topic)]
        if not rules:
            return  # most messages: nothing to decode
        # One context, one JSON decoding and one scope per message, however many rules read it.
        context = self._context(message)
        incoming = prepare(message.payload, context)
        for compiled in rules:
            self.run(compiled, message, context, incoming)

    def _context(self, message: Message) -> EvalContext:
        return EvalContext(
            topic=message.topic,
            client_id=message.client_id,
            principal=message.principal,
            account_id=self.core.config.account_id,
            timestamp_ms=int(self.core.config.clock() * 1000),
            make_trace_id=lambda: str(uuid.uuid4()),
            get_thing_shadow=lambda thing, _role, name=None: self._shadow(message.region, thing, name),
        )

    def _shadow(self, region: str, thing: str, shadow_name: str | None) -> dict | None:
        try:
            return self.shadows.get(region, thing, shadow_name)
        except ShadowError:
            return None

    def run(self, compiled: CompiledRule, message: Message, context: EvalContext, incoming: Incoming) -> None:
        try:
            output = compiled.rule.evaluate_prepared(incoming)
        except Exception:  # an evaluator bug must not take the broker down with it
            log.exception("rule %s failed to evaluate on %s", compiled.name, message.topic)
            return
        if output is None:
            return
        payload = output if isinstance(output, bytes) else json.dumps(output, separators=(",", ":")).encode()
        failures = []
        for action in compiled.actions:
            try:
                self._act(action, payload, message, context)
            except ActionFailed as failure:
                failures.append(failure)
        if failures:
            self._report(compiled, message, context, failures)

    def _act(self, action: dict[str, Any], payload: bytes, message: Message, context: EvalContext) -> None:
        republish = action.get("republish")
        if republish is None:
            name = action_name(action)
            raise ActionFailed(name, name, f"{name} cannot run on the local IoT Core; only republish does")
        try:
            topic = substitute_template(republish["topic"], message.payload, context)
            validate_topic_name(topic)
            properties, user_properties = self._headers(republish.get("headers") or {}, message, context)
        except (SqlParseError, TopicError, KeyError, ValueError) as error:
            raise ActionFailed("RepublishAction", str(republish.get("topic")), str(error)) from None
        self.core.publish(make_message(
            region=message.region, topic=topic, payload=payload, qos=int(republish.get("qos", 0)),
            user_properties=user_properties, rule_hops=message.rule_hops + 1, properties=properties,
        ))

    @staticmethod
    def _headers(headers: dict[str, Any], message: Message, context: EvalContext
                 ) -> tuple[tuple[tuple[int, object], ...], tuple[tuple[str, str], ...]]:
        """The republish action's MQTT 5 headers (each a substitution template), as the properties
        subscribers receive; ValueError names a header that does not make a valid value."""
        def text(value: str) -> str:
            return substitute_template(value, message.payload, context)

        # A header whose template is empty is absent; one that substitutes to nothing is not.
        given = {name: text(headers[name]) for name in HEADER_NAMES if headers.get(name)}
        user = tuple((text(p["key"]), text(p["value"])) for p in headers.get("userProperties") or ())
        return header_properties(given), user

    def _report(self, compiled: CompiledRule, message: Message, context: EvalContext,
                failures: list[ActionFailed]) -> None:
        """AWS's error action message: what failed, and the original payload in base64."""
        for failure in failures:
            log.warning("rule %s: %s on %s failed: %s", compiled.name, failure.action, failure.resource,
                        failure.message)
        if compiled.error_action is None:
            return
        document = {
            "ruleName": compiled.name,
            "topic": message.topic,
            "cloudwatchTraceId": context.trace(),
            "clientId": message.client_id or "n/a",
            "base64OriginalPayload": base64.b64encode(message.payload).decode(),
            "failures": [
                {"failedAction": f.action, "failedResource": f.resource, "errorMessage": f.message}
                for f in failures
            ],
        }
        error_payload = json.dumps(document).encode()
        try:
            self._act(compiled.error_action, error_payload, message, context)
        except ActionFailed as failure:
            log.warning("rule %s: error action failed too: %s", compiled.name, failure.message)
