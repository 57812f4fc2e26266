"""The local core's journal for one MQTT client: why its handshake, CONNECT or packets were refused.

A refused client sees little on the wire (a closed socket, a CONNACK or SUBACK code). AWS IoT
Core writes the reasons to CloudWatch Logs (AWSIotLogsV2) when logging is on; the local core keeps
them in its broker's journal and serves them at `/_iot_tui/clients/log`. Only an iot-tui core
answers that: on AWS, or at an endpoint that is not one, `client_log` returns None.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from iot_tui.aws.core_process import get_json
from iot_tui.aws.mqtt import MqttSettings
from iot_tui.aws.target import Target
from iot_tui.iotcore.x509 import CertificateValidationError, certificate_id

CLIENT_LOG_PATH = "/_iot_tui/clients/log"


@dataclass(frozen=True)
class CoreLogEntry:
    time: float
    level: str
    event_type: str  # Connect, Disconnect, Publish-In, Subscribe, TLS... (as AWS IoT logs name them)
    status: str  # Success or Failure
    message: str
    peer: str
    client_id: str
    principal: str

    @property
    def attributed(self) -> bool:
        """False for a refusal before the client said who it was: it may be another client's."""
        return bool(self.client_id or self.principal)

    @classmethod
    def from_json(cls, entry: dict) -> CoreLogEntry:
        return cls(float(entry.get("timestamp", 0)), str(entry.get("logLevel", "")), str(entry.get("eventType", "")),
                   str(entry.get("status", "")), str(entry.get("message", "")), str(entry.get("peer", "")),
                   str(entry.get("clientId", "")), str(entry.get("principalId", "")))


def principal_of(settings: MqttSettings) -> str:
    """The principal the core knows this client by: its certificate id, or its access key id."""
    if settings.auth == "mtls" and settings.cert_file is not None:
        try:
            return certificate_id(Path(settings.cert_file).read_bytes())
        except (OSError, CertificateValidationError):
            return ""
    return settings.credentials.access_key_id if settings.credentials is not None else ""


def signed_get(target: Target, url: str) -> urllib.request.Request:
    """A GET signed with the target's credentials (SigV4, service iot), as the core asks of every caller."""
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(target.session().get_credentials(), "iot", target.region).add_auth(request)
    return urllib.request.Request(url, headers=dict(request.headers))


def client_log(target: Target, settings: MqttSettings, limit: int = 50, timeout: float = 2.0) -> list[CoreLogEntry] | None:
    """The core's last `limit` events for this client, oldest first; None when the target keeps no journal."""
    if target.kind == "aws" or not target.control_url:
        return None
    query = {"clientId": settings.client_id, "limit": limit}
    principal = principal_of(settings)
    if principal:
        query["principalId"] = principal
    answer = get_json(signed_get(target, f"{target.control_url}{CLIENT_LOG_PATH}?{urlencode(query)}"), timeout)
    if answer is None or not isinstance(answer.get("entries"), list):
        return None
    return [CoreLogEntry.from_json(entry) for entry in answer["entries"] if isinstance(entry, dict)]
