"""Device shadows and retained messages: the two kinds of message state the core keeps.

Shadows are stored as the documents `iotcore.shadow` builds, keyed by (region, thing, name) with
name "" for the classic shadow. A deleted shadow stays as a tombstone (its version and deletion
time) because AWS continues a re-created shadow's version for 48 hours. Listings use keyset
pagination on the primary keys, like the registry's.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from iot_tui.iotcore.shadow import CLASSIC_SHADOW, is_deleted


@dataclass(frozen=True)
class RetainedMessage:
    topic: str
    payload: bytes
    qos: int
    last_modified: float
    user_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RetainedSummary:
    """A listing row: ListRetainedMessages never returns payloads, so they are not read."""

    topic: str
    payload_size: int
    qos: int
    last_modified: float


class ShadowQueries:
    db: sqlite3.Connection

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS shadows (
        region TEXT NOT NULL, thing TEXT NOT NULL, name TEXT NOT NULL,
        document TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (region, thing, name)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS retained_messages (
        region TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL,
        user_properties TEXT NOT NULL DEFAULT '[]', last_modified REAL NOT NULL,
        PRIMARY KEY (region, topic)) WITHOUT ROWID;
    """

    # -- shadows --

    def get_shadow(
        self, region: str, thing: str, name: str = CLASSIC_SHADOW
    ) -> dict[str, Any] | None:
        """The stored document, a tombstone for a deleted shadow, or None."""
        row = self.db.execute(
            "SELECT document FROM shadows WHERE region=? AND thing=? AND name=?",
            (region, thing, name),
        ).fetchone()
        return json.loads(row["document"]) if row else None

    def put_shadow(self, region: str, thing: str, name: str, document: dict[str, Any]) -> None:
        """Store a shadow document or a tombstone (`iotcore.shadow.tombstone`)."""
        self.db.execute(
            "INSERT INTO shadows VALUES (?,?,?,?,?) ON CONFLICT (region, thing, name) "
            "DO UPDATE SET document=excluded.document, deleted=excluded.deleted",
            (
                region,
                thing,
                name,
                json.dumps(document, separators=(",", ":")),
                int(is_deleted(document)),
            ),
        )

    def list_named_shadows(self, region: str, thing: str, after: str, limit: int) -> list[str]:
        """One page of a thing's live named shadows by name; the classic shadow is never listed."""
        rows = self.db.execute(
            "SELECT name FROM shadows WHERE region=? AND thing=? AND name>? AND name<>'' "
            "AND deleted=0 ORDER BY name LIMIT ?",
            (region, thing, after, limit),
        )
        return [row["name"] for row in rows]

    def delete_shadows_for_thing(self, region: str, thing: str) -> None:
        """Forget every shadow of a thing, tombstones included, for the registry's DeleteThing."""
        self.db.execute("DELETE FROM shadows WHERE region=? AND thing=?", (region, thing))

    # -- retained messages --

    def put_retained(self, region: str, message: RetainedMessage) -> None:
        """Keep `message` as its topic's one retained message, replacing any earlier one."""
        self.db.execute(
            "INSERT INTO retained_messages VALUES (?,?,?,?,?,?) ON CONFLICT (region, topic) "
            "DO UPDATE SET payload=excluded.payload, qos=excluded.qos, "
            "user_properties=excluded.user_properties, last_modified=excluded.last_modified",
            (
                region,
                message.topic,
                message.payload,
                message.qos,
                json.dumps([list(pair) for pair in message.user_properties]),
                message.last_modified,
            ),
        )

    def delete_retained(self, region: str, topic: str) -> None:
        self.db.execute("DELETE FROM retained_messages WHERE region=? AND topic=?", (region, topic))

    def get_retained(self, region: str, topic: str) -> RetainedMessage | None:
        row = self.db.execute(
            "SELECT * FROM retained_messages WHERE region=? AND topic=?", (region, topic)
        ).fetchone()
        if row is None:
            return None
        properties = tuple((key, value) for key, value in json.loads(row["user_properties"]))
        return RetainedMessage(
            row["topic"], bytes(row["payload"]), row["qos"], row["last_modified"], properties
        )

    def list_retained(self, region: str, after: str, limit: int) -> list[RetainedSummary]:
        """One page of retained topics by name, with payload sizes but not payloads."""
        rows = self.db.execute(
            "SELECT topic, length(payload) AS size, qos, last_modified FROM retained_messages "
            "WHERE region=? AND topic>? ORDER BY topic LIMIT ?",
            (region, after, limit),
        )
        return [
            RetainedSummary(row["topic"], row["size"], row["qos"], row["last_modified"])
            for row in rows
        ]
