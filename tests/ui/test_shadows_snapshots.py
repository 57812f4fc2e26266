"""The Shadows view at 120x40 with fixed data.

The snapshots run on a core of their own with its own fixed clock: the session core's clock is
moved by other tests, and the shadow metadata timestamps shown here come from the core.
"""

from __future__ import annotations

import pytest
from textual.widgets import TextArea

from tests.conftest import FakeClock, client, start_core
from tests.ui.conftest import SIZE, build_app, settle
from tests.ui.test_shadows_view import open_shadows, seed, shadow, type_edit, until


@pytest.fixture(scope="module")
def snap_core(tmp_path_factory):
    server = start_core(tmp_path_factory.mktemp("shadow-snap-core"), clock=FakeClock())
    yield server
    server.stop_thread()


def no_blink(pilot) -> None:
    """A focused TextArea's cursor blinks on a timer: off, so every run renders the same."""
    for area in pilot.app.query(TextArea):
        area.cursor_blink = False


def snap_app(core, region: str):
    seed(core, region)
    client("iot-data", core, region).update_thing_shadow(
        thingName="Lamp-1", payload=b'{"state": {"desired": {"lights": {"front": "on", "rear": "off"}}}}')
    return build_app(core, region)


def test_snapshot_columns(snap_compare, snap_core):
    async def run_before(pilot):
        await open_shadows(pilot)

    assert snap_compare(snap_app(snap_core, "us-snap-shadow-columns"), terminal_size=SIZE, run_before=run_before)


def test_snapshot_conflict(snap_compare, snap_core):
    region = "us-snap-shadow-conflict"

    async def run_before(pilot):
        view = await open_shadows(pilot)
        client("iot-data", snap_core, region).update_thing_shadow(
            thingName="Lamp-1", payload=b'{"state": {"desired": {"color": "green"}}}')
        no_blink(pilot)
        await type_edit(pilot, view, '{"color": "white"}')

    assert snap_compare(snap_app(snap_core, region), terminal_size=SIZE, run_before=run_before)


def test_snapshot_history_diff(snap_compare, snap_core):
    async def run_before(pilot):
        view = await open_shadows(pilot)
        await type_edit(pilot, view, "color=green level=null mode=eco")
        await type_edit(pilot, view, '{"lights": {"rear": "on"}}')
        view.query_one("#shadow-tabs").active = "shadow-history-pane"
        view.query_one("#history-table").focus()
        await settle(pilot)
        view.compare(2, 4)
        await settle(pilot)

    assert snap_compare(snap_app(snap_core, "us-snap-shadow-history"), terminal_size=SIZE, run_before=run_before)


def test_snapshot_simulator(snap_compare, snap_core):
    region = "us-snap-shadow-simulator"

    async def run_before(pilot):
        view = await open_shadows(pilot, "Lamp-2")
        view.query_one("#simulator-delay").value = "0.05"
        await pilot.press("ctrl+t")
        await type_edit(pilot, view, "color=amber level=5")
        await until(pilot, lambda: "delta" not in shadow(snap_core, region, "Lamp-2")["state"])
        view.query_one("#shadow-tabs").active = "shadow-device-pane"
        no_blink(pilot)
        view.query_one("#device-local").focus()
        await settle(pilot)

    assert snap_compare(snap_app(snap_core, region), terminal_size=SIZE, run_before=run_before)
