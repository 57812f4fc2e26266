"""The app as tests build it: the same factory, a test-core target, a fixed clock and seed."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.worker import WorkerFailed

from iot_tui.aws.core_process import fetch_health
from iot_tui.aws.inspector import Inspector
from iot_tui.aws.target import Target
from iot_tui.local.server import LocalServer
from iot_tui.ui.app import IoTApp, make_app

NOW = 1_780_000_000.0
SEED = 7
SIZE = (120, 40)


# Test cores listen on free ports, so the MQTT ports a snapshot shows are pinned. Nothing may listen
# on them: views that try MQTT must fail the same way every run (not the core's defaults, 8883 and
# 8443, where a developer's own `iot-tui local serve` would answer).
PINNED_MQTT_PORT = 18883
PINNED_WS_PORT = 18443


@pytest.fixture(scope="session", autouse=True)
def pinned_ports_unreachable() -> None:
    for port in (PINNED_MQTT_PORT, PINNED_WS_PORT):
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"something listens on 127.0.0.1:{port}, which the UI tests need unreachable")


def ui_target(core: LocalServer, region: str) -> Target:
    health = fetch_health("127.0.0.1", core.ports["http"], timeout=5)
    assert health is not None
    return Target.local(health, region=region, display_name=f"local core (test, {region})", max_attempts=1,
                        mqtt_port=PINNED_MQTT_PORT, ws_port=PINNED_WS_PORT)


def build_app(core: LocalServer, region: str, cert_root: Path | None = None, **overrides) -> IoTApp:
    """Durations are 0 ms (a constant timer) so the inspector renders the same every run."""
    target = overrides.pop("target", None) or ui_target(core, region)
    return make_app(target, clock=lambda: NOW, seed=SEED, inspector=Inspector(timer=lambda: 0.0, clock=lambda: NOW),
                    cert_root=cert_root or Path("/nonexistent/iot-tui-test-certs"), **overrides)


async def wait_until(pilot: Pilot, condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Poll a condition while the app runs: results arrive from worker and awscrt threads, not on a schedule."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


async def settle(pilot: Pilot, rounds: int = 4) -> None:
    """Wait for workers, and for the workers their results start, to finish and render.

    The footer recomposes after a focus change on a later refresh: the last pauses let it.
    """
    for _ in range(rounds):
        # A failed worker is the app's to report (tests assert on its notification), not ours.
        with contextlib.suppress(WorkerFailed):
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    for _ in range(3):
        await pilot.pause()
