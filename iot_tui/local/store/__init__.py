"""The local core's state in SQLite (WAL): the one place that owns the schema and writes state.

Each resource family keeps its tables and queries in its own module, as a mixin of `Store`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from iot_tui.local.store.base import SCHEMA_VERSION, StoreBase
from iot_tui.local.store.certificates import CertificateQueries
from iot_tui.local.store.iam import IamQueries
from iot_tui.local.store.policies import PolicyQueries
from iot_tui.local.store.registry import RegistryQueries
from iot_tui.local.store.resources import ResourceQueries
from iot_tui.local.store.shadows import ShadowQueries

FAMILIES = (RegistryQueries, CertificateQueries, PolicyQueries, ShadowQueries, ResourceQueries, IamQueries)


class Store(
    RegistryQueries, CertificateQueries, PolicyQueries, ShadowQueries, ResourceQueries, IamQueries, StoreBase
):
    """All queries of the local core over one SQLite connection."""

    @classmethod
    def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        # WAL + NORMAL: a committed transaction survives a killed process (kill -9); FULL would
        # also survive power loss at the cost of an fsync per write.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        store = cls(db)
        store.migrate([family.SCHEMA for family in FAMILIES])
        return store


__all__ = ["SCHEMA_VERSION", "Store"]
