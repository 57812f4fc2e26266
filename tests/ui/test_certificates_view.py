"""The Certificates view on the local core: the wizard (create, register own, bad files), the list's
actions, policies (templates, live validation, versions and diffs) and the simulator.
"""

from __future__ import annotations

import asyncio
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from awscrt.exceptions import AwsCrtError
from textual.widgets import DataTable, Input, OptionList, Select, Static, TextArea

from iot_tui.aws import certs, device_files, policies
from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.ui.screens.certificates import CertificatesView, CertListPane, PoliciesPane, WizardPane
from iot_tui.ui.widgets.dialogs import ConfirmScreen
from iot_tui.ui.widgets.pickers import ChoiceScreen, TypeIdScreen
from tests.aws.test_certs import mqtt_connect
from tests.conftest import client
from tests.ui.conftest import SIZE, build_app, settle, ui_target

FIXTURES = Path(__file__).parent / "fixtures"


def text_of(view, selector: str) -> str:
    return str(view.query_one(selector, Static).render())


async def open_tab(pilot, key: str):
    """Press 3 for the Certificates view, then show one of its sub-tabs."""
    await pilot.press("3")
    await settle(pilot)
    view = pilot.app.query_one(CertificatesView)
    view.action_show_tab(f"certificates-{key}")
    await settle(pilot)
    return view.current_pane()


async def pick_thing(pilot, wizard: WizardPane, name: str) -> None:
    """Search, Enter to reach the list, Enter to choose: as a user does."""
    wizard.query_one("#wizard-search", Input).focus()
    await pilot.press(*name[-3:], "enter")
    await pilot.press("down", "enter")
    await pilot.pause()
    assert wizard.thing() == name


def make_device(iot, target, root: Path, thing: str, policy: str | None = None) -> certs.CertificateResult:
    iot.create_thing(thingName=thing)
    if policy:
        policies.create_from_template(iot, policy, policies.template("basic-pubsub"), target.region,
                                      target.account_id)
    return certs.create_and_attach(iot, thing, target, root, policy)


async def test_wizard_creates_saves_0600_files_and_attaches(core, region, tmp_path):
    iot = client("iot", core, region)
    for name in ("Vehicle-VIN-001", "Vehicle-VIN-002"):
        iot.create_thing(thingName=name)
    app = build_app(core, region, cert_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_tab(pilot, "wizard")
        assert isinstance(wizard, WizardPane)
        await pilot.press("ctrl+s")
        assert "Pick a thing first" in text_of(wizard, "#wizard-problem")

        await pick_thing(pilot, wizard, "Vehicle-VIN-002")
        assert wizard.query_one("#wizard-things", OptionList).option_count == 1
        await pilot.press("ctrl+s")
        await settle(pilot)

        files = device_files.list_device_folders(tmp_path)
        assert [f.thing for f in files] == ["Vehicle-VIN-002"]
        assert stat.S_IMODE(files[0].key_path.stat().st_mode) == 0o600
        log = text_of(wizard, "#wizard-log")
        assert f"Files in {files[0].folder}" in log and f"0600  {files[0].key_path.name}" in log
        assert "CreateKeysAndCertificate" in log and "AttachThingPrincipal" in log
        assert "✔ 5 Policy" in text_of(wizard, "#wizard-steps")
        cert = iot.describe_certificate(certificateId=files[0].certificate_id)["certificateDescription"]
        assert cert["status"] == "ACTIVE"
        assert iot.list_principal_things(principal=cert["certificateArn"])["things"] == ["Vehicle-VIN-002"]
        operations = [call.operation for call in app.inspector.calls]
        assert operations.index("CreateKeysAndCertificate") < operations.index("AttachThingPrincipal")


async def test_wizard_registers_a_generated_certificate_with_a_template_policy(core, region, tmp_path):
    iot = client("iot", core, region)
    iot.create_thing(thingName="Vehicle-VIN-003")
    app = build_app(core, region, cert_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_tab(pilot, "wizard")
        await pick_thing(pilot, wizard, "Vehicle-VIN-003")
        wizard.query_one("#wizard-mode", Select).value = "generate"
        wizard.query_one("#wizard-policy", Select).value = "template:basic-pubsub"
        await pilot.pause()
        await pilot.press("ctrl+s")
        assert "Name the new policy" in text_of(wizard, "#wizard-problem")
        wizard.query_one("#wizard-policy-name", Input).value = "SdkSamples"
        await pilot.press("ctrl+s")
        await settle(pilot)

        log = text_of(wizard, "#wizard-log")
        assert "GenerateCertificate" in log and "RegisterCertificateWithoutCA" in log and "AttachPolicy" in log
        (files,) = device_files.list_device_folders(tmp_path)
        arn = iot.describe_certificate(certificateId=files.certificate_id)["certificateDescription"]["certificateArn"]
        assert certs.attached_policies(iot, arn) == ["SdkSamples"]
        assert certs.attached_things(iot, arn) == ["Vehicle-VIN-003"]


async def test_wizard_keeps_input_when_pem_files_are_bad(core, region, tmp_path):
    iot = client("iot", core, region)
    iot.create_thing(thingName="Vehicle-VIN-004")
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello")
    app = build_app(core, region, cert_root=tmp_path / "certificates")
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_tab(pilot, "wizard")
        await pick_thing(pilot, wizard, "Vehicle-VIN-004")
        wizard.query_one("#wizard-mode", Select).value = "files"
        await pilot.pause()
        assert wizard.query_one("#wizard-cert-path", Input).display
        wizard.query_one("#wizard-cert-path", Input).value = "/nonexistent/device.crt"
        wizard.query_one("#wizard-key-path", Input).value = str(FIXTURES / "device.key")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "cannot read the certificate file /nonexistent/device.crt" in text_of(wizard, "#wizard-problem")
        assert wizard.query_one("#wizard-cert-path", Input).value == "/nonexistent/device.crt"

        wizard.query_one("#wizard-cert-path", Input).value = str(not_pem)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert str(not_pem) in text_of(wizard, "#wizard-problem")
        assert iot.list_certificates()["certificates"] == []

        wizard.query_one("#wizard-cert-path", Input).value = str(FIXTURES / "device.crt")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert text_of(wizard, "#wizard-problem") == ""
        assert "RegisterCertificateWithoutCA" in text_of(wizard, "#wizard-log")
        assert [c["status"] for c in iot.list_certificates()["certificates"]] == ["ACTIVE"]


async def test_policy_from_template_is_validated_live(core, region):
    iot = client("iot", core, region)
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tab(pilot, "policies")
        assert isinstance(pane, PoliciesPane)
        pane.query_one("#policy-template", Select).value = "basic-pubsub"
        await pilot.pause()
        assert "the SDK samples" in text_of(pane, "#template-description")
        assert "Document is valid" in text_of(pane, "#policy-problems")
        editor = pane.query_one("#policy-editor", TextArea)
        broken = editor.text.replace('"Effect": "Allow",', '"Effect": "Allow"', 1)
        editor.text = broken
        await pilot.pause()
        assert "error: line 6, column 7: invalid JSON: Expecting ',' delimiter" in text_of(pane, "#policy-problems")

        pane.query_one("#policy-name", Input).value = "Broken"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert iot.list_policies()["policies"] == []
        assert editor.text == broken

        pane.query_one("#policy-template", Select).value = "full-learning"
        await pilot.pause()
        assert "warning: line 6, column 17" in text_of(pane, "#policy-problems")
        pane.query_one("#policy-name", Input).value = "Learning"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#yes")
        await settle(pilot)
        assert [p["policyName"] for p in iot.list_policies()["policies"]] == ["Learning"]
        assert pane.query_one("#policies-table", DataTable).row_count == 1


async def test_policy_versions_diff_and_default(core, region):
    iot = client("iot", core, region)
    policies.create_from_template(iot, "Samples", policies.template("basic-pubsub"), region, "000000000000")
    app = build_app(core, region)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tab(pilot, "policies")
        table = pane.query_one("#policies-table", DataTable)
        table.focus()
        await pilot.press("enter")
        await settle(pilot)
        editor = pane.query_one("#policy-editor", TextArea)
        assert "sdk/test/*" in editor.text
        editor.text = editor.text.replace("sdk/test/*", "sdk/fleet/*")
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert [v.version_id for v in pane.versions] == ["1", "2"]
        diff = text_of(pane, "#policy-diff")
        assert "--- Samples v1" in diff and "+++ Samples v2" in diff
        assert '-      "Resource": "arn:aws:iot:' in diff and "sdk/fleet/*" in diff

        versions = pane.query_one("#versions-table", DataTable)
        versions.focus()
        await pilot.press("up", "ctrl+t")
        await settle(pilot)
        assert iot.get_policy(policyName="Samples")["defaultVersionId"] == "1"
        assert pane.versions[0].is_default


async def test_simulator_allows_and_denies_with_the_deciding_statement(core, region, tmp_path):
    iot = client("iot", core, region)
    app = build_app(core, region, cert_root=tmp_path)
    made = make_device(iot, app.clients.target, tmp_path, "Vehicle-VIN-005", "Samples")
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tab(pilot, "simulator")
        assert pane.query_one("#sim-certificate", Select).value == made.certificate_arn
        pane.query_one("#sim-client-id", Input).value = "Vehicle-VIN-005"
        await pilot.press("f5")
        await settle(pilot)
        result = text_of(pane, "#sim-result")
        assert result.startswith("Allowed  iot:Connect on arn:aws:iot:")
        assert "deciding: policy Samples, statement 1, Allow" in result

        pane.query_one("#sim-action", Select).value = "Publish"
        await pilot.pause()
        assert pane.query_one("#sim-resource", Input).placeholder == "topic"
        pane.query_one("#sim-resource", Input).value = "elsewhere/x"
        pane.query_one("#sim-resource", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        result = text_of(pane, "#sim-result")
        assert result.startswith("Denied  iot:Publish") and "denied by default" in result

        pane.query_one("#sim-action", Select).value = "UpdateThingShadow"
        pane.query_one("#sim-resource", Input).value = "Vehicle-VIN-005"
        await pilot.press("f5")
        await settle(pilot)
        assert "by local evaluation" in text_of(pane, "#sim-result")


async def test_list_deactivates_revokes_and_attaches_policies(core, region, tmp_path):
    iot = client("iot", core, region)
    app = build_app(core, region, cert_root=tmp_path)
    made = make_device(iot, app.clients.target, tmp_path, "Vehicle-VIN-006", "Samples")
    policies.create_policy(iot, "Extra", policies.template("basic-pubsub").render(region, "000000000000"))

    def status() -> str:
        return iot.describe_certificate(certificateId=made.certificate_id)["certificateDescription"]["status"]

    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tab(pilot, "list")
        assert isinstance(pane, CertListPane)
        assert pane.selected().things == ["Vehicle-VIN-006"]
        await pilot.press("d")
        await settle(pilot)
        assert status() == "INACTIVE" and pane.selected().status == "INACTIVE"
        await pilot.press("a")
        await settle(pilot)
        assert status() == "ACTIVE"

        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("enter")
        await settle(pilot)
        first, kept = pane.selected().policies
        assert sorted([first, kept]) == ["Extra", "Samples"]
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("enter")  # the first one listed
        await settle(pilot)
        assert pane.selected().policies == [kept]

        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert certs.REVOKE_WARNING in str(app.screen.query_one(".dialog-body", Static).render())
        await pilot.click("#no")
        await settle(pilot)
        assert status() == "ACTIVE"
        await pilot.press("v")
        await pilot.pause()
        await pilot.click("#yes")
        await settle(pilot)
        assert status() == "REVOKED"


async def test_safe_delete_asks_for_the_id_outside_the_sample_fleet(core, region, tmp_path):
    iot = client("iot", core, region)
    app = build_app(core, region, cert_root=tmp_path)
    made = make_device(iot, app.clients.target, tmp_path, "my-own-sensor", "Samples")
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tab(pilot, "list")
        await pilot.press("delete")
        await pilot.pause()
        await pilot.click("#yes")
        await settle(pilot)
        assert isinstance(app.screen, TypeIdScreen)
        await pilot.press(*"wrong", "enter")
        await pilot.pause()
        assert "not the certificate id" in str(app.screen.query_one("#type-id-problem", Static).render())
        app.screen.query_one("#type-id", Input).value = made.certificate_id
        await pilot.press("enter")
        await settle(pilot)
        assert iot.list_certificates()["certificates"] == []
        assert not made.files.folder.exists()
        assert pane.query_one("#certs-table", DataTable).row_count == 0
        assert "No certificates yet" in text_of(pane, "#cert-detail")


async def test_safe_delete_of_a_sample_fleet_certificate_needs_one_confirm(core, region, tmp_path):
    iot = client("iot", core, region)
    app = build_app(core, region, cert_root=tmp_path)
    make_device(iot, app.clients.target, tmp_path, "Vehicle-VIN-007")
    async with app.run_test(size=SIZE) as pilot:
        await open_tab(pilot, "list")
        await pilot.press("delete")
        await pilot.pause()
        await pilot.click("#yes")
        await settle(pilot)
        assert not isinstance(app.screen, TypeIdScreen)
        assert iot.list_certificates()["certificates"] == []
        assert iot.list_thing_principals(thingName="Vehicle-VIN-007")["principals"] == []


async def test_wizard_certificate_connects_and_is_refused_once_deactivated(core, region, tmp_path):
    iot = client("iot", core, region)
    iot.create_thing(thingName="Vehicle-VIN-008")
    app = build_app(core, region, cert_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_tab(pilot, "wizard")
        await pick_thing(pilot, wizard, "Vehicle-VIN-008")
        wizard.query_one("#wizard-policy", Select).value = "template:full-learning"
        wizard.query_one("#wizard-policy-name", Input).value = "Learning"
        await pilot.pause()
        assert policies.PRODUCTION_WARNING in text_of(wizard, "#wizard-policy-note")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # the production warning, before any call
        assert policies.PRODUCTION_WARNING in str(app.screen.query_one(".dialog-body", Static).render())
        assert iot.list_policies()["policies"] == []
        await pilot.click("#yes")
        await settle(pilot)
        (files,) = device_files.list_device_folders(tmp_path)
        await asyncio.to_thread(mqtt_connect, core, files, "Vehicle-VIN-008")

        pane = await open_tab(pilot, "list")
        await pilot.press("d")
        await settle(pilot)
        assert pane.selected().status == "INACTIVE"
        with pytest.raises(AwsCrtError):
            await asyncio.to_thread(mqtt_connect, core, files, "Vehicle-VIN-008")


async def test_wizard_aws_error_keeps_choices_and_creates_nothing(core, region, tmp_path):
    iot = client("iot", core, region)
    iot.create_thing(thingName="Vehicle-VIN-009")
    app = build_app(core, region, cert_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_tab(pilot, "wizard")
        await pick_thing(pilot, wizard, "Vehicle-VIN-009")
        wizard.query_one("#wizard-policy", Select).value = "template:basic-pubsub"
        wizard.query_one("#wizard-policy-name", Input).value = "SdkSamples"
        iot.delete_thing(thingName="Vehicle-VIN-009")  # gone behind the wizard's back
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Stopped by ResourceNotFoundException" in text_of(wizard, "#wizard-log")
        assert "▶ 2 Certificate" in text_of(wizard, "#wizard-steps")
        assert any("ResourceNotFoundException" in (n.title or "") for n in app._notifications)
        assert wizard.query_one("#wizard-policy-name", Input).value == "SdkSamples"
        assert iot.list_policies()["policies"] == [] and iot.list_certificates()["certificates"] == []


async def test_on_aws_the_wizard_asks_before_creating(core, region, tmp_path, monkeypatch):
    """A target of kind "aws" (billable) that talks to the local core: the confirm comes first."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_ACCESS_KEY)
    target = replace(ui_target(core, region), kind="aws", profile=None)
    assert target.billable
    iot = client("iot", core, region)
    iot.create_thing(thingName="Vehicle-VIN-010")
    app = build_app(core, region, cert_root=tmp_path, target=target)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_tab(pilot, "wizard")
        await pick_thing(pilot, wizard, "Vehicle-VIN-010")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#no")
        await settle(pilot)
        assert iot.list_certificates()["certificates"] == []
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.click("#yes")
        await settle(pilot)
        (files,) = device_files.list_device_folders(tmp_path, ca=device_files.AMAZON_ROOT_CA)
        assert files.ca_path is not None and files.ca_path.name == device_files.AMAZON_ROOT_CA
