"""Where the app talks to: the local core, an endpoint URL, or real AWS, and the clients for it.

A `Target` carries every endpoint and port, because DescribeEndpoint gives only a host: on the
local core the ports come from its health answer, on AWS they are 8883 and 443.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

# The local core accepts any key unless it runs with --strict-auth; these are the ones it checks then.
from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

if TYPE_CHECKING:
    import boto3

    from iot_tui.aws.inspector import Inspector

TargetKind = Literal["local", "endpoint", "aws"]

AWS_MQTT_PORT = 8883
AWS_WS_PORT = 443


class TargetError(RuntimeError):
    """A target that cannot be used as given (no region, no endpoint); the message says how to fix it."""


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    region: str
    control_url: str | None = None
    data_url: str | None = None
    sts_url: str | None = None
    iam_url: str | None = None
    mqtt_host: str | None = None
    mqtt_port: int = AWS_MQTT_PORT
    ws_port: int = AWS_WS_PORT
    ca_file: Path | None = None
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    account_id: str | None = None
    data_dir: str | None = None
    # Shown instead of the address: snapshot tests pin it, since test cores listen on free ports.
    display_name: str | None = None
    max_attempts: int = 3

    # -- constructors --

    @classmethod
    def local(cls, health: dict[str, Any], **overrides: Any) -> Target:
        """From a running core's health answer (`/_iot_tui/health`)."""
        host = health.get("host", "127.0.0.1")
        ports = health.get("ports", {})
        url = f"http://{host}:{ports['http']}"
        target = cls(
            kind="local",
            region=health.get("region", "us-east-1"),
            control_url=url,
            data_url=url,
            sts_url=url,
            iam_url=url,
            mqtt_host="localhost" if host in ("127.0.0.1", "0.0.0.0", "::1", "::") else host,
            mqtt_port=int(ports.get("mqtt", 8883)),
            ws_port=int(ports.get("ws", 8443)),
            ca_file=Path(health["caFile"]) if health.get("caFile") else None,
            access_key_id=LOCAL_ACCESS_KEY_ID,
            secret_access_key=LOCAL_SECRET_ACCESS_KEY,
            account_id=health.get("accountId"),
            data_dir=health.get("dataDir"),
        )
        return replace(target, **overrides)

    @classmethod
    def endpoint(cls, url: str, region: str | None = None, health: dict[str, Any] | None = None) -> Target:
        """Every API on one URL (`--endpoint-url`); a local core's health adds its ports and CA."""
        region = region or _env_region() or (health or {}).get("region") or "us-east-1"
        target = cls(kind="endpoint", region=region, control_url=url, data_url=url, sts_url=url, iam_url=url,
                     mqtt_host=urlsplit(url).hostname)
        if health is not None:
            local = cls.local(health)
            target = replace(target, mqtt_host=local.mqtt_host, mqtt_port=local.mqtt_port,
                             ws_port=local.ws_port, ca_file=local.ca_file, account_id=local.account_id,
                             data_dir=local.data_dir)
        return target

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Target | None:
        """The endpoints set by `eval "$(iot-tui local env)"`, or None when no endpoint is set."""
        env = os.environ if environ is None else environ
        fallback = env.get("AWS_ENDPOINT_URL")
        control = env.get("AWS_ENDPOINT_URL_IOT") or fallback
        if not control:
            return None
        ca_file = env.get("IOT_TUI_CA_FILE")
        return cls(
            kind="endpoint",
            region=_env_region(env) or "us-east-1",
            control_url=control,
            data_url=env.get("AWS_ENDPOINT_URL_IOT_DATA_PLANE") or fallback or control,
            sts_url=env.get("AWS_ENDPOINT_URL_STS") or fallback,
            iam_url=env.get("AWS_ENDPOINT_URL_IAM") or fallback,
            mqtt_host=urlsplit(control).hostname,
            mqtt_port=int(env.get("IOT_TUI_MQTT_PORT", AWS_MQTT_PORT)),
            ws_port=int(env.get("IOT_TUI_WS_PORT", AWS_WS_PORT)),
            ca_file=Path(ca_file) if ca_file else None,
            profile=env.get("AWS_PROFILE"),
        )

    @classmethod
    def aws(cls, profile: str | None = None, region: str | None = None) -> Target:
        """Real AWS IoT Core with the standard credential chain; never the silent default."""
        import boto3
        from botocore.exceptions import ProfileNotFound

        try:
            session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound as error:
            raise TargetError(f"{error}. List profiles with `aws configure list-profiles`.") from None
        if not session.region_name:
            raise TargetError(
                "No AWS region found: pass --region, set AWS_REGION, or add `region` to the profile."
            )
        return cls(kind="aws", region=session.region_name, profile=profile)

    # -- what the header shows --

    @property
    def address(self) -> str:
        return self.control_url or f"iot.{self.region}.amazonaws.com"

    @property
    def label(self) -> str:
        if self.display_name:
            return self.display_name
        if self.kind == "local":
            return f"local core {self.address}"
        if self.kind == "endpoint":
            return f"endpoint {self.address} ({self.region})"
        account = self.account_id or "account ?"
        profile = self.profile or "default"
        return f"AWS {account} {self.region} profile {profile}"

    @property
    def billable(self) -> bool:
        """Only real AWS costs money; the UI asks before creating anything there."""
        return self.kind == "aws"

    # -- clients --

    def session(self) -> boto3.Session:
        import boto3

        if self.kind == "aws" or (self.access_key_id is None and self.profile):
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        key = self.access_key_id or os.environ.get("AWS_ACCESS_KEY_ID") or LOCAL_ACCESS_KEY_ID
        secret = self.secret_access_key or os.environ.get("AWS_SECRET_ACCESS_KEY") or LOCAL_SECRET_ACCESS_KEY
        return boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=self.region)

    def endpoint_for(self, service: str) -> str | None:
        return {"iot": self.control_url, "iot-data": self.data_url, "sts": self.sts_url,
                "iam": self.iam_url}.get(service)

    def connect(self, inspector: Inspector | None = None) -> Clients:
        return Clients(self, inspector)


@dataclass
class Clients:
    """One boto3 session per target, hooked by the inspector before any client exists."""

    target: Target
    inspector: Inspector | None = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def session(self) -> boto3.Session:
        with self._lock:
            if self._session is None:
                self._session = self.target.session()
                if self.inspector is not None:
                    self.inspector.attach(self._session._session)
            return self._session

    def client(self, service: str) -> Any:
        from botocore.config import Config

        session = self.session
        with self._lock:
            if service not in self._clients:
                config = Config(retries={"max_attempts": self.target.max_attempts, "mode": "standard"},
                                connect_timeout=5, read_timeout=30)
                self._clients[service] = session.client(
                    service, endpoint_url=self.target.endpoint_for(service), config=config)
            return self._clients[service]

    @property
    def iot(self) -> Any:
        return self.client("iot")

    @property
    def iot_data(self) -> Any:
        return self.client("iot-data")

    @property
    def sts(self) -> Any:
        return self.client("sts")


def _env_region(environ: Any = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")


def resolve_target(aws: bool = False, profile: str | None = None, region: str | None = None,
                   endpoint_url: str | None = None, start_core: bool = True) -> tuple[Target, Any]:
    """The target the flags and environment ask for, and the core process started for it (or None).

    Order: --aws, --endpoint-url, AWS_ENDPOINT_URL_IOT, then the local core (started when none answers).
    """
    from iot_tui.aws.core_process import ensure_local_core, fetch_health, health_of_url

    if aws:
        return Target.aws(profile, region), None
    if endpoint_url:
        return Target.endpoint(endpoint_url, region, health_of_url(endpoint_url)), None
    environment = Target.from_environment()
    if environment is not None:
        health = health_of_url(environment.control_url or "")
        if health is not None and environment.ca_file is None:
            local = Target.local(health)
            environment = replace(environment, ca_file=local.ca_file, mqtt_port=local.mqtt_port,
                                  ws_port=local.ws_port, account_id=local.account_id)
        return (replace(environment, region=region) if region else environment), None
    if not start_core:
        health = fetch_health()
        if health is None:
            raise TargetError("no local core answers; start one with `iot-tui local serve`")
        return Target.local(health), None
    health, process = ensure_local_core()
    target = Target.local(health)
    return (replace(target, region=region) if region else target), process
