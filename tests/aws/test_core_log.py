"""The local core's journal for one MQTT client, read through the aws layer after real connections."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from iot_tui.aws.core_log import client_log, principal_of
from iot_tui.aws.mqtt import MqttConnection, MqttError, MqttSettings, new_client_id
from iot_tui.aws.target import Target
from tests.aws.mqtt_support import make_device, require_listener

FAST = dict(connect_timeout=5.0, operation_timeout=3.0, min_reconnect_delay=1.0, max_reconnect_delay=2.0)


def attempt(settings: MqttSettings) -> None:
    connection = MqttConnection(settings)
    try:
        connection.connect()
    except MqttError:
        pass
    finally:
        connection.disconnect()


def test_a_policy_refusal_is_explained_by_the_core(iot, core, target: Target, tmp_path: Path) -> None:
    require_listener(core, "mqtt")
    device = make_device(iot, tmp_path / "bare", policy=None)
    settings = MqttSettings.mtls(target, device.cert_file, device.key_file, new_client_id("log"), **FAST)
    assert principal_of(settings) == device.certificate_id
    attempt(settings)
    entries = client_log(target, settings)
    assert entries is not None
    refused = [e for e in entries if e.client_id == settings.client_id]
    assert refused and refused[-1].event_type == "Connect" and refused[-1].status == "Failure"
    assert "iot:Connect is not allowed" in refused[-1].message
    assert refused[-1].principal == device.certificate_id


def test_an_inactive_certificate_is_found_by_its_id(iot, core, target: Target, tmp_path: Path) -> None:
    require_listener(core, "mqtt")
    device = make_device(iot, tmp_path / "inactive")
    iot.update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    settings = MqttSettings.mtls(target, device.cert_file, device.key_file, new_client_id("log"), **FAST)
    attempt(settings)
    entries = client_log(target, settings) or []
    assert any(e.event_type == "TLS" and "is INACTIVE" in e.message for e in entries), entries


def test_a_websocket_session_is_logged_under_its_client_id(core, target: Target) -> None:
    require_listener(core, "ws")
    settings = MqttSettings.websocket(target, new_client_id("log-ws"), **FAST)
    assert principal_of(settings) == target.access_key_id
    connection = MqttConnection(settings)
    connection.connect()
    connection.disconnect()
    entries = client_log(target, settings) or []
    assert ("Connect", "Success") in [(e.event_type, e.status) for e in entries if e.client_id == settings.client_id]


def test_no_journal_on_aws_or_an_endpoint_that_is_not_a_core(core, target: Target) -> None:
    settings = MqttSettings.websocket(target, new_client_id("log-none"), **FAST)
    assert client_log(replace(target, kind="aws"), settings) is None
    assert client_log(replace(target, control_url="http://127.0.0.1:9"), settings, timeout=0.5) is None
