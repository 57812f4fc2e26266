"""Regenerate the README's screenshots: each screen of the app at 120x40, as SVG.

    .venv/bin/python assets/screenshots/make_screenshots.py

Runs the app headless against a throwaway local core with the sample fleet, the way the snapshot
tests do (fixed clock and seed), so the pictures show real data and change only when the UI does.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from iot_tui.aws import fleet  # noqa: E402
from tests.conftest import start_core  # noqa: E402
from tests.ui.conftest import NOW, SEED, SIZE, build_app, settle  # noqa: E402

SCREENS = [("1", "fleet"), ("2", "registry"), ("3", "certificates"), ("4", "mqtt"), ("5", "shadows"), ("6", "rules")]


async def shoot(core, region: str) -> None:
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key, name in SCREENS:
            await pilot.press(key)
            await settle(pilot)
            app.save_screenshot(filename=f"{name}.svg", path=str(HERE))
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        app.save_screenshot(filename="inspector.svg", path=str(HERE))


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        core = start_core(Path(scratch))
        try:
            region = "us-east-1"
            list(fleet.setup(build_app(core, region).clients.iot, fleet.sample_fleet(SEED, NOW)))
            asyncio.run(shoot(core, region))
        finally:
            core.stop_thread()
    print("\n".join(sorted(p.name for p in HERE.glob("*.svg"))))


if __name__ == "__main__":
    main()
