"""Registry state: things, thing types, thing groups, group membership and thing principals.

Listings use keyset pagination on indexed (region, ..., name) keys, so page N costs the same at
1,000 things as at 100,000: no OFFSET, no full scans.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

# Below this many prefix matches, sorting them beats walking every thing by name.
PREFIX_SORT_LIMIT = 2000


@dataclass
class Thing:
    name: str
    id: str
    thing_type: str | None
    attributes: dict[str, str]
    version: int
    billing_group: str | None


@dataclass
class ThingType:
    name: str
    id: str
    description: str | None
    searchable: list[str]
    deprecated: bool
    deprecation_date: float | None
    creation_date: float


@dataclass
class ThingGroup:
    name: str
    id: str
    parent: str | None
    description: str | None
    attributes: dict[str, str]
    version: int
    creation_date: float


def _thing(row: sqlite3.Row) -> Thing:
    return Thing(row["name"], row["id"], row["thing_type"], json.loads(row["attributes"]), row["version"], row["billing_group"])


def _thing_type(row: sqlite3.Row) -> ThingType:
    return ThingType(
        row["name"], row["id"], row["description"], json.loads(row["searchable"]),
        bool(row["deprecated"]), row["deprecation_date"], row["creation_date"],
    )


def _group(row: sqlite3.Row) -> ThingGroup:
    return ThingGroup(
        row["name"], row["id"], row["parent"], row["description"], json.loads(row["attributes"]),
        row["version"], row["creation_date"],
    )


class RegistryQueries:
    db: sqlite3.Connection

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS thing_types (
        region TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, description TEXT,
        searchable TEXT NOT NULL DEFAULT '[]', deprecated INTEGER NOT NULL DEFAULT 0,
        deprecation_date REAL, creation_date REAL NOT NULL,
        PRIMARY KEY (region, name)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS things (
        region TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, thing_type TEXT,
        attributes TEXT NOT NULL DEFAULT '{}', version INTEGER NOT NULL DEFAULT 1, billing_group TEXT,
        PRIMARY KEY (region, name)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS things_by_type ON things (region, thing_type, name);
    CREATE TABLE IF NOT EXISTS thing_attributes (
        region TEXT NOT NULL, thing TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (region, thing, name),
        FOREIGN KEY (region, thing) REFERENCES things (region, name) ON DELETE CASCADE) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS thing_attributes_by_value ON thing_attributes (region, name, value, thing);
    CREATE TABLE IF NOT EXISTS thing_groups (
        region TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, parent TEXT, description TEXT,
        attributes TEXT NOT NULL DEFAULT '{}', version INTEGER NOT NULL DEFAULT 1, creation_date REAL NOT NULL,
        PRIMARY KEY (region, name)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS thing_groups_by_parent ON thing_groups (region, parent, name);
    CREATE TABLE IF NOT EXISTS thing_group_members (
        region TEXT NOT NULL, group_name TEXT NOT NULL, thing TEXT NOT NULL,
        PRIMARY KEY (region, group_name, thing),
        FOREIGN KEY (region, thing) REFERENCES things (region, name) ON DELETE CASCADE,
        FOREIGN KEY (region, group_name) REFERENCES thing_groups (region, name) ON DELETE CASCADE) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS thing_group_members_by_thing ON thing_group_members (region, thing, group_name);
    CREATE TABLE IF NOT EXISTS thing_principals (
        region TEXT NOT NULL, thing TEXT NOT NULL, principal TEXT NOT NULL, principal_type TEXT,
        PRIMARY KEY (region, thing, principal),
        FOREIGN KEY (region, thing) REFERENCES things (region, name) ON DELETE CASCADE) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS thing_principals_by_principal ON thing_principals (region, principal, thing);
    """

    # -- thing types --

    def get_thing_type(self, region: str, name: str) -> ThingType | None:
        row = self.db.execute("SELECT * FROM thing_types WHERE region=? AND name=?", (region, name)).fetchone()
        return _thing_type(row) if row else None

    def insert_thing_type(self, region: str, thing_type: ThingType) -> None:
        self.db.execute(
            "INSERT INTO thing_types VALUES (?,?,?,?,?,?,?,?)",
            (region, thing_type.name, thing_type.id, thing_type.description, json.dumps(thing_type.searchable),
             int(thing_type.deprecated), thing_type.deprecation_date, thing_type.creation_date),
        )

    def set_thing_type_deprecation(self, region: str, name: str, deprecated: bool, when: float | None) -> None:
        self.db.execute(
            "UPDATE thing_types SET deprecated=?, deprecation_date=? WHERE region=? AND name=?",
            (int(deprecated), when, region, name),
        )

    def delete_thing_type(self, region: str, name: str) -> None:
        self.db.execute("DELETE FROM thing_types WHERE region=? AND name=?", (region, name))

    def list_thing_types(self, region: str, after: str, limit: int, name: str | None) -> list[ThingType]:
        if name is not None:
            rows = self.db.execute(
                "SELECT * FROM thing_types WHERE region=? AND name=? AND name>? ORDER BY name LIMIT ?",
                (region, name, after, limit),
            )
        else:
            rows = self.db.execute(
                "SELECT * FROM thing_types WHERE region=? AND name>? ORDER BY name LIMIT ?", (region, after, limit)
            )
        return [_thing_type(row) for row in rows]

    def thing_type_in_use(self, region: str, name: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM things WHERE region=? AND thing_type=? LIMIT 1", (region, name)
        ).fetchone() is not None

    # -- things --

    def get_thing(self, region: str, name: str) -> Thing | None:
        row = self.db.execute("SELECT * FROM things WHERE region=? AND name=?", (region, name)).fetchone()
        return _thing(row) if row else None

    def put_thing(self, region: str, thing: Thing) -> None:
        """Insert or replace a thing and its attribute index rows."""
        self.db.execute(
            "INSERT INTO things VALUES (?,?,?,?,?,?,?) ON CONFLICT (region, name) DO UPDATE SET "
            "thing_type=excluded.thing_type, attributes=excluded.attributes, version=excluded.version, "
            "billing_group=excluded.billing_group",
            (region, thing.name, thing.id, thing.thing_type, json.dumps(thing.attributes, sort_keys=True),
             thing.version, thing.billing_group),
        )
        self.db.execute("DELETE FROM thing_attributes WHERE region=? AND thing=?", (region, thing.name))
        self.db.executemany(
            "INSERT INTO thing_attributes VALUES (?,?,?,?)",
            [(region, thing.name, key, value) for key, value in thing.attributes.items()],
        )

    def delete_thing(self, region: str, name: str) -> None:
        self.db.execute("DELETE FROM things WHERE region=? AND name=?", (region, name))

    def list_things(
        self,
        region: str,
        after: str,
        limit: int,
        thing_type: str | None = None,
        attribute: tuple[str, str, bool] | None = None,
    ) -> list[Thing]:
        """One page of things by name; `attribute` is (name, value, value-is-a-prefix).

        Each filter walks the index that yields names in order, so a page costs the same at
        1,000 things as at 100,000 whether the filter matches one thing or most of them.
        SQLite's planner cannot know how selective a value is, hence the explicit plans.
        """
        type_clause = " AND t.thing_type=?" if thing_type is not None else ""
        type_args = [thing_type] if thing_type is not None else []
        if attribute is None:
            index = "INDEXED BY things_by_type" if thing_type is not None else ""
            sql = f"SELECT t.* FROM things t {index} WHERE t.region=? AND t.name>?{type_clause} ORDER BY t.name LIMIT ?"
            return [_thing(row) for row in self.db.execute(sql, (region, after, *type_args, limit))]
        name, value, prefix = attribute
        if not prefix:
            # (region, name, value, thing) gives the matching things already ordered by name.
            sql = (
                "SELECT t.* FROM thing_attributes a INDEXED BY thing_attributes_by_value CROSS JOIN things t "
                "ON t.region=a.region AND t.name=a.thing "
                f"WHERE a.region=? AND a.name=? AND a.value=? AND a.thing>?{type_clause} ORDER BY a.thing LIMIT ?"
            )
            return [_thing(row) for row in self.db.execute(sql, (region, name, value, after, *type_args, limit))]
        bounds = (value, value + "\U0010ffff")
        matches = self.db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM thing_attributes WHERE region=? AND name=? AND value>=? AND value<? "
            f"LIMIT {PREFIX_SORT_LIMIT})",
            (region, name, *bounds),
        ).fetchone()[0]
        if matches < PREFIX_SORT_LIMIT:
            # Few matches: read them from the value index and sort them by name.
            sql = (
                "SELECT t.* FROM thing_attributes a INDEXED BY thing_attributes_by_value CROSS JOIN things t ON t.region=a.region AND t.name=a.thing "
                f"WHERE a.region=? AND a.name=? AND a.value>=? AND a.value<? AND a.thing>?{type_clause} "
                "ORDER BY a.thing LIMIT ?"
            )
        else:
            # Many matches: walk things by name; a page fills after a short scan.
            sql = (
                "SELECT t.* FROM things t CROSS JOIN thing_attributes a ON a.region=t.region AND a.thing=t.name "
                f"AND a.name=? WHERE t.region=? AND t.name>? AND a.value>=? AND a.value<?{type_clause} "
                "ORDER BY t.name LIMIT ?"
            )
            return [_thing(row) for row in self.db.execute(sql, (name, region, after, *bounds, *type_args, limit))]
        return [_thing(row) for row in self.db.execute(sql, (region, name, *bounds, after, *type_args, limit))]

    # -- thing groups --

    def get_group(self, region: str, name: str) -> ThingGroup | None:
        row = self.db.execute("SELECT * FROM thing_groups WHERE region=? AND name=?", (region, name)).fetchone()
        return _group(row) if row else None

    def put_group(self, region: str, group: ThingGroup) -> None:
        self.db.execute(
            "INSERT INTO thing_groups VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (region, name) DO UPDATE SET "
            "description=excluded.description, attributes=excluded.attributes, version=excluded.version",
            (region, group.name, group.id, group.parent, group.description,
             json.dumps(group.attributes, sort_keys=True), group.version, group.creation_date),
        )

    def delete_group(self, region: str, name: str) -> None:
        self.db.execute("DELETE FROM thing_groups WHERE region=? AND name=?", (region, name))

    def child_groups(self, region: str, parent: str) -> list[str]:
        rows = self.db.execute(
            "SELECT name FROM thing_groups WHERE region=? AND parent=? ORDER BY name", (region, parent)
        )
        return [row[0] for row in rows]

    def descendant_groups(self, region: str, root: str) -> list[str]:
        rows = self.db.execute(
            "WITH RECURSIVE tree(name) AS (SELECT ? UNION SELECT g.name FROM thing_groups g "
            "JOIN tree ON g.region=? AND g.parent=tree.name) SELECT name FROM tree WHERE name<>? ORDER BY name",
            (root, region, root),
        )
        return [row[0] for row in rows]

    def list_groups(
        self, region: str, after: str, limit: int, parent: str | None, prefix: str | None, recursive: bool
    ) -> list[ThingGroup]:
        where, args = ["region=?", "name>?"], [region, after]
        if parent is not None:
            names = self.descendant_groups(region, parent) if recursive else self.child_groups(region, parent)
            if not names:
                return []
            where.append(f"name IN ({','.join('?' * len(names))})")
            args += names
        elif not recursive:
            where.append("parent IS NULL")
        if prefix:
            where.append("name>=? AND name<?")
            args += [prefix, prefix + "\U0010ffff"]
        sql = f"SELECT * FROM thing_groups WHERE {' AND '.join(where)} ORDER BY name LIMIT ?"
        return [_group(row) for row in self.db.execute(sql, (*args, limit))]

    def add_member(self, region: str, group: str, thing: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO thing_group_members VALUES (?,?,?)", (region, group, thing))

    def remove_member(self, region: str, group: str, thing: str) -> None:
        self.db.execute(
            "DELETE FROM thing_group_members WHERE region=? AND group_name=? AND thing=?", (region, group, thing)
        )

    def groups_of_thing(self, region: str, thing: str) -> list[str]:
        rows = self.db.execute(
            "SELECT group_name FROM thing_group_members WHERE region=? AND thing=? ORDER BY group_name", (region, thing)
        )
        return [row[0] for row in rows]

    def things_in_groups(self, region: str, groups: list[str], after: str, limit: int) -> list[str]:
        marks = ",".join("?" * len(groups))
        rows = self.db.execute(
            f"SELECT DISTINCT thing FROM thing_group_members WHERE region=? AND group_name IN ({marks}) "
            "AND thing>? ORDER BY thing LIMIT ?",
            (region, *groups, after, limit),
        )
        return [row[0] for row in rows]

    # -- principals --

    def attach_principal(self, region: str, thing: str, principal: str, principal_type: str | None) -> None:
        self.db.execute(
            "INSERT INTO thing_principals VALUES (?,?,?,?) ON CONFLICT (region, thing, principal) "
            "DO UPDATE SET principal_type=excluded.principal_type",
            (region, thing, principal, principal_type),
        )

    def detach_principal(self, region: str, thing: str, principal: str) -> int:
        return self.db.execute(
            "DELETE FROM thing_principals WHERE region=? AND thing=? AND principal=?", (region, thing, principal)
        ).rowcount

    def principals_of_thing(self, region: str, thing: str, after: str = "", limit: int = 10_000) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT principal, principal_type FROM thing_principals WHERE region=? AND thing=? AND principal>? "
            "ORDER BY principal LIMIT ?",
            (region, thing, after, limit),
        )
        return [{"principal": row[0], "type": row[1]} for row in rows]

    def things_of_principal(self, region: str, principal: str, after: str = "", limit: int = 10_000) -> list[str]:
        rows = self.db.execute(
            "SELECT thing FROM thing_principals WHERE region=? AND principal=? AND thing>? ORDER BY thing LIMIT ?",
            (region, principal, after, limit),
        )
        return [row[0] for row in rows]
