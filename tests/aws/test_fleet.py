"""The sample fleet: reproducible, created once, and cleaned up without touching anything else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from iot_tui.aws import fleet, registry
from tests.conftest import FakeClock

NOW = 1_780_000_000.0
POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}'


def run(events) -> fleet.Summary:
    summary = fleet.Summary()
    for event in events:
        summary.add(event)
    return summary


def test_definition_is_reproducible_and_as_specified():
    sample = fleet.sample_fleet(seed=42, now=NOW)
    assert sample == fleet.sample_fleet(seed=42, now=NOW)
    assert sample != fleet.sample_fleet(seed=43, now=NOW)
    assert list(sample.types) == ["SedanVehicle", "SUVVehicle", "TruckVehicle"]
    assert list(sample.groups) == ["CustomerFleet", "TestFleet", "MaintenanceFleet", "DealerFleet"]
    assert [t.name for t in sample.things] == [f"Vehicle-VIN-{i:03d}" for i in range(1, 21)]
    today = datetime.fromtimestamp(NOW, UTC).date()
    for thing in sample.things:
        assert thing.thing_type in sample.types and thing.group in sample.groups
        assert thing.attributes["country"] in fleet.COUNTRIES
        made = datetime.strptime(thing.attributes["manufacturingDate"], "%Y-%m-%d").date()
        assert 0 <= (today - made).days <= 365
        assert len(thing.attributes["customerId"]) == 36 and thing.attributes["customerId"][14] == "4"


def test_setup_creates_everything_once(clients):
    sample = fleet.sample_fleet(seed=1, now=NOW)
    first = run(fleet.setup(clients.iot, sample))
    assert first.ok
    assert {kind: dict(c) for kind, c in first.counts.items()} == {
        "thing type": {"created": 3}, "thing group": {"created": 4}, "thing": {"created": 20}}
    again = run(fleet.setup(clients.iot, sample))
    assert {kind: dict(c) for kind, c in again.counts.items()} == {
        "thing type": {"existed": 3}, "thing group": {"existed": 4}, "thing": {"existed": 20}}
    members = registry.pages(clients.iot.list_things_in_thing_group, "things", thingGroupName="TestFleet")
    assert sorted(members) == sorted(t.name for t in sample.things if t.group == "TestFleet")


def test_progress_events_count_up_to_the_total(clients):
    events = list(fleet.setup(clients.iot, fleet.sample_fleet(seed=2, now=NOW)))
    assert [e.step for e in events] == list(range(1, 28)) and {e.total for e in events} == {27}
    assert events[0].line() == "[1/27] CreateThingType SedanVehicle: created"


def test_cleanup_removes_only_sample_resources(clients, clock: FakeClock, tmp_path):
    iot = clients.iot
    sample = fleet.sample_fleet(seed=5, now=NOW)
    assert run(fleet.setup(iot, sample)).ok
    # Decoys: a thing of a sample type would block its deletion, so the decoy has its own type.
    iot.create_thing_type(thingTypeName="DecoyType")
    iot.create_thing(thingName="Decoy-1", thingTypeName="DecoyType")
    iot.create_thing_group(thingGroupName="DecoyGroup")
    iot.create_policy(policyName="SamplePolicy", policyDocument=POLICY)
    own = iot.create_keys_and_certificate(setAsActive=True)
    shared = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName="Vehicle-VIN-001", principal=own["certificateArn"])
    iot.attach_policy(policyName="SamplePolicy", target=own["certificateArn"])
    iot.attach_thing_principal(thingName="Vehicle-VIN-002", principal=shared["certificateArn"])
    iot.attach_thing_principal(thingName="Decoy-1", principal=shared["certificateArn"])
    (tmp_path / "Vehicle-VIN-001").mkdir()
    (tmp_path / "Vehicle-VIN-001" / "x.crt").write_text("pem")
    (tmp_path / "Decoy-1").mkdir()

    plan = fleet.discover(iot, sample)
    assert plan.certificates == [own["certificateArn"]]
    assert plan.shared_certificates == [shared["certificateArn"]]
    summary = run(fleet.cleanup(iot, sample, "skip", plan=plan, cert_root=tmp_path))
    assert summary.ok, summary.failures
    assert summary.counts["thing"]["deleted"] == 20 and summary.counts["certificate"]["deleted"] == 1
    assert summary.counts["policy"]["detached"] == 1
    assert summary.counts["thing type"]["skipped"] == 3

    assert [t["thingName"] for t in iot.list_things()["things"]] == ["Decoy-1"]
    assert [g["groupName"] for g in iot.list_thing_groups()["thingGroups"]] == ["DecoyGroup"]
    assert iot.describe_certificate(certificateId=shared["certificateId"])["certificateDescription"]["status"] == "ACTIVE"
    assert iot.list_principal_things(principal=shared["certificateArn"])["things"] == ["Decoy-1"]
    assert [p["policyName"] for p in iot.list_policies()["policies"]] == ["SamplePolicy"]
    assert not (tmp_path / "Vehicle-VIN-001").exists() and (tmp_path / "Decoy-1").exists()
    types = {t["thingTypeName"]: t["thingTypeMetadata"]["deprecated"] for t in registry.list_thing_types(iot)}
    assert types == {"DecoyType": False, "SedanVehicle": True, "SUVVehicle": True, "TruckVehicle": True}

    # Again, waiting out AWS's 5 minutes on the test clock: only the sample types go.
    again = list(fleet.cleanup(iot, sample, "wait", clock=clock, sleep=clock.advance))
    countdown = [e for e in again if e.kind == "countdown"]
    assert countdown and countdown[0].remaining == pytest.approx(300, abs=1)
    assert run(again).ok and run(again).counts["thing type"]["deleted"] == 3
    assert [t["thingTypeName"] for t in registry.list_thing_types(iot)] == ["DecoyType"]
    assert fleet.discover(iot, sample).empty


def test_types_now_reports_the_five_minute_rule(clients):
    sample = fleet.sample_fleet(seed=6, now=NOW)
    run(fleet.setup(clients.iot, sample))
    summary = run(fleet.cleanup(clients.iot, sample, "now"))
    assert [(e.action, e.error_code) for e in summary.failures] == [("DeleteThingType", "InvalidRequestException")] * 3
    assert summary.counts["thing"]["deleted"] == 20


def test_wait_can_be_cut_short(clients, clock):
    sample = fleet.sample_fleet(seed=7, now=NOW)
    run(fleet.setup(clients.iot, sample))
    control = fleet.WaitControl()

    def sleep(seconds: float) -> None:
        clock.advance(seconds)
        control.override = "skip"

    summary = run(fleet.cleanup(clients.iot, sample, "wait", clock=clock, sleep=sleep, control=control))
    assert summary.counts["thing type"] == {"deprecated": 3, "skipped": 3}


def test_setup_after_partial_cleanup_restores_deprecated_types(clients):
    sample = fleet.sample_fleet(seed=8, now=NOW)
    run(fleet.setup(clients.iot, sample))
    run(fleet.cleanup(clients.iot, sample, "skip"))
    summary = run(fleet.setup(clients.iot, sample))
    assert summary.ok and summary.counts["thing type"] == {"restored": 3}
    assert summary.counts["thing"] == {"created": 20}


class RefusingGroups:
    """The real client, except that CreateThingGroup is refused for one group."""

    def __init__(self, iot, refused: str):
        self.iot, self.refused = iot, refused

    def __getattr__(self, name):
        return getattr(self.iot, name)

    def create_thing_group(self, **kwargs):
        if kwargs["thingGroupName"] == self.refused:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "CreateThingGroup")
        return self.iot.create_thing_group(**kwargs)


def test_failures_are_events_and_the_rest_goes_on(clients):
    sample = fleet.sample_fleet(seed=9, now=NOW)
    summary = run(fleet.setup(RefusingGroups(clients.iot, "TestFleet"), sample))
    in_test_fleet = {t.name for t in sample.things if t.group == "TestFleet"}
    assert summary.counts["thing group"] == {"created": 3, "failed": 1}
    assert summary.counts["thing"] == {"created": 20 - len(in_test_fleet), "failed": len(in_test_fleet)}
    assert {e.resource for e in summary.failures if e.kind == "thing"} == in_test_fleet
    assert {e.error_code for e in summary.failures} == {"AccessDeniedException", "ResourceNotFoundException"}
