"""What every part of the local core shares: its settings, its store, its CA, and the message path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iot_tui.local.ca import LocalCA
from iot_tui.local.config import CoreConfig
from iot_tui.local.store import Store
from iot_tui.local.store.shadows import RetainedMessage


@dataclass(frozen=True)
class Message:
    """A message entering the broker, from MQTT, the iot-data Publish API or the shadow service."""

    region: str
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    client_id: str | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    # The publisher's principal (certificate id or access key) for the rules' principal().
    principal: str | None = None
    # How many rule republishes led to this message: the rules engine stops loops with it.
    rule_hops: int = 0


@dataclass(frozen=True)
class MqttMessage(Message):
    """A message with MQTT 5 properties subscribers receive too (content type, response topic,
    correlation data, payload format, message expiry), from MQTT 5 or the Publish API."""

    properties: tuple[tuple[int, object], ...] = ()


def make_message(*args: Any, properties: tuple[tuple[int, object], ...] = (), **fields: Any) -> Message:
    """A Message, or an MqttMessage when there are MQTT 5 properties to carry."""
    return MqttMessage(*args, properties=properties, **fields) if properties else Message(*args, **fields)


@dataclass
class CoreState:
    config: CoreConfig
    store: Store
    ca: LocalCA
    # The broker subscribes here when it runs; until then messages only reach the store (retained).
    listeners: list[Callable[[Message], None]] = field(default_factory=list)
    # Bumped on every topic rule change, so the rules engine recompiles only when needed.
    rules_generation: int = 0

    def topic_rules_changed(self) -> None:
        self.rules_generation += 1

    def publish(self, message: Message) -> None:
        """Keep a retained message first, so a subscriber woken by a listener already finds it."""
        if message.retain:
            with self.store.transaction():
                if message.payload:
                    self.store.put_retained(message.region, RetainedMessage(
                        message.topic, message.payload, message.qos, self.config.clock(),
                        message.user_properties,
                    ))
                else:  # AWS: an empty retained payload deletes the topic's retained message
                    self.store.delete_retained(message.region, message.topic)
        for listener in self.listeners:
            listener(message)
