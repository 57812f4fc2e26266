"""Snapshots at 120x40 with fixed data: a fixed clock and seed, a pinned target label, and a
region per test so no other test's resources show. Update with `pytest --snapshot-update`.
"""

from __future__ import annotations

import pytest

from iot_tui.aws import fleet
from iot_tui.aws.inspector import ApiCall
from iot_tui.ui.widgets.api_inspector import ApiInspector
from tests.ui.conftest import NOW, SEED, SIZE, build_app, settle


@pytest.fixture
def fleet_region(core, request) -> str:
    """A fixed region per snapshot with the sample fleet in it (the test core is fresh each session)."""
    region = f"us-snap-{request.node.name.removeprefix('test_').replace('_', '-')}"
    app = build_app(core, region)
    list(fleet.setup(app.clients.iot, fleet.sample_fleet(SEED, NOW)))
    return region


def test_fleet_plan(snap_compare, core):
    assert snap_compare(build_app(core, "us-snap-plan"), terminal_size=SIZE)


def test_fleet_after_setup(snap_compare, core):
    async def run_before(pilot):
        await pilot.press("s", "enter")
        await settle(pilot)

    assert snap_compare(build_app(core, "us-snap-setup"), terminal_size=SIZE, run_before=run_before)


def test_fleet_cleanup_dialog(snap_compare, core, fleet_region):
    async def run_before(pilot):
        await pilot.press("c")
        await settle(pilot)

    assert snap_compare(build_app(core, fleet_region), terminal_size=SIZE, run_before=run_before)


def test_registry_things(snap_compare, core, fleet_region):
    async def run_before(pilot):
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot)

    assert snap_compare(build_app(core, fleet_region), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("tab", ["types", "groups", "certificates", "endpoints"])
def test_registry_tab(snap_compare, core, tab):
    region = f"us-snap-tab-{tab}"
    app = build_app(core, region)
    list(fleet.setup(app.clients.iot, fleet.sample_fleet(SEED, NOW)))

    async def run_before(pilot):
        await pilot.press("2")
        await settle(pilot)
        pilot.app.query_one("#registry-tabs").active = f"registry-{tab}"
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_api_inspector(snap_compare, core):
    calls = [
        ApiCall(1, "iot", "ListThings", "us-east-1", {"maxResults": 25}, NOW, "GET",
                "http://127.0.0.1:4580/things?maxResults=25", 200,
                {"things": [{"thingName": "Vehicle-VIN-001", "version": 1}]}, duration_ms=4.2),
        ApiCall(2, "sts", "GetCallerIdentity", "us-east-1", {}, NOW, "POST", "http://127.0.0.1:4580/", 200,
                {"Account": "000000000000"}, duration_ms=2.0),
        ApiCall(3, "iot", "DeleteThingType", "us-east-1", {"thingTypeName": "SedanVehicle"}, NOW, "DELETE",
                "http://127.0.0.1:4580/thing-types/SedanVehicle", 400, {}, "InvalidRequestException",
                "Thing type SedanVehicle was deprecated less than 300 seconds ago", 3.1),
    ]

    async def run_before(pilot):
        pilot.app.query_one(ApiInspector).show(calls)
        await pilot.press("f2")
        await settle(pilot)

    assert snap_compare(build_app(core, "us-snap-inspector"), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, core, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/user/.config")  # the keymap path shown in the help
    assert snap_compare(build_app(core, "us-snap-help"), terminal_size=SIZE, press=["f1"])
