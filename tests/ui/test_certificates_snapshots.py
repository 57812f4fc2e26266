"""The Certificates view at 120x40 with fixed data: a core of its own whose clock never moves (dates
are shown), fixture PEMs (so certificate ids are fixed), a fixed files folder, a region per snapshot.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static, TextArea

from iot_tui.aws import certs, fleet, policies
from iot_tui.local.server import LocalServer
from tests.conftest import FakeClock, start_core
from tests.ui.conftest import NOW, SEED, SIZE, build_app, settle, wait_until
from tests.ui.test_certificates_view import FIXTURES, open_tab

FILES = Path("/tmp/iot-tui-snapshots/certificates")
PEMS = Path("/tmp/iot-tui-snapshots/pem")  # the paths typed show on screen: the same wherever the repo is


@pytest.fixture(scope="module")
def snap_core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = start_core(tmp_path_factory.mktemp("certificates-core"), clock=FakeClock(NOW))
    yield server
    server.stop_thread()


@pytest.fixture
def files_root() -> Path:
    shutil.rmtree(FILES.parent, ignore_errors=True)
    shutil.copytree(FIXTURES, PEMS)
    return FILES


def fleet_app(core: LocalServer, region: str, root: Path, device: bool = False):
    """The sample fleet; with `device`, the fixture certificate on Vehicle-VIN-001 with a policy."""
    app = build_app(core, region, cert_root=root)
    iot, target = app.clients.iot, app.clients.target
    list(fleet.setup(iot, fleet.sample_fleet(SEED, NOW)))
    if device:
        policies.create_from_template(iot, "SdkSamples", policies.template("basic-pubsub"), target.region,
                                      target.account_id)
        pem = certs.load_certificate_files(FIXTURES / "device.crt", FIXTURES / "device.key")
        certs.register_own(iot, "Vehicle-VIN-001", target, root, pem=pem, policy_name="SdkSamples")
    return app


async def steady(pilot) -> None:
    """Workers done, cursors solid (a blinking cursor renders either way), tables laid out."""
    await settle(pilot)
    for screen in pilot.app.screen_stack:
        for widget in screen.query("Input, TextArea"):
            widget.cursor_blink = False
    await settle(pilot)


def test_certificates_list(snap_compare, snap_core, files_root):
    async def run_before(pilot):
        await open_tab(pilot, "list")
        await steady(pilot)

    app = fleet_app(snap_core, "us-snap-cert-list", files_root, device=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_certificates_revoke_warning(snap_compare, snap_core, files_root):
    async def run_before(pilot):
        await open_tab(pilot, "list")
        await pilot.press("v")
        await steady(pilot)

    app = fleet_app(snap_core, "us-snap-cert-revoke", files_root, device=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_wizard_thing_and_policy(snap_compare, snap_core, files_root):
    async def run_before(pilot):
        wizard = await open_tab(pilot, "wizard")
        wizard.query_one("#wizard-search", Input).focus()
        await pilot.press("0", "0", "enter", "down", "down")
        wizard.query_one("#wizard-policy", Select).value = "template:basic-pubsub"
        wizard.query_one("#wizard-policy-name", Input).value = "SdkSamples"
        await steady(pilot)

    assert snap_compare(fleet_app(snap_core, "us-snap-wizard-pick", files_root), terminal_size=SIZE,
                        run_before=run_before)


def test_wizard_bad_pem_file(snap_compare, snap_core, files_root):
    async def run_before(pilot):
        wizard = await open_tab(pilot, "wizard")
        wizard.query_one("#wizard-search", Input).focus()
        await pilot.press("enter", "down")
        wizard.query_one("#wizard-mode", Select).value = "files"
        wizard.query_one("#wizard-cert-path", Input).value = "/nonexistent/device.crt"
        wizard.query_one("#wizard-key-path", Input).value = "/nonexistent/device.key"
        await pilot.press("ctrl+s")
        await steady(pilot)

    assert snap_compare(fleet_app(snap_core, "us-snap-wizard-bad-pem", files_root), terminal_size=SIZE,
                        run_before=run_before)


def test_wizard_registered(snap_compare, snap_core, files_root):
    async def run_before(pilot):
        wizard = await open_tab(pilot, "wizard")
        wizard.query_one("#wizard-search", Input).focus()
        await pilot.press("enter", "down")
        wizard.query_one("#wizard-mode", Select).value = "files"
        wizard.query_one("#wizard-cert-path", Input).value = str(PEMS / "device.crt")
        wizard.query_one("#wizard-key-path", Input).value = str(PEMS / "device.key")
        await pilot.press("ctrl+s")
        await steady(pilot)

    assert snap_compare(fleet_app(snap_core, "us-snap-wizard-done", files_root), terminal_size=SIZE,
                        run_before=run_before)


def test_policy_editor_problem(snap_compare, snap_core, files_root):
    async def run_before(pilot):
        pane = await open_tab(pilot, "policies")
        pane.query_one("#policy-template", Select).value = "basic-pubsub"
        pane.query_one("#policy-name", Input).value = "SdkSamples"
        await settle(pilot)
        editor = pane.query_one("#policy-editor", TextArea)
        editor.text = editor.text.replace('"Effect": "Allow",', '"Effect": "Allow"', 1)
        await steady(pilot)

    assert snap_compare(build_app(snap_core, "us-snap-policy-editor", cert_root=files_root), terminal_size=SIZE,
                        run_before=run_before)


def test_policy_versions_diff(snap_compare, snap_core, files_root):
    async def run_before(pilot):
        pane = await open_tab(pilot, "policies")
        pane.query_one("#policies-table", DataTable).focus()
        await wait_until(pilot, lambda: "+++ SdkSamples v2" in str(pane.query_one("#policy-diff", Static).render()),
                         limit=5.0)
        await steady(pilot)

    app = fleet_app(snap_core, "us-snap-policy-diff", files_root, device=True)
    document = policies.version_document(app.clients.iot, "SdkSamples", "1")
    policies.create_version(app.clients.iot, "SdkSamples", document.replace("sdk/test/*", "sdk/fleet/*"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_simulator_result(snap_compare, snap_core, files_root):
    async def run_before(pilot):
        pane = await open_tab(pilot, "simulator")
        pane.query_one("#sim-action", Select).value = "Publish"
        pane.query_one("#sim-resource", Input).value = "sdk/test/python"
        pane.query_one("#sim-client-id", Input).value = "Vehicle-VIN-001"
        await pilot.press("f5")
        await steady(pilot)

    app = fleet_app(snap_core, "us-snap-simulator", files_root, device=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_safe_delete_asks_for_the_id(snap_compare, snap_core, files_root):
    async def run_before(pilot):
        await open_tab(pilot, "list")
        await pilot.press("delete")
        await settle(pilot)
        await pilot.click("#yes")
        await settle(pilot)
        await pilot.press(*"09af", "enter")
        await steady(pilot)

    app = build_app(snap_core, "us-snap-cert-delete", cert_root=files_root)
    app.clients.iot.create_thing(thingName="my-own-sensor")
    pem = certs.load_certificate_files(FIXTURES / "device.crt", FIXTURES / "device.key")
    certs.register_own(app.clients.iot, "my-own-sensor", app.clients.target, files_root, pem=pem)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
