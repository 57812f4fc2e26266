"""The Shadows view on the local core: pick, columns, edit, conflicts, history, simulator, delete, create,
and how it follows a shadow: MQTT with the device certificate, WebSocket SigV4, or polling (and why)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError
from textual.widgets import Input, OptionList, Static, TextArea

from iot_tui.aws import certs
from iot_tui.ui.screens.shadows import ShadowsView
from iot_tui.ui.widgets.dialogs import ConfirmScreen
from tests.aws.conftest import local_target
from tests.aws.mqtt_support import ALLOW_ALL, require_listener
from tests.conftest import client
from tests.ui.conftest import SIZE, build_app, settle, ui_target


def seed(core, region: str) -> None:
    iot = client("iot", core, region)
    data = client("iot-data", core, region)
    for thing in ("Lamp-1", "Lamp-2", "Pump-7"):
        iot.create_thing(thingName=thing)
    document = {"state": {"desired": {"color": "red", "level": 3}, "reported": {"color": "blue", "level": 3}}}
    data.update_thing_shadow(thingName="Lamp-1", payload=json.dumps(document).encode())
    data.update_thing_shadow(thingName="Lamp-1", shadowName="config",
                             payload=b'{"state": {"reported": {"firmware": "1.0"}}}')


def app_with_device_folder(core, region: str, target, folder):
    """The app with Lamp-1's certificate (allowed everything) saved in `folder` as the wizard saves it."""
    iot = client("iot", core, region)
    iot.create_policy(policyName="shadow-all", policyDocument=json.dumps(ALLOW_ALL))
    certs.create_and_attach(iot, "Lamp-1", target, folder, "shadow-all")
    return build_app(core, region, cert_root=folder, target=target)


async def until(pilot, condition, rounds: int = 100) -> None:
    """Wait on a condition (the simulator answers after a timer), then for the screen to settle."""
    for _ in range(rounds):
        await settle(pilot, rounds=1)
        if condition():
            break
    await settle(pilot)


def text(view: ShadowsView, selector: str) -> str:
    return str(view.query_one(selector, Static).render())


async def open_shadows(pilot, thing: str = "Lamp-1", poll_seconds: float | None = None) -> ShadowsView:
    """Show the tab and open the thing's classic shadow; `poll_seconds` first, so it applies from the start."""
    await pilot.press("5")
    await settle(pilot)
    view = pilot.app.query_one(ShadowsView)
    if poll_seconds is not None:
        view.poll_seconds = poll_seconds
    things = view.query_one("#shadow-things", OptionList)
    things.highlighted = things.get_option_index(thing)
    things.focus()
    await pilot.press("enter")
    await settle(pilot)
    return view


async def test_pick_thing_and_shadow_shows_columns(core, region):
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        assert "Lamp-1 (classic)" in text(view, "#shadow-header")
        assert '"red"' in text(view, "#column-desired-body")
        assert '"blue"' in text(view, "#column-reported-body")
        assert 'color: "red"' in text(view, "#column-delta-body")
        assert "level" not in text(view, "#column-delta-body")
        assert "● color" in text(view, "#column-desired-body")  # differs from reported
        assert "● level" not in text(view, "#column-desired-body")

        view.query_one("#shadow-thing-search", Input).value = "pump"
        await pilot.pause()
        things = view.query_one("#shadow-things", OptionList)
        assert [things.get_option_at_index(i).id for i in range(things.option_count)] == ["Pump-7"]


async def type_edit(pilot, view: ShadowsView, body: str, section: str = "desired") -> None:
    view.query_one("#edit-section").value = section
    editor = view.query_one("#shadow-editor", TextArea)
    editor.text = body
    editor.focus()
    await pilot.press("ctrl+s")
    await settle(pilot)


def shadow(core, region: str, thing: str = "Lamp-1", name: str | None = None) -> dict:
    kwargs = {"shadowName": name} if name else {}
    answer = client("iot-data", core, region).get_thing_shadow(thingName=thing, **kwargs)
    return json.loads(answer["payload"].read())


async def test_edit_desired_with_key_values_and_null(core, region):
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        await pilot.press("ctrl+e")  # the editor starts from the desired state
        editor = view.query_one("#shadow-editor", TextArea)
        assert editor.has_focus and json.loads(editor.text) == {"color": "red", "level": 3}
        await type_edit(pilot, view, "color=blue level=null mode=eco")
        stored = shadow(core, region)
        assert stored["state"]["desired"] == {"color": "blue", "mode": "eco"}
        assert stored["version"] == 2
        assert "accepted, version 2" in text(view, "#edit-error")
        assert "v2" in text(view, "#shadow-status") and "accepted" in text(view, "#shadow-status")
        assert 'mode: "eco"' in text(view, "#column-delta-body")
        assert "color" not in text(view, "#column-delta-body")


async def test_conflict_shows_current_document_and_keeps_text(core, region):
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        client("iot-data", core, region).update_thing_shadow(
            thingName="Lamp-1", payload=b'{"state": {"desired": {"color": "green"}}}')
        await type_edit(pilot, view, '{"color": "white"}')
        error = text(view, "#edit-error")
        assert "409 ConflictException: Version conflict" in error
        assert "You edited version 1; the shadow is at version 2" in error
        assert '"color": "green"' in error
        assert view.query_one("#shadow-editor", TextArea).text == '{"color": "white"}'
        assert shadow(core, region)["state"]["desired"]["color"] == "green"
        await pilot.press("ctrl+s")  # again, now against the version shown
        await settle(pilot)
        assert shadow(core, region)["state"]["desired"]["color"] == "white"


async def test_bad_input_is_shown_in_place_and_kept(core, region):
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        await type_edit(pilot, view, '{"color": "red",\n  "level": }')
        assert "invalid JSON: Expecting value (line 2, column 12)" in text(view, "#edit-error")
        assert view.query_one("#shadow-editor", TextArea).text == '{"color": "red",\n  "level": }'
        deep = '{"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}'
        await type_edit(pilot, view, deep)
        assert "400 InvalidRequestException: JSON contains too many levels of nesting; maximum is 6" in text(
            view, "#edit-error")
        assert view.query_one("#shadow-editor", TextArea).text == deep
        await type_edit(pilot, view, json.dumps({"blob": "x" * 9000}))
        assert "413 RequestEntityTooLargeException" in text(view, "#edit-error")
        assert shadow(core, region)["version"] == 1


async def test_history_diff_between_two_versions(core, region):
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        await type_edit(pilot, view, "color=green")
        await type_edit(pilot, view, '{"level": null, "mode": "eco"}')
        assert view.history is not None and view.history.versions() == [1, 2, 3]
        view.query_one("#shadow-tabs").active = "shadow-history-pane"
        await settle(pilot)
        diff = text(view, "#history-diff")
        assert "version 2 -> 3" in diff
        assert "- desired.level  3" in diff and '+ desired.mode  "eco"' in diff
        view.compare(1, 3)
        await pilot.pause()
        diff = text(view, "#history-diff")
        assert 'desired.color  "red" -> "green"' in diff
        assert "- desired.level  3" in diff
        assert "reported" not in diff


async def test_simulator_answers_each_delta(core, region):
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot, "Lamp-2")
        view.query_one("#simulator-delay").value = "0.05"
        await pilot.press("ctrl+t")
        await type_edit(pilot, view, "color=amber level=5")
        await until(pilot, lambda: "delta" not in shadow(core, region, "Lamp-2")["state"])
        state = shadow(core, region, "Lamp-2")["state"]
        assert state["reported"] == {"color": "amber", "level": 5}
        assert "delta" not in state
        assert json.loads(view.query_one("#device-local", TextArea).text) == {"color": "amber", "level": 5}
        log = text(view, "#device-log")
        assert "delta at version 1" in log and "reporting in 0.05 s" in log
        assert "UpdateThingShadow reported as device (HTTP): accepted, version 2" in log
        assert "in sync" in text(view, "#column-delta-body")
        assert "simulator on" in text(view, "#shadow-status")


async def test_report_local_state_as_the_device(core, region):
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        assert json.loads(view.query_one("#device-local", TextArea).text) == {"color": "blue", "level": 3}
        view.query_one("#device-local", TextArea).text = '{"color": "red", "level": 3}'
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert shadow(core, region)["state"]["reported"]["color"] == "red"
        assert "in sync" in text(view, "#column-delta-body")


async def test_delete_with_confirmation(core, region):
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        view.query_one("#shadow-names").focus()
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert shadow(core, region)["version"] == 1
        await pilot.press("delete")
        await pilot.pause()
        await pilot.click("#yes")
        await settle(pilot)
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            shadow(core, region)
        assert "no shadow yet" in text(view, "#shadow-header")
        assert "DeleteThingShadow: deleted" in text(view, "#shadow-status")


async def test_named_shadows_listed_and_created(core, region):
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        names = view.query_one("#shadow-names", OptionList)
        assert [str(names.get_option_at_index(i).prompt) for i in range(names.option_count)] == [
            "(classic)", "config"]
        names.highlighted = 1
        await pilot.press("enter")
        await settle(pilot)
        assert "Lamp-1 / config" in text(view, "#shadow-header")
        assert 'firmware: "1.0"' in text(view, "#column-reported-body")

        await pilot.press("ctrl+n")
        await pilot.press(*"lights", "enter")
        await settle(pilot)
        assert client("iot-data", core, region).list_named_shadows_for_thing(thingName="Lamp-1")["results"] == [
            "config", "lights"]
        assert "Lamp-1 / lights · version 1" in text(view, "#shadow-header")
        assert str(names.get_option_at_index(names.highlighted).prompt) == "lights"



async def test_live_over_mqtt_with_the_device_certificate(core, region, tmp_path):
    """With a certificate in the device folder the view subscribes as the device instead of polling."""
    require_listener(core, "mqtt")
    seed(core, region)
    target = local_target(core, region)
    app = app_with_device_folder(core, region, target, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        await until(pilot, lambda: view.live is not None)
        assert "live · MQTT (certificate)" in text(view, "#shadow-header")
        assert view.live is not None and view.live.connection.settings.auth == "mtls"
        assert "● live" in text(view, "#shadow-status")

        data = client("iot-data", core, region)
        data.update_thing_shadow(thingName="Lamp-1", payload=b'{"state": {"desired": {"color": "green"}}}')
        await until(pilot, lambda: (view.document or {}).get("version") == 2)
        assert view.history is not None and view.history.snapshots[2].source == "documents"
        assert 'color: "green"' in text(view, "#column-delta-body")

        await type_edit(pilot, view, "color=green", section="reported")
        await until(pilot, lambda: "accepted" in text(view, "#edit-error"))
        assert "update reported as device (MQTT): accepted, version 3" in text(view, "#edit-error")
        assert shadow(core, region)["state"]["reported"]["color"] == "green"

        # Sent against the version shown (3) before the view hears of version 4: a conflict over MQTT.
        view.query_one("#shadow-editor", TextArea).text = "level=9"
        data.update_thing_shadow(thingName="Lamp-1", payload=b'{"state": {"desired": {"level": 9}}}')
        view.action_send()
        await until(pilot, lambda: "409" in text(view, "#edit-error"))
        error = text(view, "#edit-error")
        assert "409 ConflictException: Version conflict" in error and "the shadow is at version 4" in error
        assert view.query_one("#shadow-editor", TextArea).text == "level=9"


def live_target(core, region: str, **ports):
    """The UI test target (pinned, unreachable MQTT ports) with the test core's real ports where given."""
    return replace(ui_target(core, region), **ports)


async def test_live_over_websocket_without_a_certificate(core, region):
    """No device folder: the view follows the shadow over WebSocket SigV4 with the target's credentials.

    The poll interval is an hour, so only an MQTT message can explain a refresh."""
    require_listener(core, "ws")
    seed(core, region)
    app = build_app(core, region, target=live_target(core, region, ws_port=core.ports["ws"]))
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot, poll_seconds=3600)
        await until(pilot, lambda: view.live is not None)
        assert view.live is not None and view.live.connection.settings.auth == "websocket"
        assert "live · WebSocket SigV4" in text(view, "#shadow-header")
        assert "● live" in text(view, "#shadow-status")
        assert view.live.topics == [f"$aws/things/Lamp-1/shadow/{suffix}" for suffix in (
            "update/documents", "update/delta", "update/accepted", "update/rejected")]

        data = client("iot-data", core, region)
        data.update_thing_shadow(thingName="Lamp-1", payload=b'{"state": {"desired": {"color": "green"}}}')
        await until(pilot, lambda: (view.document or {}).get("version") == 2)
        assert view.history is not None and view.history.snapshots[2].source == "documents"
        assert '"green"' in text(view, "#column-desired-body")
        assert 'color: "green"' in text(view, "#column-delta-body")
        assert not any(source == "poll" for source in (s.source for s in view.history.snapshots.values()))

        # The device side goes over the same signed connection.
        await type_edit(pilot, view, "color=green", section="reported")
        await until(pilot, lambda: "accepted" in text(view, "#edit-error"))
        assert "update reported over WebSocket SigV4: accepted, version 3" in text(view, "#edit-error")
        assert shadow(core, region)["state"]["reported"]["color"] == "green"
        assert "in sync" in text(view, "#column-delta-body")

        # Another shadow: the view's one WebSocket connection stays, now holding the new shadow's topics.
        connection = view.live.connection
        names = view.query_one("#shadow-names", OptionList)
        names.highlighted = names.get_option_index("config")
        names.focus()
        await pilot.press("enter")
        await until(pilot, lambda: view.live is not None and app.mqtt_pool.references(connection) == 1)
        assert view.live is not None and view.live.connection is connection
        assert view.live.topics[0] == "$aws/things/Lamp-1/shadow/name/config/update/documents"
        assert app.mqtt_pool.connections() == [connection]
        data.update_thing_shadow(thingName="Lamp-1", shadowName="config",
                                 payload=b'{"state": {"desired": {"firmware": "1.1"}}}')
        await until(pilot, lambda: (view.document or {}).get("version") == 2)
        assert 'firmware: "1.1"' in text(view, "#column-delta-body")
    assert connection.stats().state == "disconnected"  # leaving lets go of it


async def test_polls_and_says_why_when_mqtt_cannot_be_reached(core, region):
    """No certificate, and nothing listens on the (pinned) WebSocket port: polling, with the reason."""
    seed(core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        await until(pilot, lambda: view.mode != "connecting")
        assert view.live is None
        assert "polling: WebSocket SigV4 failed" in text(view, "#shadow-header")
        assert "● polling every 3 s" in text(view, "#shadow-status")
        log = text(view, "#device-log")
        assert "WebSocket SigV4 failed: connection failed" in log and "Polling every 3 s instead." in log
        assert "WebSocket SigV4 failed" in str(view.query_one("#shadow-header", Static).tooltip)
        assert app.mqtt_pool.connections() == []  # nothing held after the failure

        # Polling keeps the view current: a change made elsewhere shows up on a tick.
        view.poll_seconds = 0.05
        client("iot-data", core, region).update_thing_shadow(
            thingName="Lamp-1", payload=b'{"state": {"desired": {"color": "green"}}}')
        await until(pilot, lambda: (view.document or {}).get("version") == 2)
        assert view.history is not None and view.history.snapshots[2].source == "poll"


async def test_certificate_first_then_websocket_then_polling(core, region, tmp_path):
    """The device's certificate is tried first; when its MQTT port cannot be reached, WebSocket SigV4
    takes over (and the device log says why); when neither can, the view polls."""
    require_listener(core, "ws")
    seed(core, region)
    target = live_target(core, region, ws_port=core.ports["ws"])  # the MQTT port stays pinned (unreachable)
    app = app_with_device_folder(core, region, target, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        await until(pilot, lambda: view.live is not None)
        assert "live · WebSocket SigV4" in text(view, "#shadow-header")
        log = text(view, "#device-log")
        assert "MQTT (certificate) failed: connection failed" in log
        assert "Live over WebSocket SigV4 instead." in log

    app = build_app(core, region, cert_root=tmp_path, target=live_target(core, region))
    async with app.run_test(size=SIZE) as pilot:
        view = await open_shadows(pilot)
        await until(pilot, lambda: view.mode != "connecting")
        assert view.live is None
        assert "polling: certificate and WebSocket failed" in text(view, "#shadow-header")
        log = text(view, "#device-log")
        assert "MQTT (certificate) failed" in log and "WebSocket SigV4 failed" in log
