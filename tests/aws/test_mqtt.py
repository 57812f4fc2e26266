"""The MQTT client layer against the local core's real broker: mutual TLS and WebSocket SigV4,
MQTT 5 and 3.1.1, refusals, reconnects, the shared pool and diagnostics."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from iot_tui.aws import mqtt_payload
from iot_tui.aws.mqtt import (
    ClientIdInUse,
    Connected,
    ConnectionPool,
    Disconnected,
    MessageReceived,
    MqttConnection,
    MqttError,
    MqttSettings,
    SubscriptionResult,
    new_client_id,
)
from iot_tui.aws.mqtt_diagnose import diagnose
from iot_tui.aws.target import Target
from iot_tui.iotcore.topics import TopicError
from iot_tui.local.server import LocalServer
from tests.aws.conftest import local_target
from tests.aws.mqtt_support import Device, Recorder, make_device, require_listener
from tests.conftest import client, start_core

pytestmark = pytest.mark.timeout(90)

PROTOCOLS = ["5", "3.1.1"]
FAST = dict(connect_timeout=5.0, operation_timeout=3.0, min_reconnect_delay=1.0, max_reconnect_delay=2.0)


@pytest.fixture
def mqtt_port(core: LocalServer) -> int:
    return require_listener(core, "mqtt")


@pytest.fixture
def ws_port(core: LocalServer) -> int:
    return require_listener(core, "ws")


@pytest.fixture
def device(iot, tmp_path: Path, mqtt_port: int) -> Device:
    return make_device(iot, tmp_path / "device")


@pytest.fixture
def connections() -> Iterator[list[MqttConnection]]:
    """Every connection a test opens is disconnected at the end, whatever happens."""
    opened: list[MqttConnection] = []
    yield opened
    for connection in opened:
        connection.disconnect()


def open_connection(opened: list[MqttConnection], settings: MqttSettings) -> tuple[MqttConnection, Recorder]:
    connection = MqttConnection(settings)
    recorder = Recorder()
    connection.add_listener(recorder)
    opened.append(connection)
    return connection, recorder


def mtls(target: Target, device: Device, protocol: str = "5", client_id: str | None = None,
         **options) -> MqttSettings:
    return MqttSettings.mtls(target, device.cert_file, device.key_file, client_id or new_client_id("test"),
                             protocol=protocol, **{**FAST, **options})


def received(recorder: Recorder, topic: str, timeout: float = 10.0) -> MessageReceived:
    return recorder.wait_for(lambda e: isinstance(e, MessageReceived) and e.topic == topic, timeout)[0]


# -- settings ----------------------------------------------------------------------------------


def test_settings_follow_aws_rules(target: Target, tmp_path: Path) -> None:
    cert, key = tmp_path / "c.crt", tmp_path / "c.key"
    settings = MqttSettings.mtls(target, cert, key, "dev-1")
    assert settings.keep_alive == 60 and settings.clean_session and settings.protocol == "5"
    assert settings.port == target.mqtt_port and settings.ca_file == target.ca_file
    for bad in (dict(keep_alive=29), dict(keep_alive=1201), dict(client_id="x" * 129), dict(protocol="3"),
                dict(client_id=""), dict(cert_file=None)):
        with pytest.raises(ValueError):
            replace(settings, **bad)
    ws = MqttSettings.websocket(target, "dev-1")
    assert ws.auth == "websocket" and ws.port == target.ws_port and ws.region == target.region
    assert ws.credentials is not None and "secret" not in repr(ws)
    assert ws.identity == settings.identity[:1] + (target.ws_port, "dev-1")


# -- connect, subscribe, publish, receive --------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mtls_round_trip_with_wildcards_and_every_payload_kind(
        protocol: str, target: Target, device: Device, connections) -> None:
    connection, events = open_connection(connections, mtls(target, device, protocol))
    connected = connection.connect()
    assert isinstance(connected, Connected) and not connected.reconnect
    assert connection.state == "connected"

    plus = connection.subscribe("sensors/+/reading", qos=1)
    hash_ = connection.subscribe("sensors/#", qos=0)
    assert (plus.ok, plus.granted_qos, hash_.granted_qos) == (True, 1, 0)
    assert connection.subscriptions == {"sensors/+/reading": 1, "sensors/#": 0}

    payloads = {
        "text": mqtt_payload.parse_payload("hello there", "text"),
        "json": mqtt_payload.parse_payload('{"temp": 21.5,\n "ok": true}', "json"),
        "kv": mqtt_payload.parse_payload("temp=22 on=false name=room", "kv"),
    }
    for kind, payload in payloads.items():
        result = connection.publish(f"sensors/{kind}/reading", payload, qos=1)
        assert result.ok and result.code == 0 and result.reason == "PUBACK", result
        assert result.rtt_ms is not None and result.size == len(payload)
    for kind, payload in payloads.items():
        topic = f"sensors/{kind}/reading"
        assert received(events, topic).payload == payload
    assert json.loads(payloads["kv"]) == {"temp": 22, "on": False, "name": "room"}

    qos0 = connection.publish("sensors/other", "x", qos=0)
    assert qos0.ok and qos0.code is None and "QoS 0" in qos0.reason
    assert received(events, "sensors/other").payload == b"x"

    stats = connection.stats()
    assert stats.state == "connected" and stats.protocol == protocol and stats.auth == "mtls"
    assert stats.endpoint == f"{target.mqtt_host}:{target.mqtt_port}"
    assert stats.tls_version is not None and stats.tls_version.startswith("TLSv1.")
    assert stats.messages_out == 4 and stats.messages_in >= 4 and stats.rtt_ms is not None

    gone = connection.unsubscribe("sensors/#")
    assert gone.ok and connection.subscriptions == {"sensors/+/reading": 1}
    connection.disconnect()
    assert connection.state == "disconnected"
    assert connection.stats().state == "disconnected"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_websocket_sigv4_with_the_targets_credentials(
        protocol: str, target: Target, ws_port: int, connections) -> None:
    settings = MqttSettings.websocket(target, new_client_id("ws"), protocol=protocol, **FAST)
    connection, events = open_connection(connections, settings)
    connection.connect()
    assert connection.stats().auth == "websocket" and connection.stats().endpoint.endswith(f":{ws_port}")
    assert connection.subscribe("ws/#", 1).ok
    assert connection.publish("ws/one", b'{"n": 1}', qos=1).ok
    assert received(events, "ws/one").payload == b'{"n": 1}'

    connection.disconnect()
    assert events.of(Disconnected)[-1].by_user and connection.subscriptions == {}
    connection.connect()  # the same object connects again after a disconnect
    assert connection.publish("ws/two", b"2", qos=1).ok


def test_time_and_ids_are_injectable(target: Target, device: Device, connections) -> None:
    settings = MqttSettings.mtls(target, device.cert_file, device.key_file, new_client_id("fixed", lambda: "0001"),
                                 **FAST)
    ticks = iter(range(100))
    connection = MqttConnection(settings, clock=lambda: 1_780_000_000.0, monotonic=lambda: next(ticks) / 1000)
    connections.append(connection)
    events = Recorder()
    connection.add_listener(events)
    assert connection.connect() == Connected("fixed-0001", False, False, 1_780_000_000.0)
    connection.subscribe("fixed/#", 1)
    result = connection.publish("fixed/a", b"1", qos=1)
    assert result.time == 1_780_000_000.0 and result.rtt_ms == 1.0
    assert received(events, "fixed/a").time == 1_780_000_000.0
    assert connection.stats().connected_at == 1_780_000_000.0


def test_retained_message_reaches_a_later_subscriber_and_empty_payload_clears_it(
        target: Target, device: Device, connections) -> None:
    publisher, _ = open_connection(connections, mtls(target, device))
    publisher.connect()
    assert publisher.publish("lamp/state", b'{"on": true}', qos=1, retain=True).ok

    first, events = open_connection(connections, mtls(target, device))
    first.connect()
    assert first.subscribe("lamp/#", 1).ok
    message = received(events, "lamp/state")
    assert message.retain and message.payload == b'{"on": true}'

    assert publisher.publish("lamp/state", b"", qos=1, retain=True).ok
    later, later_events = open_connection(connections, mtls(target, device, "3.1.1"))
    later.connect()
    assert later.subscribe("lamp/#", 1).ok
    assert publisher.publish("lamp/probe", b"p", qos=1).ok
    received(later_events, "lamp/probe")
    assert not [e for e in later_events.of(MessageReceived) if e.topic == "lamp/state" and e.payload]


def test_mqtt5_user_properties_arrive(target: Target, device: Device, connections) -> None:
    connection, events = open_connection(connections, mtls(target, device))
    connection.connect()
    connection.subscribe("props/#", 1)
    assert connection.publish("props/a", "v", qos=1, user_properties=[("source", "test"), ("n", "1")]).ok
    assert received(events, "props/a").properties["user_properties"] == [("source", "test"), ("n", "1")]


def test_topics_are_checked_before_anything_is_sent(target: Target, device: Device, connections) -> None:
    connection, _ = open_connection(connections, mtls(target, device, "3.1.1"))
    connection.connect()
    for bad_filter in ("a/#/b", "a+/b", "", "a/b/c/d/e/f/g/h/i"):
        with pytest.raises(TopicError):
            connection.subscribe(bad_filter)
    for bad_topic in ("a/+", "a/#", "$aws/things/x/shadow/update/accepted"):
        with pytest.raises(TopicError):
            connection.publish(bad_topic, b"x")
    with pytest.raises(ValueError, match="QoS 0 and 1"):
        connection.publish("a", b"x", qos=2)
    with pytest.raises(ValueError, match="128 KB"):
        connection.publish("a", b"x" * (128 * 1024 + 1))
    with pytest.raises(ValueError, match="MQTT 5"):
        connection.publish("a", b"x", user_properties=[("k", "v")])
    assert connection.connected


# -- refusals ------------------------------------------------------------------------------------


def _narrow_policy(region: str, account: str) -> dict:
    arn = f"arn:aws:iot:{region}:{account}"
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{arn}:topic/allowed/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{arn}:topicfilter/allowed/*"},
    ]}


def test_policy_refusals_are_results_with_reason_and_hint_on_mqtt5(
        iot, target: Target, tmp_path: Path, mqtt_port: int, connections) -> None:
    device = make_device(iot, tmp_path / "narrow", _narrow_policy(target.region, target.account_id or ""))
    connection, events = open_connection(connections, mtls(target, device))
    connection.connect()

    denied = connection.subscribe("denied/#", 1)
    assert not denied.ok and denied.granted_qos is None and denied.code == 0x87
    assert denied.reason == "not authorized" and "iot:Subscribe" in denied.hint
    assert "denied/#" not in connection.subscriptions
    assert events.of(SubscriptionResult)[-1] == denied

    assert connection.subscribe("allowed/#", 1).ok
    refused = connection.publish("denied/x", b"1", qos=1)
    assert not refused.ok and refused.code == 0x87 and "iot:Publish" in refused.hint
    retained = connection.publish("allowed/x", b"1", qos=1, retain=True)
    assert not retained.ok and retained.code == 0x87 and "iot:RetainPublish" in retained.hint
    assert connection.publish("allowed/x", b"2", qos=1).ok
    assert received(events, "allowed/x").payload == b"2"
    assert connection.connected


def test_denied_publish_on_mqtt311_is_reported_and_the_client_reconnects(
        iot, target: Target, tmp_path: Path, mqtt_port: int, connections) -> None:
    device = make_device(iot, tmp_path / "narrow", _narrow_policy(target.region, target.account_id or ""))
    connection, events = open_connection(connections, mtls(target, device, "3.1.1", operation_timeout=2.0))
    connection.connect()
    denied = connection.subscribe("denied/#", 1)
    assert not denied.ok and denied.code == 0x80
    refused = connection.publish("denied/x", b"1", qos=1)
    assert not refused.ok and "iot:Publish" in refused.hint, refused
    events.wait_for(lambda e: isinstance(e, Disconnected) and e.will_retry)
    events.wait_for(lambda e: isinstance(e, Connected) and e.reconnect)
    assert connection.publish("allowed/ok", b"1", qos=1).ok


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connect_without_a_policy_is_refused_with_a_hint(
        protocol: str, iot, target: Target, tmp_path: Path, mqtt_port: int, connections) -> None:
    device = make_device(iot, tmp_path / "bare", policy=None)
    connection, _ = open_connection(connections, mtls(target, device, protocol))
    with pytest.raises(MqttError) as refused:
        connection.connect()
    assert "iot:Connect" in refused.value.hint
    # awscrt's 3.1.1 client drops the CONNACK return code; MQTT 5 keeps the reason.
    assert refused.value.code == (0x87 if protocol == "5" else None)
    assert connection.state == "disconnected"


# -- reconnects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reconnects_after_a_take_over_and_restores_subscriptions(
        protocol: str, target: Target, device: Device, connections) -> None:
    settings = mtls(target, device, protocol)
    connection, events = open_connection(connections, settings)
    connection.connect()
    assert connection.subscribe("takeover/#", 1).ok

    intruder, _ = open_connection(connections, replace(settings, probe_tls=False, min_reconnect_delay=30.0,
                                                       max_reconnect_delay=30.0))
    intruder.connect()
    kicked = events.wait_for(lambda e: isinstance(e, Disconnected))[0]
    assert kicked.will_retry and not kicked.by_user
    if protocol == "5":
        assert kicked.code == 0x8E and "session taken over" in kicked.reason
    intruder.disconnect()

    events.wait_for(lambda e: isinstance(e, Connected) and e.reconnect, timeout=20)
    restored = events.wait_for(lambda e: isinstance(e, SubscriptionResult) and e.restored)[0]
    assert restored.ok and restored.topic_filter == "takeover/#"
    publisher, _ = open_connection(connections, mtls(target, device))
    publisher.connect()
    assert publisher.publish("takeover/after", b"back", qos=1).ok
    assert received(events, "takeover/after").payload == b"back"
    assert connection.stats().reconnects >= 1


def test_reconnects_after_the_core_restarts(tmp_path: Path, connections) -> None:
    data_dir = tmp_path / "restart-core"
    server = start_core(data_dir)
    try:
        require_listener(server, "mqtt")
        ports = dict(server.ports)
        iot = client("iot", server, "us-east-1")
        device = make_device(iot, tmp_path / "device")
        target = local_target(server, "us-east-1")
        connection, events = open_connection(connections, mtls(target, device))
        connection.connect()
        assert connection.subscribe("restart/#", 1).ok

        server.stop_thread()
        events.wait_for(lambda e: isinstance(e, Disconnected) and e.will_retry)
        assert connection.state == "reconnecting"
        server = start_core(data_dir, http_port=ports["http"], mqtt_port=ports["mqtt"], ws_port=ports["ws"])

        events.wait_for(lambda e: isinstance(e, Connected) and e.reconnect, timeout=30)
        assert events.wait_for(lambda e: isinstance(e, SubscriptionResult) and e.restored)[0].ok
        client("iot-data", server, "us-east-1").publish(topic="restart/after", qos=1, payload=b"again")
        assert received(events, "restart/after").payload == b"again"
    finally:
        for connection in connections:
            connection.disconnect()
        server.stop_thread()


# -- the shared pool -----------------------------------------------------------------------------


def test_pool_shares_one_connection_per_identity(iot, target: Target, device: Device, tmp_path: Path) -> None:
    pool = ConnectionPool()
    settings = mtls(target, device)
    try:
        pane = pool.acquire(settings)
        shadows = pool.acquire(replace(settings, keep_alive=120))
        assert pane is shadows and pool.references(pane) == 2
        pane.connect()
        assert shadows.connect().client_id == settings.client_id  # already up: no second CONNECT
        pane_events, shadow_events = Recorder(), Recorder()
        remove = pane.add_listener(pane_events)
        shadows.add_listener(shadow_events)

        assert pane.subscribe("shared/#", 1).ok and shadows.subscribe("shared/#", 1).ok
        assert pane.unsubscribe("shared/#").still_held
        assert pane.publish("shared/a", b"1", qos=1).ok
        received(shadow_events, "shared/a")
        received(pane_events, "shared/a")
        remove()

        other = make_device(iot, tmp_path / "other")
        with pytest.raises(ClientIdInUse):
            pool.acquire(mtls(target, other, client_id=settings.client_id))
        with pool.lease(replace(settings, client_id=new_client_id("second"))) as second:
            assert second is not pane and len(pool.connections()) == 2

        pool.release(pane)
        assert shadows.connected and pool.references(shadows) == 1
        pool.release(shadows)
        assert pool.get(settings) is None and shadows.state == "disconnected"
        assert not [e for e in shadow_events.of(Disconnected) if not e.by_user]
    finally:
        pool.close_all()


def test_a_failing_listener_does_not_starve_the_others(target: Target, device: Device, connections) -> None:
    connection, events = open_connection(connections, mtls(target, device))

    def broken(event) -> None:
        raise RuntimeError("listener bug")

    connection.add_listener(broken)
    connection.connect()
    connection.subscribe("robust/#", 0)
    connection.publish("robust/a", b"1", qos=1)
    assert received(events, "robust/a").payload == b"1"


# -- diagnostics ---------------------------------------------------------------------------------


def test_diagnose_reports_each_step(target: Target, device: Device) -> None:
    steps = diagnose(mtls(target, device), timeout=5)
    assert [s.name for s in steps] == ["Certificate files", "DNS", "TCP connect", "TLS handshake", "MQTT CONNECT"]
    assert all(s.ok for s in steps), steps
    tls = steps[3].detail
    assert "TLSv1." in tls and "DNS:localhost" in tls
    assert "CONNACK accepted" in steps[4].detail


def test_diagnose_websocket(target: Target, ws_port: int) -> None:
    steps = diagnose(MqttSettings.websocket(target, new_client_id("diag"), **FAST))
    assert [s.name for s in steps] == ["DNS", "TCP connect", "TLS handshake", "MQTT CONNECT"]
    assert all(s.ok for s in steps), steps


def test_diagnose_names_the_likely_cause(iot, target: Target, device: Device, tmp_path: Path, core) -> None:
    def failed(settings: MqttSettings):
        steps = diagnose(settings, timeout=3)
        failures = [s for s in steps if s.ok is False]
        assert len(failures) == 1, steps
        assert all(s.ok is None for s in steps[steps.index(failures[0]) + 1:])
        return failures[0]

    bare = make_device(iot, tmp_path / "bare", policy=None)
    step = failed(mtls(target, bare))
    assert step.name == "MQTT CONNECT" and "iot:Connect" in step.cause and "policy" in step.fix

    inactive = make_device(iot, tmp_path / "inactive")
    iot.update_certificate(certificateId=inactive.certificate_id, newStatus="INACTIVE")
    step = failed(mtls(target, inactive))
    assert step.name == "TLS handshake" and "ACTIVE" in step.cause

    step = failed(replace(mtls(target, device), ca_file=device.cert_file))
    assert step.name == "TLS handshake" and "unknown CA" in step.cause

    step = failed(replace(mtls(target, device), port=core.ports["http"]))
    assert step.name == "TLS handshake" and "wrong port" in step.cause

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        free_port = unused.getsockname()[1]
    step = failed(replace(mtls(target, device), port=free_port))
    assert step.name == "TCP connect" and "wrong port" in step.cause

    step = failed(replace(mtls(target, device), host="no-such-endpoint.invalid"))
    assert step.name == "DNS" and "describe-endpoint" in step.fix

    step = failed(replace(mtls(target, device), key_file=bare.key_file))
    assert step.name == "Certificate files" and "does not belong" in step.detail

    future = 4_102_444_800.0  # 2100: the certificate has expired by then
    steps = diagnose(mtls(target, device), clock=lambda: future)
    assert steps[0].ok is False and "expired" in steps[0].detail


def test_diagnose_does_not_take_over_a_shared_connection(target: Target, device: Device) -> None:
    pool = ConnectionPool()
    settings = mtls(target, device)
    try:
        connection = pool.acquire(settings)
        events = Recorder()
        connection.add_listener(events)
        connection.connect()
        steps = diagnose(settings, pool=pool)
        assert steps[-1].ok and "shared connection" in steps[-1].detail
        assert not events.of(Disconnected) and connection.connected
    finally:
        pool.close_all()
