"""X.509 helpers: ids as AWS computes them, parsing errors in words, issuing like AWS."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from iot_tui.iotcore.x509 import (
    DEVICE_CERT_COMMON_NAME,
    DEVICE_CERT_NOT_AFTER,
    KEY_KINDS,
    CertificateInfo,
    CertificateValidationError,
    certificate_id,
    certificate_pem,
    check_supported_key,
    describe,
    generate_key,
    key_algorithm,
    key_matches_certificate,
    load_certificate,
    load_csr,
    load_private_key,
    make_csr,
    private_key_pem,
    public_key_pem,
    self_signed_certificate,
    sign_certificate,
    verification_certificate_matches,
    verify_issued_by,
)

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


# RSA generation is the slow part: one of each key per module.
@pytest.fixture(scope="module")
def ca_key() -> rsa.RSAPrivateKey:
    return generate_key("rsa2048")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def device_key() -> rsa.RSAPrivateKey:
    return generate_key("rsa2048")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return generate_key("ec-p256")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def ca_pem(ca_key: rsa.RSAPrivateKey) -> str:
    return self_signed_certificate(ca_key, "Test CA", days=3650, now=NOW, is_ca=True)


@pytest.fixture(scope="module")
def device_pem(ca_pem: str, ca_key: rsa.RSAPrivateKey, device_key: rsa.RSAPrivateKey) -> str:
    return sign_certificate(ca_pem, ca_key, device_key.public_key(), now=NOW)


def _pem(label: str, der: bytes) -> str:
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


# --------------------------------------------------------------------------- certificate ids


def test_certificate_id_is_sha256_of_der(device_pem: str) -> None:
    # The stdlib's own PEM decoder, so the check does not lean on the code under test.
    der = ssl.PEM_cert_to_DER_cert(device_pem)
    expected = hashlib.sha256(der).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert certificate_id(device_pem) == expected
    assert certificate_id(device_pem.encode()) == expected
    assert certificate_id(load_certificate(device_pem)) == expected
    # DER bytes, as `getpeercert(binary_form=True)` returns them in the broker.
    assert certificate_id(der) == expected


def test_certificate_ids_differ_per_certificate(device_pem: str, ca_pem: str) -> None:
    assert certificate_id(device_pem) != certificate_id(ca_pem)


def test_certificate_pem_round_trips(device_pem: str) -> None:
    assert certificate_pem(load_certificate(device_pem)) == device_pem


# --------------------------------------------------------------------------- describe


def test_describe_device_certificate_mirrors_aws(device_pem: str, ca_pem: str) -> None:
    info = describe(device_pem)
    assert isinstance(info, CertificateInfo)
    assert info.certificate_id == certificate_id(device_pem)
    assert info.subject == "CN=AWS IoT Certificate"
    assert info.common_name == DEVICE_CERT_COMMON_NAME
    assert info.issuer == "CN=Test CA"
    assert info.not_before == NOW
    assert info.not_after == datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert info.not_before.tzinfo is not None and info.not_after.tzinfo is not None
    assert info.key_algorithm == "RSA-2048"
    assert info.self_signed is False
    assert info.is_ca is False
    assert info.san_dns == () and info.san_ips == ()
    assert info.serial > 0
    assert info.serial_hex == format(load_certificate(device_pem).serial_number, "x")
    assert info.is_valid_at(NOW) and info.is_valid_at(NOW + timedelta(days=8000))
    assert not info.is_valid_at(NOW - timedelta(seconds=1))


def test_describe_ca_is_self_signed(ca_pem: str) -> None:
    info = describe(load_certificate(ca_pem))
    assert info.self_signed is True
    assert info.is_ca is True
    assert info.subject == info.issuer == "CN=Test CA"
    assert info.not_after - info.not_before == timedelta(days=3650)


def test_describe_uses_rfc4514_escaping(ec_key: ec.EllipticCurvePrivateKey) -> None:
    info = describe(self_signed_certificate(ec_key, "Acme, Inc.+lab", now=NOW))
    assert info.subject == r"CN=Acme\, Inc.\+lab"
    assert info.common_name == "Acme, Inc.+lab"
    assert info.key_algorithm == "EC-P256"


def test_describe_certificate_without_common_name(ec_key: ec.EllipticCurvePrivateKey) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NoCN")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ec_key.public_key())
        .serial_number(7)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(ec_key, hashes.SHA256())
    )
    info = describe(cert)
    assert info.common_name is None
    assert info.subject == "O=NoCN"
    assert info.is_ca is False  # no basicConstraints at all
    assert info.self_signed is True


# --------------------------------------------------------------------------- parsing errors


def test_validation_error_is_a_value_error() -> None:
    assert issubclass(CertificateValidationError, ValueError)


def test_load_certificate_accepts_surrounding_text_and_crlf(device_pem: str) -> None:
    wrapped = "Certificate:\n    Data: ...\n" + device_pem.replace("\n", "\r\n") + "\ntrailer\n"
    assert certificate_id(load_certificate(wrapped)) == certificate_id(device_pem)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda c, k: "", "empty"),
        (lambda c, k: "   \n", "empty"),
        (lambda c, k: "hello world", "expected a '-----BEGIN CERTIFICATE-----' line"),
        (lambda c, k: c + c, "holds 2 certificates"),
        (lambda c, k: private_key_pem(k), "holds a 'RSA PRIVATE KEY' block, not a certificate"),
        (lambda c, k: public_key_pem(k), "holds a 'PUBLIC KEY' block, not a certificate"),
        (lambda c, k: make_csr(k, "x"), "holds a 'CERTIFICATE REQUEST' block, not a certificate"),
        (lambda c, k: c + private_key_pem(k), "also holds 'RSA PRIVATE KEY'"),
        (lambda c, k: c.split("-----END")[0], "no matching '-----END' line"),
        (
            lambda c, k: "-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----",
            "malformed certificate PEM",
        ),
        (
            lambda c, k: _pem("CERTIFICATE", b"\x30\x03\x02\x01\x01"),
            "malformed certificate PEM",
        ),
        (lambda c, k: ssl.PEM_cert_to_DER_cert(c), "non-ASCII"),
    ],
    ids=[
        "empty",
        "blank",
        "no-pem",
        "chain",
        "private-key",
        "public-key",
        "csr",
        "cert-and-key",
        "truncated",
        "bad-base64",
        "bad-der",
        "der-bytes",
    ],
)
def test_load_certificate_rejects_with_clear_message(
    make, message: str, device_pem: str, device_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(CertificateValidationError, match=re.escape(message)):
        load_certificate(make(device_pem, device_key))


def test_certificate_id_rejects_malformed_pem() -> None:
    with pytest.raises(CertificateValidationError):
        certificate_id("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


# --------------------------------------------------------------------------- keys


def test_generate_key_kinds() -> None:
    assert KEY_KINDS == ("rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384", "ec-p521")
    p384 = generate_key("EC_P384")
    assert isinstance(p384, ec.EllipticCurvePrivateKey) and p384.curve.name == "secp384r1"
    assert key_algorithm(generate_key("ec-p521").public_key()) == "EC-P521"
    with pytest.raises(ValueError, match="unknown key kind 'dsa'"):
        generate_key("dsa")


def test_rsa_key_pems_look_like_aws(device_key: rsa.RSAPrivateKey) -> None:
    assert device_key.key_size == 2048
    assert device_key.public_key().public_numbers().e == 65537
    priv = private_key_pem(device_key)
    assert priv.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert priv.rstrip().endswith("-----END RSA PRIVATE KEY-----")
    pub = public_key_pem(device_key)
    assert pub.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert public_key_pem(device_key.public_key()) == pub
    again = load_private_key(priv)
    assert public_key_pem(again) == pub


def test_ec_key_pem(ec_key: ec.EllipticCurvePrivateKey) -> None:
    priv = private_key_pem(ec_key)
    assert priv.startswith("-----BEGIN EC PRIVATE KEY-----\n")
    assert public_key_pem(load_private_key(priv)) == public_key_pem(ec_key)


def test_load_private_key_accepts_pkcs8(ec_key: ec.EllipticCurvePrivateKey) -> None:
    pkcs8 = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert public_key_pem(load_private_key(pkcs8)) == public_key_pem(ec_key)


def test_load_private_key_errors(ec_key: ec.EllipticCurvePrivateKey, device_pem: str) -> None:
    encrypted = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    with pytest.raises(CertificateValidationError, match="encrypted"):
        load_private_key(encrypted)
    with pytest.raises(
        CertificateValidationError, match="holds a 'CERTIFICATE' block, not a private key"
    ):
        load_private_key(device_pem)
    with pytest.raises(CertificateValidationError, match="malformed private key"):
        load_private_key(_pem("PRIVATE KEY", b"\x30\x00"))
    with pytest.raises(CertificateValidationError, match="empty"):
        load_private_key("")


def test_key_matches_certificate(
    device_pem: str, device_key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey
) -> None:
    assert key_matches_certificate(device_key, device_pem)
    assert not key_matches_certificate(ca_key, device_pem)


def test_check_supported_key(ec_key: ec.EllipticCurvePrivateKey) -> None:
    check_supported_key(ec_key.public_key())
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CertificateValidationError, match="at least 2048 bits"):
        check_supported_key(weak.public_key())
    k1 = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(CertificateValidationError, match="secp256k1"):
        check_supported_key(k1.public_key())
    with pytest.raises(CertificateValidationError, match="Ed25519"):
        check_supported_key(ed25519.Ed25519PrivateKey.generate().public_key())


# --------------------------------------------------------------------------- issuing


def test_self_signed_certificate(device_key: rsa.RSAPrivateKey) -> None:
    pem = self_signed_certificate(device_key, "my-device", days=30, now=NOW)
    info = describe(pem)
    assert info.subject == info.issuer == "CN=my-device"
    assert info.self_signed and not info.is_ca
    assert info.not_before == NOW and info.not_after == NOW + timedelta(days=30)
    assert verify_issued_by(pem, pem)
    assert key_matches_certificate(device_key, pem)


def test_time_dependent_functions_refuse_naive_now(device_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        self_signed_certificate(device_key, "x", now=datetime(2026, 1, 1))


def test_now_defaults_to_the_current_time(ec_key: ec.EllipticCurvePrivateKey) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    info = describe(self_signed_certificate(ec_key, "now"))
    assert before <= info.not_before <= datetime.now(UTC)


def test_now_in_another_timezone_is_converted(ec_key: ec.EllipticCurvePrivateKey) -> None:
    from datetime import timezone

    plus2 = NOW.astimezone(timezone(timedelta(hours=2)))
    assert describe(self_signed_certificate(ec_key, "tz", now=plus2)).not_before == NOW


def test_sign_certificate_defaults_mirror_aws(
    device_pem: str, ca_pem: str, device_key: rsa.RSAPrivateKey
) -> None:
    cert = load_certificate(device_pem)
    assert cert.subject.rfc4514_string() == "CN=AWS IoT Certificate"
    assert cert.not_valid_after_utc == DEVICE_CERT_NOT_AFTER
    assert cert.not_valid_before_utc == NOW
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"
    assert verify_issued_by(device_pem, ca_pem)
    assert key_matches_certificate(device_key, cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # The authority key id points at the CA's subject key id (chain building).
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = load_certificate(ca_pem).extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ski.value.digest


def test_sign_certificate_for_a_server(
    ca_pem: str, ca_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    pem = sign_certificate(
        ca_pem,
        ca_key,
        ec_key,  # a key pair is fine: its public half is certified
        "localhost",
        days=90,
        now=NOW,
        san_dns=["localhost"],
        san_ips=["127.0.0.1", ipaddress.ip_address("::1")],
    )
    info = describe(pem)
    assert info.common_name == "localhost"
    assert info.san_dns == ("localhost",)
    assert info.san_ips == ("127.0.0.1", "::1")
    assert info.not_after == NOW + timedelta(days=90)
    assert info.key_algorithm == "EC-P256"
    eku = load_certificate(pem).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert verify_issued_by(pem, ca_pem)


def test_sign_certificate_intermediate_ca_chain(
    ca_pem: str,
    ca_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    device_key: rsa.RSAPrivateKey,
) -> None:
    intermediate = sign_certificate(
        ca_pem, ca_key, ec_key.public_key(), "Intermediate", days=365, now=NOW, is_ca=True
    )
    assert describe(intermediate).is_ca
    leaf = sign_certificate(intermediate, ec_key, device_key.public_key(), now=NOW)
    assert describe(leaf).issuer == "CN=Intermediate"
    assert verify_issued_by(leaf, intermediate)
    assert not verify_issued_by(leaf, ca_pem)
    assert verify_issued_by(intermediate, ca_pem)


def test_sign_certificate_rejects_wrong_ca_key(
    ca_pem: str, device_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    with pytest.raises(ValueError, match="ca_key does not belong to ca_cert"):
        sign_certificate(ca_pem, device_key, ec_key.public_key(), now=NOW)


def test_sign_certificate_rejects_empty_validity(
    ca_pem: str, ca_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    with pytest.raises(ValueError, match="expire before"):
        sign_certificate(ca_pem, ca_key, ec_key.public_key(), days=0, now=NOW)


def test_verify_issued_by_checks_signature_not_just_names(
    device_pem: str, ca_pem: str, device_key: rsa.RSAPrivateKey
) -> None:
    # Same subject name as the real CA, different key: names match, signature does not.
    impostor = self_signed_certificate(device_key, "Test CA", now=NOW, is_ca=True)
    assert describe(impostor).subject == describe(ca_pem).subject
    assert not verify_issued_by(device_pem, impostor)
    assert not verify_issued_by(ca_pem, device_pem)  # issuer name mismatch
    assert verify_issued_by(device_pem, ca_pem)


# --------------------------------------------------------------------------- CSRs


def test_make_and_load_csr(ec_key: ec.EllipticCurvePrivateKey) -> None:
    pem = make_csr(ec_key, "sensor-1")
    assert pem.startswith("-----BEGIN CERTIFICATE REQUEST-----\n")
    csr = load_csr(pem)
    assert csr.subject.rfc4514_string() == "CN=sensor-1"
    assert public_key_pem(csr.public_key()) == public_key_pem(ec_key)


def test_load_csr_rejects_tampered_signature(ec_key: ec.EllipticCurvePrivateKey) -> None:
    der = bytearray(load_csr(make_csr(ec_key, "sensor-1")).public_bytes(serialization.Encoding.DER))
    # Swap the CN's last letter for another of the same length: still parses, no longer signed.
    index = der.index(b"sensor-1") + len("sensor-1") - 1
    der[index] = ord("2")
    with pytest.raises(CertificateValidationError, match="signature does not match"):
        load_csr(_pem("CERTIFICATE REQUEST", bytes(der)))


def test_load_csr_errors(device_pem: str, ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(
        CertificateValidationError, match="holds a 'CERTIFICATE' block, not a certificate signing"
    ):
        load_csr(device_pem)
    csr = make_csr(ec_key, "a")
    with pytest.raises(CertificateValidationError, match="more than one CSR"):
        load_csr(csr + csr)
    with pytest.raises(CertificateValidationError, match="other blocks"):
        load_csr(csr + device_pem)
    with pytest.raises(CertificateValidationError, match="malformed CSR"):
        load_csr(_pem("CERTIFICATE REQUEST", b"\x30\x00"))
    with pytest.raises(CertificateValidationError, match="empty"):
        load_csr(b"")


# --------------------------------------------------------------------------- RegisterCACertificate


def test_verification_certificate_matches(
    ca_pem: str,
    ca_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    device_key: rsa.RSAPrivateKey,
) -> None:
    code = "0123456789abcdef" * 4
    verification = sign_certificate(ca_pem, ca_key, ec_key.public_key(), code, days=1, now=NOW)
    assert verification_certificate_matches(verification, code)
    assert verification_certificate_matches(load_certificate(verification), f" {code}\n")
    assert verification_certificate_matches(verification, code, ca_cert=ca_pem)
    assert not verification_certificate_matches(verification, "something-else")
    assert not verification_certificate_matches(verification, "")
    # Right CN, but signed by some other key than the CA being registered.
    other_ca = self_signed_certificate(device_key, "Other CA", now=NOW, is_ca=True)
    forged = sign_certificate(other_ca, device_key, ec_key.public_key(), code, days=1, now=NOW)
    assert verification_certificate_matches(forged, code)
    assert not verification_certificate_matches(forged, code, ca_cert=ca_pem)
