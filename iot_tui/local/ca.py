"""The local core's certificate authority, kept on disk.

It signs the broker's server certificate (so awscrt and Python `ssl` can verify
`localhost` and `127.0.0.1`) and the device certificates that CreateKeysAndCertificate
and CreateCertificateFromCsr hand out. Keys are 0600 and every file is written
atomically under an fcntl lock, so two processes starting at once agree on one CA.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from iot_tui.files import write_atomic
from iot_tui.iotcore.x509 import (
    DEVICE_CERT_COMMON_NAME,
    CertificateValidationError,
    check_supported_key,
    describe,
    generate_key,
    key_matches_certificate,
    load_certificate,
    load_csr,
    load_private_key,
    private_key_pem,
    public_key_pem,
    self_signed_certificate,
    sign_certificate,
    verify_issued_by,
)

CA_COMMON_NAME = "iot-tui local CA"
CA_VALIDITY_DAYS = 3650
SERVER_COMMON_NAME = "localhost"
SERVER_VALIDITY_DAYS = 365
SERVER_SAN_DNS: tuple[str, ...] = ("localhost",)
SERVER_SAN_IPS: tuple[str, ...] = ("127.0.0.1", "::1")
# Renew a little before the end, so a server started today is not broken tomorrow.
RENEW_BEFORE = timedelta(days=1)

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.crt"
SERVER_KEY_FILE = "server.key"
SERVER_CERT_FILE = "server.crt"
LOCK_FILE = "ca.lock"

KEY_MODE = 0o600
CERT_MODE = 0o644


class LocalCAError(RuntimeError):
    """The CA directory is in a state we cannot repair without losing the CA key."""


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive flock on the directory's lock file (released on close)."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, KEY_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, OSError):
        return ""  # present but unreadable: treated as corrupt


def _tighten(path: Path) -> None:
    """Keys left readable by others (copied by hand, say) go back to 0600."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, KEY_MODE)


@dataclass(frozen=True, eq=False)
class LocalCA:
    """A loaded CA directory. Build it with `LocalCA.load_or_create`."""

    directory: Path
    ca_cert: x509.Certificate
    ca_key: CertificateIssuerPrivateKeyTypes = field(repr=False)
    ca_cert_pem: str = field(repr=False)
    server_cert_pem: str = field(repr=False)

    # ------------------------------------------------------------------ paths

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / CA_CERT_FILE

    @property
    def ca_key_path(self) -> Path:
        return self.directory / CA_KEY_FILE

    @property
    def server_cert_path(self) -> Path:
        return self.directory / SERVER_CERT_FILE

    @property
    def server_key_path(self) -> Path:
        return self.directory / SERVER_KEY_FILE

    # ------------------------------------------------------------------ setup

    @classmethod
    def load_or_create(cls, directory: Path, now: datetime | None = None) -> LocalCA:
        """Load the CA in `directory`, creating or repairing what is missing.

        First use creates the CA key and a ~10-year root, then a server certificate
        for localhost/127.0.0.1/::1. Later calls load them; the server certificate is
        reissued when missing, corrupt, expired (or about to), not matching its key,
        or not signed by this CA. A missing or expired CA certificate is reissued from
        the existing CA key, so device certificates already issued stay valid.
        """
        moment = _now(now)
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(directory):
            ca_key, ca_cert, ca_pem = cls._load_or_create_root(directory, moment)
            server_pem = cls._load_or_create_server(directory, ca_key, ca_cert, moment)
        return cls(
            directory=directory,
            ca_cert=ca_cert,
            ca_key=ca_key,
            ca_cert_pem=ca_pem,
            server_cert_pem=server_pem,
        )

    @staticmethod
    def _load_or_create_root(
        directory: Path, now: datetime
    ) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate, str]:
        key_path, cert_path = directory / CA_KEY_FILE, directory / CA_CERT_FILE
        key_text, cert_text = _read(key_path), _read(cert_path)
        if key_text is None:
            if cert_text is not None:
                raise LocalCAError(
                    f"{cert_path} exists but its key {key_path} is missing; the CA cannot "
                    f"sign anything. Remove {directory} (iot-tui local reset) to start over."
                )
            key = generate_key("rsa2048")
            write_atomic(key_path, private_key_pem(key), KEY_MODE)
        else:
            try:
                key = load_private_key(key_text)
            except CertificateValidationError as exc:
                raise LocalCAError(
                    f"{key_path} is not a usable key ({exc}). "
                    f"Remove {directory} (iot-tui local reset) to start over."
                ) from None
            _tighten(key_path)
        cert = _usable_root(cert_text, key, now)
        if cert is None:
            pem = self_signed_certificate(
                key,  # type: ignore[arg-type]
                CA_COMMON_NAME,
                days=CA_VALIDITY_DAYS,
                now=now,
                is_ca=True,
            )
            write_atomic(cert_path, pem, CERT_MODE)
            cert = load_certificate(pem)
        else:
            pem = cert_text or ""
        return key, cert, pem  # type: ignore[return-value]

    @staticmethod
    def _load_or_create_server(
        directory: Path,
        ca_key: CertificateIssuerPrivateKeyTypes,
        ca_cert: x509.Certificate,
        now: datetime,
    ) -> str:
        key_path, cert_path = directory / SERVER_KEY_FILE, directory / SERVER_CERT_FILE
        key_text, cert_text = _read(key_path), _read(cert_path)
        if (
            key_text is not None
            and cert_text is not None
            and _usable_server(cert_text, key_text, ca_cert, now)
        ):
            _tighten(key_path)
            return cert_text
        key = generate_key("rsa2048")
        pem = sign_certificate(
            ca_cert,
            ca_key,
            key.public_key(),
            SERVER_COMMON_NAME,
            days=SERVER_VALIDITY_DAYS,
            now=now,
            san_dns=SERVER_SAN_DNS,
            san_ips=SERVER_SAN_IPS,
        )
        # Key first: a crash between the two leaves a mismatch, which the next load repairs.
        write_atomic(key_path, private_key_pem(key), KEY_MODE)
        write_atomic(cert_path, pem, CERT_MODE)
        return pem

    # ------------------------------------------------------------------ issuing

    def issue_keys_and_certificate(self, now: datetime | None = None) -> tuple[str, str, str]:
        """CreateKeysAndCertificate: (certificate PEM, private key PEM, public key PEM).

        RSA 2048 with a PKCS#1 private key and an "AWS IoT Certificate" subject valid
        until 2049, as AWS gives.
        """
        key = generate_key("rsa2048")
        cert_pem = sign_certificate(
            self.ca_cert, self.ca_key, key.public_key(), DEVICE_CERT_COMMON_NAME, now=now
        )
        return cert_pem, private_key_pem(key), public_key_pem(key)

    def sign_csr(self, csr_pem: str | bytes, now: datetime | None = None) -> str:
        """CreateCertificateFromCsr: certify the CSR's key; like AWS, ignore its subject.

        Raises CertificateValidationError for a malformed CSR, a bad signature or a key
        AWS IoT would refuse.
        """
        csr = load_csr(csr_pem)
        public_key = csr.public_key()
        check_supported_key(public_key)
        return sign_certificate(
            self.ca_cert, self.ca_key, public_key, DEVICE_CERT_COMMON_NAME, now=now
        )


def _usable_root(cert_text: str | None, key: object, now: datetime) -> x509.Certificate | None:
    """The CA certificate if it can stay as it is, else None (reissue from the key)."""
    if not cert_text:
        return None
    try:
        cert = load_certificate(cert_text)
    except CertificateValidationError:
        return None
    info = describe(cert)
    if not info.is_ca or not key_matches_certificate(key, cert):  # type: ignore[arg-type]
        return None
    if not info.not_before <= now < info.not_after - RENEW_BEFORE:
        return None
    return cert


def _usable_server(cert_text: str, key_text: str, ca_cert: x509.Certificate, now: datetime) -> bool:
    """True if the server certificate on disk can serve TLS today as it is."""
    try:
        cert = load_certificate(cert_text)
        key = load_private_key(key_text)
    except CertificateValidationError:
        return False
    info = describe(cert)
    return (
        key_matches_certificate(key, cert)
        and verify_issued_by(cert, ca_cert)
        and info.not_before <= now < info.not_after - RENEW_BEFORE
        and set(SERVER_SAN_DNS) <= set(info.san_dns)
        and set(SERVER_SAN_IPS) <= set(info.san_ips)
    )
