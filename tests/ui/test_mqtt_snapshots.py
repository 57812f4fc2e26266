"""The MQTT pane at 120x40 with fixed data: fixture device PEMs, messages stamped by the fixed
clock, and diagnostics steps with fixed timings. The live path is covered by test_mqtt_view.py;
here the events enter the pane's queue as the awscrt listener would put them."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Select, TextArea

from iot_tui.aws.core_log import CoreLogEntry
from iot_tui.aws.device_files import save_device_files, target_ca
from iot_tui.aws.mqtt import MessageReceived
from iot_tui.aws.mqtt_diagnose import Step
from iot_tui.ui.screens.mqtt import MqttView
from tests.ui.conftest import NOW, SIZE, build_app, settle, ui_target

FIXTURES = Path(__file__).parent / "fixtures"
CERTIFICATE_ID = "a1b2c3d4e5f6" + "0" * 52
MESSAGES = [
    ("sensors/d1/temperature", b'{"temperature":21.5,"humidity":40}', 1, False, {}),
    ("sensors/d2/temperature", b'{"temperature":19.0,"humidity":55}', 0, False, {}),
    ("status/d1", b"online", 1, True, {}),
    ("sensors/d1/temperature", b'{"temperature":22.25,"humidity":41}', 1, False, {"user_properties": [["unit", "C"]]}),
    ("sensors/d1/temperature", b'{"temperature":24,"humidity":41,"alarm":true}', 1, False, {}),
    ("raw/bytes", bytes(range(0, 40)), 0, False, {}),
]


def app_with_device(core, region: str, tmp_path: Path):
    """A device folder written as the wizard writes it, from the fixture certificate and key."""
    target = ui_target(core, region)
    root = tmp_path / "certs"
    save_device_files(root, "sensor-1", CERTIFICATE_ID, (FIXTURES / "device.crt").read_text(),
                      (FIXTURES / "device.key").read_text(), "", target_ca(target))
    return build_app(core, region, cert_root=root)


async def with_messages(pilot) -> MqttView:
    await pilot.press("4")
    await settle(pilot)
    view = pilot.app.query_one(MqttView)
    for topic_filter in ("sensors/+/temperature", "status/#", "raw/#"):
        view.query_one("#sub-filter", Input).value = topic_filter
        view.query_one("#sub-filter", Input).focus()
        await pilot.press("enter")
    for index, (topic, payload, qos, retain, properties) in enumerate(MESSAGES):
        view.events.put(MessageReceived(topic, payload, qos, retain, properties, NOW + index * 1.5))
    view.drain()
    view.query_one("#mqtt-log", DataTable).focus()  # no blinking input cursor in the picture
    await settle(pilot)
    return view


def test_mqtt_connection_form(snap_compare, core, tmp_path):
    async def run_before(pilot):
        await pilot.press("4")
        await settle(pilot)

    assert snap_compare(app_with_device(core, "us-snap-mqtt-form", tmp_path), terminal_size=SIZE,
                        run_before=run_before)


def test_mqtt_message_detail_with_diff(snap_compare, core, tmp_path):
    async def run_before(pilot):
        view = await with_messages(pilot)
        view.query_one("#pub-topic", Input).value = "sensors/d1/cmd"
        view.query_one("#pub-kind", Select).value = "kv"
        view.query_one("#pub-payload", TextArea).text = "fan=on speed=3"
        table = view.query_one("#mqtt-log", DataTable)
        table.focus()
        table.move_cursor(row=1)
        await settle(pilot)

    assert snap_compare(app_with_device(core, "us-snap-mqtt-detail", tmp_path), terminal_size=SIZE,
                        run_before=run_before)


def test_mqtt_topic_tree(snap_compare, core, tmp_path):
    async def run_before(pilot):
        view = await with_messages(pilot)
        view.query_one("#mqtt-lower").active = "mqtt-tab-topics"
        await settle(pilot)

    assert snap_compare(app_with_device(core, "us-snap-mqtt-topics", tmp_path), terminal_size=SIZE,
                        run_before=run_before)


def test_mqtt_plot_follow_and_paused(snap_compare, core, tmp_path):
    async def run_before(pilot):
        view = await with_messages(pilot)
        view.query_one("#mqtt-lower").active = "mqtt-tab-plot"
        view.query_one("#mqtt-plot-field", Input).value = "temperature"
        view.query_one("#mqtt-log", DataTable).focus()
        await pilot.press("f4", "f8")
        view.events.put(MessageReceived("sensors/d2/temperature", b'{"temperature":30}', 1, False, {}, NOW + 20))
        view.drain()
        await settle(pilot)

    assert snap_compare(app_with_device(core, "us-snap-mqtt-plot", tmp_path), terminal_size=SIZE,
                        run_before=run_before)


def test_mqtt_diagnostics(snap_compare, core, tmp_path):
    async def run_before(pilot):
        await pilot.press("4")
        await settle(pilot)
        view = pilot.app.query_one(MqttView)
        view.query_one("#mqtt-lower").active = "mqtt-tab-diagnostics"
        view.post_message(MqttView.Diagnosed([
            Step("Certificate files", True, "certificate, key and CA readable; key is 0600", ms=1.0),
            Step("DNS", True, "localhost -> 127.0.0.1", ms=0.0),
            Step("TCP connect", True, "localhost:8883 accepted", ms=1.0),
            Step("TLS handshake", False, "the server closed the connection after the handshake",
                 "the certificate is not ACTIVE", "Set it ACTIVE in the Certificates tab", ms=12.0),
            Step("MQTT CONNECT", None, "skipped: an earlier step failed"),
        ], [
            CoreLogEntry(NOW - 60, "INFO", "Connect", "Success", "CONNECT accepted: MQTT 5, principal 3f1c9a, "
                         "keep-alive 30 s, new session", "127.0.0.1:50310", "thermostat-1", "3f1c9a"),
            CoreLogEntry(NOW - 5, "INFO", "Disconnect", "Failure", "disconnected (CONNECTION_LOST)",
                         "127.0.0.1:50310", "thermostat-1", "3f1c9a"),
            CoreLogEntry(NOW - 2, "WARNING", "TLS", "Failure", "TLS handshake failed: TLSV1_ALERT_UNKNOWN_CA",
                         "127.0.0.1:50311", "", ""),
            CoreLogEntry(NOW, "WARNING", "TLS", "Failure", "refused: certificate 3f1c9a is INACTIVE, not ACTIVE",
                         "127.0.0.1:50312", "", "3f1c9a"),
        ]))
        await settle(pilot)

    assert snap_compare(app_with_device(core, "us-snap-mqtt-diagnostics", tmp_path), terminal_size=SIZE,
                        run_before=run_before)
