"""Device certificates, CA certificates and registration codes, per region as in AWS IoT.

A certificate's id is the SHA-256 of its DER, so the same certificate can be registered in
several regions (AWS allows it); rows are keyed by (region, id). The broker sees only the id
from the TLS handshake, hence `certificate_by_id` with an optional region.

Listing order follows AWS (creation date) with the insertion sequence `seq` as tie-breaker,
because a test clock can give many certificates the same creation date.

Other families read these tables directly, so these columns are a contract: the broker's trust
loader reads `certificates` and `ca_certificates` by `seq` and `pem`, the policy family
`certificates` by `region` and `arn`. In turn `principal_attachment_counts` reads the registry's
and the policy family's tables, never writing them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

# Where a page ends: (creation date, insertion sequence) of its last row.
Position = tuple[float, int]
Record = TypeVar("Record")


@dataclass(frozen=True)
class CertificateRecord:
    """A registered device certificate, as DescribeCertificate and the broker need it."""

    region: str
    certificate_id: str
    arn: str
    status: str
    pem: str
    ca_certificate_id: str | None
    mode: str
    owned_by: str
    created: float
    modified: float
    customer_version: int
    generation_id: str
    not_before: float
    not_after: float
    seq: int = 0


@dataclass(frozen=True)
class CACertificateRecord:
    """A registered CA certificate; `subject` (RFC 4514) finds the CA of a device certificate."""

    region: str
    certificate_id: str
    arn: str
    status: str
    pem: str
    subject: str
    mode: str
    auto_registration: str
    registration_config: dict[str, Any] | None
    tags: list[dict[str, str]]
    owned_by: str
    created: float
    modified: float
    customer_version: int
    generation_id: str
    not_before: float
    not_after: float
    seq: int = 0


@dataclass(frozen=True)
class PageRequest:
    """Which page a List* call asks for: its order, its size, and where the last page ended."""

    ascending: bool
    limit: int
    after: Position | None = None


@dataclass(frozen=True)
class AttachmentCounts:
    """How many things and policies hold a principal (read from other families' tables)."""

    things: int
    policies: int


_CERT_COLUMNS = (
    "region, certificate_id, arn, status, pem, ca_certificate_id, mode, owned_by, created, "
    "modified, customer_version, generation_id, not_before, not_after, seq"
)
_CA_COLUMNS = (
    "region, certificate_id, arn, status, pem, subject, mode, auto_registration, "
    "registration_config, tags, owned_by, created, modified, customer_version, generation_id, "
    "not_before, not_after, seq"
)


def _certificate(row: sqlite3.Row) -> CertificateRecord:
    return CertificateRecord(**dict(row))


def _ca_certificate(row: sqlite3.Row) -> CACertificateRecord:
    values = dict(row)
    config = values["registration_config"]
    values["registration_config"] = json.loads(config) if config is not None else None
    values["tags"] = json.loads(values["tags"])
    return CACertificateRecord(**values)


class CertificateQueries:
    # Provided by StoreBase.
    db: sqlite3.Connection
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS certificates (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        region TEXT NOT NULL,
        certificate_id TEXT NOT NULL,
        arn TEXT NOT NULL,
        status TEXT NOT NULL,
        pem TEXT NOT NULL,
        ca_certificate_id TEXT,
        mode TEXT NOT NULL,
        owned_by TEXT NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        customer_version INTEGER NOT NULL,
        generation_id TEXT NOT NULL,
        not_before REAL NOT NULL,
        not_after REAL NOT NULL,
        UNIQUE (region, certificate_id)
    );
    CREATE INDEX IF NOT EXISTS certificates_by_id ON certificates (certificate_id);
    CREATE INDEX IF NOT EXISTS certificates_by_created ON certificates (region, created, seq);
    CREATE INDEX IF NOT EXISTS certificates_by_ca
        ON certificates (region, ca_certificate_id, created, seq);
    CREATE TABLE IF NOT EXISTS ca_certificates (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        region TEXT NOT NULL,
        certificate_id TEXT NOT NULL,
        arn TEXT NOT NULL,
        status TEXT NOT NULL,
        pem TEXT NOT NULL,
        subject TEXT NOT NULL,
        mode TEXT NOT NULL,
        auto_registration TEXT NOT NULL,
        registration_config TEXT,
        tags TEXT NOT NULL,
        owned_by TEXT NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        customer_version INTEGER NOT NULL,
        generation_id TEXT NOT NULL,
        not_before REAL NOT NULL,
        not_after REAL NOT NULL,
        UNIQUE (region, certificate_id)
    );
    CREATE INDEX IF NOT EXISTS ca_certificates_by_subject ON ca_certificates (region, subject);
    CREATE INDEX IF NOT EXISTS ca_certificates_by_created
        ON ca_certificates (region, created, seq);
    CREATE TABLE IF NOT EXISTS registration_codes (
        region TEXT PRIMARY KEY,
        code TEXT NOT NULL
    );
    """

    # ------------------------------------------------------------------ device certificates

    def insert_certificate(self, record: CertificateRecord) -> None:
        """Store a new certificate; the caller has checked it is not registered in the region."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO certificates (region, certificate_id, arn, status, pem, "
                "ca_certificate_id, mode, owned_by, created, modified, customer_version, "
                "generation_id, not_before, not_after) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.region, record.certificate_id, record.arn, record.status, record.pem,
                    record.ca_certificate_id, record.mode, record.owned_by, record.created,
                    record.modified, record.customer_version, record.generation_id,
                    record.not_before, record.not_after,
                ),
            )

    def certificate(self, region: str, certificate_id: str) -> CertificateRecord | None:
        row = self.db.execute(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE region = ? AND certificate_id = ?",
            (region, certificate_id),
        ).fetchone()
        return _certificate(row) if row else None

    def certificate_arn_exists(self, region: str, arn: str) -> bool:
        """Whether a principal ARN names a certificate of this region (AttachThingPrincipal)."""
        # The id ends the ARN, so the (region, certificate_id) index answers.
        return (
            self.db.execute(
                "SELECT 1 FROM certificates WHERE region = ? AND certificate_id = ? AND arn = ?",
                (region, arn.rsplit("/", 1)[-1], arn),
            ).fetchone()
            is not None
        )

    def certificate_by_id(
        self, certificate_id: str, region: str | None = None
    ) -> CertificateRecord | None:
        """The certificate a TLS client presented, by id (sha256 of its DER).

        Pass the region when the connection's endpoint names one: the same certificate may be
        registered in several regions with different statuses. Without a region the first
        registration wins.
        """
        if region is not None:
            return self.certificate(region, certificate_id)
        row = self.db.execute(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE certificate_id = ? "
            "ORDER BY seq LIMIT 1",
            (certificate_id,),
        ).fetchone()
        return _certificate(row) if row else None

    def certificate_status(self, certificate_id: str, region: str | None = None) -> str | None:
        """ACTIVE, INACTIVE, REVOKED...; None when the certificate is not registered."""
        record = self.certificate_by_id(certificate_id, region)
        return record.status if record else None

    def list_certificates(
        self, region: str, page: PageRequest, *, ca_certificate_id: str | None = None
    ) -> tuple[list[CertificateRecord], bool]:
        """One page of the region's certificates (or one CA's), and whether more follow it."""
        filters = {"ca_certificate_id = ?": ca_certificate_id}
        return self._page("certificates", _CERT_COLUMNS, _certificate, region, page, filters)

    def _page(
        self,
        table: str,
        columns: str,
        record: Callable[[sqlite3.Row], Record],
        region: str,
        page: PageRequest,
        filters: dict[str, Any],
    ) -> tuple[list[Record], bool]:
        """One page of a region's rows in creation order, and whether more rows follow it.

        `filters` maps a condition with one `?` to its value; a None value leaves it out. The
        position is carried in the marker rather than looked up, so deleting the row a marker
        points at does not end the listing.
        """
        where, args = "region = ?", [region]
        for condition, value in filters.items():
            if value is not None:
                where += f" AND {condition}"
                args.append(value)
        if page.after is not None:
            where += f" AND (created, seq) {'>' if page.ascending else '<'} (?, ?)"
            args.extend(page.after)
        order = "ASC" if page.ascending else "DESC"
        rows = self.db.execute(
            f"SELECT {columns} FROM {table} WHERE {where} "
            f"ORDER BY created {order}, seq {order} LIMIT ?",
            (*args, page.limit + 1),
        ).fetchall()
        return [record(row) for row in rows[: page.limit]], len(rows) > page.limit

    def update_certificate_status(
        self, region: str, certificate_id: str, status: str, now: float, generation_id: str
    ) -> None:
        """A new status is a new version of the certificate (customerVersion, generationId)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE certificates SET status = ?, modified = ?, "
                "customer_version = customer_version + 1, generation_id = ? "
                "WHERE region = ? AND certificate_id = ?",
                (status, now, generation_id, region, certificate_id),
            )

    def delete_certificate(self, region: str, certificate_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM certificates WHERE region = ? AND certificate_id = ?",
                (region, certificate_id),
            )

    def count_certificates_by_ca(self, region: str, ca_certificate_id: str) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM certificates WHERE region = ? AND ca_certificate_id = ?",
            (region, ca_certificate_id),
        ).fetchone()[0]

    # ------------------------------------------------------------------ other families' links

    def _table_exists(self, name: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
            is not None
        )

    def principal_attachment_counts(self, region: str, principal: str) -> AttachmentCounts:
        """Things and policies attached to a principal (a certificate ARN), for DeleteCertificate.

        Reads the registry family's `thing_principals(region, thing, principal)` and the policy
        family's `policy_targets(region, policy, target)` without writing them. A table that
        does not exist yet (its family not installed) counts as no attachment.
        """
        counts = []
        for table, column in (("thing_principals", "principal"), ("policy_targets", "target")):
            if not self._table_exists(table):
                counts.append(0)
                continue
            counts.append(
                self.db.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE region = ? AND {column} = ?",
                    (region, principal),
                ).fetchone()[0]
            )
        return AttachmentCounts(things=counts[0], policies=counts[1])

    # ------------------------------------------------------------------ CA certificates

    def insert_ca_certificate(self, record: CACertificateRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO ca_certificates (region, certificate_id, arn, status, pem, subject, "
                "mode, auto_registration, registration_config, tags, owned_by, created, "
                "modified, customer_version, generation_id, not_before, not_after) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.region, record.certificate_id, record.arn, record.status, record.pem,
                    record.subject, record.mode, record.auto_registration,
                    _json_or_none(record.registration_config), json.dumps(record.tags),
                    record.owned_by, record.created, record.modified, record.customer_version,
                    record.generation_id, record.not_before, record.not_after,
                ),
            )

    def ca_certificate(self, region: str, certificate_id: str) -> CACertificateRecord | None:
        row = self.db.execute(
            f"SELECT {_CA_COLUMNS} FROM ca_certificates WHERE region = ? AND certificate_id = ?",
            (region, certificate_id),
        ).fetchone()
        return _ca_certificate(row) if row else None

    def ca_certificates_by_subject(self, region: str, subject: str) -> list[CACertificateRecord]:
        """CAs that may have signed a certificate with this issuer; also the per-subject limit."""
        rows = self.db.execute(
            f"SELECT {_CA_COLUMNS} FROM ca_certificates WHERE region = ? AND subject = ? "
            "ORDER BY seq",
            (region, subject),
        ).fetchall()
        return [_ca_certificate(row) for row in rows]

    def list_ca_certificates(
        self, region: str, page: PageRequest, *, template_name: str | None = None
    ) -> tuple[list[CACertificateRecord], bool]:
        """One page of the region's CAs (those using one provisioning template if given)."""
        filters = {"json_extract(registration_config, '$.templateName') = ?": template_name}
        return self._page("ca_certificates", _CA_COLUMNS, _ca_certificate, region, page, filters)

    def update_ca_certificate(
        self,
        region: str,
        certificate_id: str,
        *,
        status: str,
        auto_registration: str,
        registration_config: dict[str, Any] | None,
        now: float,
        generation_id: str,
    ) -> None:
        """Write the CA's new settings as its next version."""
        with self.transaction() as db:
            db.execute(
                "UPDATE ca_certificates SET status = ?, auto_registration = ?, "
                "registration_config = ?, modified = ?, "
                "customer_version = customer_version + 1, generation_id = ? "
                "WHERE region = ? AND certificate_id = ?",
                (
                    status, auto_registration, _json_or_none(registration_config), now,
                    generation_id, region, certificate_id,
                ),
            )

    def delete_ca_certificate(self, region: str, certificate_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM ca_certificates WHERE region = ? AND certificate_id = ?",
                (region, certificate_id),
            )

    # ------------------------------------------------------------------ registration codes

    def registration_code(self, region: str) -> str | None:
        row = self.db.execute(
            "SELECT code FROM registration_codes WHERE region = ?", (region,)
        ).fetchone()
        return row[0] if row else None

    def get_or_create_registration_code(self, region: str, new_code: str) -> str:
        """The region's code for RegisterCACertificate; `new_code` is kept only if it has none."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO registration_codes (region, code) VALUES (?, ?)",
                (region, new_code),
            )
            return db.execute(
                "SELECT code FROM registration_codes WHERE region = ?", (region,)
            ).fetchone()[0]

    def delete_registration_code(self, region: str) -> bool:
        """Forget the region's code: the next GetRegistrationCode makes a new one. False if none."""
        with self.transaction() as db:
            deleted = db.execute("DELETE FROM registration_codes WHERE region = ?", (region,))
            return deleted.rowcount > 0


def _json_or_none(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value) if value is not None else None
