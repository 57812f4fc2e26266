"""Why a connection fails: each step from DNS to CONNACK, with the likely cause and the fix.

The MQTT pane's diagnostics view runs `diagnose` in a thread worker. Steps run in order and stop
at the first failure (later steps are reported as skipped), because a TLS error hides every MQTT
answer. The causes are the ones people meet on AWS IoT Core: wrong endpoint or port, unknown CA,
certificate not registered or not ACTIVE, no policy or a policy that denies iot:Connect, clock skew.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iot_tui.aws.mqtt import ConnectionPool, MqttConnection, MqttError, MqttSettings, tls_context, tls_facts

FIX_ENDPOINT = ("Use the endpoint from `aws iot describe-endpoint --endpoint-type iot:Data-ATS` "
                "(on the local core, `iot-tui local env` shows its host and ports).")
FIX_PORT = ("MQTT over TLS is port 8883 (or 443 with ALPN), WebSocket is 443 on AWS; "
            "the local core's ports are in `iot-tui local env`.")
FIX_CA = ("Give the CA that signed the server certificate: AmazonRootCA1.pem on AWS, "
          "the core's ca.crt on the local core.")
FIX_CLOCK = "Set the system clock (NTP): TLS and SigV4 fail when it is minutes off."
FIX_REGISTER = ("Register the certificate in this account and region and set it ACTIVE "
                "(`aws iot update-certificate --new-status ACTIVE`), or register its CA.")


@dataclass(frozen=True)
class Step:
    """One diagnostic step; `ok` None means skipped because an earlier step failed."""

    name: str
    ok: bool | None
    detail: str
    cause: str = ""
    fix: str = ""
    ms: float | None = None


def diagnose(settings: MqttSettings, *, pool: ConnectionPool | None = None, timeout: float = 5.0,
             clock: Callable[[], float] = time.time) -> list[Step]:
    """Run the checks for `settings`; never raises for network or certificate problems.

    The CONNECT step uses the settings' client id (policies often name it); when `pool` already
    holds a live connection for that identity, it reports that connection instead of taking it over.
    """
    checks: list[tuple[str, Callable[[], Step]]] = []
    if settings.auth == "mtls":
        checks.append(("Certificate files", lambda: _files_step(settings, clock)))
    checks += [
        ("DNS", lambda: _dns_step(settings)),
        ("TCP connect", lambda: _tcp_step(settings, timeout)),
        ("TLS handshake", lambda: _tls_step(settings, timeout)),
        ("MQTT CONNECT", lambda: _connect_step(settings, pool, timeout)),
    ]
    steps: list[Step] = []
    for name, check in checks:
        if any(step.ok is False for step in steps):
            steps.append(Step(name, None, "skipped: an earlier step failed"))
            continue
        started = time.monotonic()
        step = check()
        steps.append(replace(step, ms=(time.monotonic() - started) * 1000))
    return steps


def _files_step(settings: MqttSettings, clock: Callable[[], float]) -> Step:
    name = "Certificate files"
    paths = {"certificate": settings.cert_file, "private key": settings.key_file, "CA": settings.ca_file}
    for what, path in paths.items():
        if path is not None and not Path(path).is_file():
            return Step(name, False, f"the {what} file {path} does not exist",
                        "the device folder is incomplete or the path is wrong",
                        "Pick the device folder written by the certificate wizard.")
    try:
        cert = x509.load_pem_x509_certificate(Path(settings.cert_file or "").read_bytes())
        key = serialization.load_pem_private_key(Path(settings.key_file or "").read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        return Step(name, False, f"cannot read the certificate or key: {error}", "not a PEM certificate or key",
                    "Use the .crt and .key files (PEM) from CreateKeysAndCertificate.")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, public) != \
            key.public_key().public_bytes(serialization.Encoding.DER, public):
        return Step(name, False, "the private key does not belong to the certificate",
                    "files from two different certificates", "Use the key saved with this certificate.")
    now = datetime.fromtimestamp(clock(), UTC)
    if now < cert.not_valid_before_utc:
        return Step(name, False, f"the certificate is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                    "clock skew: this machine's clock is behind", FIX_CLOCK)
    if now > cert.not_valid_after_utc:
        return Step(name, False, f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                    "expired certificate (or the clock is ahead)", "Create a new certificate, or fix the clock.")
    return Step(name, True, f"certificate {cert.subject.rfc4514_string() or '(no subject)'}, "
                            f"valid until {cert.not_valid_after_utc:%Y-%m-%d}; key matches")


def _dns_step(settings: MqttSettings) -> Step:
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return Step("DNS", False, f"{settings.host} does not resolve: {error.strerror}", "wrong endpoint",
                    FIX_ENDPOINT)
    addresses = sorted({info[4][0] for info in infos})
    return Step("DNS", True, f"{settings.host} -> {', '.join(addresses)}")


def _tcp_step(settings: MqttSettings, timeout: float) -> Step:
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout) as sock:
            peer = sock.getpeername()
    except ConnectionRefusedError:
        return Step("TCP connect", False, f"connection to {settings.endpoint} refused",
                    "wrong port, or nothing listens there (is the local core running?)", FIX_PORT)
    except TimeoutError:
        return Step("TCP connect", False, f"no answer from {settings.endpoint} within {timeout:g}s",
                    "wrong endpoint or port, or a firewall drops the traffic", FIX_PORT)
    except OSError as error:
        return Step("TCP connect", False, f"cannot connect to {settings.endpoint}: {error}",
                    "network unreachable or wrong endpoint", FIX_ENDPOINT)
    return Step("TCP connect", True, f"connected to {peer[0]}:{peer[1]}")


def _tls_step(settings: MqttSettings, timeout: float) -> Step:
    name = "TLS handshake"
    try:
        ctx = tls_context(settings)
    except (ssl.SSLError, OSError) as error:
        return Step(name, False, f"cannot load the TLS files: {error}", "unreadable CA, certificate or key file",
                    "Check the device folder's files.")
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=settings.host) as tls:
            facts = tls_facts(tls)
            closed = _server_closed(tls, min(timeout, 1.0)) if settings.auth == "mtls" else None
    except ssl.SSLCertVerificationError as error:
        return _verification_failure(error)
    except ssl.SSLError as error:
        return _tls_failure(error)
    except OSError as error:
        return Step(name, False, f"the connection broke during the handshake: {error}",
                    "the server refused the client certificate, or this port speaks no TLS", FIX_REGISTER)
    detail = (f"{facts.version}, {facts.cipher}; server certificate {facts.subject or '(no subject)'}, "
              f"SANs {', '.join(facts.subject_alt_names) or 'none'}, valid until {facts.not_after}")
    if isinstance(closed, ssl.SSLError):
        failure = _tls_failure(closed)
        return replace(failure, detail=f"{detail}; then {failure.detail}")
    if closed is not None:
        return Step(name, False, f"{detail}; then the server closed the connection ({closed})",
                    "the certificate is not registered here, or it (or its CA) is not ACTIVE", FIX_REGISTER)
    return Step(name, True, detail)


def _server_closed(tls: ssl.SSLSocket, wait: float) -> str | ssl.SSLError | None:
    """With TLS 1.3 the server judges the client certificate after the client's handshake ends:
    a refusal shows up as an alert or a close on the first read. Silence means it waits for CONNECT."""
    tls.settimeout(wait)
    try:
        data = tls.recv(1)
    except TimeoutError:
        return None
    except ssl.SSLError as error:
        return error
    except OSError as error:
        return str(error) or type(error).__name__
    return "end of stream" if not data else None


def _verification_failure(error: ssl.SSLCertVerificationError) -> Step:
    name = "TLS handshake"
    code, message = error.verify_code, error.verify_message
    if code in (9, 10):  # not yet valid / expired
        return Step(name, False, f"the server certificate is rejected: {message}",
                    "clock skew (or an expired server certificate)", FIX_CLOCK)
    if code == 62:  # hostname mismatch
        return Step(name, False, f"the server certificate does not name this host: {message}",
                    "wrong endpoint (a name the certificate does not cover)", FIX_ENDPOINT)
    return Step(name, False, f"the server certificate is not trusted: {message}",
                "unknown CA: the CA file did not sign the server certificate", FIX_CA)


def _tls_failure(error: ssl.SSLError) -> Step:
    name = "TLS handshake"
    text = f"{error.reason or ''} {error}".upper()
    if "WRONG_VERSION_NUMBER" in text or "RECORD_LAYER_FAILURE" in text or "PACKET_LENGTH_TOO_LONG" in text:
        return Step(name, False, f"the server does not speak TLS here: {error}",
                    "wrong port (an HTTP or plain port?)", FIX_PORT)
    if any(alert in text for alert in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_REQUIRED",
                                       "CERTIFICATE_UNKNOWN", "HANDSHAKE_FAILURE", "DECRYPT_ERROR")):
        return Step(name, False, f"the server refused the client certificate: {error}",
                    "certificate not registered in this account and region, or its CA not registered",
                    FIX_REGISTER)
    if "EXPIRED" in text:
        return Step(name, False, f"the server refused an expired certificate: {error}",
                    "expired client certificate or clock skew", FIX_CLOCK)
    return Step(name, False, f"TLS failed: {error}", "TLS settings do not match the server", FIX_CA)


def _connect_step(settings: MqttSettings, pool: ConnectionPool | None, timeout: float) -> Step:
    name = "MQTT CONNECT"
    live = pool.get(settings) if pool is not None else None
    if live is not None and live.connected:
        return Step(name, True, f"client {settings.client_id!r} is already connected through the shared connection "
                                "(not reconnecting, which would take it over)")
    connection = MqttConnection(replace(settings, probe_tls=False, connect_timeout=timeout))
    try:
        connected = connection.connect()
    except MqttError as error:
        cause, fix = error.hint or "the server ended the connection", ""
        if error.code == 0x87:
            fix = (f"Attach a policy allowing iot:Connect on client/{settings.client_id} to the "
                   "certificate, check that it is ACTIVE, and try TestAuthorization.")
        elif settings.auth == "websocket":
            fix = "Check the credentials and the region; SigV4 also fails when the clock is more than 5 minutes off."
        else:
            fix = FIX_REGISTER
        return Step(name, False, error.reason, cause, fix)
    finally:
        connection.disconnect()
    session = "session present" if connected.session_present else "new session"
    return Step(name, True, f"CONNACK accepted for client {settings.client_id!r} (MQTT {settings.protocol}, "
                            f"{session}, keep-alive {settings.keep_alive}s)")
