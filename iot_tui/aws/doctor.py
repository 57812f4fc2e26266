"""The setup check (`iot-tui doctor` and the command palette): each check says what failed and the fix."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from iot_tui.aws.explain import explain_error
from iot_tui.aws.target import Clients


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.name}: {self.detail}" + (f"\n     fix: {self.fix}" if self.fix else "")


def _failed(name: str, error: Exception) -> Check:
    code, message, _meaning, fix = explain_error(error)
    return Check(name, False, f"{code}: {message}", fix)


def run_checks(clients: Clients, tls_timeout: float = 3.0) -> Iterator[Check]:
    """Credentials, identity, IoT permissions (harmless reads), endpoint, then a TLS handshake."""
    target = clients.target
    credentials = clients.session.get_credentials()
    if credentials is None:
        yield Check("credentials", False, "no AWS credentials found", "run `aws configure` or pass --profile")
        return
    yield Check("credentials", True, f"found ({getattr(credentials, 'method', 'explicit')})")
    yield Check("region", bool(target.region), target.region or "none", "" if target.region else "pass --region")
    try:
        identity = clients.sts.get_caller_identity()
        yield Check("identity", True, f"account {identity['Account']} as {identity['Arn']}")
    except (ClientError, BotoCoreError) as error:
        yield _failed("identity", error)
    for name, probe in (("iot:ListThings", lambda: clients.iot.list_things(maxResults=1)),
                        ("iot:ListCertificates", lambda: clients.iot.list_certificates(pageSize=1))):
        try:
            probe()
            yield Check(name, True, "allowed")
        except (ClientError, BotoCoreError) as error:
            yield _failed(name, error)
    host = target.mqtt_host
    try:
        address = clients.iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
        yield Check("endpoint", True, f"iot:Data-ATS is {address}")
        host = host or address
    except (ClientError, BotoCoreError) as error:
        yield _failed("endpoint", error)
    if host:
        yield tls_check(host, target.mqtt_port, str(target.ca_file) if target.ca_file else None, tls_timeout)


def tls_check(host: str, port: int, ca_file: str | None, timeout: float = 3.0) -> Check:
    """What `openssl s_client -connect host:port -CAfile ca` would tell, done for the user."""
    name = f"TLS {host}:{port}"
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with (socket.create_connection((host, port), timeout=timeout) as raw,
              context.wrap_socket(raw, server_hostname=host) as tls):
            return Check(name, True, f"handshake ok ({tls.version()})")
    except ssl.SSLCertVerificationError as error:
        return Check(name, False, f"server certificate not trusted: {error.verify_message}",
                     "pass the right CA file (IOT_TUI_CA_FILE, or AmazonRootCA1.pem for AWS)")
    except ssl.SSLError as error:
        # A broker that wants a client certificate may end the handshake: the server side still answered.
        if "certificate required" in str(error).lower() or "handshake failure" in str(error).lower():
            return Check(name, True, "server certificate trusted; the broker asks for a device certificate")
        return Check(name, False, f"TLS error: {error}", "check the port and that it speaks TLS")
    except OSError as error:
        return Check(name, False, f"cannot connect: {error.strerror or error}",
                     "check the MQTT port; on the local core, check `iot-tui local serve` started its broker")
