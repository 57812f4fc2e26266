"""The Rules view at 120x40 with fixed data (a region per snapshot, fixed clock and seed)."""

from __future__ import annotations

from textual.widgets import Input, TextArea

from tests.ui.conftest import SIZE, build_app, settle
from tests.ui.test_rules_view import open_rules


def no_blink(pilot) -> None:
    """A focused input's cursor blinks on a timer: off, so every run renders the same."""
    for widget in [*pilot.app.query(Input), *pilot.app.query(TextArea)]:
        widget.cursor_blink = False


def test_rules_builder(snap_compare, core):
    async def run_before(pilot):
        await open_rules(pilot)
        no_blink(pilot)
        await pilot.pause()

    assert snap_compare(build_app(core, "us-snap-rules-builder"), terminal_size=SIZE, run_before=run_before)


def test_rules_saved_and_dry_run(snap_compare, core):
    async def run_before(pilot):
        view = await open_rules(pilot)
        view.query_one("#rule-name", Input).value = "HighTemperature"
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        no_blink(pilot)
        await pilot.pause()

    assert snap_compare(build_app(core, "us-snap-rules-saved"), terminal_size=SIZE, run_before=run_before)
