"""The connection, transactions and schema versioning shared by every query family."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

# Bump and add a step to `_UPGRADES` when a family's tables change shape.
SCHEMA_VERSION = 1
_UPGRADES: dict[int, str] = {}


class StoreBase:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: committed before the API answers, rolled back on any error.

        Nested use joins the outer transaction, so a query family can group its own writes
        while a handler groups several families' writes into one.
        """
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def migrate(self, schemas: list[str]) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database was written by a newer iot-tui (schema {version} > {SCHEMA_VERSION})"
            )
        with self.transaction() as db:
            for schema in schemas:
                for statement in schema.split(";"):
                    if statement.strip():
                        db.execute(statement)
            for step in range(version + 1, SCHEMA_VERSION + 1):
                if step in _UPGRADES and version > 0:
                    db.executescript(_UPGRADES[step])
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()
