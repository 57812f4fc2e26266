"""IAM roles, their inline and attached policies, and customer managed policies.

IAM is global: one account, no region column. Names of roles and managed policies are unique
without regard to case, as in IAM ("PRODROLE" and "prodrole" are the same role), so the name
columns use `COLLATE NOCASE` for lookups, uniqueness and listing order alike.

Policy documents are kept exactly as given; the HTTP layer URL-encodes them on the way out.
Attachments name policies by ARN: AWS managed policies (`arn:aws:iam::aws:policy/...`) have no
row here, customer managed ones are read from `iam_policies` by that ARN.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

ASSUME_ROLE = "sts:assumerole"


@dataclass(frozen=True)
class RoleRecord:
    seq: int
    name: str
    path: str
    role_id: str
    arn: str
    trust_policy: str
    description: str | None
    max_session_duration: int
    create_date: float
    tags: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ManagedPolicyRecord:
    seq: int
    name: str
    path: str
    policy_id: str
    arn: str
    document: str
    description: str | None
    create_date: float
    update_date: float
    attachment_count: int
    tags: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class AttachedPolicy:
    """One managed policy on a role; `seq` orders attachments as they were made."""

    seq: int
    arn: str


def entity_id(prefix: str, *parts: object) -> str:
    """A 21-character IAM unique id (`AROA...`, `ANPA...`): derived, not random, so a fixed clock repeats."""
    digest = hashlib.sha256("\0".join(str(part) for part in parts).encode()).digest()
    return prefix + base64.b32encode(digest).decode()[: 21 - len(prefix)]


def _role(row: sqlite3.Row) -> RoleRecord:
    return RoleRecord(
        row["seq"], row["name"], row["path"], row["role_id"], row["arn"], row["trust_policy"],
        row["description"], row["max_session_duration"], row["create_date"], json.loads(row["tags"]),
    )


def _managed(row: sqlite3.Row) -> ManagedPolicyRecord:
    return ManagedPolicyRecord(
        row["seq"], row["name"], row["path"], row["policy_id"], row["arn"], row["document"],
        row["description"], row["create_date"], row["update_date"], row["attachment_count"],
        json.loads(row["tags"]),
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, text: str) -> bool:
    """IAM's `*` and `?` in an action, without regard to case."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.IGNORECASE | re.DOTALL) is not None


def _names_principal(principal: Any, service: str) -> bool:
    """`"*"`, `{"AWS": "*"}` (anyone, services included) or `{"Service": service}` among others."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return service in _as_list(principal.get("Service", [])) or "*" in _as_list(principal.get("AWS", []))


def trusts_service(trust_policy: str, service: str) -> bool:
    """Whether a role's trust policy lets `service` call sts:AssumeRole: an Allow statement names
    the service principal and the action, and no Deny statement does. Conditions are taken as met
    (the confused-deputy keys such as aws:SourceAccount hold for the service acting for us)."""
    try:
        document = json.loads(trust_policy)
        statements = _as_list(document["Statement"])
    except (ValueError, KeyError, TypeError):
        return False
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict):
            continue
        actions = [a for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
        if not any(_wildcard(action, ASSUME_ROLE) for action in actions):
            continue
        if not _names_principal(statement.get("Principal"), service):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        allowed = allowed or effect == "allow"
    return allowed


class IamQueries:
    db: sqlite3.Connection

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS iam_roles (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL COLLATE NOCASE UNIQUE, path TEXT NOT NULL,
        role_id TEXT NOT NULL, arn TEXT NOT NULL, trust_policy TEXT NOT NULL,
        description TEXT, max_session_duration INTEGER NOT NULL,
        create_date REAL NOT NULL, tags TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS iam_role_policies (
        role INTEGER NOT NULL REFERENCES iam_roles (seq) ON DELETE CASCADE,
        name TEXT NOT NULL COLLATE NOCASE, document TEXT NOT NULL,
        PRIMARY KEY (role, name)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS iam_role_attachments (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        role INTEGER NOT NULL REFERENCES iam_roles (seq) ON DELETE CASCADE,
        policy_arn TEXT NOT NULL,
        UNIQUE (role, policy_arn));
    CREATE INDEX IF NOT EXISTS iam_role_attachments_by_policy ON iam_role_attachments (policy_arn);
    CREATE TABLE IF NOT EXISTS iam_policies (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL COLLATE NOCASE UNIQUE, path TEXT NOT NULL,
        policy_id TEXT NOT NULL, arn TEXT NOT NULL UNIQUE, document TEXT NOT NULL,
        description TEXT, create_date REAL NOT NULL, update_date REAL NOT NULL,
        tags TEXT NOT NULL);
    """

    # -- roles --

    def get_role(self, name: str) -> RoleRecord | None:
        row = self.db.execute("SELECT * FROM iam_roles WHERE name = ?", (name,)).fetchone()
        return _role(row) if row else None

    def insert_role(
        self, name: str, path: str, arn: str, trust_policy: str, description: str | None,
        max_session_duration: int, tags: list[dict[str, str]], now: float,
    ) -> RoleRecord:
        seq = self.db.execute(
            "INSERT INTO iam_roles (name, path, role_id, arn, trust_policy, description, "
            "max_session_duration, create_date, tags) VALUES (?, ?, '', ?, ?, ?, ?, ?, ?)",
            (name, path, arn, trust_policy, description, max_session_duration, now, json.dumps(tags)),
        ).lastrowid
        role_id = entity_id("AROA", "role", seq, name, now)
        self.db.execute("UPDATE iam_roles SET role_id = ? WHERE seq = ?", (role_id, seq))
        return RoleRecord(seq, name, path, role_id, arn, trust_policy, description, max_session_duration, now, tags)

    def delete_role(self, seq: int) -> None:
        self.db.execute("DELETE FROM iam_roles WHERE seq = ?", (seq,))

    def list_roles(self, path_prefix: str, after: str | None, limit: int) -> list[RoleRecord]:
        """One page in name order (without regard to case), past the role named `after`."""
        rows = self.db.execute(
            "SELECT * FROM iam_roles WHERE substr(path, 1, length(?)) = ? AND (? IS NULL OR name > ?) "
            "ORDER BY name LIMIT ?",
            (path_prefix, path_prefix, after, after, limit),
        )
        return [_role(row) for row in rows]

    def set_trust_policy(self, seq: int, document: str) -> None:
        self.db.execute("UPDATE iam_roles SET trust_policy = ? WHERE seq = ?", (document, seq))

    def role_trusts_service(self, role: str, service: str) -> bool:
        """Whether the role (a name, or an ARN that must match the role's own) exists and lets
        `service` assume it: CreateTopicRule's check of a republish role and iot.amazonaws.com."""
        name = role.rsplit("/", 1)[-1] if role.startswith("arn:") else role
        record = self.get_role(name)
        if record is None or (role.startswith("arn:") and role != record.arn):
            return False
        return trusts_service(record.trust_policy, service)

    # -- inline policies --

    def get_role_policy(self, role: int, name: str) -> tuple[str, str] | None:
        """(stored name, document) of one inline policy."""
        row = self.db.execute(
            "SELECT name, document FROM iam_role_policies WHERE role = ? AND name = ?", (role, name)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def put_role_policy(self, role: int, name: str, document: str) -> None:
        """Create or replace; a replaced policy keeps the name it was first given."""
        self.db.execute(
            "INSERT INTO iam_role_policies VALUES (?, ?, ?) "
            "ON CONFLICT (role, name) DO UPDATE SET document = excluded.document",
            (role, name, document),
        )

    def delete_role_policy(self, role: int, name: str) -> bool:
        return self.db.execute(
            "DELETE FROM iam_role_policies WHERE role = ? AND name = ?", (role, name)
        ).rowcount > 0

    def role_policies(self, role: int, after: str | None = None, limit: int = -1) -> list[tuple[str, str]]:
        """(name, document) of the role's inline policies in name order; limit -1 means all."""
        rows = self.db.execute(
            "SELECT name, document FROM iam_role_policies WHERE role = ? AND (? IS NULL OR name > ?) "
            "ORDER BY name LIMIT ?",
            (role, after, after, limit),
        )
        return [(row[0], row[1]) for row in rows]

    # -- attached managed policies --

    def attach_role_policy(self, role: int, policy_arn: str) -> None:
        """Attaching an attached policy again changes nothing, as in IAM."""
        self.db.execute(
            "INSERT OR IGNORE INTO iam_role_attachments (role, policy_arn) VALUES (?, ?)", (role, policy_arn)
        )

    def detach_role_policy(self, role: int, policy_arn: str) -> bool:
        return self.db.execute(
            "DELETE FROM iam_role_attachments WHERE role = ? AND policy_arn = ?", (role, policy_arn)
        ).rowcount > 0

    def is_role_policy_attached(self, role: int, policy_arn: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM iam_role_attachments WHERE role = ? AND policy_arn = ?", (role, policy_arn)
        ).fetchone() is not None

    def attached_role_policies(self, role: int) -> list[AttachedPolicy]:
        """The role's managed policies in attachment order (at most a quota's worth)."""
        rows = self.db.execute(
            "SELECT seq, policy_arn FROM iam_role_attachments WHERE role = ? ORDER BY seq", (role,)
        )
        return [AttachedPolicy(*row) for row in rows]

    # -- customer managed policies --

    _POLICY_SELECT = (
        "SELECT p.*, (SELECT COUNT(*) FROM iam_role_attachments a WHERE a.policy_arn = p.arn) "
        "AS attachment_count FROM iam_policies p "
    )

    def get_managed_policy(self, arn: str) -> ManagedPolicyRecord | None:
        row = self.db.execute(self._POLICY_SELECT + "WHERE p.arn = ?", (arn,)).fetchone()
        return _managed(row) if row else None

    def managed_policy_named(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM iam_policies WHERE name = ?", (name,)).fetchone() is not None

    def insert_managed_policy(
        self, name: str, path: str, arn: str, document: str, description: str | None,
        tags: list[dict[str, str]], now: float,
    ) -> ManagedPolicyRecord:
        seq = self.db.execute(
            "INSERT INTO iam_policies (name, path, policy_id, arn, document, description, create_date, "
            "update_date, tags) VALUES (?, ?, '', ?, ?, ?, ?, ?, ?)",
            (name, path, arn, document, description, now, now, json.dumps(tags)),
        ).lastrowid
        policy_id = entity_id("ANPA", "policy", seq, name, now)
        self.db.execute("UPDATE iam_policies SET policy_id = ? WHERE seq = ?", (policy_id, seq))
        return ManagedPolicyRecord(seq, name, path, policy_id, arn, document, description, now, now, 0, tags)

    def delete_managed_policy(self, arn: str) -> None:
        self.db.execute("DELETE FROM iam_policies WHERE arn = ?", (arn,))

    def list_managed_policies(
        self, path_prefix: str, only_attached: bool, after: str | None, limit: int
    ) -> list[ManagedPolicyRecord]:
        """One page in name order (without regard to case), past the policy named `after`."""
        rows = self.db.execute(
            self._POLICY_SELECT
            + "WHERE substr(p.path, 1, length(?)) = ? AND (? IS NULL OR p.name > ?) "
            "AND (NOT ? OR attachment_count > 0) ORDER BY p.name LIMIT ?",
            (path_prefix, path_prefix, after, after, only_attached, limit),
        )
        return [_managed(row) for row in rows]
