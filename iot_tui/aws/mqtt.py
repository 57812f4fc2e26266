"""The app's MQTT client: one awscrt connection per identity, the same interface for MQTT 5 and 3.1.1.

`MqttConnection` wraps awsiotsdk's builders (mutual TLS from files, or WebSocket signed with SigV4)
so the MQTT pane, the shadow viewer and the rules live test share one way to connect, subscribe
and publish, and see typed events instead of awscrt's callbacks. `ConnectionPool` hands every
screen the same connection for the same client id, because AWS IoT Core disconnects the older of
two connections with one client id: screens that each connected would keep kicking each other off.

Threads: awscrt calls back on its own event-loop threads. Listeners are plain callables invoked
on those threads (and on the thread that called `publish` or `unsubscribe`, for their results);
the UI must marshal each event onto its loop (`app.call_from_thread` or `widget.post_message`,
which is thread-safe) and must not block in the listener: a flood of messages should go through
a queue the UI drains on a timer. The blocking calls here (`connect`, `subscribe`, `publish`, ...)
belong in thread workers, never on the UI loop. Every event reaches every listener of the
connection; a screen keeps the messages matching its own filters (`iotcore.topics.matches`).

Round-trip time is measured on PUBACK and SUBACK: awscrt does not expose its PINGRESP timing.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from awscrt import auth as crt_auth
from awscrt import mqtt as crt_mqtt
from awscrt import mqtt5
from awscrt.exceptions import AwsCrtError
from awsiot import mqtt5_client_builder, mqtt_connection_builder

from iot_tui.iotcore.topics import (
    MAX_CLIENT_ID_BYTES,
    MAX_PAYLOAD_BYTES,
    TopicError,
    reserved_publish_allowed,
    reserved_subscribe_allowed,
    validate_topic_filter,
    validate_topic_name,
)

if TYPE_CHECKING:
    from iot_tui.aws.target import Target

log = logging.getLogger("iot_tui.aws.mqtt")

Protocol = Literal["5", "3.1.1"]
AuthKind = Literal["mtls", "websocket"]
State = Literal["disconnected", "connecting", "connected", "reconnecting"]

# AWS IoT Core accepts keep-alive between 30 and 1200 seconds (it clamps anything else).
KEEP_ALIVE_MIN = 30
KEEP_ALIVE_MAX = 1200
DEFAULT_KEEP_ALIVE = 60
# The session AWS keeps for a persistent (clean session false) client: 1 hour by default.
PERSISTENT_SESSION_SECONDS = 3600

REASONS = {
    # MQTT 5 reason codes (CONNACK, SUBACK, PUBACK, DISCONNECT) as AWS IoT Core uses them.
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8C: "bad authentication method",
    0x8D: "keep-alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x93: "receive maximum exceeded",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9E: "shared subscriptions not supported",
    0xA2: "wildcard subscriptions not supported",
}

# What a refusal most likely means on AWS IoT Core, and what to do about it.
HINTS = {
    "connect": {
        0x85: "The client id is not acceptable (at most 128 bytes).",
        0x86: "AWS IoT takes no user name or password on this endpoint; check the endpoint and port.",
        0x87: "No policy is attached to the certificate, or its policies do not allow iot:Connect on "
              "client/<client id> (or the certificate is not ACTIVE).",
    },
    "subscribe": {
        0x87: "The policy does not allow iot:Subscribe on topicfilter/<filter>.",
        0x8F: "The topic filter is not valid here (reserved topic, or AWS IoT's limits).",
        0x97: "A connection holds at most 50 subscriptions.",
    },
    "publish": {
        0x87: "The policy does not allow iot:Publish on topic/<topic> (retained messages also need "
              "iot:RetainPublish).",
        0x90: "The topic name is not valid here (reserved topic, or AWS IoT's limits).",
        0x97: "Too many messages in flight, or the account's publish rate was exceeded.",
    },
}


def reason_text(code: int | None) -> str:
    if code is None:
        return "no reason code"
    if code < 0x80:
        return "success"
    return REASONS.get(code, f"reason code 0x{code:02X}")


class MqttError(RuntimeError):
    """A connection-level failure; `hint` says what to check, `code` is the MQTT reason code if any."""

    def __init__(self, message: str, code: int | None = None, hint: str = "") -> None:
        super().__init__(f"{message}. {hint}" if hint else message)
        self.reason = message
        self.code = code
        self.hint = hint


class ClientIdInUse(MqttError):
    """Another identity already holds this client id in the pool; connecting would kick it off."""


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Credentials:
    """Static AWS credentials for SigV4 (the local core's key, or keys the user typed)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def new_client_id(prefix: str = "iot-tui", token: Callable[[], str] = lambda: uuid.uuid4().hex[:8]) -> str:
    """A client id unique enough that two app instances do not take each other over."""
    return f"{prefix}-{token()}"


@dataclass(frozen=True)
class MqttSettings:
    """Everything a connection needs; validated on creation so the form can show the error at once.

    `auth="mtls"` needs `cert_file` and `key_file`; `auth="websocket"` needs `region` and signs with
    `credentials` (or, when None, the `profile` or the default chain, as on real AWS).
    """

    host: str
    port: int
    client_id: str
    auth: AuthKind = "mtls"
    protocol: Protocol = "5"
    keep_alive: int = DEFAULT_KEEP_ALIVE
    clean_session: bool = True
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    region: str | None = None
    credentials: Credentials | None = None
    profile: str | None = None
    min_reconnect_delay: float = 1.0
    max_reconnect_delay: float = 60.0
    connect_timeout: float = 10.0
    operation_timeout: float = 10.0
    # The TLS version is not exposed by awscrt; a separate short handshake measures it for the status line.
    probe_tls: bool = True

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("no MQTT endpoint: use DescribeEndpoint (iot:Data-ATS) or the local core's host")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, not {self.port}")
        if not self.client_id:
            raise ValueError("client id must not be empty")
        if len(self.client_id.encode()) > MAX_CLIENT_ID_BYTES:
            raise ValueError(f"client id must be at most {MAX_CLIENT_ID_BYTES} bytes")
        if not KEEP_ALIVE_MIN <= self.keep_alive <= KEEP_ALIVE_MAX:
            raise ValueError(f"keep-alive must be {KEEP_ALIVE_MIN}..{KEEP_ALIVE_MAX} s on AWS IoT Core")
        if self.protocol not in ("5", "3.1.1"):
            raise ValueError(f"protocol must be '5' or '3.1.1', not {self.protocol!r}")
        if self.auth == "mtls":
            if self.cert_file is None or self.key_file is None:
                raise ValueError("mutual TLS needs a certificate file and a private key file")
        elif self.auth == "websocket":
            if not self.region:
                raise ValueError("WebSocket signing needs a region")
        else:
            raise ValueError(f"auth must be 'mtls' or 'websocket', not {self.auth!r}")
        if not 0 < self.min_reconnect_delay <= self.max_reconnect_delay:
            raise ValueError("reconnect delays must satisfy 0 < min <= max")

    @classmethod
    def mtls(cls, target: Target, cert_file: Path | str, key_file: Path | str, client_id: str,
             ca_file: Path | str | None = None, host: str | None = None, **options: Any) -> MqttSettings:
        """Mutual TLS to the target's MQTT port (8883 on AWS); `host` from DescribeEndpoint on AWS."""
        ca = Path(ca_file) if ca_file else target.ca_file
        return cls(host=host or target.mqtt_host or "", port=target.mqtt_port, client_id=client_id, auth="mtls",
                   cert_file=Path(cert_file), key_file=Path(key_file), ca_file=ca, region=target.region,
                   **options)

    @classmethod
    def websocket(cls, target: Target, client_id: str, host: str | None = None, **options: Any) -> MqttSettings:
        """WebSocket + SigV4 with the target's credentials (its keys, else its profile or the default chain)."""
        credentials = None
        if target.access_key_id and target.secret_access_key:
            credentials = Credentials(target.access_key_id, target.secret_access_key)
        return cls(host=host or target.mqtt_host or "", port=target.ws_port, client_id=client_id,
                   auth="websocket", ca_file=target.ca_file, region=target.region, credentials=credentials,
                   profile=target.profile, **options)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def principal(self) -> str:
        """Who connects: the certificate file, or the access key (never the secret)."""
        if self.auth == "mtls":
            return f"cert:{Path(self.cert_file or '').resolve()}"
        if self.credentials is not None:
            return f"key:{self.credentials.access_key_id}"
        return f"profile:{self.profile or 'default'}"

    @property
    def identity(self) -> tuple[str, int, str]:
        """What AWS IoT Core treats as one client: one live connection per client id on an endpoint."""
        return (self.host.lower(), self.port, self.client_id)


# ------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Connected:
    client_id: str
    session_present: bool
    reconnect: bool
    time: float


@dataclass(frozen=True)
class ConnectionFailed:
    """A connection attempt failed; awscrt keeps retrying (with backoff) once a connection was up."""

    reason: str
    code: int | None
    hint: str
    will_retry: bool
    time: float


@dataclass(frozen=True)
class Disconnected:
    """The connection ended: by the user, by the server (reason code), or by the network."""

    reason: str
    code: int | None
    by_user: bool
    will_retry: bool
    time: float


@dataclass(frozen=True)
class MessageReceived:
    """One PUBLISH received. `properties` holds the MQTT 5 properties that were present."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: dict[str, Any]
    time: float
    dup: bool = False


@dataclass(frozen=True)
class SubscriptionResult:
    """A SUBACK per filter: `granted_qos` when accepted, else the reason code and what it means."""

    topic_filter: str
    qos: int
    granted_qos: int | None
    code: int | None
    reason: str
    hint: str = ""
    restored: bool = False
    time: float = 0.0

    @property
    def ok(self) -> bool:
        return self.granted_qos is not None


@dataclass(frozen=True)
class UnsubscribeResult:
    topic_filter: str
    ok: bool
    reason: str
    still_held: bool = False
    time: float = 0.0


@dataclass(frozen=True)
class PublishResult:
    """A publish's confirmation: PUBACK at QoS 1 (with its reason code), "sent" at QoS 0, or the refusal."""

    topic: str
    qos: int
    retain: bool
    size: int
    ok: bool
    code: int | None
    reason: str
    hint: str = ""
    rtt_ms: float | None = None
    time: float = 0.0


MqttEvent = Connected | ConnectionFailed | Disconnected | MessageReceived | SubscriptionResult | \
    UnsubscribeResult | PublishResult
Listener = Callable[[MqttEvent], None]


@dataclass(frozen=True)
class MqttStats:
    """What the status line shows."""

    state: State
    endpoint: str
    client_id: str
    protocol: Protocol
    auth: AuthKind
    tls_version: str | None
    rtt_ms: float | None
    messages_in: int
    messages_out: int
    reconnects: int
    connected_at: float | None
    last_error: str | None


@dataclass(frozen=True)
class TlsProbe:
    """The TLS facts awscrt does not expose: version, cipher and the server certificate's names."""

    version: str
    cipher: str
    subject: str
    subject_alt_names: tuple[str, ...]
    not_after: str


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """A Python TLS context equivalent to what awscrt uses for these settings."""
    ctx = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.auth == "mtls":
        ctx.load_cert_chain(str(settings.cert_file), str(settings.key_file))
    if settings.port == 443:
        ctx.set_alpn_protocols(["http/1.1"] if settings.auth == "websocket" else ["x-amzn-mqtt-ca"])
    return ctx


def probe_tls(settings: MqttSettings, timeout: float = 5.0) -> TlsProbe:
    """One TLS handshake with the same CA and client certificate; raises ssl.SSLError / OSError."""
    ctx = tls_context(settings)
    with socket.create_connection((settings.host, settings.port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=settings.host) as tls:
            return tls_facts(tls)


def tls_facts(tls: ssl.SSLSocket) -> TlsProbe:
    cert = tls.getpeercert() or {}
    subject = ", ".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)
    names = tuple(f"{kind}:{value}" for kind, value in cert.get("subjectAltName", ()))
    cipher = tls.cipher()
    return TlsProbe(tls.version() or "?", cipher[0] if cipher else "?", subject, names, cert.get("notAfter", ""))


# --------------------------------------------------------------------------- connection


@dataclass
class _Subscription:
    qos: int
    holders: int = 1


def _crt_reason(error: BaseException | None) -> str:
    if error is None:
        return "connection closed"
    if isinstance(error, AwsCrtError):
        return f"{error.name}: {error.message}"
    return str(error) or type(error).__name__


class MqttConnection:
    """One MQTT client for one identity; blocking calls with timeouts, events to listeners.

    `clock` stamps events (wall time, injectable for tests); `monotonic` measures round trips.
    Reconnects are awscrt's, with exponential backoff between `min_reconnect_delay` and
    `max_reconnect_delay`; subscriptions are restored after a reconnect that lost the session.
    """

    def __init__(self, settings: MqttSettings, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self._connect_lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._subscriptions: dict[str, _Subscription] = {}
        self._state: State = "disconnected"
        self._client: mqtt5.Client | None = None
        self._connection: crt_mqtt.Connection | None = None
        self._attempt = threading.Event()
        self._stopped = threading.Event()
        self._failure: MqttError | None = None
        self._ever_connected = False
        self._last_connected: Connected | None = None
        self._stopping = False
        self._tls_version: str | None = None
        self._rtt_ms: float | None = None
        self._messages_in = 0
        self._messages_out = 0
        self._reconnects = 0
        self._interruptions = 0
        self._connected_at: float | None = None
        self._last_error: str | None = None

    # -- listeners --

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Register a callable for every event; returns the function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def _emit(self, event: MqttEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must not kill awscrt's thread or the other listeners
                log.exception("MQTT listener %r failed on %s", listener, type(event).__name__)

    # -- state --

    @property
    def state(self) -> State:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state == "connected"

    @property
    def subscriptions(self) -> dict[str, int]:
        """Filters held (and restored after reconnects), with their QoS."""
        with self._lock:
            return {name: sub.qos for name, sub in self._subscriptions.items()}

    def stats(self) -> MqttStats:
        s = self.settings
        with self._lock:
            return MqttStats(self._state, s.endpoint, s.client_id, s.protocol, s.auth, self._tls_version,
                             self._rtt_ms, self._messages_in, self._messages_out, self._reconnects,
                             self._connected_at, self._last_error)

    # -- connect / disconnect --

    def connect(self) -> Connected:
        """Connect and wait for the CONNACK; raises MqttError with the reason and a hint.

        Idempotent: a connection that is already up (or reconnecting) is left alone.
        """
        with self._connect_lock:
            if self._state in ("connected", "reconnecting") and self._last_connected is not None:
                return self._last_connected
            s = self.settings
            if s.probe_tls:
                try:
                    self._tls_version = probe_tls(s, timeout=s.connect_timeout).version
                except (OSError, ssl.SSLError) as error:
                    log.info("TLS probe of %s failed: %s", s.endpoint, error)
            self._attempt.clear()
            self._stopped.clear()
            self._failure = None
            self._stopping = False
            self._ever_connected = False
            self._last_connected = None
            self._set_state("connecting")
            try:
                if s.protocol == "5":
                    self._connect5()
                else:
                    self._connect311()
            except MqttError as error:
                self._last_error = str(error)
                self._shutdown()
                self._set_state("disconnected")
                raise
            assert self._last_connected is not None
            return self._last_connected

    def disconnect(self, timeout: float = 5.0) -> None:
        """Send DISCONNECT and stop reconnecting; held subscriptions are forgotten."""
        with self._connect_lock:
            self._stopping = True
            self._shutdown(timeout)
            with self._lock:
                self._subscriptions.clear()
            was = self._state
            self._set_state("disconnected")
            if was != "disconnected" and self.settings.protocol == "3.1.1":
                self._emit(Disconnected("disconnected by the user", None, True, False, self._clock()))

    def _shutdown(self, timeout: float = 5.0) -> None:
        self._stopping = True
        if self._client is not None:
            client, self._client = self._client, None
            client.stop(mqtt5.DisconnectPacket())
            if not self._stopped.wait(timeout):
                log.warning("MQTT 5 client %s did not stop within %ss", self.settings.client_id, timeout)
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.disconnect().result(timeout)
            except (AwsCrtError, RuntimeError, FutureTimeout) as error:  # RuntimeError: was not connected
                log.info("MQTT 3.1.1 disconnect of %s: %s", self.settings.client_id, _crt_reason(error))

    def _set_state(self, state: State) -> None:
        with self._lock:
            self._state = state

    def _credentials_provider(self) -> crt_auth.AwsCredentialsProvider:
        s = self.settings
        if s.credentials is not None:
            c = s.credentials
            return crt_auth.AwsCredentialsProvider.new_static(c.access_key_id, c.secret_access_key, c.session_token)
        if s.profile:
            return crt_auth.AwsCredentialsProvider.new_profile(profile_name=s.profile)
        return crt_auth.AwsCredentialsProvider.new_default_chain()

    def _no_connack(self) -> MqttError:
        s = self.settings
        return MqttError(f"no CONNACK from {s.endpoint} within {s.connect_timeout:g}s",
                         hint="Check the endpoint and port (MQTT is 8883 or 443 on AWS), and any firewall.")

    def _wait_first_attempt(self) -> None:
        if not self._attempt.wait(self.settings.connect_timeout):
            raise self._no_connack()
        if self._failure is not None:
            raise self._failure

    # MQTT 5

    def _connect5(self) -> None:
        s = self.settings
        options: dict[str, Any] = dict(
            endpoint=s.host, port=s.port, client_id=s.client_id,
            ca_filepath=str(s.ca_file) if s.ca_file else None,
            keep_alive_interval_sec=s.keep_alive,
            # awscrt requires keep-alive > ping timeout; 30 s keep-alive is allowed by AWS.
            ping_timeout_ms=min(30_000, s.keep_alive * 500),
            connack_timeout_ms=int(s.connect_timeout * 1000),
            ack_timeout_sec=max(1, int(s.operation_timeout)),
            min_reconnect_delay_ms=int(s.min_reconnect_delay * 1000),
            max_reconnect_delay_ms=int(s.max_reconnect_delay * 1000),
            session_behavior=(mqtt5.ClientSessionBehaviorType.CLEAN if s.clean_session
                              else mqtt5.ClientSessionBehaviorType.REJOIN_POST_SUCCESS),
            session_expiry_interval_sec=None if s.clean_session else PERSISTENT_SESSION_SECONDS,
            on_publish_received=self._on_publish5,
            on_lifecycle_attempting_connect=self._on_attempt5,
            on_lifecycle_connection_success=self._on_success5,
            on_lifecycle_connection_failure=self._on_failure5,
            on_lifecycle_disconnection=self._on_disconnection5,
            on_lifecycle_stopped=self._on_stopped5,
        )
        if s.auth == "mtls":
            client = mqtt5_client_builder.mtls_from_path(str(s.cert_file), str(s.key_file), **options)
        else:
            client = mqtt5_client_builder.websockets_with_default_aws_signing(
                s.region, self._credentials_provider(), **options)
        self._client = client
        client.start()
        self._wait_first_attempt()

    def _on_attempt5(self, _data: mqtt5.LifecycleAttemptingConnectData) -> None:
        if self._ever_connected and not self._stopping:
            self._set_state("reconnecting")

    def _on_success5(self, data: mqtt5.LifecycleConnectSuccessData) -> None:
        self._on_connected(bool(data.connack_packet and data.connack_packet.session_present))

    def _on_failure5(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        code = int(data.connack_packet.reason_code) if data.connack_packet and data.connack_packet.reason_code else None
        self._on_connect_failed(code, data.exception)

    def _on_disconnection5(self, data: mqtt5.LifecycleDisconnectData) -> None:
        packet = data.disconnect_packet
        code = int(packet.reason_code) if packet is not None and packet.reason_code else None
        reason = reason_text(code) if code is not None else _crt_reason(data.exception)
        if packet is not None and packet.reason_string:
            reason = f"{reason}: {packet.reason_string}"
        self._on_disconnected(reason, code)

    def _on_stopped5(self, _data: mqtt5.LifecycleStoppedData) -> None:
        self._stopped.set()

    def _on_publish5(self, data: mqtt5.PublishReceivedData) -> None:
        p = data.publish_packet
        properties: dict[str, Any] = {}
        if p.user_properties:
            properties["user_properties"] = [(u.name, u.value) for u in p.user_properties]
        for name in ("content_type", "response_topic", "message_expiry_interval_sec", "subscription_identifiers"):
            value = getattr(p, name, None)
            if value:
                properties[name] = list(value) if isinstance(value, list) else value
        if p.payload_format_indicator is not None:
            properties["payload_format_indicator"] = int(p.payload_format_indicator)
        if p.correlation_data_bytes:
            properties["correlation_data"] = bytes(p.correlation_data_bytes).hex()
        self._on_message(p.topic, bytes(p.payload or b""), int(p.qos), bool(p.retain), properties, False)

    # MQTT 3.1.1

    def _connect311(self) -> None:
        s = self.settings
        options: dict[str, Any] = dict(
            endpoint=s.host, port=s.port, client_id=s.client_id,
            ca_filepath=str(s.ca_file) if s.ca_file else None,
            clean_session=s.clean_session, keep_alive_secs=s.keep_alive,
            ping_timeout_ms=min(30_000, s.keep_alive * 500),
            protocol_operation_timeout_ms=int(s.operation_timeout * 1000),
            reconnect_min_timeout_secs=max(1, round(s.min_reconnect_delay)),
            reconnect_max_timeout_secs=max(1, round(s.max_reconnect_delay)),
            on_connection_interrupted=self._on_interrupted311,
            on_connection_success=self._on_success311,
            on_connection_failure=self._on_failure311,
        )
        if s.auth == "mtls":
            connection = mqtt_connection_builder.mtls_from_path(
                cert_filepath=str(s.cert_file), pri_key_filepath=str(s.key_file), **options)
        else:
            connection = mqtt_connection_builder.websockets_with_default_aws_signing(
                region=s.region, credentials_provider=self._credentials_provider(), **options)
        connection.on_message(self._on_message311)
        self._connection = connection
        try:
            connection.connect().result(s.connect_timeout)
        except FutureTimeout:
            raise self._no_connack() from None
        except Exception as error:  # awscrt raises a bare Exception(ConnectReturnCode) for a refused CONNACK
            code = _return_code(error)
            if code is not None or self._failure is None:
                self._failure = self._connect_error(code, error)
            raise self._failure from None
        self._wait_first_attempt()

    def _on_success311(self, connection: crt_mqtt.Connection, callback_data: crt_mqtt.OnConnectionSuccessData) -> None:
        self._on_connected(bool(callback_data.session_present))

    def _on_failure311(self, connection: crt_mqtt.Connection, callback_data: crt_mqtt.OnConnectionFailureData) -> None:
        self._on_connect_failed(None, callback_data.error)

    def _on_interrupted311(self, connection: crt_mqtt.Connection, error: AwsCrtError, **_: Any) -> None:
        self._on_disconnected(_crt_reason(error), None)

    def _on_message311(self, topic: str, payload: bytes, dup: bool, qos: crt_mqtt.QoS, retain: bool,
                       **_: Any) -> None:
        self._on_message(topic, bytes(payload), int(qos), bool(retain), {}, bool(dup))

    # shared lifecycle

    def _on_connected(self, session_present: bool) -> None:
        now = self._clock()
        with self._lock:
            reconnect = self._ever_connected
            self._ever_connected = True
            self._state = "connected"
            self._connected_at = now
            if reconnect:
                self._reconnects += 1
            restore = dict(self._subscriptions) if reconnect and not session_present else {}
        event = self._last_connected = Connected(self.settings.client_id, session_present, reconnect, now)
        self._attempt.set()
        self._emit(event)
        for topic_filter, sub in restore.items():
            self._send_subscribe(topic_filter, sub.qos, restored=True)

    def _connect_error(self, code: int | None, error: BaseException | None) -> MqttError:
        if code is not None:
            return MqttError(f"CONNECT refused: {reason_text(code)}", code, HINTS["connect"].get(code, ""))
        reason = _crt_reason(error)
        hint = ""
        if self.settings.protocol == "3.1.1" and ("MQTT_PROTOCOL_ERROR" in reason or "UNEXPECTED_HANGUP" in reason):
            # awscrt's 3.1.1 client drops the CONNACK return code of a refused CONNECT.
            hint = ("The server refused the CONNECT (MQTT 3.1.1 gives no reason; MQTT 5 does): most likely "
                    + HINTS["connect"][0x87])
        elif "TLS" in reason or "SOCKET_CLOSED" in reason or "UNEXPECTED_HANGUP" in reason:
            hint = ("The server closed the connection during or right after the TLS handshake: the certificate "
                    "may be unknown to this endpoint or not ACTIVE, or the CA file may be wrong. Run diagnostics.")
        elif "WEBSOCKET_UPGRADE" in reason:
            hint = "The WebSocket upgrade was refused: check the credentials, the region and the clock (SigV4)."
        elif "CONNECTION_REFUSED" in reason or "TIMEOUT" in reason:
            hint = "Nothing answers there: check the endpoint and port."
        return MqttError(f"connection failed: {reason}", None, hint)

    def _on_connect_failed(self, code: int | None, error: BaseException | None) -> None:
        failure = self._connect_error(code, error)
        with self._lock:
            self._last_error = str(failure)
            first = not self._ever_connected
        if first:
            self._failure = failure
            self._attempt.set()
        self._emit(ConnectionFailed(failure.reason, code, failure.hint, not first and not self._stopping,
                                    self._clock()))

    def _on_disconnected(self, reason: str, code: int | None) -> None:
        by_user = self._stopping
        with self._lock:
            self._interruptions += 1
            if not by_user:
                self._state = "reconnecting"
                self._last_error = reason
        if by_user:
            reason = "disconnected by the user"
        self._emit(Disconnected(reason, code, by_user, not by_user, self._clock()))

    def _on_message(self, topic: str, payload: bytes, qos: int, retain: bool, properties: dict[str, Any],
                    dup: bool) -> None:
        with self._lock:
            self._messages_in += 1
        self._emit(MessageReceived(topic, payload, qos, retain, properties, self._clock(), dup))

    # -- subscribe / unsubscribe --

    def _require_client(self) -> None:
        if self._client is None and self._connection is None:
            raise MqttError("not connected", hint="Connect first.")

    def subscribe(self, topic_filter: str, qos: int = 1) -> SubscriptionResult:
        """SUBSCRIBE and wait for the SUBACK; a refusal is a result (with its reason), not an exception.

        Raises TopicError for a filter AWS IoT Core would refuse, before anything is sent.
        Each accepted subscribe must be matched by one `unsubscribe` (screens share filters).
        """
        validate_topic_filter(topic_filter)
        if not reserved_subscribe_allowed(topic_filter):
            raise TopicError("AWS IoT Core does not allow subscribing to this reserved topic filter", topic_filter)
        _check_qos(qos)
        self._require_client()
        future = self._send_subscribe(topic_filter, qos, restored=False)
        try:
            return future.result(self.settings.operation_timeout + 1)
        except FutureTimeout:
            return SubscriptionResult(topic_filter, qos, None, None,
                                      f"no SUBACK within {self.settings.operation_timeout:g}s", time=self._clock())

    def _send_subscribe(self, topic_filter: str, qos: int, restored: bool) -> Future[SubscriptionResult]:
        """Send without blocking (safe on awscrt's thread); the result is also emitted to listeners."""
        done: Future[SubscriptionResult] = Future()
        started = self._monotonic()

        def finish(granted: int | None, code: int | None, reason: str) -> None:
            hint = HINTS["subscribe"].get(code, "") if code is not None and granted is None else ""
            result = SubscriptionResult(topic_filter, qos, granted, code, reason, hint, restored, self._clock())
            with self._lock:
                if granted is not None:
                    self._rtt_ms = (self._monotonic() - started) * 1000
                    sub = self._subscriptions.get(topic_filter)
                    if sub is None:
                        if not restored:  # a filter dropped while reconnecting stays dropped
                            self._subscriptions[topic_filter] = _Subscription(granted)
                    else:
                        sub.qos = granted
                        if not restored:
                            sub.holders += 1
            done.set_result(result)
            self._emit(result)

        if self._client is not None:
            packet = mqtt5.SubscribePacket([mqtt5.Subscription(topic_filter, mqtt5.QoS(qos))])

            def on_suback5(f: Future) -> None:
                try:
                    suback = f.result()
                except Exception as error:
                    finish(None, None, _crt_reason(error))
                    return
                code = int(suback.reason_codes[0])
                if code < 0x80:
                    finish(code, code, "granted")
                else:
                    finish(None, code, reason_text(code))

            self._client.subscribe(packet).add_done_callback(on_suback5)
        elif self._connection is not None:
            def on_suback311(f: Future) -> None:
                try:
                    granted = int(f.result()["qos"])
                except crt_mqtt.SubscribeError:
                    finish(None, 0x80, "refused (SUBACK failure 0x80): not authorized or invalid filter")
                    return
                except Exception as error:
                    finish(None, None, _crt_reason(error))
                    return
                finish(granted, granted, "granted")

            future, _ = self._connection.subscribe(topic_filter, crt_mqtt.QoS(qos))
            future.add_done_callback(on_suback311)
        else:
            finish(None, None, "not connected")
        return done

    def unsubscribe(self, topic_filter: str) -> UnsubscribeResult:
        """Drop one hold on the filter; UNSUBSCRIBE goes out when no screen holds it any more."""
        with self._lock:
            sub = self._subscriptions.get(topic_filter)
            if sub is not None and sub.holders > 1:
                sub.holders -= 1
                result = UnsubscribeResult(topic_filter, True, "still held by another screen", True, self._clock())
            else:
                self._subscriptions.pop(topic_filter, None)
                result = None
        if result is None:
            self._require_client()
            try:
                if self._client is not None:
                    unsuback = self._client.unsubscribe(mqtt5.UnsubscribePacket([topic_filter])).result(
                        self.settings.operation_timeout + 1)
                    code = int(unsuback.reason_codes[0]) if unsuback.reason_codes else 0
                    result = UnsubscribeResult(topic_filter, code < 0x80, reason_text(code), time=self._clock())
                else:
                    assert self._connection is not None
                    future, _ = self._connection.unsubscribe(topic_filter)
                    future.result(self.settings.operation_timeout + 1)
                    result = UnsubscribeResult(topic_filter, True, "success", time=self._clock())
            except FutureTimeout:
                result = UnsubscribeResult(topic_filter, False, "no UNSUBACK in time", time=self._clock())
            except Exception as error:
                result = UnsubscribeResult(topic_filter, False, _crt_reason(error), time=self._clock())
        self._emit(result)
        return result

    # -- publish --

    def publish(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False,
                user_properties: Sequence[tuple[str, str]] = ()) -> PublishResult:
        """PUBLISH and wait for the PUBACK at QoS 1; a refusal is a result, not an exception.

        Raises TopicError / ValueError for what AWS IoT Core would refuse before anything is sent.
        On MQTT 3.1.1 AWS answers a denied publish by closing the connection: the result says so.
        """
        validate_topic_name(topic)
        if not reserved_publish_allowed(topic):
            raise TopicError("AWS IoT Core does not allow publishing to this reserved topic", topic)
        _check_qos(qos)
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        if len(data) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload of {len(data)} bytes exceeds AWS IoT Core's 128 KB")
        if user_properties and self.settings.protocol != "5":
            raise ValueError("user properties need MQTT 5")
        self._require_client()
        started = self._monotonic()
        interruptions = self._interruptions
        timeout = self.settings.operation_timeout + 1

        def result(ok: bool, code: int | None, reason: str, hint: str = "") -> PublishResult:
            rtt = (self._monotonic() - started) * 1000 if ok and qos else None
            with self._lock:
                if ok:
                    self._messages_out += 1
                    if rtt is not None:
                        self._rtt_ms = rtt
            outcome = PublishResult(topic, qos, retain, len(data), ok, code, reason, hint, rtt, self._clock())
            self._emit(outcome)
            return outcome

        try:
            if self._client is not None:
                packet = mqtt5.PublishPacket(payload=data, qos=mqtt5.QoS(qos), retain=retain, topic=topic,
                                             user_properties=[mqtt5.UserProperty(n, v) for n, v in user_properties]
                                             or None)
                completion = self._client.publish(packet).result(timeout)
                if qos == 0 or completion.puback is None or completion.puback.reason_code is None:
                    return result(True, None, "sent (QoS 0: no acknowledgement)")
                code = int(completion.puback.reason_code)
                reason = reason_text(code) if code else "PUBACK"
                if completion.puback.reason_string:
                    reason = f"{reason}: {completion.puback.reason_string}"
                return result(code < 0x80, code, reason, HINTS["publish"].get(code, ""))
            assert self._connection is not None
            future, _ = self._connection.publish(topic, data, crt_mqtt.QoS(qos), retain)
            future.result(timeout)
            return result(True, 0 if qos else None, "PUBACK" if qos else "sent (QoS 0: no acknowledgement)")
        except FutureTimeout:
            reason = f"no PUBACK within {timeout:g}s"
            return result(False, None, reason, self._closed_hint(interruptions, reason))
        except Exception as error:
            reason = _crt_reason(error)
            return result(False, None, reason, self._closed_hint(interruptions, reason))

    def _closed_hint(self, interruptions_before: int, reason: str) -> str:
        """A 3.1.1 publish that failed as the connection dropped was most likely denied by policy.

        awscrt may cancel the publish (clean session) before it reports the interruption.
        """
        dropped = self._interruptions != interruptions_before or "CANCELLED_FOR_CLEAN_SESSION" in reason
        if self.settings.protocol == "3.1.1" and dropped:
            return "On MQTT 3.1.1 AWS IoT closes the connection on a denied publish: " + HINTS["publish"][0x87]
        return ""


def _check_qos(qos: int) -> None:
    if qos not in (0, 1):
        raise ValueError("AWS IoT Core supports QoS 0 and 1 only")


def _return_code(error: BaseException) -> int | None:
    """awscrt's 3.1.1 client fails `connect()` with Exception(ConnectReturnCode) on a refused CONNACK."""
    if error.args and isinstance(error.args[0], crt_mqtt.ConnectReturnCode):
        # 3.1.1 return codes in MQTT 5 terms, so hints and texts are shared.
        return {1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}.get(int(error.args[0]))
    return None


# --------------------------------------------------------------------------------- pool


@dataclass
class _Entry:
    connection: MqttConnection
    references: int = 0


class ConnectionPool:
    """One `MqttConnection` per identity (endpoint + client id), shared and reference-counted.

    `acquire` returns the live connection for these settings (creating it unconnected); `release`
    drops a reference and disconnects when the last screen lets go. Asking for a client id that
    another principal holds raises ClientIdInUse instead of kicking that connection off.
    The first settings win for options such as protocol and keep-alive.
    """

    def __init__(self, factory: Callable[[MqttSettings], MqttConnection] = MqttConnection) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int, str], _Entry] = {}

    def acquire(self, settings: MqttSettings) -> MqttConnection:
        with self._lock:
            entry = self._entries.get(settings.identity)
            if entry is None:
                entry = self._entries[settings.identity] = _Entry(self._factory(settings))
            elif entry.connection.settings.principal != settings.principal:
                raise ClientIdInUse(
                    f"client id {settings.client_id!r} on {settings.endpoint} is already connected as "
                    f"{entry.connection.settings.principal}",
                    hint="Use another client id: AWS IoT disconnects the older connection with the same id.")
            entry.references += 1
            return entry.connection

    def release(self, connection: MqttConnection) -> None:
        with self._lock:
            entry = self._entries.get(connection.settings.identity)
            if entry is None or entry.connection is not connection:
                return
            entry.references -= 1
            if entry.references > 0:
                return
            del self._entries[connection.settings.identity]
        connection.disconnect()

    @contextmanager
    def lease(self, settings: MqttSettings) -> Iterator[MqttConnection]:
        """`with pool.lease(settings) as connection:` for scripts and tests."""
        connection = self.acquire(settings)
        try:
            yield connection
        finally:
            self.release(connection)

    def get(self, settings: MqttSettings) -> MqttConnection | None:
        with self._lock:
            entry = self._entries.get(settings.identity)
            return entry.connection if entry else None

    def references(self, connection: MqttConnection) -> int:
        with self._lock:
            entry = self._entries.get(connection.settings.identity)
            return entry.references if entry and entry.connection is connection else 0

    def connections(self) -> list[MqttConnection]:
        with self._lock:
            return [entry.connection for entry in self._entries.values()]

    def close_all(self) -> None:
        """Disconnect everything (app exit)."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            entry.connection.disconnect()

