"""Resource tags (any IoT ARN) and topic rules (stored and returned; running them comes later).

Tags are keyed by (region, ARN, key): every family tags its resources through `set_tags` when it
creates them and drops them with `delete_tags_for` when it deletes them, so AWS's tag rules are
checked in one place whichever operation carries the tags.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from dataclasses import dataclass
from typing import Any

from iot_tui.local.http.errors import invalid_request, limit_exceeded

MAX_TAGS_PER_RESOURCE = 50
RESERVED_TAG_PREFIX = "aws:"
# The model's pattern for tag keys, `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`, which Python's re cannot
# compile: letters, separators and numbers of any script, plus these symbols.
TAG_KEY_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
_TAG_KEY_SYMBOLS = frozenset("_.:/=+-@")


def _valid_tag_key(key: str) -> bool:
    return all(c in _TAG_KEY_SYMBOLS or unicodedata.category(c)[0] in "LZN" for c in key)


def check_tag_keys(keys: list[str], where: str) -> None:
    """AWS's key rules the model validator cannot check: the pattern and the reserved `aws:` prefix."""
    for index, key in enumerate(keys, 1):
        if not _valid_tag_key(key):
            raise invalid_request(
                f"1 validation error detected: Value '{key}' at '{where}.{index}' failed to satisfy "
                f"constraint: Member must satisfy regular expression pattern: {TAG_KEY_PATTERN}"
            )
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            raise invalid_request(
                f"Tag keys starting with '{RESERVED_TAG_PREFIX}' are reserved for AWS use: {key}"
            )


@dataclass
class TopicRule:
    name: str
    sql: str
    topic_pattern: str
    description: str | None
    actions: list[dict[str, Any]]
    error_action: dict[str, Any] | None
    disabled: bool
    sql_version: str
    created_at: float


def _rule(row: sqlite3.Row) -> TopicRule:
    return TopicRule(
        row["name"],
        row["sql"],
        row["topic_pattern"],
        row["description"],
        json.loads(row["actions"]),
        json.loads(row["error_action"]) if row["error_action"] is not None else None,
        bool(row["disabled"]),
        row["sql_version"],
        row["created_at"],
    )


def _rule_values(region: str, rule: TopicRule) -> tuple:
    error_action = json.dumps(rule.error_action) if rule.error_action is not None else None
    return (
        region,
        rule.name,
        rule.sql,
        rule.topic_pattern,
        rule.description,
        json.dumps(rule.actions),
        error_action,
        int(rule.disabled),
        rule.sql_version,
        rule.created_at,
    )


class ResourceQueries:
    db: sqlite3.Connection

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS tags (
        region TEXT NOT NULL, arn TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
        PRIMARY KEY (region, arn, key)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS topic_rules (
        region TEXT NOT NULL, name TEXT NOT NULL, sql TEXT NOT NULL, topic_pattern TEXT NOT NULL,
        description TEXT, actions TEXT NOT NULL, error_action TEXT, disabled INTEGER NOT NULL,
        sql_version TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (region, name)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS topic_rules_by_topic ON topic_rules (region, topic_pattern, name);
    """

    # -- tags --

    def set_tags(self, region: str, arn: str, tags: list[dict[str, str]]) -> None:
        """Add or overwrite `tags` (the model's `[{"Key", "Value"}]`) on `arn`, under AWS's rules.

        Raises InvalidRequestException for a bad or reserved key and LimitExceededException past
        50 tags on the resource. Call it inside your `transaction()` so a refusal undoes the create.
        """
        check_tag_keys([tag["Key"] for tag in tags], "tags")
        rows = self.db.execute("SELECT key FROM tags WHERE region=? AND arn=?", (region, arn))
        if len({row["key"] for row in rows} | {tag["Key"] for tag in tags}) > MAX_TAGS_PER_RESOURCE:
            raise limit_exceeded(f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags: {arn}")
        self.db.executemany(
            "INSERT INTO tags VALUES (?,?,?,?) ON CONFLICT (region, arn, key) DO UPDATE SET value=excluded.value",
            [(region, arn, tag["Key"], tag.get("Value")) for tag in tags],
        )

    def delete_tags(self, region: str, arn: str, keys: list[str]) -> None:
        self.db.executemany(
            "DELETE FROM tags WHERE region=? AND arn=? AND key=?", [(region, arn, k) for k in keys]
        )

    def delete_tags_for(self, region: str, arn: str) -> None:
        """Drop every tag of a deleted resource, so a new resource of the same name starts bare."""
        self.db.execute("DELETE FROM tags WHERE region=? AND arn=?", (region, arn))

    def list_tags(
        self, region: str, arn: str, after: str, limit: int
    ) -> list[tuple[str, str | None]]:
        """One page of (key, value) by key."""
        rows = self.db.execute(
            "SELECT key, value FROM tags WHERE region=? AND arn=? AND key>? ORDER BY key LIMIT ?",
            (region, arn, after, limit),
        )
        return [(row["key"], row["value"]) for row in rows]

    # -- topic rules --

    def get_topic_rule(self, region: str, name: str) -> TopicRule | None:
        row = self.db.execute(
            "SELECT * FROM topic_rules WHERE region=? AND name=?", (region, name)
        ).fetchone()
        return _rule(row) if row else None

    def insert_topic_rule(self, region: str, rule: TopicRule) -> None:
        self.db.execute(
            "INSERT INTO topic_rules VALUES (?,?,?,?,?,?,?,?,?,?)", _rule_values(region, rule)
        )

    def replace_topic_rule(self, region: str, rule: TopicRule) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO topic_rules VALUES (?,?,?,?,?,?,?,?,?,?)",
            _rule_values(region, rule),
        )

    def set_topic_rule_disabled(self, region: str, name: str, disabled: bool) -> None:
        self.db.execute(
            "UPDATE topic_rules SET disabled=? WHERE region=? AND name=?",
            (int(disabled), region, name),
        )

    def delete_topic_rule(self, region: str, name: str) -> None:
        self.db.execute("DELETE FROM topic_rules WHERE region=? AND name=?", (region, name))

    def enabled_topic_rules(self, region: str) -> list[TopicRule]:
        rows = self.db.execute("SELECT * FROM topic_rules WHERE region=? AND disabled=0 ORDER BY name", (region,))
        return [_rule(row) for row in rows]

    def list_topic_rules(
        self,
        region: str,
        after: str,
        limit: int,
        topic: str | None = None,
        disabled: bool | None = None,
    ) -> list[TopicRule]:
        """One page of rules by name, optionally only those on one FROM topic or in one state."""
        where, args = ["region=?", "name>?"], [region, after]
        if topic is not None:
            where.append("topic_pattern=?")
            args.append(topic)
        if disabled is not None:
            where.append("disabled=?")
            args.append(int(disabled))
        sql = f"SELECT * FROM topic_rules WHERE {' AND '.join(where)} ORDER BY name LIMIT ?"
        return [_rule(row) for row in self.db.execute(sql, (*args, limit))]
