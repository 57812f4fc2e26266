"""Pilot tests: each flow on the local core, asserting on visible state."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, RichLog, Static, TabbedContent

from iot_tui.aws import fleet
from iot_tui.ui.commands import ScreenCommands
from iot_tui.ui.screens.help import HelpScreen
from iot_tui.ui.widgets.api_inspector import ApiInspector
from iot_tui.ui.widgets.dialogs import CleanupScreen, ConfirmScreen
from tests.ui.conftest import NOW, SEED, SIZE, build_app, settle


def things_table(app) -> DataTable:
    return app.query_one("#things-table", DataTable)


def setup_fleet(clients_iot) -> fleet.Fleet:
    sample = fleet.sample_fleet(SEED, NOW)
    assert all(not e.failed for e in fleet.setup(clients_iot, sample))
    return sample


async def test_setup_then_registry_shows_20_things(core, region):
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await settle(pilot)
        summary = app.query_one("#fleet-summary", DataTable)
        assert [summary.get_row_at(i)[:2] for i in range(summary.row_count)] == [
            ["thing type", 3], ["thing group", 4], ["thing", 20]]
        assert "Setup done." in str(app.query_one("#fleet-state").render())
        assert len(app.query_one("#fleet-log", RichLog).lines) > 27
        await pilot.press("2")
        await settle(pilot)
        assert app.query_one("#tabs", TabbedContent).active == "tab-registry"
        assert things_table(app).row_count == 20
        assert app.focused is things_table(app)


async def test_filter_by_country_and_describe(core, region):
    app = build_app(core, region)
    sample = setup_fleet(app.clients.iot)
    country = sample.things[0].attributes["country"]
    expected = sorted(t.name for t in sample.things if t.attributes["country"] == country)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("slash")
        assert app.focused is app.query_one("#attribute-filter", Input)
        await pilot.press(*f"country={country}", "enter")
        await settle(pilot)
        table = things_table(app)
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == expected
        assert "filter: country=" in str(app.query_one("#things-page").render())
        assert app.focused is table
        await pilot.press("enter")
        await settle(pilot)
        detail = str(app.query_one("#thing-detail-body", Static).render())
        first = sample.things[0]
        assert first.name in detail and f"thing/{first.name}" in detail and first.group in detail


async def test_pagination_with_next_token(core, region):
    app = build_app(core, region)
    setup_fleet(app.clients.iot)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        page_size = app.query_one("#page-size")
        page_size.value = 10
        await settle(pilot)
        assert things_table(app).get_row_at(0)[0] == "Vehicle-VIN-001" and things_table(app).row_count == 10
        await pilot.press("n")
        await settle(pilot)
        assert things_table(app).get_row_at(0)[0] == "Vehicle-VIN-011"
        assert "Page 2" in str(app.query_one("#things-page").render())
        await pilot.press("p")
        await settle(pilot)
        assert things_table(app).get_row_at(0)[0] == "Vehicle-VIN-001"
        calls = [c for c in app.inspector.calls if c.operation == "ListThings"]
        assert "nextToken" in calls[-2].params and "nextToken" not in calls[-1].params


async def test_cleanup_leaves_decoys_untouched(core, region):
    app = build_app(core, region)
    iot = app.clients.iot
    setup_fleet(iot)
    iot.create_thing(thingName="Decoy-1")
    iot.create_thing_group(thingGroupName="DecoyGroup")
    shared = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName="Decoy-1", principal=shared["certificateArn"])
    iot.attach_thing_principal(thingName="Vehicle-VIN-003", principal=shared["certificateArn"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CleanupScreen)
        await pilot.click("#skip")
        await settle(pilot)
        assert "Cleanup done." in str(app.query_one("#fleet-state").render())
    assert [t["thingName"] for t in iot.list_things()["things"]] == ["Decoy-1"]
    assert [g["groupName"] for g in iot.list_thing_groups()["thingGroups"]] == ["DecoyGroup"]
    assert iot.list_principal_things(principal=shared["certificateArn"])["things"] == ["Decoy-1"]


async def test_errors_show_code_message_and_meaning(core, region):
    app = build_app(core, region)
    setup_fleet(app.clients.iot)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        app.clients.iot.delete_thing(thingName="Vehicle-VIN-001")  # behind the app's back
        await pilot.press("enter")
        await settle(pilot)
        [notification] = list(app._notifications)
        assert notification.title == "describe thing: ResourceNotFoundException"
        assert "does not exist in this account and region" in notification.message
        assert "Fix: Check the name and the region" in notification.message
        assert not app.query_one("#thing-detail").loading


async def test_unreachable_target_is_explained(core, region):
    from dataclasses import replace

    target = replace(build_app(core, region).target, control_url="http://127.0.0.1:9")
    app = build_app(core, region, target=target)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        titles = {n.title for n in app._notifications}
        assert "list things: EndpointConnectionError" in titles
        assert all("local core" in n.message for n in app._notifications)


async def test_inspector_help_palette_and_theme(core, region):
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        inspector = app.query_one(ApiInspector)
        assert not inspector.display
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        assert inspector.display
        assert inspector.query_one(DataTable).row_count == len(app.inspector.calls) >= 2
        await pilot.press("y")
        assert app.clipboard.startswith("aws iot ")
        await pilot.press("f2", "f1")
        assert isinstance(app.screen, HelpScreen)
        ids = {str(row[3]) for row in (app.screen.query_one(DataTable).get_row_at(i)
                                       for i in range(app.screen.query_one(DataTable).row_count))}
        assert {"help", "toggle-inspector", "things-next", "things-filter", "registry-refresh"} <= ids
        await pilot.press("escape")
        titles = [title for title, _help, _cb in ScreenCommands(app.screen)._commands()]
        assert "Registry: Next page" in titles and "Run setup check" in titles
        theme = app.theme
        await pilot.press("f3")
        assert app.theme != theme


async def test_keys_are_remapped_by_binding_id(core, region, tmp_path):
    from iot_tui.ui.keymap import load_keymap

    path = tmp_path / "keymap.json"
    path.write_text('{"toggle-inspector": "f12", "tab-registry": "r"}')
    app = build_app(core, region, keymap=load_keymap(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f12")
        assert app.query_one(ApiInspector).display
        await pilot.press("f12", "r")
        await settle(pilot)
        assert app.query_one("#tabs", TabbedContent).active == "tab-registry"
    assert load_keymap(tmp_path / "missing.json") == {}
    path.write_text("[1]")
    with pytest.raises(ValueError, match="binding ids"):
        load_keymap(path)
