"""What the broker decided about each client, kept so that client can be told why.

A refused client learns little from the wire: a closed socket, a CONNACK code, a SUBACK 0x80.
AWS IoT Core writes the reasons to CloudWatch Logs (AWSIotLogsV2: eventType, status, reason);
the local core keeps the same kind of record. Each notable event (handshake and certificate
refusals, CONNECT accepted or refused, publishes and subscriptions denied, disconnects and their
reason) goes to the Python log and to a bounded in-memory journal that the HTTP API serves per
client (`/_iot_tui/clients/log`), which the MQTT pane's diagnostics view shows.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("iot_tui.local.broker")

JOURNAL_SIZE = 2000  # events, for all clients together; the oldest go first


@dataclass(frozen=True)
class JournalEntry:
    """One event, named as AWS IoT logs name them (eventType Connect, Publish-In, Subscribe...)."""

    time: float
    level: str  # INFO, WARNING, ERROR
    event_type: str
    status: str  # Success or Failure
    message: str
    peer: str
    client_id: str = ""
    principal: str = ""  # certificate id, or the access key id of a WebSocket client

    @property
    def attributed(self) -> bool:
        """False for refusals that came before the client said who it was (a handshake without a
        usable certificate): the peer address is all there is."""
        return bool(self.client_id or self.principal)

    def to_json(self) -> dict:
        return {
            "timestamp": self.time, "logLevel": self.level, "eventType": self.event_type, "status": self.status,
            "message": self.message, "peer": self.peer, "clientId": self.client_id, "principalId": self.principal,
        }


class Journal:
    """A bounded record of client events; written on the broker's loop, read by the HTTP API."""

    def __init__(self, clock: Callable[[], float], size: int = JOURNAL_SIZE) -> None:
        self.clock = clock
        self._entries: deque[JournalEntry] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, level: int, event_type: str, message: str, *, peer: str, client_id: str = "",
               principal: str = "", status: str | None = None) -> JournalEntry:
        status = status or ("Success" if level <= logging.INFO else "Failure")
        entry = JournalEntry(self.clock(), logging.getLevelName(level), event_type, status, message, peer,
                             client_id, principal)
        with self._lock:
            self._entries.append(entry)
        who = f"client {client_id!r}" if client_id else "a client"
        log.log(level, "%s %s: %s from %s: %s", event_type, status, who, peer, message)
        return entry

    def for_client(self, client_id: str = "", principal: str = "", limit: int = 50) -> list[JournalEntry]:
        """The last `limit` events of this client id or principal, oldest first, with the unattributed
        refusals among them (a handshake refused before the client said who it was may be this one)."""
        with self._lock:
            entries = list(self._entries)
        found = [
            entry for entry in entries
            if not entry.attributed
            or (client_id and entry.client_id == client_id)
            or (principal and entry.principal == principal)
        ]
        return found[-limit:] if limit > 0 else []
