"""MQTT sessions: what outlives a connection (subscriptions, unacknowledged and queued QoS 1).

A session belongs to (region, client id). A clean session ends with its connection; a
persistent one waits `expiry` seconds for its client, queueing matching QoS 1 messages. The
queue (also a connected but slow reader's backlog) is bounded by count and by bytes: the oldest
are dropped first, as a full queue on AWS loses messages too. A queued message whose MQTT 5
Message Expiry Interval runs out before its delivery starts is not delivered (MQTT 5 3.3.2.3.3).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from iot_tui.local.core import Message

if TYPE_CHECKING:
    from iot_tui.local.broker.auth import Authorizer
    from iot_tui.local.broker.broker import Connection

# Messages a session keeps queued, and their payload bytes at most.
MAX_QUEUED = 10_000
MAX_QUEUED_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class Outgoing:
    """A message on its way to one session: the QoS and RETAIN flag it is delivered with.

    `expires` is when its MQTT 5 Message Expiry Interval runs out, on the core's clock
    (`config.clock`, epoch seconds); 0.0 for a message that never expires.
    """

    message: Message
    qos: int
    retain: bool
    expires: float = 0.0


@dataclass(eq=False)
class Session:
    region: str
    client_id: str
    expiry: float = 0.0
    # topic filter -> subscription options byte (granted QoS in bits 0-1)
    subscriptions: dict[str, int] = field(default_factory=dict)
    inflight: dict[int, Outgoing] = field(default_factory=dict)
    queue: deque[Outgoing] = field(default_factory=deque)
    queued_bytes: int = 0
    connection: Connection | None = None
    auth: Authorizer | None = None
    expiry_timer: asyncio.TimerHandle | None = None
    # A delayed will (MQTT 5 Will Delay Interval) waiting to be sent.
    will: tuple[asyncio.TimerHandle, Message] | None = None
    dropped: int = 0
    # Queued messages not delivered because their Message Expiry Interval ran out first.
    expired: int = 0
    _next_id: int = 0

    def next_packet_id(self) -> int:
        """A packet id not in flight (1..65535, wrapping)."""
        while True:
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self.inflight:
                return self._next_id

    def enqueue(self, item: Outgoing) -> None:
        self.queue.append(item)
        self.queued_bytes += len(item.message.payload)
        while len(self.queue) > MAX_QUEUED or self.queued_bytes > MAX_QUEUED_BYTES:
            self.queued_bytes -= len(self.queue.popleft().message.payload)
            self.dropped += 1

    def dequeue(self) -> Outgoing:
        item = self.queue.popleft()
        self.queued_bytes -= len(item.message.payload)
        return item

    def clear_queue(self) -> None:
        self.queue.clear()
        self.queued_bytes = 0
