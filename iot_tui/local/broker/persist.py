"""Persistent MQTT sessions in the store, so they survive a restart of the core.

Only sessions with an expiry are kept: their subscriptions, and the QoS 1 messages queued for
them while their client was away, with their MQTT 5 properties and the absolute time (core
clock) their Message Expiry Interval runs out. The broker's own tables live here rather than in
a store family because only the broker reads them; they use the store's connection and its WAL.

Schema changes here are additive columns with defaults, added on open when missing
(`_ADDED_COLUMNS`): a database from an older iot-tui opens and upgrades in place, and an older
iot-tui can still open a newer one (it names its columns and ignores the new ones).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

from iot_tui.local.broker import codec
from iot_tui.local.broker.sessions import Outgoing, Session
from iot_tui.local.core import make_message
from iot_tui.local.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS mqtt_sessions (
    region TEXT NOT NULL, client_id TEXT NOT NULL, expiry REAL NOT NULL,
    expires_at REAL, subscriptions TEXT NOT NULL,
    PRIMARY KEY (region, client_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mqtt_session_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, region TEXT NOT NULL, client_id TEXT NOT NULL,
    topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,
    user_properties TEXT NOT NULL, properties TEXT NOT NULL DEFAULT '[]', expires_at REAL);
CREATE INDEX IF NOT EXISTS mqtt_session_messages_by_session
    ON mqtt_session_messages (region, client_id, seq);
"""
# Columns added after the first release of a table: (table, column, declaration).
_ADDED_COLUMNS = (
    # MQTT 5 forwarded properties as JSON [[id, value], ...] (binary values in base64).
    ("mqtt_session_messages", "properties", "TEXT NOT NULL DEFAULT '[]'"),
    # When the Message Expiry Interval runs out (core clock, epoch seconds); NULL: never.
    ("mqtt_session_messages", "expires_at", "REAL"),
)
_BINARY_PROPERTIES = frozenset((codec.CORRELATION_DATA, codec.AUTHENTICATION_DATA))


def dump_properties(properties: tuple[tuple[int, object], ...]) -> str:
    return json.dumps([
        [key, base64.b64encode(value).decode() if isinstance(value, bytes | bytearray) else value]
        for key, value in properties
    ])


def load_properties(text: str) -> tuple[tuple[int, object], ...]:
    return tuple(
        (key, base64.b64decode(value) if key in _BINARY_PROPERTIES else value) for key, value in json.loads(text)
    )


class SessionStore:
    """Writes through to SQLite at the moments a persistent session changes."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.db.execute(statement)
        for table, column, declaration in _ADDED_COLUMNS:
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def save(self, session: Session, expires_at: float | None) -> None:
        """The session's settings and subscriptions; `expires_at` None while connected."""
        self.db.execute(
            "INSERT INTO mqtt_sessions VALUES (?,?,?,?,?) ON CONFLICT (region, client_id) DO UPDATE SET "
            "expiry=excluded.expiry, expires_at=excluded.expires_at, subscriptions=excluded.subscriptions",
            (session.region, session.client_id, session.expiry, expires_at, json.dumps(session.subscriptions)),
        )

    def queue(self, session: Session, item: Outgoing) -> None:
        """A message for a disconnected session."""
        message = item.message
        properties = getattr(message, "properties", ())  # MqttMessage: MQTT 5 forwarded properties
        self.db.execute(
            "INSERT INTO mqtt_session_messages (region, client_id, topic, payload, qos, retain, "
            "user_properties, properties, expires_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (session.region, session.client_id, message.topic, message.payload, item.qos, int(item.retain),
             json.dumps(message.user_properties), dump_properties(properties) if properties else "[]",
             item.expires or None),
        )

    def clear_queue(self, session: Session) -> None:
        """The client is back: its queue now lives in memory."""
        self.db.execute(
            "DELETE FROM mqtt_session_messages WHERE region=? AND client_id=?", (session.region, session.client_id)
        )

    def forget(self, session: Session) -> None:
        self.clear_queue(session)
        self.db.execute(
            "DELETE FROM mqtt_sessions WHERE region=? AND client_id=?", (session.region, session.client_id)
        )

    def load(self, now: float) -> Iterator[tuple[Session, float]]:
        """Every stored session not yet expired, with the seconds it has left, and its queued
        messages whose Message Expiry Interval has not run out."""
        self.db.execute("DELETE FROM mqtt_sessions WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        self.db.execute("DELETE FROM mqtt_session_messages WHERE expires_at IS NOT NULL AND expires_at <= ?",
                        (now,))
        self.db.execute(
            "DELETE FROM mqtt_session_messages WHERE NOT EXISTS (SELECT 1 FROM mqtt_sessions s "
            "WHERE s.region = mqtt_session_messages.region AND s.client_id = mqtt_session_messages.client_id)"
        )
        for row in self.db.execute("SELECT * FROM mqtt_sessions").fetchall():
            session = Session(row["region"], row["client_id"], row["expiry"])
            session.subscriptions = json.loads(row["subscriptions"])
            messages = self.db.execute(
                "SELECT * FROM mqtt_session_messages WHERE region=? AND client_id=? ORDER BY seq",
                (session.region, session.client_id),
            ).fetchall()
            for m in messages:
                user = tuple(tuple(pair) for pair in json.loads(m["user_properties"]))
                forwarded = load_properties(m["properties"])
                message = make_message(session.region, m["topic"], bytes(m["payload"]), m["qos"], bool(m["retain"]),
                                       user_properties=user, properties=forwarded)
                session.enqueue(Outgoing(message, m["qos"], bool(m["retain"]), m["expires_at"] or 0.0))
            expires_at = row["expires_at"]
            yield session, session.expiry if expires_at is None else expires_at - now
