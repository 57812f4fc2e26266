"""Switching target from the command palette: the header, the clients and every view follow."""

from __future__ import annotations

from textual.widgets import Input, RadioButton

from iot_tui.ui.widgets.target_dialog import SwitchTargetScreen
from tests.conftest import client, start_core
from tests.ui.conftest import SIZE, build_app, settle


async def test_switch_to_another_endpoint_and_back_out(core, region, tmp_path):
    other = start_core(tmp_path / "other")
    try:
        client("iot", other, "us-east-1").create_thing(thingName="only-on-the-other-core")
        app = build_app(core, region)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.action_switch_target()
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, SwitchTargetScreen)
            dialog.query_one("#kind-endpoint", RadioButton).value = True
            dialog.query_one("#target-url", Input).value = "not a url"
            await pilot.click("#switch")
            await pilot.pause()
            assert app.screen is dialog  # refused in place, input kept
            assert "http://" in str(dialog.query_one("#target-problem").render())

            dialog.query_one("#target-url", Input).value = other.http_url
            dialog.query_one("#target-region", Input).value = "us-east-1"
            await pilot.pause(0.3)  # a button ignores a second click while it still shows the first
            await pilot.click("#switch")
            await settle(pilot)
            assert app.target.kind == "endpoint"
            assert app.target.control_url == other.http_url
            assert other.http_url.split("//")[1] in app.sub_title
            names = [t["thingName"] for t in app.clients.iot.list_things()["things"]]
            assert names == ["only-on-the-other-core"]
            await pilot.press("2")
            await settle(pilot)
            table = app.query_one("#things-table")
            assert table.row_count == 1

            app.action_switch_target()
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert app.target.control_url == other.http_url  # cancel changes nothing
    finally:
        other.stop_thread()
