"""AWS IoT policies: versions, attachments to certificates, thing groups and Cognito identities,
the effective policies of a device, and TestAuthorization, with AWS's rules and messages.

Messages quoted from AWS (seen in public tool output): CreatePolicy's duplicate name, DeletePolicy's
two conflicts (the "than than" is AWS's), the versions limit, "Policy not found" and the missing
certificate principal. Where AWS's text is not known, the message says plainly what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from iot_tui.iotcore.policy import (
    AuthContext,
    MalformedPolicyError,
    Policy,
    evaluate,
    parse_policy,
)
from iot_tui.local.http.errors import (
    ApiError,
    already_exists,
    delete_conflict,
    found,
    invalid_request,
    limit_exceeded,
    not_found,
)
from iot_tui.local.http.ops import Params, RequestContext, operation
from iot_tui.local.store.policies import (
    ConnectionThing,
    PolicyRecord,
    PolicyVersionRecord,
    TargetKey,
)

MAX_VERSIONS = 5
# AWS IoT Core quotas: policies attached to one certificate or Cognito identity (thing groups
# are held to the same number).
MAX_POLICIES_PER_TARGET = 10
DEFAULT_PAGE = 50
ACTIONS = {
    "PUBLISH": "iot:Publish",
    "SUBSCRIBE": "iot:Subscribe",
    "RECEIVE": "iot:Receive",
    "CONNECT": "iot:Connect",
}
# SQLite integers are 64-bit: a larger version id or marker cannot name a row.
_MAX_ROW_ID = 2**63 - 1
# A Cognito identity id, as Cognito's model spells it: `<region>:<uuid>`.
_COGNITO_ID = re.compile(r"[\w-]+:[0-9a-f-]+")


def policy_arn(ctx: RequestContext, name: str) -> str:
    return ctx.arn(f"policy/{name}")


def _policy_ref(ctx: RequestContext, name: str) -> dict:
    return {"policyName": name, "policyArn": policy_arn(ctx, name)}


def _require_policy(ctx: RequestContext, name: str) -> PolicyRecord:
    return found(ctx.store.get_policy(ctx.region, name), "Policy not found")


def _require_version(ctx: RequestContext, name: str, version_id: str) -> PolicyVersionRecord:
    number = int(version_id)
    version = None
    if number <= _MAX_ROW_ID:
        version = ctx.store.get_policy_version(ctx.region, name, number)
    if version is None:
        raise not_found(f"Policy version {version_id} of policy {name} not found")
    return version


def _parse(document: str) -> Policy:
    try:
        return parse_policy(document)
    except MalformedPolicyError as error:
        raise ApiError("MalformedPolicyException", str(error), 400) from None


# -- markers: keyset pages on the attachment or creation sequence --


class _Sequenced(Protocol):
    @property
    def seq(self) -> int: ...


_Row = TypeVar("_Row", bound=_Sequenced)


def _after(marker: str | None) -> int | None:
    if not marker:
        return None
    try:
        seq = int(base64.b64decode(marker, validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        seq = -1
    if not 0 <= seq <= _MAX_ROW_ID:
        raise invalid_request("The marker is not valid")
    return seq


def _page(rows: Sequence[_Row], size: int) -> tuple[Sequence[_Row], str | None]:
    """`rows` were fetched with `size + 1`: an extra row means another page follows."""
    if len(rows) <= size:
        return rows, None
    rows = rows[:size]
    return rows, base64.b64encode(str(rows[-1].seq).encode()).decode()


# -- targets: certificates, thing groups, Cognito identities --


@dataclass(frozen=True)
class Target:
    text: str
    kind: str  # cert | thinggroup | cognito
    name: str  # certificate id, group name or identity id

    @property
    def key(self) -> TargetKey:
        return (self.kind, self.name)


def _parse_target(text: str) -> Target | None:
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        if len(parts) == 6 and parts[2] == "iot":
            kind, _, name = parts[5].partition("/")
            if kind in ("cert", "thinggroup") and name and "/" not in name:
                return Target(text, kind, name)
        return None
    return Target(text, "cognito", text) if _COGNITO_ID.fullmatch(text) else None


def _require_target(ctx: RequestContext, text: str, legacy: bool = False) -> Target:
    """A well-formed target that exists in this region; the legacy principal APIs take
    certificates and Cognito identities only."""
    target = _parse_target(text)
    if legacy and (target is None or target.kind == "thinggroup"):
        if text.startswith("arn:"):
            raise invalid_request("The given ARN does not represent a cert")
        raise invalid_request(f"Invalid principal: {text}")
    if target is None:
        raise invalid_request(
            f"Invalid target: {text} is not a certificate ARN, a thing group ARN "
            "or a Cognito identity ID"
        )
    if target.kind == "cert" and not ctx.store.certificate_registered(ctx.region, text):
        raise not_found("The certificate given in the principal does not exist.")
    if target.kind == "thinggroup" and (
        text != ctx.arn(f"thinggroup/{target.name}")
        or not ctx.store.thing_group_registered(ctx.region, target.name)
    ):
        raise not_found(f"Thing Group {target.name} cannot be found.")
    return target


def _principal_keys(ctx: RequestContext, target: Target) -> list[TargetKey]:
    """A thing group's policies include those inherited from its ancestors."""
    if target.kind == "thinggroup":
        return [("thinggroup", g) for g in ctx.store.group_lineage(ctx.region, [target.name])]
    return [target.key]


def _thing_group_keys(ctx: RequestContext, thing: str) -> list[TargetKey]:
    """The thing's groups and their ancestors: group policies apply to the things below."""
    return [("thinggroup", g) for g in ctx.store.groups_of_things(ctx.region, [thing])]


def _policy_names(ctx: RequestContext, keys: Sequence[TargetKey]) -> list[str]:
    return [a.policy for a in ctx.store.policies_of_targets(ctx.region, keys)]


def _attach(ctx: RequestContext, name: str, target: Target) -> None:
    """Attaching twice is not an error; the 11th policy on a target is."""
    if ctx.store.is_policy_attached(ctx.region, name, target.text):
        return
    if ctx.store.count_target_policies(ctx.region, target.key) >= MAX_POLICIES_PER_TARGET:
        raise limit_exceeded(
            f"The target {target.text} already has the maximum number of attached policies "
            f"({MAX_POLICIES_PER_TARGET})"
        )
    ctx.store.attach_policy(ctx.region, name, target.text, target.key)


# -- policies and versions --


@operation("iot", "CreatePolicy")
def create_policy(ctx: RequestContext, p: Params) -> dict:
    name, document = p["policyName"], p["policyDocument"]
    _parse(document)
    arn = policy_arn(ctx, name)
    with ctx.store.transaction():
        if ctx.store.get_policy(ctx.region, name) is not None:
            raise already_exists(
                f"Policy cannot be created - name already exists (name={name})", name, arn
            )
        ctx.store.insert_policy(ctx.region, name, document, ctx.now())
        if p.get("tags"):
            ctx.store.set_tags(ctx.region, arn, p["tags"])
    return {
        "policyName": name, "policyArn": arn, "policyDocument": document, "policyVersionId": "1",
    }


@operation("iot", "GetPolicy")
def get_policy(ctx: RequestContext, p: Params) -> dict:
    policy = _require_policy(ctx, p["policyName"])
    return {
        "policyName": policy.name,
        "policyArn": policy_arn(ctx, policy.name),
        "policyDocument": policy.document,
        "defaultVersionId": str(policy.default_version),
        "creationDate": policy.creation_date,
        "lastModifiedDate": policy.last_modified,
        "generationId": policy.generation_id,
    }


@operation("iot", "ListPolicies")
def list_policies(ctx: RequestContext, p: Params) -> dict:
    """Newest first unless `ascendingOrder` (the model: "ascending creation order")."""
    size = p.get("pageSize") or DEFAULT_PAGE
    rows = ctx.store.list_policies(
        ctx.region, _after(p.get("marker")), size + 1, bool(p.get("ascendingOrder"))
    )
    policies, marker = _page(rows, size)
    return {"policies": [_policy_ref(ctx, policy.name) for policy in policies],
            "nextMarker": marker}


@operation("iot", "DeletePolicy")
def delete_policy(ctx: RequestContext, p: Params) -> dict:
    name = p["policyName"]
    with ctx.store.transaction():
        _require_policy(ctx, name)
        if ctx.store.policy_has_targets(ctx.region, name):
            raise delete_conflict(
                f"The policy cannot be deleted as the policy is attached to one or more principals "
                f"(name={name})"
            )
        if len(ctx.store.list_policy_versions(ctx.region, name)) > 1:
            raise delete_conflict(
                "The policy cannot be deleted as versions other than than default version exist"
            )
        ctx.store.delete_policy(ctx.region, name)
        ctx.store.delete_tags_for(ctx.region, policy_arn(ctx, name))
    return {}


@operation("iot", "CreatePolicyVersion")
def create_policy_version(ctx: RequestContext, p: Params) -> dict:
    name, document = p["policyName"], p["policyDocument"]
    set_default = bool(p.get("setAsDefault"))
    with ctx.store.transaction():
        _require_policy(ctx, name)
        _parse(document)
        if len(ctx.store.list_policy_versions(ctx.region, name)) >= MAX_VERSIONS:
            raise ApiError(
                "VersionsLimitExceededException",
                f"The policy {name} already has the maximum number of versions ({MAX_VERSIONS})",
                409,
            )
        version = ctx.store.add_policy_version(ctx.region, name, document, ctx.now(), set_default)
    return {
        "policyArn": policy_arn(ctx, name),
        "policyDocument": document,
        "policyVersionId": str(version),
        "isDefaultVersion": set_default,
    }


@operation("iot", "GetPolicyVersion")
def get_policy_version(ctx: RequestContext, p: Params) -> dict:
    name = p["policyName"]
    _require_policy(ctx, name)
    version = _require_version(ctx, name, p["policyVersionId"])
    return {
        "policyArn": policy_arn(ctx, name),
        "policyName": name,
        "policyDocument": version.document,
        "policyVersionId": str(version.version),
        "isDefaultVersion": version.is_default,
        "creationDate": version.creation_date,
        "lastModifiedDate": version.last_modified,
        "generationId": version.generation_id,
    }


@operation("iot", "ListPolicyVersions")
def list_policy_versions(ctx: RequestContext, p: Params) -> dict:
    name = p["policyName"]
    _require_policy(ctx, name)
    return {
        "policyVersions": [
            {
                "versionId": str(v.version),
                "isDefaultVersion": v.is_default,
                "createDate": v.creation_date,
            }
            for v in ctx.store.list_policy_versions(ctx.region, name)
        ]
    }


@operation("iot", "SetDefaultPolicyVersion")
def set_default_policy_version(ctx: RequestContext, p: Params) -> dict:
    name = p["policyName"]
    with ctx.store.transaction():
        _require_policy(ctx, name)
        version = _require_version(ctx, name, p["policyVersionId"])
        ctx.store.set_default_policy_version(ctx.region, name, version.version, ctx.now())
    return {}


@operation("iot", "DeletePolicyVersion")
def delete_policy_version(ctx: RequestContext, p: Params) -> dict:
    name = p["policyName"]
    with ctx.store.transaction():
        _require_policy(ctx, name)
        version = _require_version(ctx, name, p["policyVersionId"])
        if version.is_default:
            raise delete_conflict("Cannot delete the default version of a policy")
        ctx.store.delete_policy_version(ctx.region, name, version.version)
    return {}


# -- attachments --


@operation("iot", "AttachPolicy")
def attach_policy(ctx: RequestContext, p: Params) -> dict:
    name = p["policyName"]
    with ctx.store.transaction():
        _require_policy(ctx, name)
        _attach(ctx, name, _require_target(ctx, p["target"]))
    return {}


@operation("iot", "DetachPolicy")
def detach_policy(ctx: RequestContext, p: Params) -> dict:
    """AWS models no ResourceNotFoundException here: detaching what is not attached is a no-op."""
    if _parse_target(p["target"]) is None:
        raise invalid_request(f"Invalid target: {p['target']}")
    with ctx.store.transaction():
        ctx.store.detach_policy(ctx.region, p["policyName"], p["target"])
    return {}


@operation("iot", "ListAttachedPolicies")
def list_attached_policies(ctx: RequestContext, p: Params) -> dict:
    """`recursive` adds what a thing group inherits from its ancestors."""
    target = _require_target(ctx, p["target"])
    keys = _principal_keys(ctx, target) if p.get("recursive") else [target.key]
    size = p.get("pageSize") or DEFAULT_PAGE
    rows, marker = _page(
        ctx.store.policies_of_targets(ctx.region, keys, _after(p.get("marker")), size + 1), size
    )
    return {"policies": [_policy_ref(ctx, a.policy) for a in rows], "nextMarker": marker}


@operation("iot", "ListTargetsForPolicy")
def list_targets_for_policy(ctx: RequestContext, p: Params) -> dict:
    name = p["policyName"]
    _require_policy(ctx, name)
    size = p.get("pageSize") or DEFAULT_PAGE
    rows, marker = _page(
        ctx.store.targets_of_policy(ctx.region, name, _after(p.get("marker")), size + 1), size
    )
    return {"targets": [a.target for a in rows], "nextMarker": marker}


# -- the legacy principal APIs (deprecated by AWS, still answered) --


@operation("iot", "AttachPrincipalPolicy")
def attach_principal_policy(ctx: RequestContext, p: Params) -> dict:
    name = p["policyName"]
    with ctx.store.transaction():
        _require_policy(ctx, name)
        _attach(ctx, name, _require_target(ctx, p["principal"], legacy=True))
    return {}


@operation("iot", "DetachPrincipalPolicy")
def detach_principal_policy(ctx: RequestContext, p: Params) -> dict:
    name = p["policyName"]
    with ctx.store.transaction():
        _require_policy(ctx, name)
        target = _require_target(ctx, p["principal"], legacy=True)
        ctx.store.detach_policy(ctx.region, name, target.text)
    return {}


@operation("iot", "ListPrincipalPolicies")
def list_principal_policies(ctx: RequestContext, p: Params) -> dict:
    target = _require_target(ctx, p["principal"])
    size = p.get("pageSize") or DEFAULT_PAGE
    rows = ctx.store.policies_of_targets(
        ctx.region, [target.key], _after(p.get("marker")), size + 1, bool(p.get("ascendingOrder"))
    )
    attachments, marker = _page(rows, size)
    return {"policies": [_policy_ref(ctx, a.policy) for a in attachments], "nextMarker": marker}


@operation("iot", "ListPolicyPrincipals")
def list_policy_principals(ctx: RequestContext, p: Params) -> dict:
    """Unlike ListTargetsForPolicy, AWS answers an unknown policy with an empty list."""
    size = p.get("pageSize") or DEFAULT_PAGE
    after, ascending = _after(p.get("marker")), bool(p.get("ascendingOrder"))
    rows = ctx.store.targets_of_policy(ctx.region, p["policyName"], after, size + 1, ascending)
    attachments, marker = _page(rows, size)
    return {"principals": [a.target for a in attachments], "nextMarker": marker}


# -- what a device may do --


def _require_thing(ctx: RequestContext, name: str) -> ConnectionThing:
    return found(ctx.store.registered_thing(ctx.region, name), f"Thing {name} cannot be found.")


@operation("iot", "GetEffectivePolicies")
def get_effective_policies(ctx: RequestContext, p: Params) -> dict:
    """The principal's policies, then those of the thing's groups and their ancestors."""
    names: list[str] = []
    if p.get("principal"):
        names += _policy_names(ctx, _principal_keys(ctx, _require_target(ctx, p["principal"])))
    if p.get("thingName"):
        thing = _require_thing(ctx, p["thingName"])
        names += _policy_names(ctx, _thing_group_keys(ctx, thing.name))
    return {
        "effectivePolicies": [
            {**_policy_ref(ctx, name), "policyDocument": document}
            for name, document in ctx.store.default_documents(ctx.region, names)
        ]
    }


def _auth_context(ctx: RequestContext, target: Target | None, client_id: str | None) -> AuthContext:
    """The connection a device would make: its client id and the thing it acts as."""
    thing = None
    if target is not None and target.kind != "thinggroup":
        thing = ctx.store.connection_thing(ctx.region, target.text, client_id)
    return AuthContext(
        region=ctx.region,
        account_id=ctx.account_id,
        client_id=client_id,
        thing_name=thing.name if thing else None,
        thing_type_name=thing.thing_type if thing else None,
        thing_attributes=thing.attributes if thing else {},
        is_attached=thing is not None,
        certificate_id=target.name if target is not None and target.kind == "cert" else None,
    )


def _auth_result(
    ctx: RequestContext, info: dict, policies: Sequence[tuple[str, Policy]], auth: AuthContext
) -> dict:
    """One authInfo: every resource must be allowed; one explicit Deny denies the lot."""
    if "actionType" not in info:
        raise invalid_request("authInfos.actionType is required")
    action = ACTIONS[info["actionType"]]
    decisions = [evaluate(policies, action, resource, auth) for resource in info["resources"]]
    allowing = list(dict.fromkeys(name for d in decisions for name in d.allowing))
    denying = list(dict.fromkeys(name for d in decisions for name in d.denying))
    silent = [name for name, _ in policies if name not in allowing and name not in denying]
    if any(d.decision == "EXPLICIT_DENY" for d in decisions):
        decision = "EXPLICIT_DENY"
    elif decisions and all(d.allowed for d in decisions):
        decision = "ALLOWED"
    else:
        decision = "IMPLICIT_DENY"
    return {
        "authInfo": info,
        "allowed": {"policies": [_policy_ref(ctx, n) for n in allowing]},
        "denied": {
            "implicitDeny": {"policies": [_policy_ref(ctx, n) for n in silent]},
            "explicitDeny": {"policies": [_policy_ref(ctx, n) for n in denying]},
        },
        "authDecision": decision,
        "missingContextValues": [],
    }


@operation("iot", "TestAuthorization")
def test_authorization(ctx: RequestContext, p: Params) -> dict:
    """Evaluate the principal's policies (default versions) as the broker would, with the
    thing policy variables of the thing the principal connects as under `clientId`."""
    target = _require_target(ctx, p["principal"]) if p.get("principal") else None
    auth = _auth_context(ctx, target, p.get("clientId"))
    names = _policy_names(ctx, _principal_keys(ctx, target)) if target else []
    if auth.thing_name:
        names += _policy_names(ctx, _thing_group_keys(ctx, auth.thing_name))
    for added in p.get("policyNamesToAdd", []):
        _require_policy(ctx, added)
    skipped = set(p.get("policyNamesToSkip", []))
    names = [n for n in names + p.get("policyNamesToAdd", []) if n not in skipped]
    documents = ctx.store.default_documents(ctx.region, names)
    policies = [(name, parse_policy(document)) for name, document in documents]
    return {"authResults": [_auth_result(ctx, info, policies, auth) for info in p["authInfos"]]}
