"""The local CA on disk: files and modes, repair rules, and real TLS handshakes."""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import shutil
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from iot_tui.iotcore.x509 import (
    DEVICE_CERT_NOT_AFTER,
    CertificateValidationError,
    certificate_id,
    describe,
    generate_key,
    key_matches_certificate,
    load_certificate,
    load_private_key,
    make_csr,
    private_key_pem,
    public_key_pem,
    self_signed_certificate,
    verify_issued_by,
)
from iot_tui.local.ca import (
    CA_COMMON_NAME,
    LocalCA,
    LocalCAError,
)

# Real time (TLS checks validity against the real clock), fixed once for the module.
START = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state") / "ca"


@pytest.fixture(scope="module")
def ca(ca_dir: Path) -> LocalCA:
    """One CA for the module: RSA key generation is the slow part."""
    return LocalCA.load_or_create(ca_dir, now=START)


@pytest.fixture
def ca_copy(ca: LocalCA, tmp_path: Path) -> Path:
    """A private copy of the module's CA directory for tests that damage it."""
    target = tmp_path / "ca"
    shutil.copytree(ca.directory, target)
    return target


@pytest.fixture(scope="module")
def device(ca: LocalCA, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A device certificate and key issued by the CA, written as the app would."""
    cert_pem, key_pem, _ = ca.issue_keys_and_certificate(now=START)
    folder = tmp_path_factory.mktemp("device")
    cert_path, key_path = folder / "device.crt", folder / "device.key"
    cert_path.write_text(cert_pem)
    key_path.write_text(key_pem)
    return cert_path, key_path, cert_pem


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- files


def test_first_use_creates_files_with_safe_modes(ca: LocalCA, ca_dir: Path) -> None:
    assert ca.directory == ca_dir
    assert _mode(ca_dir) == 0o700
    assert _mode(ca_dir / "ca.key") == 0o600
    assert _mode(ca_dir / "server.key") == 0o600
    assert _mode(ca_dir / "ca.crt") == 0o644
    assert _mode(ca_dir / "server.crt") == 0o644
    assert ca.ca_cert_path == ca_dir / "ca.crt"
    assert ca.ca_key_path == ca_dir / "ca.key"
    assert ca.server_cert_path == ca_dir / "server.crt"
    assert ca.server_key_path == ca_dir / "server.key"
    # Atomic writes leave no temporary files behind.
    assert not [p.name for p in ca_dir.iterdir() if p.name.endswith(".tmp")]


def test_repr_does_not_show_the_key(ca: LocalCA) -> None:
    assert "PRIVATE" not in repr(ca) and "ca_key" not in repr(ca)


def test_ca_certificate(ca: LocalCA) -> None:
    assert ca.ca_cert_pem == ca.ca_cert_path.read_text()
    info = describe(ca.ca_cert_pem)
    assert info.common_name == CA_COMMON_NAME == "iot-tui local CA"
    assert info.is_ca and info.self_signed
    assert info.not_before == START
    assert info.not_after - info.not_before == timedelta(days=3650)
    assert key_matches_certificate(load_private_key(ca.ca_key_path.read_text()), ca.ca_cert_pem)
    assert ca.ca_key_path.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")


def test_server_certificate_verifies_and_has_sans(ca: LocalCA) -> None:
    server_pem = ca.server_cert_path.read_text()
    assert ca.server_cert_pem == server_pem
    assert verify_issued_by(server_pem, ca.ca_cert_pem)
    info = describe(server_pem)
    assert not info.is_ca
    assert "localhost" in info.san_dns
    assert {"127.0.0.1", "::1"} <= set(info.san_ips)
    assert info.not_before == START and info.not_after > START + timedelta(days=300)
    assert key_matches_certificate(load_private_key(ca.server_key_path.read_text()), server_pem)


def test_second_load_reuses_everything(ca: LocalCA) -> None:
    before = {p.name: p.read_bytes() for p in ca.directory.iterdir()}
    again = LocalCA.load_or_create(ca.directory, now=START + timedelta(days=30))
    assert again.ca_cert_pem == ca.ca_cert_pem
    assert again.server_cert_pem == ca.server_cert_pem
    assert {p.name: p.read_bytes() for p in ca.directory.iterdir()} == before


def test_expired_server_certificate_is_reissued(ca: LocalCA, ca_copy: Path) -> None:
    later = START + timedelta(days=400)
    renewed = LocalCA.load_or_create(ca_copy, now=later)
    assert renewed.ca_cert_pem == ca.ca_cert_pem
    assert renewed.server_cert_pem != ca.server_cert_pem
    assert renewed.server_cert_pem == (ca_copy / "server.crt").read_text()
    assert (ca_copy / "server.key").read_text() != ca.server_key_path.read_text()
    assert _mode(ca_copy / "server.key") == 0o600
    info = describe(renewed.server_cert_pem)
    assert info.not_before == later
    assert verify_issued_by(renewed.server_cert_pem, renewed.ca_cert_pem)


def test_server_certificate_close_to_expiry_is_reissued(ca: LocalCA, ca_copy: Path) -> None:
    not_after = describe(ca.server_cert_pem).not_after
    renewed = LocalCA.load_or_create(ca_copy, now=not_after - timedelta(hours=1))
    assert renewed.server_cert_pem != ca.server_cert_pem


@pytest.mark.parametrize("damage", ["delete-cert", "delete-key", "corrupt-key", "swap-key"])
def test_damaged_server_files_are_reissued(ca: LocalCA, ca_copy: Path, damage: str) -> None:
    if damage == "delete-cert":
        (ca_copy / "server.crt").unlink()
    elif damage == "delete-key":
        (ca_copy / "server.key").unlink()
    elif damage == "corrupt-key":
        (ca_copy / "server.key").write_text("-----BEGIN RSA PRIVATE KEY-----\nAA\n")
    else:  # a key that does not belong to the certificate
        shutil.copy(ca_copy / "ca.key", ca_copy / "server.key")
    renewed = LocalCA.load_or_create(ca_copy, now=START)
    assert renewed.ca_cert_pem == ca.ca_cert_pem
    assert renewed.server_cert_pem != ca.server_cert_pem
    key = load_private_key((ca_copy / "server.key").read_text())
    assert key_matches_certificate(key, (ca_copy / "server.crt").read_text())
    assert verify_issued_by(renewed.server_cert_pem, ca.ca_cert_pem)


def test_server_certificate_from_another_ca_is_reissued(ca: LocalCA, ca_copy: Path) -> None:
    other = LocalCA.load_or_create(ca_copy.parent / "other", now=START)
    shutil.copy(other.server_cert_path, ca_copy / "server.crt")
    shutil.copy(other.server_key_path, ca_copy / "server.key")
    renewed = LocalCA.load_or_create(ca_copy, now=START)
    assert verify_issued_by(renewed.server_cert_pem, ca.ca_cert_pem)
    assert renewed.server_cert_pem != other.server_cert_pem


def test_missing_ca_certificate_is_reissued_from_the_same_key(
    ca: LocalCA, ca_copy: Path, device: tuple[Path, Path, str]
) -> None:
    (ca_copy / "ca.crt").unlink()
    renewed = LocalCA.load_or_create(ca_copy, now=START + timedelta(days=1))
    assert renewed.ca_cert_pem != ca.ca_cert_pem
    # Same key and name: what the old CA issued still verifies against the new one.
    assert verify_issued_by(device[2], renewed.ca_cert_pem)
    assert renewed.server_cert_pem == ca.server_cert_pem


def test_expired_ca_certificate_is_reissued(ca: LocalCA, ca_copy: Path) -> None:
    later = START + timedelta(days=3651)
    renewed = LocalCA.load_or_create(ca_copy, now=later)
    assert describe(renewed.ca_cert_pem).not_before == later
    assert verify_issued_by(renewed.server_cert_pem, renewed.ca_cert_pem)
    assert describe(renewed.server_cert_pem).is_valid_at(later)


def test_ca_certificate_without_its_key_is_an_error(ca_copy: Path) -> None:
    (ca_copy / "ca.key").unlink()
    with pytest.raises(LocalCAError, match="ca.key is missing"):
        LocalCA.load_or_create(ca_copy, now=START)


def test_corrupt_ca_key_is_an_error(ca_copy: Path) -> None:
    (ca_copy / "ca.key").write_text("not a key")
    with pytest.raises(LocalCAError, match="not a usable key"):
        LocalCA.load_or_create(ca_copy, now=START)


def test_loose_key_modes_are_tightened(ca_copy: Path) -> None:
    os.chmod(ca_copy / "ca.key", 0o644)
    os.chmod(ca_copy / "server.key", 0o640)
    LocalCA.load_or_create(ca_copy, now=START)
    assert _mode(ca_copy / "ca.key") == 0o600
    assert _mode(ca_copy / "server.key") == 0o600


def _load_in_child(directory: str) -> tuple[str, str]:
    loaded = LocalCA.load_or_create(Path(directory))
    return loaded.ca_cert_pem, loaded.server_cert_pem


def test_concurrent_processes_agree_on_one_ca(tmp_path: Path) -> None:
    directory = tmp_path / "shared" / "ca"
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=spawn) as pool:
        results = list(pool.map(_load_in_child, [str(directory)] * 3))
    assert len(set(results)) == 1, "every process must end up with the same CA and server cert"
    ca_pem, server_pem = results[0]
    assert (directory / "ca.crt").read_text() == ca_pem
    assert (directory / "server.crt").read_text() == server_pem
    assert verify_issued_by(server_pem, ca_pem)


def _load_when_told(directory: str, started: object) -> None:
    started.set()  # type: ignore[attr-defined]
    LocalCA.load_or_create(Path(directory))


def test_load_waits_for_the_lock_held_by_another_process(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    directory.mkdir(mode=0o700)
    spawn = multiprocessing.get_context("spawn")
    started = spawn.Event()
    child = spawn.Process(target=_load_when_told, args=(str(directory), started))
    with open(directory / "ca.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        child.start()
        assert started.wait(30)
        child.join(0.5)  # gives the child time to reach the lock; it must still be waiting
        assert child.is_alive()
        assert not (directory / "ca.key").exists()
        fcntl.flock(lock, fcntl.LOCK_UN)
    child.join(30)
    assert child.exitcode == 0
    assert verify_issued_by(
        (directory / "server.crt").read_text(), (directory / "ca.crt").read_text()
    )


def test_naive_now_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        LocalCA.load_or_create(tmp_path / "ca", now=datetime(2026, 1, 1))


# --------------------------------------------------------------------------- issuing


def test_issue_keys_and_certificate_like_aws(ca: LocalCA) -> None:
    cert_pem, key_pem, pub_pem = ca.issue_keys_and_certificate(now=START)
    assert key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert pub_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    key = load_private_key(key_pem)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert public_key_pem(key) == pub_pem
    assert key_matches_certificate(key, cert_pem)
    info = describe(cert_pem)
    assert info.subject == "CN=AWS IoT Certificate"
    assert info.issuer == "CN=iot-tui local CA"
    assert info.not_before == START and info.not_after == DEVICE_CERT_NOT_AFTER
    assert verify_issued_by(cert_pem, ca.ca_cert_pem)
    second = ca.issue_keys_and_certificate(now=START)
    assert certificate_id(second[0]) != certificate_id(cert_pem)


def test_sign_csr_certifies_the_csr_key_with_aws_subject(ca: LocalCA) -> None:
    device_key = generate_key("ec-p256")
    cert_pem = ca.sign_csr(make_csr(device_key, "my-sensor"), now=START)
    info = describe(cert_pem)
    assert info.subject == "CN=AWS IoT Certificate"  # AWS ignores the CSR's subject
    assert info.key_algorithm == "EC-P256"
    assert info.not_after == DEVICE_CERT_NOT_AFTER
    assert key_matches_certificate(device_key, cert_pem)
    assert verify_issued_by(cert_pem, ca.ca_cert_pem)


def test_sign_csr_rejects_bad_input(ca: LocalCA) -> None:
    with pytest.raises(CertificateValidationError, match="not a certificate signing request"):
        ca.sign_csr(ca.ca_cert_pem)
    with pytest.raises(CertificateValidationError, match="empty"):
        ca.sign_csr("")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CertificateValidationError, match="at least 2048 bits"):
        ca.sign_csr(make_csr(weak, "weak"))
    k1 = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(CertificateValidationError, match="P-256, P-384 or P-521"):
        ca.sign_csr(make_csr(k1, "k1"))


# --------------------------------------------------------------------------- TLS handshakes


@contextlib.contextmanager
def tls_server(
    ctx: ssl.SSLContext, host: str = "127.0.0.1", family: socket.AddressFamily = socket.AF_INET
) -> Iterator[tuple[int, list[object]]]:
    """A tiny TLS server on a free port; records each peer's DER certificate or error."""
    listener = socket.create_server((host, 0), family=family)
    listener.settimeout(0.1)
    results: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    results.append(tls.getpeercert(binary_form=True))
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as exc:
                results.append(exc)
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], results
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _server_context(ca: LocalCA, require_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ca.server_cert_path, ca.server_key_path)
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=ca.ca_cert_path)
    return ctx


def _client(
    port: int,
    server_hostname: str,
    cafile: Path,
    cert: tuple[Path, Path] | None = None,
    host: str = "127.0.0.1",
) -> tuple[dict, bytes]:
    ctx = ssl.create_default_context(cafile=str(cafile))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    if cert:
        ctx.load_cert_chain(*cert)
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.getpeercert(), tls.recv(2)


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_tls_handshake_trusting_ca_crt(ca: LocalCA, hostname: str) -> None:
    with tls_server(_server_context(ca)) as (port, _):
        peer, data = _client(port, hostname, ca.ca_cert_path)
    assert data == b"ok"
    assert dict(x[0] for x in peer["subject"])["commonName"] == "localhost"
    assert ("DNS", "localhost") in peer["subjectAltName"]
    assert ("IP Address", "127.0.0.1") in peer["subjectAltName"]


def test_tls_handshake_over_ipv6(ca: LocalCA) -> None:
    try:
        probe = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    probe.close()
    with tls_server(_server_context(ca), host="::1", family=socket.AF_INET6) as (port, _):
        _, data = _client(port, "::1", ca.ca_cert_path, host="::1")
    assert data == b"ok"


def test_tls_rejects_a_name_not_in_the_certificate(ca: LocalCA) -> None:
    with (
        tls_server(_server_context(ca)) as (port, _),
        pytest.raises(ssl.SSLCertVerificationError, match="mismatch"),
    ):
        _client(port, "example.com", ca.ca_cert_path)


def test_tls_rejects_a_client_trusting_another_ca(ca: LocalCA, ca_copy: Path) -> None:
    stranger = LocalCA.load_or_create(ca_copy.parent / "stranger", now=START)
    with (
        tls_server(_server_context(ca)) as (port, _),
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        _client(port, "localhost", stranger.ca_cert_path)


def test_mutual_tls_with_an_issued_device_certificate(
    ca: LocalCA, device: tuple[Path, Path, str]
) -> None:
    cert_path, key_path, cert_pem = device
    with tls_server(_server_context(ca, require_client_cert=True)) as (port, results):
        _, data = _client(port, "localhost", ca.ca_cert_path, cert=(cert_path, key_path))
    assert data == b"ok"
    # What the broker will do: certificate id from the peer's DER.
    (peer_der,) = results
    assert isinstance(peer_der, bytes)
    assert certificate_id(peer_der) == certificate_id(cert_pem)


def test_mutual_tls_rejects_an_unknown_client_certificate(ca: LocalCA, tmp_path: Path) -> None:
    key = generate_key("ec-p256")
    (tmp_path / "c.crt").write_text(self_signed_certificate(key, "stranger"))
    (tmp_path / "c.key").write_text(private_key_pem(key))
    client_cert = (tmp_path / "c.crt", tmp_path / "c.key")
    with (
        tls_server(_server_context(ca, require_client_cert=True)) as (port, results),
        # TLS 1.3: the client learns of the rejection when it reads.
        pytest.raises((ssl.SSLError, ConnectionError)),
    ):
        _client(port, "localhost", ca.ca_cert_path, cert=client_cert)
    assert results and isinstance(results[0], ssl.SSLError)


def test_mutual_tls_with_a_self_signed_device_certificate_registered_without_ca(
    ca: LocalCA, tmp_path: Path
) -> None:
    """RegisterCertificateWithoutCA: the broker trusts the device cert itself (partial chain)."""
    key = generate_key("ec-p256")
    cert_pem = self_signed_certificate(key, "my-device")
    (tmp_path / "d.crt").write_text(cert_pem)
    (tmp_path / "d.key").write_text(private_key_pem(key))
    ctx = _server_context(ca, require_client_cert=True)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.load_verify_locations(cadata=cert_pem)
    with tls_server(ctx) as (port, results):
        _, data = _client(
            port, "localhost", ca.ca_cert_path, cert=(tmp_path / "d.crt", tmp_path / "d.key")
        )
    assert data == b"ok"
    assert certificate_id(results[0]) == certificate_id(load_certificate(cert_pem))  # type: ignore[arg-type]
