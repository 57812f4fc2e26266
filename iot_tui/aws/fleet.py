"""The sample fleet (3 types, 4 groups, 20 vehicles) and its idempotent setup and cleanup.

One definition serves the Fleet screen, `iot-tui fleet setup|cleanup` and the tests. Setup and
cleanup are generators of `FleetEvent`s so each caller renders progress its own way, and a
failure is an event, never a stop: the rest carries on.
"""

from __future__ import annotations

import random
import shutil
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

COUNTRIES = ("USA", "Germany", "Japan", "Canada", "Brazil", "UK", "France", "Australia", "India", "Mexico")
SEARCHABLE = ["customerId", "country", "manufacturingDate"]
THING_TYPES: dict[str, str] = {
    "SedanVehicle": "Passenger sedans",
    "SUVVehicle": "Sport utility vehicles",
    "TruckVehicle": "Light and heavy trucks",
}
THING_GROUPS: dict[str, str] = {
    "CustomerFleet": "Vehicles sold to customers",
    "TestFleet": "Vehicles testing new firmware",
    "MaintenanceFleet": "Vehicles in for maintenance",
    "DealerFleet": "Vehicles on dealer lots",
}
THING_COUNT = 20
# AWS: a thing type can be deleted 5 minutes after it was deprecated.
TYPE_DELETE_WAIT = 300.0
POLICY_GUIDANCE = ("Policies are never deleted by cleanup: they may serve other devices. List them with "
                   "`aws iot list-policies` and delete the ones you made with `aws iot delete-policy`.")
# Rough cost of the whole learning path on AWS, from the seed project's README.
AWS_COST_NOTE = ("This creates billable resources in your AWS account (about $0.17 for the whole "
                 "learning path); run cleanup when done.")

TypesMode = Literal["wait", "skip", "now"]
FAILED = "failed"


def thing_name(index: int) -> str:
    return f"Vehicle-VIN-{index:03d}"


SAMPLE_THING_NAMES = frozenset(thing_name(i) for i in range(1, THING_COUNT + 1))


@dataclass(frozen=True)
class SampleThing:
    name: str
    thing_type: str
    group: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Fleet:
    types: dict[str, str]
    groups: dict[str, str]
    things: list[SampleThing]


def sample_fleet(seed: int | None = None, now: float | None = None) -> Fleet:
    """The fleet, reproducible from a seed and a moment: tests and snapshots pass both."""
    rng = random.Random(seed)
    moment = time.time() if now is None else now
    things = []
    for index in range(1, THING_COUNT + 1):
        made = datetime.fromtimestamp(moment - rng.uniform(0, 365 * 86400), UTC)
        attributes = {
            "customerId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "country": rng.choice(COUNTRIES),
            "manufacturingDate": made.strftime("%Y-%m-%d"),
        }
        things.append(SampleThing(thing_name(index), rng.choice(list(THING_TYPES)),
                                  rng.choice(list(THING_GROUPS)), attributes))
    return Fleet(dict(THING_TYPES), dict(THING_GROUPS), things)


@dataclass(frozen=True)
class FleetEvent:
    """One step of setup or cleanup, as a progress bar, a log line and a summary count."""

    step: int
    total: int
    kind: str
    resource: str
    action: str
    outcome: str
    message: str = ""
    error_code: str | None = None
    remaining: float | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == FAILED

    def line(self) -> str:
        text = f"[{self.step}/{self.total}] {self.action} {self.resource}: {self.outcome}"
        if self.error_code:
            text += f" ({self.error_code})"
        return text + (f" - {self.message}" if self.message else "")


@dataclass
class Summary:
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[FleetEvent] = field(default_factory=list)

    def add(self, event: FleetEvent) -> None:
        if event.kind in ("note", "countdown"):
            return
        self.counts[event.kind][event.outcome] += 1
        if event.failed:
            self.failures.append(event)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class WaitControl:
    """Lets a user cut the 5-minute wait short: set `override` to "skip" or "now" from any thread."""

    override: TypesMode | None = None
    cancelled: Callable[[], bool] = lambda: False


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return error.response["Error"]["Code"]
    return type(error).__name__


def _message(error: Exception) -> str:
    if isinstance(error, ClientError):
        return error.response["Error"].get("Message", "")
    return str(error)


def _not_found(error: Exception) -> bool:
    return isinstance(error, ClientError) and _code(error) == "ResourceNotFoundException"


class _Steps:
    """Counts steps and turns a call into an event, catching what AWS raises."""

    def __init__(self, total: int):
        self.step = 0
        self.total = total

    def event(self, kind: str, resource: str, action: str, outcome: str, message: str = "",
              error: Exception | None = None, count: bool = True) -> FleetEvent:
        if count:
            self.step = min(self.step + 1, self.total)
        return FleetEvent(self.step, self.total, kind, resource, action, outcome,
                          message or (_message(error) if error else ""), _code(error) if error else None)

    def run(self, kind: str, resource: str, action: str, outcome: str, call: Callable[[], Any],
            count: bool = True) -> FleetEvent:
        try:
            call()
        except (ClientError, BotoCoreError) as error:
            return self.event(kind, resource, action, FAILED, error=error, count=count)
        return self.event(kind, resource, action, outcome, count=count)


# -- setup --


def setup(iot: Any, fleet: Fleet) -> Iterator[FleetEvent]:
    """Create what is missing; what exists is reported as existed, so re-running creates nothing twice."""
    steps = _Steps(len(fleet.types) + len(fleet.groups) + len(fleet.things))
    for name, description in fleet.types.items():
        yield _ensure_type(iot, steps, name, description)
    for name, description in fleet.groups.items():
        yield _ensure(steps, "thing group", name, "CreateThingGroup",
                      lambda n=name: iot.describe_thing_group(thingGroupName=n),
                      lambda n=name, d=description: iot.create_thing_group(
                          thingGroupName=n, thingGroupProperties={"thingGroupDescription": d}))
    for thing in fleet.things:
        event = _ensure(steps, "thing", thing.name, "CreateThing",
                        lambda t=thing: iot.describe_thing(thingName=t.name),
                        lambda t=thing: iot.create_thing(thingName=t.name, thingTypeName=t.thing_type,
                                                         attributePayload={"attributes": t.attributes}))
        if not event.failed:
            try:
                iot.add_thing_to_thing_group(thingGroupName=thing.group, thingName=thing.name)
            except (ClientError, BotoCoreError) as error:
                event = steps.event("thing", thing.name, "AddThingToThingGroup", FAILED, error=error, count=False)
        yield event


def _ensure(steps: _Steps, kind: str, name: str, action: str,
            describe: Callable[[], Any], create: Callable[[], Any]) -> FleetEvent:
    try:
        describe()
        return steps.event(kind, name, action, "existed")
    except ClientError as error:
        if not _not_found(error):
            return steps.event(kind, name, action, FAILED, error=error)
    except BotoCoreError as error:
        return steps.event(kind, name, action, FAILED, error=error)
    return steps.run(kind, name, action, "created", create)


def _ensure_type(iot: Any, steps: _Steps, name: str, description: str) -> FleetEvent:
    """A type deprecated by an earlier cleanup is restored rather than failing every thing of it."""
    try:
        found = iot.describe_thing_type(thingTypeName=name)
    except ClientError as error:
        if not _not_found(error):
            return steps.event("thing type", name, "CreateThingType", FAILED, error=error)
    except BotoCoreError as error:
        return steps.event("thing type", name, "CreateThingType", FAILED, error=error)
    else:
        if not (found.get("thingTypeMetadata") or {}).get("deprecated"):
            return steps.event("thing type", name, "CreateThingType", "existed")
        return steps.run("thing type", name, "DeprecateThingType", "restored",
                         lambda: iot.deprecate_thing_type(thingTypeName=name, undoDeprecate=True))
    return steps.run("thing type", name, "CreateThingType", "created", lambda: iot.create_thing_type(
        thingTypeName=name,
        thingTypeProperties={"thingTypeDescription": description, "searchableAttributes": SEARCHABLE}))


# -- cleanup --


@dataclass
class CleanupPlan:
    """What cleanup found: only sample resources, and certificates used by sample things alone."""

    things: list[str] = field(default_factory=list)
    attachments: list[tuple[str, str]] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)
    shared_certificates: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    errors: list[FleetEvent] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (len(self.attachments) + len(self.certificates) + len(self.things) + len(self.groups)
                + 2 * len(self.types))

    @property
    def empty(self) -> bool:
        return self.total == 0


def discover(iot: Any, fleet: Fleet) -> CleanupPlan:
    """Find the sample resources by name; a certificate counts only if no other thing uses it."""
    plan = CleanupPlan()
    names = {t.name for t in fleet.things}
    certificates: dict[str, bool] = {}
    discovery = _Steps(0)
    for thing in fleet.things:
        try:
            iot.describe_thing(thingName=thing.name)
            principals = _all(iot.list_thing_principals, "principals", thingName=thing.name)
        except (ClientError, BotoCoreError) as error:
            if not _not_found(error):
                plan.errors.append(discovery.event("thing", thing.name, "DescribeThing", FAILED, error=error))
            continue
        plan.things.append(thing.name)
        for principal in principals:
            plan.attachments.append((thing.name, principal))
            if ":cert/" in principal and principal not in certificates:
                try:
                    users = set(_all(iot.list_principal_things, "things", principal=principal))
                except (ClientError, BotoCoreError) as error:
                    plan.errors.append(discovery.event("certificate", principal, "ListPrincipalThings",
                                                       FAILED, error=error))
                    users = {"?"}
                certificates[principal] = users <= names
    plan.certificates = [arn for arn, sample in certificates.items() if sample]
    plan.shared_certificates = [arn for arn, sample in certificates.items() if not sample]
    for name in fleet.groups:
        if _exists(plan, discovery, "thing group", name, lambda n=name: iot.describe_thing_group(thingGroupName=n)):
            plan.groups.append(name)
    for name in fleet.types:
        if _exists(plan, discovery, "thing type", name, lambda n=name: iot.describe_thing_type(thingTypeName=n)):
            plan.types.append(name)
    return plan


def _exists(plan: CleanupPlan, steps: _Steps, kind: str, name: str, describe: Callable[[], Any]) -> bool:
    try:
        describe()
    except (ClientError, BotoCoreError) as error:
        if not _not_found(error):
            plan.errors.append(steps.event(kind, name, "Describe", FAILED, error=error))
        return False
    return True


def _all(call: Callable[..., dict], key: str, **kwargs: Any) -> list[Any]:
    from iot_tui.aws.registry import pages

    return list(pages(call, key, **kwargs))


def cleanup(iot: Any, fleet: Fleet, types: TypesMode = "wait", *, plan: CleanupPlan | None = None,
            type_wait: float = TYPE_DELETE_WAIT, clock: Callable[[], float] = time.time,
            sleep: Callable[[float], None] = time.sleep, cert_root: Path | None = None,
            control: WaitControl | None = None) -> Iterator[FleetEvent]:
    """Remove the sample resources in dependency order; safe to run again at any point."""
    plan = plan or discover(iot, fleet)
    control = control or WaitControl()
    steps = _Steps(max(plan.total, 1))
    yield from plan.errors
    for thing, principal in plan.attachments:
        yield steps.run("thing", thing, "DetachThingPrincipal", "detached",
                        lambda t=thing, p=principal: iot.detach_thing_principal(thingName=t, principal=p))
    for arn in plan.shared_certificates:
        yield steps.event("certificate", _cert_id(arn), "Keep", "skipped",
                          "also attached to things outside the sample fleet", count=False)
    for arn in plan.certificates:
        yield from _delete_certificate(iot, steps, arn)
    for thing in plan.things:
        event = steps.run("thing", thing, "DeleteThing", "deleted", lambda t=thing: iot.delete_thing(thingName=t))
        yield event
        if not event.failed and cert_root is not None and (cert_root / thing).is_dir():
            shutil.rmtree(cert_root / thing, ignore_errors=True)
            yield steps.event("files", str(cert_root / thing), "Remove", "deleted", count=False)
    for group in plan.groups:
        yield steps.run("thing group", group, "DeleteThingGroup", "deleted",
                        lambda g=group: iot.delete_thing_group(thingGroupName=g))
    deprecated = []
    for name in plan.types:
        event = steps.run("thing type", name, "DeprecateThingType", "deprecated",
                          lambda n=name: iot.deprecate_thing_type(thingTypeName=n))
        yield event
        if not event.failed:
            deprecated.append(name)
    yield from _delete_types(iot, steps, deprecated, types, type_wait, clock, sleep, control)
    yield steps.event("note", "policies", "Keep", "note", POLICY_GUIDANCE, count=False)


def _cert_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _delete_certificate(iot: Any, steps: _Steps, arn: str) -> Iterator[FleetEvent]:
    cert_id = _cert_id(arn)
    try:
        policies = [p["policyName"] for p in _all(iot.list_attached_policies, "policies", target=arn)]
    except (ClientError, BotoCoreError) as error:
        if _code(error) != "NotImplementedException":
            yield steps.event("policy", cert_id, "ListAttachedPolicies", FAILED, error=error, count=False)
        policies = []
    for policy in policies:
        yield steps.run("policy", f"{policy} from {cert_id[:12]}", "DetachPolicy", "detached",
                        lambda p=policy: iot.detach_policy(policyName=p, target=arn), count=False)
    try:
        iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
        iot.delete_certificate(certificateId=cert_id)
    except (ClientError, BotoCoreError) as error:
        yield steps.event("certificate", cert_id, "DeleteCertificate", FAILED, error=error)
        return
    yield steps.event("certificate", cert_id, "DeleteCertificate", "deleted")


def _delete_types(iot: Any, steps: _Steps, names: list[str], mode: TypesMode, type_wait: float,
                  clock: Callable[[], float], sleep: Callable[[float], None],
                  control: WaitControl) -> Iterator[FleetEvent]:
    if not names:
        return
    if mode == "wait":
        deadline = max(_deprecated_at(iot, name, clock) for name in names) + type_wait
        while clock() < deadline and control.override is None and not control.cancelled():
            remaining = deadline - clock()
            yield FleetEvent(steps.step, steps.total, "countdown", ", ".join(names), "Wait", "waiting",
                             f"AWS deletes a thing type 5 minutes after deprecation: {remaining:.0f} s left",
                             remaining=remaining)
            sleep(min(1.0, remaining))
        mode = control.override or ("skip" if control.cancelled() else "now")
    if mode == "skip":
        for name in names:
            yield steps.event("thing type", name, "DeleteThingType", "skipped",
                              "deprecated; run cleanup again after 5 minutes to delete it")
        return
    for name in names:
        yield steps.run("thing type", name, "DeleteThingType", "deleted",
                        lambda n=name: iot.delete_thing_type(thingTypeName=n))


def _deprecated_at(iot: Any, name: str, clock: Callable[[], float]) -> float:
    try:
        metadata = iot.describe_thing_type(thingTypeName=name).get("thingTypeMetadata") or {}
    except (ClientError, BotoCoreError):
        return clock()
    moment = metadata.get("deprecationDate")
    return moment.timestamp() if isinstance(moment, datetime) else clock()


def certificates_dir() -> Path:
    """Device files live in `<data dir>/certificates/<thing>/`; cleanup removes a deleted thing's folder."""
    import platformdirs

    return Path(platformdirs.user_data_dir("iot-tui")) / "certificates"
