"""AWS IoT policies: named, versioned documents and the targets they are attached to.

A policy keeps every version it ever had in `policy_versions`; the default version is the
operative document. Version ids come from a per-policy counter and are never reused.
Attachments live in `policy_targets(region, policy, target)`, the table other families read
(DeleteCertificate counts a certificate's policies there); `kind` and `target_name` say what the
target is (`cert` + certificate id, `thinggroup` + group name, `cognito` + identity id), so thing
group policies are found by group name without building ARNs.

Listings are keyset pages on the insertion sequence `seq`: a test clock gives many rows the
same creation date, and `seq` orders them as they were created.

The registry's tables (`things`, `thing_principals`, `thing_group_members`, `thing_groups`) and
the certificates family's `certificates` table are read, never written; a table that does not
exist yet reads as empty.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# (kind, target_name) of an attachment target; see the module docstring.
TargetKey = tuple[str, str]


def _cert_key(cert_arn: str) -> TargetKey:
    """`arn:aws:iot:<region>:<account>:cert/<id>` -> ("cert", <id>)."""
    return ("cert", cert_arn.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class PolicyRecord:
    """A policy with its default version, as GetPolicy answers it."""

    seq: int
    name: str
    default_version: int
    document: str
    generation_id: str
    creation_date: float
    last_modified: float


@dataclass(frozen=True)
class PolicyVersionRecord:
    version: int
    document: str
    is_default: bool
    creation_date: float
    last_modified: float
    generation_id: str


@dataclass(frozen=True)
class Attachment:
    """One (policy, target) link; `seq` orders attachments as they were made."""

    seq: int
    policy: str
    target: str


@dataclass(frozen=True)
class ConnectionThing:
    """The registry thing a connection acts as, for the thing policy variables."""

    name: str
    thing_type: str | None
    attributes: dict[str, str] = field(default_factory=dict)


def _generation_id(*parts: object) -> str:
    """An opaque 64-hex id like AWS's; derived, not random, so runs on a fixed clock repeat."""
    return hashlib.sha256("\0".join(str(part) for part in parts).encode()).hexdigest()


def _optional_rows(db: sqlite3.Connection, sql: str, args: Sequence[object]) -> list[sqlite3.Row]:
    """Rows from another family's table; none while that family has not created it."""
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


_POLICY_SELECT = (
    "SELECT p.seq, p.name, p.default_version, v.document, v.generation_id, p.creation_date, "
    "p.last_modified FROM policies p JOIN policy_versions v "
    "ON v.region = p.region AND v.policy = p.name AND v.version = p.default_version "
)


def _policy(row: sqlite3.Row) -> PolicyRecord:
    return PolicyRecord(
        row["seq"], row["name"], row["default_version"], row["document"], row["generation_id"],
        row["creation_date"], row["last_modified"],
    )


def _version(row: sqlite3.Row) -> PolicyVersionRecord:
    return PolicyVersionRecord(
        row["version"], row["document"], bool(row["is_default"]), row["creation_date"],
        row["last_modified"], row["generation_id"],
    )


def _keyset(after: int | None, ascending: bool, column: str = "seq") -> tuple[str, list[object]]:
    """`AND seq > ?` (`<` descending) past the previous page's last row, and the ORDER BY."""
    direction = "ASC" if ascending else "DESC"
    if after is None:
        return f"ORDER BY {column} {direction}", []
    return f"AND {column} {'>' if ascending else '<'} ? ORDER BY {column} {direction}", [after]


class PolicyQueries:
    db: sqlite3.Connection

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS policies (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        region TEXT NOT NULL, name TEXT NOT NULL,
        default_version INTEGER NOT NULL, last_version INTEGER NOT NULL,
        creation_date REAL NOT NULL, last_modified REAL NOT NULL,
        UNIQUE (region, name));
    CREATE TABLE IF NOT EXISTS policy_versions (
        region TEXT NOT NULL, policy TEXT NOT NULL, version INTEGER NOT NULL,
        document TEXT NOT NULL, creation_date REAL NOT NULL, last_modified REAL NOT NULL,
        generation_id TEXT NOT NULL,
        PRIMARY KEY (region, policy, version),
        FOREIGN KEY (region, policy) REFERENCES policies (region, name) ON DELETE CASCADE)
        WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS policy_targets (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        region TEXT NOT NULL, policy TEXT NOT NULL, target TEXT NOT NULL,
        kind TEXT NOT NULL, target_name TEXT NOT NULL,
        UNIQUE (region, policy, target),
        FOREIGN KEY (region, policy) REFERENCES policies (region, name) ON DELETE CASCADE);
    CREATE INDEX IF NOT EXISTS policy_targets_by_target ON policy_targets (region, target, seq);
    CREATE INDEX IF NOT EXISTS policy_targets_by_key
        ON policy_targets (region, kind, target_name, seq);
    """

    # -- policies and versions --

    def get_policy(self, region: str, name: str) -> PolicyRecord | None:
        row = self.db.execute(
            _POLICY_SELECT + "WHERE p.region = ? AND p.name = ?", (region, name)
        ).fetchone()
        return _policy(row) if row else None

    def insert_policy(self, region: str, name: str, document: str, now: float) -> PolicyRecord:
        """A new policy whose version 1 is its default."""
        seq = self.db.execute(
            "INSERT INTO policies (region, name, default_version, last_version, creation_date, "
            "last_modified) VALUES (?, ?, 1, 1, ?, ?)",
            (region, name, now, now),
        ).lastrowid
        generation = _generation_id(region, name, seq, 1)
        self._insert_version(region, name, 1, document, now, generation)
        return PolicyRecord(seq, name, 1, document, generation, now, now)

    def delete_policy(self, region: str, name: str) -> None:
        """The policy and its versions; the caller has checked it has no targets."""
        self.db.execute("DELETE FROM policies WHERE region = ? AND name = ?", (region, name))

    def list_policies(
        self, region: str, after: int | None, limit: int, ascending: bool
    ) -> list[PolicyRecord]:
        clause, args = _keyset(after, ascending, "p.seq")
        rows = self.db.execute(
            _POLICY_SELECT + f"WHERE p.region = ? {clause} LIMIT ?",
            (region, *args, limit),
        )
        return [_policy(row) for row in rows]

    def get_policy_version(
        self, region: str, name: str, version: int
    ) -> PolicyVersionRecord | None:
        row = self.db.execute(
            "SELECT v.*, v.version = p.default_version AS is_default FROM policy_versions v "
            "JOIN policies p ON p.region = v.region AND p.name = v.policy "
            "WHERE v.region = ? AND v.policy = ? AND v.version = ?",
            (region, name, version),
        ).fetchone()
        return _version(row) if row else None

    def list_policy_versions(self, region: str, name: str) -> list[PolicyVersionRecord]:
        """Newest first, as AWS lists them."""
        rows = self.db.execute(
            "SELECT v.*, v.version = p.default_version AS is_default FROM policy_versions v "
            "JOIN policies p ON p.region = v.region AND p.name = v.policy "
            "WHERE v.region = ? AND v.policy = ? ORDER BY v.version DESC",
            (region, name),
        )
        return [_version(row) for row in rows]

    def add_policy_version(
        self, region: str, name: str, document: str, now: float, set_default: bool
    ) -> int:
        """Store the next version (ids are never reused) and return its id."""
        self.db.execute(
            "UPDATE policies SET last_version = last_version + 1 WHERE region = ? AND name = ?",
            (region, name),
        )
        seq, version = self.db.execute(
            "SELECT seq, last_version FROM policies WHERE region = ? AND name = ?", (region, name)
        ).fetchone()
        self._insert_version(
            region, name, version, document, now, _generation_id(region, name, seq, version)
        )
        if set_default:
            self.set_default_policy_version(region, name, version, now)
        return version

    def set_default_policy_version(self, region: str, name: str, version: int, now: float) -> None:
        """Make `version` operative; both it and the old default get a new generation."""
        previous = self.db.execute(
            "SELECT default_version FROM policies WHERE region = ? AND name = ?", (region, name)
        ).fetchone()[0]
        if previous == version:
            return
        for changed in (previous, version):
            self.db.execute(
                "UPDATE policy_versions SET last_modified = ?, generation_id = ? "
                "WHERE region = ? AND policy = ? AND version = ?",
                (now, _generation_id(self._generation(region, name, changed), now),
                 region, name, changed),
            )
        self.db.execute(
            "UPDATE policies SET default_version = ?, last_modified = ? "
            "WHERE region = ? AND name = ?",
            (version, now, region, name),
        )

    def delete_policy_version(self, region: str, name: str, version: int) -> None:
        self.db.execute(
            "DELETE FROM policy_versions WHERE region = ? AND policy = ? AND version = ?",
            (region, name, version),
        )

    def _insert_version(
        self, region: str, name: str, version: int, document: str, now: float, generation: str
    ) -> None:
        self.db.execute(
            "INSERT INTO policy_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
            (region, name, version, document, now, now, generation),
        )

    def _generation(self, region: str, name: str, version: int) -> str:
        return self.db.execute(
            "SELECT generation_id FROM policy_versions "
            "WHERE region = ? AND policy = ? AND version = ?",
            (region, name, version),
        ).fetchone()[0]

    # -- attachments --

    def attach_policy(self, region: str, name: str, target: str, key: TargetKey) -> None:
        """Attach once; attaching an attached policy again changes nothing, as in AWS."""
        self.db.execute(
            "INSERT OR IGNORE INTO policy_targets (region, policy, target, kind, target_name) "
            "VALUES (?, ?, ?, ?, ?)",
            (region, name, target, *key),
        )

    def detach_policy(self, region: str, name: str, target: str) -> bool:
        return self.db.execute(
            "DELETE FROM policy_targets WHERE region = ? AND policy = ? AND target = ?",
            (region, name, target),
        ).rowcount > 0

    def detach_all_policies(self, region: str, target: str) -> None:
        """A deleted thing group takes its policy attachments with it."""
        self.db.execute("DELETE FROM policy_targets WHERE region = ? AND target = ?", (region, target))

    def is_policy_attached(self, region: str, name: str, target: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM policy_targets WHERE region = ? AND policy = ? AND target = ?",
            (region, name, target),
        ).fetchone() is not None

    def policy_has_targets(self, region: str, name: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM policy_targets WHERE region = ? AND policy = ? LIMIT 1", (region, name)
        ).fetchone() is not None

    def count_target_policies(self, region: str, key: TargetKey) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM policy_targets WHERE region = ? AND kind = ? AND target_name = ?",
            (region, *key),
        ).fetchone()[0]

    def policies_of_targets(
        self,
        region: str,
        keys: Sequence[TargetKey],
        after: int | None = None,
        limit: int = -1,
        ascending: bool = True,
    ) -> list[Attachment]:
        """Policies attached to any of `keys`, each once (at its first attachment), one page in
        attachment order; limit -1 means all."""
        if not keys:
            return []
        matches = " OR ".join("(kind = ? AND target_name = ?)" for _ in keys)
        having, args = "", []
        if after is not None:
            having, args = f"HAVING first {'>' if ascending else '<'} ?", [after]
        rows = self.db.execute(
            f"SELECT MIN(seq) AS first, policy, target FROM policy_targets "
            f"WHERE region = ? AND ({matches}) GROUP BY policy {having} "
            f"ORDER BY first {'ASC' if ascending else 'DESC'} LIMIT ?",
            (region, *(part for key in keys for part in key), *args, limit),
        )
        return [Attachment(*row) for row in rows]

    def targets_of_policy(
        self, region: str, name: str, after: int | None, limit: int, ascending: bool = True
    ) -> list[Attachment]:
        clause, args = _keyset(after, ascending)
        rows = self.db.execute(
            f"SELECT seq, policy, target FROM policy_targets WHERE region = ? AND policy = ? "
            f"{clause} LIMIT ?",
            (region, name, *args, limit),
        )
        return [Attachment(*row) for row in rows]

    def default_documents(self, region: str, names: Iterable[str]) -> list[tuple[str, str]]:
        """(name, default document) of each named policy that exists, once each, in order."""
        unique = list(dict.fromkeys(names))
        if not unique:
            return []
        rows = self.db.execute(
            _POLICY_SELECT + f"WHERE p.region = ? AND p.name IN ({_marks(unique)})",
            (region, *unique),
        )
        documents = {row["name"]: row["document"] for row in rows}
        return [(name, documents[name]) for name in unique if name in documents]

    # -- what the other families know (read only) --

    def certificate_registered(self, region: str, arn: str) -> bool:
        return bool(_optional_rows(
            self.db, "SELECT 1 FROM certificates WHERE region = ? AND arn = ? LIMIT 1",
            (region, arn),
        ))

    def thing_group_registered(self, region: str, name: str) -> bool:
        return bool(_optional_rows(
            self.db, "SELECT 1 FROM thing_groups WHERE region = ? AND name = ?", (region, name)
        ))

    def registered_thing(self, region: str, name: str) -> ConnectionThing | None:
        rows = _optional_rows(
            self.db,
            "SELECT name, thing_type, attributes FROM things WHERE region = ? AND name = ?",
            (region, name),
        )
        return ConnectionThing(rows[0][0], rows[0][1], json.loads(rows[0][2])) if rows else None

    def connection_thing(
        self, region: str, principal: str, client_id: str | None
    ) -> ConnectionThing | None:
        """The thing a principal connects as: the attached thing named like the client id, else
        the thing it is exclusively attached to (AWS's thing policy variables rule)."""
        rows = _optional_rows(
            self.db,
            "SELECT thing, principal_type FROM thing_principals WHERE region = ? AND principal = ?",
            (region, principal),
        )
        names = [row[0] for row in rows]
        exclusive = [row[0] for row in rows if row[1] == "EXCLUSIVE_THING"]
        if client_id in names:
            return self.registered_thing(region, client_id)
        if len(exclusive) == 1:
            return self.registered_thing(region, exclusive[0])
        return None

    def group_lineage(self, region: str, groups: Sequence[str]) -> list[str]:
        """The groups and all their ancestors: thing group policies are inherited downwards."""
        if not groups:
            return []
        rows = _optional_rows(
            self.db,
            "WITH RECURSIVE lineage(name, depth) AS ("
            f"SELECT name, 0 FROM thing_groups WHERE region = ? AND name IN ({_marks(groups)}) "
            "UNION SELECT g.parent, l.depth + 1 FROM thing_groups g JOIN lineage l "
            "ON g.region = ? AND g.name = l.name WHERE g.parent IS NOT NULL) "
            "SELECT name FROM lineage GROUP BY name ORDER BY MIN(depth), name",
            (region, *groups, region),
        )
        return [row[0] for row in rows]

    def groups_of_things(self, region: str, things: Sequence[str]) -> list[str]:
        """Static groups the things belong to, with their ancestors."""
        if not things:
            return []
        rows = _optional_rows(
            self.db,
            "SELECT DISTINCT group_name FROM thing_group_members "
            f"WHERE region = ? AND thing IN ({_marks(things)}) ORDER BY group_name",
            (region, *things),
        )
        return self.group_lineage(region, [row[0] for row in rows])

    def effective_policies_for_certificate(
        self, region: str, cert_arn: str
    ) -> list[tuple[str, str]]:
        """(name, default document) of every policy that governs a certificate's connections:
        those attached to it, then those of the thing groups of the things attached to it."""
        things = [
            row[0] for row in _optional_rows(
                self.db, "SELECT thing FROM thing_principals WHERE region = ? AND principal = ?",
                (region, cert_arn),
            )
        ]
        groups = [("thinggroup", group) for group in self.groups_of_things(region, things)]
        names = [a.policy for a in self.policies_of_targets(region, [_cert_key(cert_arn)])]
        names += [a.policy for a in self.policies_of_targets(region, groups)]
        return self.default_documents(region, names)
