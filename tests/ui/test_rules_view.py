"""The Rules view on the local core: build from a template, live SQL checks, save, dry run, toggle, delete."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Input, Select, Static

from iot_tui.ui.screens.rules import RulesView
from iot_tui.ui.widgets.dialogs import ConfirmScreen
from tests.conftest import client
from tests.ui.conftest import SIZE, build_app, settle


async def open_rules(pilot) -> RulesView:
    """Show the Rules tab and wait until its view is mounted and its first list has loaded."""
    await pilot.press("6")
    for _ in range(100):
        await settle(pilot, rounds=1)
        views = pilot.app.query(RulesView)
        if views and views.first().listed:
            return views.first()
    raise AssertionError("the Rules view did not load")


async def test_build_save_dry_run_toggle_and_delete(core, region):
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_rules(pilot)
        assert "No topic rules yet" in str(view.query_one("#rule-detail-body", Static).render())

        view.query_one("#rule-name", Input).value = "HighTemperature"
        await pilot.pause()
        assert "SQL is valid" in str(view.query_one("#rule-problems", Static).render())
        preview = str(view.query_one("#rule-preview", Static).render())
        assert "SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE temperature > 30" in preview

        view.query_one("#rule-where", Input).value = "temperature >"
        await pilot.pause()
        problems = str(view.query_one("#rule-problems", Static).render())
        assert "sql:" in problems and "line 1, column" in problems
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert view.summaries == {}  # nothing was sent, and the typed text is still there
        assert view.query_one("#rule-where", Input).value == "temperature >"

        view.query_one("#rule-where", Input).value = "temperature > 30"
        await pilot.press("f5")
        result = str(view.query_one("#dry-result", Static).render())
        assert "Matched" in result and "alerts/temperature/vehicle1" in result

        await pilot.press("ctrl+s")
        await settle(pilot)
        assert list(view.summaries) == ["HighTemperature"]
        stored = client("iot", core, region).get_topic_rule(ruleName="HighTemperature")["rule"]
        assert stored["sql"].endswith("WHERE temperature > 30")
        role = client("iam", core, region).get_role(RoleName="IoTRulesEngineRole")["Role"]
        assert "iot.amazonaws.com" in json.dumps(role["AssumeRolePolicyDocument"])

        table = view.query_one("#rules-table", DataTable)
        table.focus()
        await pilot.press("t")
        await settle(pilot)
        assert not view.summaries["HighTemperature"].enabled
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#yes")
        await settle(pilot)
        assert view.summaries == {}


async def test_dry_run_says_why_a_message_does_not_match(core, region):
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_rules(pilot)
        view.query_one("#rule-template", Select).value = "battery"
        await pilot.pause()
        view.query_one("#dry-payload").text = '{"battery": 90}'
        await pilot.press("f5")
        assert "WHERE is not true" in str(view.query_one("#dry-result", Static).render())
        view.query_one("#dry-topic", Input).value = "elsewhere/x"
        await pilot.press("f5")
        assert "does not match topic elsewhere/x" in str(view.query_one("#dry-result", Static).render())


async def test_live_test_publishes_and_shows_the_republished_message(core, region):
    from dataclasses import replace

    from tests.ui.conftest import ui_target

    # The live test really connects: give the app the test core's real WebSocket port.
    target = replace(ui_target(core, region), ws_port=core.ports["ws"], mqtt_port=core.ports["mqtt"])
    app = build_app(core, region, target=target)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_rules(pilot)
        await pilot.press("f6")
        await pilot.pause()
        assert view.summaries == {}  # nothing saved yet: the live test says so and sends nothing

        view.query_one("#rule-name", Input).value = "LiveTemperature"
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        result = str(view.query_one("#dry-result", Static).render())
        assert "arrived on alerts/temperature/vehicle1" in result
        assert '"temperature":35' in result.replace(" ", "")

        view.query_one("#dry-payload").text = '{"temperature": 10}'
        await pilot.press("f6")
        await settle(pilot)
        assert "No match" in str(view.query_one("#dry-result", Static).render())


async def test_each_event_template_creates_its_rule(core, region):
    from iot_tui.aws import rules

    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_rules(pilot)
        for template in rules.TEMPLATES:
            view.query_one("#rule-template", Select).value = template.key
            await pilot.pause()
            view.query_one("#rule-name", Input).value = f"template_{template.key}"
            await pilot.press("ctrl+s")
            await settle(pilot)
        iot = client("iot", core, region)
        stored = {r["ruleName"]: r["topicPattern"] for r in iot.list_topic_rules()["rules"]}
        assert stored == {f"template_{t.key}": t.topic for t in rules.TEMPLATES}
        assert iot.get_topic_rule(ruleName="template_motion")["rule"]["sql"].endswith("WHERE motion = 'detected'")
