"""X.509 helpers shared by the certificate wizard and the local core.

Pure: no file I/O and no imports of other iot_tui code. Everything that depends on the
current time takes an optional aware `now`, so tests and snapshots are deterministic.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# What AWS IoT puts in the certificates it issues (CreateKeysAndCertificate,
# CreateCertificateFromCsr): a fixed subject and an end of validity far in the future.
DEVICE_CERT_COMMON_NAME = "AWS IoT Certificate"
DEVICE_CERT_NOT_AFTER = datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)

# Key kinds AWS IoT accepts for device certificates.
_RSA_KINDS = {"rsa2048": 2048, "rsa3072": 3072, "rsa4096": 4096}
_EC_KINDS: dict[str, type[ec.EllipticCurve]] = {
    "ec-p256": ec.SECP256R1,
    "ec-p384": ec.SECP384R1,
    "ec-p521": ec.SECP521R1,
}
KEY_KINDS: tuple[str, ...] = (*_RSA_KINDS, *_EC_KINDS)
_CURVE_NAMES = {"secp256r1": "P256", "secp384r1": "P384", "secp521r1": "P521"}

_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----", re.MULTILINE)


class CertificateValidationError(ValueError):
    """A PEM, certificate, CSR or key the user gave us is not usable; the message says why."""


@dataclass(frozen=True)
class CertificateInfo:
    """What the UI and the local core show about a certificate."""

    certificate_id: str
    subject: str
    issuer: str
    common_name: str | None
    serial: int
    not_before: datetime
    not_after: datetime
    key_algorithm: str
    self_signed: bool
    is_ca: bool
    san_dns: tuple[str, ...] = ()
    san_ips: tuple[str, ...] = ()

    @property
    def serial_hex(self) -> str:
        """Serial as lowercase hex, the way `openssl x509 -serial` shows it."""
        return format(self.serial, "x")

    def is_valid_at(self, now: datetime | None = None) -> bool:
        """True if `now` lies within the validity period."""
        moment = _now(now)
        return self.not_before <= moment <= self.not_after


# --------------------------------------------------------------------------- parsing


def _text(pem: str | bytes) -> str:
    if isinstance(pem, bytes):
        try:
            return pem.decode("ascii")
        except UnicodeDecodeError:
            raise CertificateValidationError(
                "not a PEM: it holds non-ASCII bytes (is it a DER file?)"
            ) from None
    if not isinstance(pem, str):
        raise CertificateValidationError(f"expected PEM text, got {type(pem).__name__}")
    return pem


def _pem_blocks(text: str, what: str, expected_label: str) -> list[str]:
    """Return every PEM label in `text`, raising a clear error if there are none."""
    if not text.strip():
        raise CertificateValidationError(f"the {what} PEM is empty")
    labels = _PEM_BEGIN.findall(text)
    if not labels:
        raise CertificateValidationError(
            f"not a PEM {what}: expected a '-----BEGIN {expected_label}-----' line"
        )
    complete = _PEM_BLOCK.findall(text)
    if len(complete) != len(labels):
        raise CertificateValidationError(
            f"malformed {what} PEM: a '-----BEGIN' line has no matching '-----END' line"
        )
    return labels


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """Parse exactly one PEM certificate, explaining in words what is wrong otherwise."""
    text = _text(pem)
    labels = _pem_blocks(text, "certificate", "CERTIFICATE")
    others = [label for label in labels if label != "CERTIFICATE"]
    if "CERTIFICATE" not in labels:
        raise CertificateValidationError(f"this PEM holds a '{others[0]}' block, not a certificate")
    if others:
        kinds = ", ".join(sorted({f"'{label}'" for label in others}))
        raise CertificateValidationError(
            f"the certificate PEM also holds {kinds}; give the certificate on its own"
        )
    count = labels.count("CERTIFICATE")
    if count > 1:
        raise CertificateValidationError(
            f"the PEM holds {count} certificates; give exactly one (not a chain)"
        )
    try:
        (cert,) = x509.load_pem_x509_certificates(text.encode("ascii"))
    except ValueError as exc:
        raise CertificateValidationError(f"malformed certificate PEM: {exc}") from None
    return cert


def _cert(cert: x509.Certificate | str | bytes) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    return load_certificate(cert)


def load_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    """Parse one PEM certificate signing request and check its self-signature."""
    text = _text(pem)
    labels = _pem_blocks(text, "certificate signing request", "CERTIFICATE REQUEST")
    requests = [label for label in labels if label.endswith("CERTIFICATE REQUEST")]
    if not requests:
        raise CertificateValidationError(
            f"this PEM holds a '{labels[0]}' block, not a certificate signing request"
        )
    if len(requests) > 1:
        raise CertificateValidationError("the PEM holds more than one CSR; give exactly one")
    if len(labels) > 1:
        raise CertificateValidationError(
            "the CSR PEM holds other blocks as well; give the CSR on its own"
        )
    try:
        csr = x509.load_pem_x509_csr(text.encode("ascii"))
    except ValueError as exc:
        raise CertificateValidationError(f"malformed CSR PEM: {exc}") from None
    try:
        valid = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise CertificateValidationError(f"CSR signature cannot be checked: {exc}") from None
    if not valid:
        raise CertificateValidationError("the CSR's signature does not match its public key")
    return csr


def load_private_key(pem: str | bytes) -> PrivateKeyTypes:
    """Parse an unencrypted PEM private key (PKCS#1, SEC1 or PKCS#8)."""
    text = _text(pem)
    labels = _pem_blocks(text, "private key", "PRIVATE KEY")
    keys = [label for label in labels if label.endswith("PRIVATE KEY")]
    if not keys:
        raise CertificateValidationError(f"this PEM holds a '{labels[0]}' block, not a private key")
    if len(labels) > 1:
        raise CertificateValidationError("the key PEM holds more than one block; give one key")
    try:
        return serialization.load_pem_private_key(text.encode("ascii"), password=None)
    except TypeError:
        raise CertificateValidationError(
            "the private key is encrypted; give it unencrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateValidationError(f"malformed private key PEM: {exc}") from None


# --------------------------------------------------------------------------- identity


def certificate_id(pem_or_cert: x509.Certificate | str | bytes) -> str:
    """AWS IoT's certificate id: SHA-256 hex of the DER encoding.

    Bytes that are not PEM are taken as DER as they are (what
    `ssl_object.getpeercert(binary_form=True)` returns), without parsing them.
    """
    if isinstance(pem_or_cert, bytes) and b"-----BEGIN" not in pem_or_cert:
        der = pem_or_cert
    else:
        der = _cert(pem_or_cert).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def certificate_pem(cert: x509.Certificate) -> str:
    """PEM text of a certificate object."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_algorithm(public_key: CertificatePublicKeyTypes) -> str:
    """A short name such as 'RSA-2048' or 'EC-P256' for display and checks."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA-{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        name = public_key.curve.name
        return f"EC-{_CURVE_NAMES.get(name, name)}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(public_key).__name__


def check_supported_key(public_key: CertificatePublicKeyTypes) -> None:
    """Reject keys AWS IoT refuses for device certificates (RSA < 2048, other curves)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise CertificateValidationError(
                f"RSA keys must be at least 2048 bits; this one has {public_key.key_size}"
            )
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in _CURVE_NAMES:
            raise CertificateValidationError(
                f"EC keys must use P-256, P-384 or P-521; this one uses {public_key.curve.name}"
            )
        return
    raise CertificateValidationError(
        f"unsupported key type {key_algorithm(public_key)}; use RSA (2048+) or EC"
    )


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches_certificate(
    private_key: PrivateKeyTypes, cert: x509.Certificate | str | bytes
) -> bool:
    """True if the private key belongs to the certificate (catches swapped files)."""
    return _spki(private_key.public_key()) == _spki(_cert(cert).public_key())  # type: ignore[arg-type]


def _common_name(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def verify_issued_by(
    cert: x509.Certificate | str | bytes, ca_cert: x509.Certificate | str | bytes
) -> bool:
    """True if `ca_cert` signed `cert`: the issuer name matches and the signature checks."""
    try:
        _cert(cert).verify_directly_issued_by(_cert(ca_cert))
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def describe(cert: x509.Certificate | str | bytes) -> CertificateInfo:
    """Summarise a certificate for display and for the local core's records."""
    c = _cert(cert)
    try:
        is_ca = c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san_dns = tuple(san.get_values_for_type(x509.DNSName))
        san_ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        san_dns, san_ips = (), ()
    return CertificateInfo(
        certificate_id=certificate_id(c),
        subject=c.subject.rfc4514_string(),
        issuer=c.issuer.rfc4514_string(),
        common_name=_common_name(c.subject),
        serial=c.serial_number,
        not_before=c.not_valid_before_utc,
        not_after=c.not_valid_after_utc,
        key_algorithm=key_algorithm(c.public_key()),
        self_signed=c.issuer == c.subject and verify_issued_by(c, c),
        is_ca=is_ca,
        san_dns=san_dns,
        san_ips=san_ips,
    )


def verification_certificate_matches(
    cert: x509.Certificate | str | bytes,
    registration_code: str,
    ca_cert: x509.Certificate | str | bytes | None = None,
) -> bool:
    """RegisterCACertificate's proof of possession: CN is the registration code.

    With `ca_cert`, also require that the CA signed the verification certificate.
    """
    c = _cert(cert)
    code = registration_code.strip()
    if not code or _common_name(c.subject) != code:
        return False
    return ca_cert is None or verify_issued_by(c, ca_cert)


# --------------------------------------------------------------------------- keys


def generate_key(kind: str = "rsa2048") -> CertificateIssuerPrivateKeyTypes:
    """A new private key; `kind` is one of KEY_KINDS (RSA like AWS, or an EC curve)."""
    normalized = kind.lower().replace("_", "-")
    if normalized in _RSA_KINDS:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_KINDS[normalized])
    if normalized in _EC_KINDS:
        return ec.generate_private_key(_EC_KINDS[normalized]())
    raise ValueError(f"unknown key kind {kind!r}; choose one of {', '.join(KEY_KINDS)}")


def private_key_pem(key: PrivateKeyTypes) -> str:
    """Unencrypted PEM: PKCS#1 'RSA PRIVATE KEY' for RSA, as AWS hands out; SEC1 for EC."""
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    else:
        fmt = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode(
        "ascii"
    )


def public_key_pem(key: PrivateKeyTypes | CertificatePublicKeyTypes) -> str:
    """'BEGIN PUBLIC KEY' (SubjectPublicKeyInfo) PEM of a key pair or public key."""
    public = key.public_key() if hasattr(key, "private_bytes") else key  # type: ignore[union-attr]
    return public.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


# --------------------------------------------------------------------------- issuing


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC)


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.HashAlgorithm | None:
    # Ed25519/Ed448 sign without a separate hash; everything else uses SHA-256.
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    return hashes.SHA256()


def _name(common_name: str) -> x509.Name:
    if not common_name:
        raise ValueError("a certificate needs a non-empty common name")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(public_key: CertificatePublicKeyTypes, is_ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        # TLS with static RSA key exchange needs it; harmless otherwise.
        key_encipherment=not is_ca and isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=False,
        decipher_only=False,
    )


def _build(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    signing_key: CertificateIssuerPrivateKeyTypes,
    authority_key_id: x509.AuthorityKeyIdentifier,
    not_before: datetime,
    not_after: datetime,
    is_ca: bool,
    extended_usages: list[x509.ObjectIdentifier],
    san: list[x509.GeneralName],
) -> str:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(_key_usage(public_key, is_ca), critical=True)
        # Key identifiers keep OpenSSL's strict mode (Python 3.13 default) happy.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(authority_key_id, critical=False)
    )
    if extended_usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended_usages), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(signing_key, _hash_for(signing_key))  # type: ignore[arg-type]
    return certificate_pem(cert)


def self_signed_certificate(
    key: CertificateIssuerPrivateKeyTypes,
    common_name: str,
    days: int = 365,
    now: datetime | None = None,
    *,
    is_ca: bool = False,
) -> str:
    """A self-signed certificate: a device cert to register without a CA, or a root CA."""
    start = _now(now).replace(microsecond=0)
    public_key = key.public_key()
    name = _name(common_name)
    return _build(
        subject=name,
        issuer=name,
        public_key=public_key,
        signing_key=key,
        authority_key_id=x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key),
        not_before=start,
        not_after=start + timedelta(days=days),
        is_ca=is_ca,
        extended_usages=[] if is_ca else [ExtendedKeyUsageOID.CLIENT_AUTH],
        san=[],
    )


def make_csr(key: CertificateIssuerPrivateKeyTypes, common_name: str) -> str:
    """A PEM CSR for CreateCertificateFromCsr (the device keeps its private key)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(common_name))
        .sign(key, _hash_for(key))  # type: ignore[arg-type]
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def sign_certificate(
    ca_cert: x509.Certificate | str | bytes,
    ca_key: CertificateIssuerPrivateKeyTypes,
    public_key: CertificatePublicKeyTypes | CertificateIssuerPrivateKeyTypes,
    subject_cn: str = DEVICE_CERT_COMMON_NAME,
    days: int | None = None,
    now: datetime | None = None,
    is_ca: bool = False,
    san_dns: Iterable[str] = (),
    san_ips: Iterable[str | ipaddress.IPv4Address | ipaddress.IPv6Address] = (),
) -> str:
    """Issue a certificate signed by a CA: device certs and the broker's server cert.

    The defaults mirror AWS's device certificates: CN "AWS IoT Certificate", valid from
    `now` until 2049-12-31T23:59:59Z. Pass `days` for a shorter life (server certs).
    A certificate with SANs is usable as a TLS server and a client; without, as a client.
    """
    issuer = _cert(ca_cert)
    if hasattr(public_key, "private_bytes"):  # a key pair was given: certify its public half
        public_key = public_key.public_key()  # type: ignore[union-attr]
    if _spki(ca_key.public_key()) != _spki(issuer.public_key()):  # type: ignore[arg-type]
        raise ValueError("ca_key does not belong to ca_cert")
    start = _now(now).replace(microsecond=0)
    not_after = DEVICE_CERT_NOT_AFTER if days is None else start + timedelta(days=days)
    if not_after <= start:
        raise ValueError("the certificate would expire before it becomes valid")
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    san: list[x509.GeneralName] = [x509.DNSName(name) for name in san_dns]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in san_ips]
    usages: list[x509.ObjectIdentifier] = []
    if not is_ca:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if san:
            usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    return _build(
        subject=_name(subject_cn),
        issuer=issuer.subject,
        public_key=public_key,  # type: ignore[arg-type]
        signing_key=ca_key,
        authority_key_id=aki,
        not_before=start,
        not_after=not_after,
        is_ca=is_ca,
        extended_usages=usages,
        san=san,
    )
