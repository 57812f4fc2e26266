"""The MQTT pane against the local core's broker: a wizard-made device connects, subscribes with
wildcards, publishes each payload kind, receives (retained too), sees a policy refusal, exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static, TextArea

from iot_tui.aws import certs, policies
from iot_tui.aws.core_process import fetch_health
from iot_tui.aws.target import Target
from iot_tui.ui.screens.mqtt import MqttView
from iot_tui.ui.widgets.mqtt_forms import ExportScreen, PublishForm
from tests.aws.mqtt_support import require_listener
from tests.conftest import client, start_core
from tests.ui.conftest import SIZE, build_app, settle, wait_until

DENY_FORBIDDEN = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["iot:Publish", "iot:Subscribe"],
         "Resource": ["arn:aws:iot:*:*:topic/forbidden/*", "arn:aws:iot:*:*:topicfilter/forbidden/*"]},
    ],
}


def live_target(core, region: str) -> Target:
    """The core's real ports (the snapshot target pins them for display, which cannot connect)."""
    require_listener(core, "mqtt")
    health = fetch_health("127.0.0.1", core.ports["http"], timeout=5)
    assert health is not None
    return Target.local(health, region=region, display_name=f"local core (test, {region})", max_attempts=1)


def make_device(core, region: str, target: Target, root: Path, thing: str, document: dict | None = None) -> str:
    """A thing, a policy (the full-learning template unless given) and the wizard's certificate files."""
    iot = client("iot", core, region)
    iot.create_thing(thingName=thing)
    policy = f"{thing}-policy"
    if document is None:
        policies.create_from_template(iot, policy, policies.template("full-learning"), region, "000000000000")
    else:
        policies.create_policy(iot, policy, json.dumps(document))
    return certs.create_and_attach(iot, thing, target, root, policy).certificate_id


async def connected_view(pilot: Pilot) -> MqttView:
    await pilot.press("4")
    await settle(pilot)
    view = pilot.app.query_one(MqttView)
    await pilot.press("f5")
    await wait_until(pilot, lambda: view.connection is not None or "failed" in view.note)
    assert view.connection is not None, view.note
    return view


async def subscribe(pilot: Pilot, view: MqttView, topic_filter: str, qos: int = 1) -> None:
    view.query_one("#sub-qos", Select).value = qos
    view.query_one("#sub-filter", Input).value = topic_filter
    view.query_one("#sub-filter", Input).focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: "SUBACK" not in status(view, topic_filter) and
                     status(view, topic_filter) != "pending")


def status(view: MqttView, topic_filter: str) -> str:
    return str(view.query_one("#sub-table", DataTable).get_cell(topic_filter, "status"))


async def publish(pilot: Pilot, view: MqttView, topic: str, kind: str, text: str, qos: int = 1,
                  retain: bool = False) -> str:
    view.query_one("#pub-topic", Input).value = topic
    view.query_one("#pub-kind", Select).value = kind
    view.query_one("#pub-qos", Select).value = qos
    view.query_one("#pub-retain").value = retain
    view.query_one("#pub-payload", TextArea).text = text
    result = view.query_one("#pub-result", Static)
    result.update("")
    await pilot.press("f9")
    await wait_until(pilot, lambda: str(result.render()) not in ("", "sending…"))
    return str(result.render())


def rows(view: MqttView) -> list[list[str]]:
    table = view.query_one("#mqtt-log", DataTable)
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


async def test_connect_subscribe_publish_receive_and_export(core, region, tmp_path):
    target = live_target(core, region)
    make_device(core, region, target, tmp_path / "certs", "sensor-1")
    app = build_app(core, region, cert_root=tmp_path / "certs", target=target)
    async with app.run_test(size=SIZE) as pilot:
        view = await connected_view(pilot)
        assert view.query_one("#mqtt-client-id", Input).value == "sensor-1"
        await wait_until(pilot, lambda: "connected" in str(view.query_one("#mqtt-status").render()))
        status_line = str(view.query_one("#mqtt-status").render())
        assert f"localhost:{target.mqtt_port}" in status_line and "sensor-1" in status_line
        assert "MQTT 5" in status_line and "TLS TLSv1." in status_line

        await subscribe(pilot, view, "sensors/+/temperature")
        assert status(view, "sensors/+/temperature") == "granted QoS 1"
        await subscribe(pilot, view, "notes/#", qos=0)
        assert status(view, "notes/#") == "granted QoS 0"

        assert (await publish(pilot, view, "sensors/d1/temperature", "json", '{"temperature": 21.5}')).startswith(
            "PUBACK")
        assert (await publish(pilot, view, "sensors/d1/temperature", "kv", "temperature=23 ok=true")).startswith(
            "PUBACK")
        assert "QoS 0" in await publish(pilot, view, "notes/a/b", "text", "hello there", qos=0)
        assert (await publish(pilot, view, "other/topic", "text", "not subscribed")).startswith("PUBACK")
        await wait_until(pilot, lambda: len(rows(view)) == 3)  # the table redraws at most 4 times a second
        shown = rows(view)
        assert [row[2] for row in shown] == ["notes/a/b", "sensors/d1/temperature", "sensors/d1/temperature"]
        assert shown[1][4] == '{"temperature":23,"ok":true}'

        # the newest temperature: the detail shows its diff against the previous one on the topic
        table = view.query_one("#mqtt-log", DataTable)
        table.focus()
        table.move_cursor(row=1)
        await pilot.pause()
        detail = str(view.query_one("#mqtt-detail", Static).render())
        assert "sensors/d1/temperature" in detail and "QoS 1" in detail
        assert "~ temperature" in detail and "21.5 -> 23" in detail and "+ ok" in detail
        assert view.query_one("#mqtt-plot-field", Input).value == "temperature"
        assert "2 points  last 23" in str(view.query_one("#mqtt-plot-summary").render())

        # the filter narrows the view; the history loads a sent message back to resend
        view.query_one("#mqtt-topic-filter", Input).value = "notes/#"
        await pilot.pause()
        assert [row[2] for row in rows(view)] == ["notes/a/b"]
        view.query_one("#mqtt-topic-filter", Input).value = ""
        view.query_one("#mqtt-text-filter", Input).value = "ok"
        await pilot.pause()
        assert len(rows(view)) == 1
        view.query_one("#mqtt-text-filter", Input).value = ""
        assert len(view.query_one(PublishForm).history) == 4

        # topic tree counts
        view.query_one("#mqtt-lower").active = "mqtt-tab-topics"
        await pilot.pause()
        labels = [str(node.label) for node in view.query_one("#mqtt-topics").root.children]
        assert labels[0].startswith("notes (1)") and labels[1].startswith("sensors (2)")

        # export the buffer as NDJSON and CSV
        for fmt, name in (("ndjson", "out.ndjson"), ("csv", "out.csv")):
            await pilot.press("ctrl+o")
            await pilot.pause()
            assert isinstance(app.screen, ExportScreen)
            app.screen.query_one("#export-format", Select).value = fmt
            app.screen.query_one("#export-path", Input).value = str(tmp_path / name)
            await pilot.click("#export-ok")
            await settle(pilot)
        lines = [json.loads(line) for line in (tmp_path / "out.ndjson").read_text().splitlines()]
        assert [line["topic"] for line in lines] == ["sensors/d1/temperature", "sensors/d1/temperature", "notes/a/b"]
        assert lines[0]["payload"] == '{"temperature":21.5}'
        with (tmp_path / "out.csv").open() as handle:
            assert [row["payload"] for row in csv.DictReader(handle)][-1] == "hello there"
        assert any("3 messages written" in n.message for n in app._notifications)

        # pause keeps recording; resume shows what came meanwhile
        await pilot.press("f8")
        await publish(pilot, view, "notes/c", "text", "while paused")
        await wait_until(pilot, lambda: view.log_buffer.pending == 1)
        assert len(rows(view)) == 3
        await pilot.press("f8")
        assert rows(view)[0][2] == "notes/c"

        await pilot.press("f6")
        await wait_until(pilot, lambda: view.note == "disconnected")
        assert app.mqtt_pool.connections() == []


async def test_retained_message_arrives_on_subscribe(core, region, tmp_path):
    target = live_target(core, region)
    make_device(core, region, target, tmp_path / "certs", "retainer")
    app = build_app(core, region, cert_root=tmp_path / "certs", target=target)
    async with app.run_test(size=SIZE) as pilot:
        view = await connected_view(pilot)
        result = await publish(pilot, view, "status/retainer", "kv", "online=true", retain=True)
        assert result.startswith("PUBACK"), result
        await subscribe(pilot, view, "status/+")
        await wait_until(pilot, lambda: len(rows(view)) == 1)
        assert rows(view)[0][2:4] == ["status/retainer", "1 R"]


async def test_policy_refusal_is_shown_on_the_row_and_the_publish(core, region, tmp_path):
    target = live_target(core, region)
    make_device(core, region, target, tmp_path / "certs", "limited", DENY_FORBIDDEN)
    app = build_app(core, region, cert_root=tmp_path / "certs", target=target)
    async with app.run_test(size=SIZE) as pilot:
        view = await connected_view(pilot)
        await subscribe(pilot, view, "forbidden/#")
        assert status(view, "forbidden/#").startswith("refused: not authorized")
        await subscribe(pilot, view, "allowed/#")
        assert status(view, "allowed/#") == "granted QoS 1"
        result = await publish(pilot, view, "forbidden/x", "text", "no")
        assert result.startswith("refused: not authorized") and "iot:Publish" in result
        assert view.query_one("#pub-result").has_class("-refused")
        # the form refuses what AWS would, before sending: the user's input stays
        view.query_one("#pub-kind", Select).value = "json"
        view.query_one("#pub-payload", TextArea).text = "{not json"
        await pilot.pause()
        assert view.query_one("#pub-problem", Static).render()
        assert view.query_one("#pub-payload", TextArea).text == "{not json"
        view.query_one("#sub-filter", Input).value = "a/#/b"
        await pilot.pause()
        assert "#" in str(view.query_one("#sub-problem", Static).render())
        # F7 on a live connection: the steps pass, and the core's journal says what it refused
        await pilot.press("f7")
        await wait_until(pilot, lambda: view.core_log is not None, limit=20)
        shown = str(view.query_one("#mqtt-diagnostics", Static).render())
        assert "already connected through the shared connection" in shown
        assert "Subscribe Failure  iot:Subscribe is not allowed on 'forbidden/#'" in shown
        assert "Publish-In Failure  iot:Publish is not allowed on 'forbidden/x'" in shown


async def test_inactive_certificate_fails_and_diagnostics_say_why(core, region, tmp_path):
    target = live_target(core, region)
    certificate_id = make_device(core, region, target, tmp_path / "certs", "dormant")
    client("iot", core, region).update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
    app = build_app(core, region, cert_root=tmp_path / "certs", target=target)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(pilot)
        view = app.query_one(MqttView)
        await pilot.press("f5")
        await wait_until(pilot, lambda: "failed" in view.note, limit=20)
        await wait_until(pilot, lambda: bool(view.steps), limit=20)
        assert view.connection is None
        assert view.query_one("#mqtt-lower").active == "mqtt-tab-diagnostics"
        failed = [step for step in view.steps if step.ok is False]
        assert failed and failed[0].fix
        shown = str(view.query_one("#mqtt-diagnostics", Static).render())
        assert "✗" in shown and "fix" in shown
        # the core's own reason, from its journal for this certificate
        assert view.core_log and any("is INACTIVE" in entry.message for entry in view.core_log)
        assert "Local core log for this client" in shown
        assert f"TLS Failure  refused: certificate {certificate_id} is INACTIVE, not ACTIVE" in shown


async def test_websocket_with_the_targets_keys_and_mqtt_311(core, region, tmp_path):
    require_listener(core, "ws")
    target = live_target(core, region)
    app = build_app(core, region, cert_root=tmp_path / "certs", target=target)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(pilot)
        view = app.query_one(MqttView)
        view.query_one("#mqtt-auth", Select).value = "websocket"
        view.query_one("#mqtt-protocol", Select).value = "3.1.1"
        await pilot.pause()
        assert not view.query_one("#mqtt-device").display
        assert view.query_one("#mqtt-client-id", Input).value.startswith("iot-tui-")
        await pilot.press("f5")
        await wait_until(pilot, lambda: view.connection is not None or "failed" in view.note)
        assert view.connection is not None, view.note
        status_line = str(view.query_one("#mqtt-status").render())
        assert f"localhost:{target.ws_port}" in status_line and "MQTT 3.1.1 (websocket)" in status_line
        await subscribe(pilot, view, "ws/#")
        await pilot.press("f10")  # the test message goes to the form's topic, or iot-tui/test
        await wait_until(pilot, lambda: str(view.query_one("#pub-result").render()).startswith("PUBACK"))
        sent = view.query_one(PublishForm).history[0]
        assert sent.topic == "iot-tui/test" and json.loads(sent.payload)["message"] == "Hello from iot-tui"
        assert (await publish(pilot, view, "ws/hello", "kv", "a=1 b=two")).startswith("PUBACK")
        await wait_until(pilot, lambda: len(view.log_buffer) == 1)
        assert next(view.log_buffer.view()).message.payload == b'{"a":1,"b":"two"}'
        # user properties need MQTT 5: refused by the form, before anything is sent
        view.query_one("#pub-props", Input).value = "source=tui"
        assert "MQTT 5" in await publish(pilot, view, "ws/hello", "text", "x")


async def test_reconnects_and_restores_subscriptions_after_the_broker_restarts(tmp_path):
    """A core of this test's own: stopped under a live pane, started again on the same ports."""
    data_dir = tmp_path / "restart-core"
    server = start_core(data_dir)
    try:
        ports = dict(server.ports)
        target = live_target(server, "us-east-1")
        make_device(server, "us-east-1", target, tmp_path / "certs", "restarter")
        app = build_app(server, "us-east-1", cert_root=tmp_path / "certs", target=target)
        async with app.run_test(size=SIZE) as pilot:
            view = await connected_view(pilot)
            await subscribe(pilot, view, "restart/#")
            assert status(view, "restart/#") == "granted QoS 1"

            server.stop_thread()
            await wait_until(pilot, lambda: "reconnecting" in str(view.query_one("#mqtt-status").render()))
            assert status(view, "restart/#") == "lost: restored on reconnect"
            server = start_core(data_dir, http_port=ports["http"], mqtt_port=ports["mqtt"], ws_port=ports["ws"])

            await wait_until(pilot, lambda: status(view, "restart/#") == "granted QoS 1 (restored)", limit=30)
            line = str(view.query_one("#mqtt-status").render())
            assert line.startswith("connected") and "reconnects 1" in line
            client("iot-data", server, "us-east-1").publish(topic="restart/after", qos=1, payload=b"again")
            await wait_until(pilot, lambda: any(r[2] == "restart/after" for r in rows(view)))
    finally:
        server.stop_thread()
