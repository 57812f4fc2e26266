"""IAM roles and policies over IAM's query protocol: what the rules builder needs for a republish role.

IAM is global: every region's clients see the same roles. Messages are AWS's where known (seen
in public tool output): the missing role and role policy, the duplicate role, both DeleteRole
conflicts, the not-attachable and not-found policy ARNs, the policy-document errors and the
quota errors. Policy documents are returned URL-encoded (RFC 3986), as IAM does; boto3 and the
AWS CLI decode them into objects.

Not served: permissions boundaries, role tags after creation, policy versions beyond v1, and
the catalogue of AWS managed policies (any well-formed `arn:aws:iam::aws:policy/...` attaches).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from iot_tui.local.http.errors import ApiError
from iot_tui.local.http.ops import Params, RequestContext, operation
from iot_tui.local.store.iam import ManagedPolicyRecord, RoleRecord

DEFAULT_MAX_ITEMS = 100
DEFAULT_MAX_SESSION_DURATION = 3600
# IAM quotas (IAM and AWS STS quotas page), counted without white space as IAM counts them.
TRUST_POLICY_QUOTA = 2048  # "Role trust policy length"
ROLE_INLINE_POLICIES_QUOTA = 10240  # "Role policy size": all of a role's inline policies together
MANAGED_POLICY_QUOTA = 6144  # "Managed policy length"
ATTACHED_POLICIES_QUOTA = 10  # "Managed policies attached to an IAM role"
POLICY_VERSIONS = frozenset({"2008-10-17", "2012-10-17"})
STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
PRINCIPAL_KINDS = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})
_POLICY_ARN = re.compile(r"arn:aws:iam::(?P<account>aws|\d{12}):policy(?P<path>/(?:[^/]+/)*)(?P<name>[\w+=,.@-]+)")
_ACCOUNT_PRINCIPAL = re.compile(r"\d{12}|arn:aws:iam::\d{12}:root")
_VENDOR = re.compile(r"[a-zA-Z0-9.-]+|\*")
_WHITE_SPACE = re.compile(r"\s")

# -- errors --


def no_such_role(name: str) -> ApiError:
    return ApiError("NoSuchEntityException", f"The role with name {name} cannot be found.")


def malformed(message: str) -> ApiError:
    return ApiError("MalformedPolicyDocumentException", message)


def _not_served(what: str) -> ApiError:
    return ApiError("NotImplementedException", f"{what} is not implemented by the iot-tui local core", 400)


def _require_role(ctx: RequestContext, name: str) -> RoleRecord:
    role = ctx.store.get_role(name)
    if role is None:
        raise no_such_role(name)
    return role


# -- policy documents --


def _size(document: str) -> int:
    return len(_WHITE_SPACE.sub("", document))


def _strings(value: Any) -> list[str]:
    """A policy element that is a string or a non-empty list of strings; anything else is a syntax error."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise malformed("Syntax errors in policy.")
    return items


def _statements(document: str) -> list[dict[str, Any]]:
    """The statements of a syntactically valid policy, with IAM's messages for what is not."""
    try:
        policy = json.loads(document)
    except ValueError:
        raise malformed("This policy contains invalid Json") from None
    if not isinstance(policy, dict) or "Statement" not in policy or set(policy) - {"Version", "Id", "Statement"}:
        raise malformed("Syntax errors in policy.")
    if "Version" in policy and policy["Version"] not in POLICY_VERSIONS:
        raise malformed("The policy failed legacy parsing")
    statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    if not statements:
        raise malformed("Syntax errors in policy.")
    for statement in statements:
        if not isinstance(statement, dict) or set(statement) - STATEMENT_KEYS:
            raise malformed("Syntax errors in policy.")
        if not isinstance(statement.get("Effect"), str) or statement["Effect"].lower() not in ("allow", "deny"):
            raise malformed("Syntax errors in policy.")
        for one, other in (("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")):
            if one in statement and other in statement:
                raise malformed("Syntax errors in policy.")
    sids = [s["Sid"] for s in statements if "Sid" in s]
    if len(sids) != len(set(sids)):
        raise malformed("Statement IDs (SID) in a single policy must be unique.")
    for statement in statements:
        actions = statement.get("Action", statement.get("NotAction"))
        if actions is None or actions == []:
            raise malformed("Policy statement must contain actions.")
        for action in _strings(actions):
            vendor, colon, rest = action.partition(":")
            if action != "*" and not colon:
                raise malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
            if ":" in rest:
                raise malformed("Actions/Condition can contain only one colon.")
            if not _VENDOR.fullmatch(vendor):
                raise malformed(f"Vendor {vendor} is not valid")
    return statements


def check_permissions_policy(document: str) -> None:
    """An identity-based policy (inline or managed): resources, and no principal."""
    for statement in _statements(document):
        if "Principal" in statement or "NotPrincipal" in statement:
            raise malformed("Policy document should not specify a principal.")
        resources = statement.get("Resource", statement.get("NotResource"))
        if resources is None or resources == []:
            raise malformed("Policy statement must contain resources.")
        for resource in _strings(resources):
            if resource != "*" and not resource.startswith("arn:"):
                raise malformed(f'Resource {resource} must be in ARN format or "*".')


def check_trust_policy(ctx: RequestContext, document: str) -> None:
    """A role trust policy: principals, sts actions only, no resources; a role of this account
    named as a principal must exist (IAM stores the role's unique id in its place)."""
    for statement in _statements(document):
        if "Resource" in statement or "NotResource" in statement:
            raise malformed("Has prohibited field Resource.")
        principal = statement.get("Principal", statement.get("NotPrincipal"))
        if principal is None:
            raise malformed(
                "Invalid principal in policy: com.amazon.balsa.error.InvalidPolicyException: "
                "The passed in policy has a statement with no principals!"
            )
        _check_principal(ctx, principal)
        for action in _strings(statement.get("Action", statement.get("NotAction"))):
            if action.split(":", 1)[0].lower() != "sts":
                raise malformed(
                    "Trust Policy statement actions can only be sts:AssumeRole, "
                    "sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity"
                )


def _check_principal(ctx: RequestContext, principal: Any) -> None:
    if principal == "*":
        return
    if not isinstance(principal, dict) or not principal or set(principal) - PRINCIPAL_KINDS:
        raise malformed("Syntax errors in policy.")
    for kind, values in principal.items():
        for value in _strings(values):
            if not _valid_principal(ctx, kind, value):
                raise malformed(f'Invalid principal in policy: "{kind.upper()}":"{value}"')


def _valid_principal(ctx: RequestContext, kind: str, value: str) -> bool:
    if kind == "Service":
        return "." in value and " " not in value
    if kind != "AWS" or value == "*" or _ACCOUNT_PRINCIPAL.fullmatch(value):
        return True
    own_role = f"arn:aws:iam::{ctx.account_id}:role/"
    if value.startswith(own_role):
        role = ctx.store.get_role(value.rsplit("/", 1)[-1])
        return role is not None and role.arn == value
    return value.startswith("arn:aws:iam::") or value.startswith("arn:aws:sts::")


def _encoded(document: str) -> str:
    """IAM answers policy documents URL-encoded (RFC 3986: only unreserved characters stay)."""
    return quote(document, safe="")


# -- markers: opaque, carrying the last key of the page --


def _marker(key: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _after(marker: str | None, kind: type) -> Any:
    if marker is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(marker.encode()))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, kind):
        raise ApiError("ValidationError", "Invalid Marker.", 400)
    return key


def _page(items: Sequence[Any], size: int, key: Any) -> dict[str, Any]:
    """`items` were fetched with `size + 1`: an extra one means the answer is truncated."""
    if len(items) <= size:
        return {"IsTruncated": False}
    return {"IsTruncated": True, "Marker": _marker(key(items[size - 1]))}


# -- roles --


def _role(role: RoleRecord) -> dict[str, Any]:
    """A Role as ListRoles gives it: without Tags, PermissionsBoundary and RoleLastUsed."""
    return {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.role_id,
        "Arn": role.arn,
        "CreateDate": role.create_date,
        "AssumeRolePolicyDocument": _encoded(role.trust_policy),
        "Description": role.description,
        "MaxSessionDuration": role.max_session_duration,
    }


def _check_tags(tags: list[dict[str, str]]) -> None:
    keys = [tag["Key"].lower() for tag in tags]
    if len(keys) != len(set(keys)):
        raise ApiError(
            "InvalidInputException", "Duplicate tag keys found. Please note that Tag keys are case insensitive."
        )


@operation("iam", "CreateRole")
def create_role(ctx: RequestContext, p: Params) -> dict:
    for unsupported in ("PermissionsBoundary", "MaxSigninSessionDuration"):
        if unsupported in p:
            raise _not_served(f"CreateRole's {unsupported}")
    name, path, document = p["RoleName"], p.get("Path", "/"), p["AssumeRolePolicyDocument"]
    tags = p.get("Tags", [])
    _check_tags(tags)
    with ctx.store.transaction():
        check_trust_policy(ctx, document)
        if _size(document) > TRUST_POLICY_QUOTA:
            raise ApiError("LimitExceededException", f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_QUOTA}")
        if ctx.store.get_role(name) is not None:
            raise ApiError("EntityAlreadyExistsException", f"Role with name {name} already exists.")
        role = ctx.store.insert_role(
            name, path, ctx.arn(f"role{path}{name}", service="iam"), document, p.get("Description"),
            p.get("MaxSessionDuration", DEFAULT_MAX_SESSION_DURATION), tags, ctx.now(),
        )
    return {"Role": {**_role(role), "Tags": role.tags or None}}


@operation("iam", "GetRole")
def get_role(ctx: RequestContext, p: Params) -> dict:
    role = _require_role(ctx, p["RoleName"])
    return {"Role": {**_role(role), "Tags": role.tags or None, "RoleLastUsed": {}}}


@operation("iam", "DeleteRole")
def delete_role(ctx: RequestContext, p: Params) -> None:
    """Policies go first: attached managed ones, then inline ones (IAM's two conflicts)."""
    with ctx.store.transaction():
        role = _require_role(ctx, p["RoleName"])
        if ctx.store.attached_role_policies(role.seq):
            raise ApiError("DeleteConflictException", "Cannot delete entity, must detach all policies first.")
        if ctx.store.role_policies(role.seq, limit=1):
            raise ApiError("DeleteConflictException", "Cannot delete entity, must delete policies first.")
        ctx.store.delete_role(role.seq)


@operation("iam", "ListRoles")
def list_roles(ctx: RequestContext, p: Params) -> dict:
    size = p.get("MaxItems", DEFAULT_MAX_ITEMS)
    roles = ctx.store.list_roles(p.get("PathPrefix", "/"), _after(p.get("Marker"), str), size + 1)
    return {"Roles": [_role(role) for role in roles[:size]], **_page(roles, size, lambda r: r.name)}


@operation("iam", "UpdateAssumeRolePolicy")
def update_assume_role_policy(ctx: RequestContext, p: Params) -> None:
    document = p["PolicyDocument"]
    with ctx.store.transaction():
        role = _require_role(ctx, p["RoleName"])
        check_trust_policy(ctx, document)
        if _size(document) > TRUST_POLICY_QUOTA:
            raise ApiError("LimitExceededException", f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_QUOTA}")
        ctx.store.set_trust_policy(role.seq, document)


# -- inline policies --


def no_such_role_policy(name: str) -> ApiError:
    return ApiError("NoSuchEntityException", f"The role policy with name {name} cannot be found.")


@operation("iam", "PutRolePolicy")
def put_role_policy(ctx: RequestContext, p: Params) -> None:
    """Create or replace; all of a role's inline policies share one size quota."""
    name, document = p["PolicyName"], p["PolicyDocument"]
    with ctx.store.transaction():
        role = _require_role(ctx, p["RoleName"])
        check_permissions_policy(document)
        others = [doc for other, doc in ctx.store.role_policies(role.seq) if other.lower() != name.lower()]
        if sum(map(_size, [*others, document])) > ROLE_INLINE_POLICIES_QUOTA:
            raise ApiError(
                "LimitExceededException",
                f"Maximum policy size of {ROLE_INLINE_POLICIES_QUOTA} bytes exceeded for role {role.name}",
            )
        ctx.store.put_role_policy(role.seq, name, document)


@operation("iam", "GetRolePolicy")
def get_role_policy(ctx: RequestContext, p: Params) -> dict:
    role = _require_role(ctx, p["RoleName"])
    found = ctx.store.get_role_policy(role.seq, p["PolicyName"])
    if found is None:
        raise no_such_role_policy(p["PolicyName"])
    name, document = found
    return {"RoleName": role.name, "PolicyName": name, "PolicyDocument": _encoded(document)}


@operation("iam", "DeleteRolePolicy")
def delete_role_policy(ctx: RequestContext, p: Params) -> None:
    with ctx.store.transaction():
        role = _require_role(ctx, p["RoleName"])
        if not ctx.store.delete_role_policy(role.seq, p["PolicyName"]):
            raise no_such_role_policy(p["PolicyName"])


@operation("iam", "ListRolePolicies")
def list_role_policies(ctx: RequestContext, p: Params) -> dict:
    role = _require_role(ctx, p["RoleName"])
    size = p.get("MaxItems", DEFAULT_MAX_ITEMS)
    policies = ctx.store.role_policies(role.seq, _after(p.get("Marker"), str), size + 1)
    return {
        "PolicyNames": [name for name, _ in policies[:size]],
        **_page(policies, size, lambda item: item[0]),
    }


# -- attached managed policies --


def _parse_policy_arn(arn: str) -> re.Match[str]:
    match = _POLICY_ARN.fullmatch(arn)
    if match is None:
        raise ApiError("InvalidInputException", f"ARN {arn} is not valid.")
    return match


def _attachable(ctx: RequestContext, arn: str) -> bool:
    """AWS managed policies are taken on trust; customer ones must exist in this account."""
    match = _parse_policy_arn(arn)
    if match["account"] == "aws":
        return True
    return match["account"] == ctx.account_id and ctx.store.get_managed_policy(arn) is not None


@operation("iam", "AttachRolePolicy")
def attach_role_policy(ctx: RequestContext, p: Params) -> None:
    arn = p["PolicyArn"]
    with ctx.store.transaction():
        _parse_policy_arn(arn)
        role = _require_role(ctx, p["RoleName"])
        if not _attachable(ctx, arn):
            raise ApiError("NoSuchEntityException", f"Policy {arn} does not exist or is not attachable.")
        if ctx.store.is_role_policy_attached(role.seq, arn):
            return
        if len(ctx.store.attached_role_policies(role.seq)) >= ATTACHED_POLICIES_QUOTA:
            raise ApiError(
                "LimitExceededException", f"Cannot exceed quota for PoliciesPerRole: {ATTACHED_POLICIES_QUOTA}"
            )
        ctx.store.attach_role_policy(role.seq, arn)


@operation("iam", "DetachRolePolicy")
def detach_role_policy(ctx: RequestContext, p: Params) -> None:
    arn = p["PolicyArn"]
    with ctx.store.transaction():
        _parse_policy_arn(arn)
        role = _require_role(ctx, p["RoleName"])
        if not ctx.store.detach_role_policy(role.seq, arn):
            raise ApiError("NoSuchEntityException", f"Policy {arn} was not found.")


@operation("iam", "ListAttachedRolePolicies")
def list_attached_role_policies(ctx: RequestContext, p: Params) -> dict:
    role = _require_role(ctx, p["RoleName"])
    prefix, size = p.get("PathPrefix", "/"), p.get("MaxItems", DEFAULT_MAX_ITEMS)
    after = _after(p.get("Marker"), int)
    attached = [
        (a.seq, _parse_policy_arn(a.arn))
        for a in ctx.store.attached_role_policies(role.seq)
        if after is None or a.seq > after
    ]
    attached = [(seq, match) for seq, match in attached if match["path"].startswith(prefix)]
    return {
        "AttachedPolicies": [{"PolicyName": m["name"], "PolicyArn": m.string} for _, m in attached[:size]],
        **_page(attached, size, lambda item: item[0]),
    }


# -- customer managed policies --


def _policy(policy: ManagedPolicyRecord, listed: bool = False) -> dict[str, Any]:
    """A Policy; ListPolicies leaves out Description and Tags, as IAM does."""
    out: dict[str, Any] = {
        "PolicyName": policy.name,
        "PolicyId": policy.policy_id,
        "Arn": policy.arn,
        "Path": policy.path,
        "DefaultVersionId": "v1",
        "AttachmentCount": policy.attachment_count,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": policy.create_date,
        "UpdateDate": policy.update_date,
    }
    if not listed:
        out["Description"] = policy.description
        out["Tags"] = policy.tags or None
    return out


def _require_policy(ctx: RequestContext, arn: str) -> ManagedPolicyRecord:
    _parse_policy_arn(arn)
    policy = ctx.store.get_managed_policy(arn)
    if policy is None:
        raise ApiError("NoSuchEntityException", f"Policy {arn} was not found.")
    return policy


@operation("iam", "CreatePolicy")
def create_policy(ctx: RequestContext, p: Params) -> dict:
    name, path, document = p["PolicyName"], p.get("Path", "/"), p["PolicyDocument"]
    tags = p.get("Tags", [])
    _check_tags(tags)
    with ctx.store.transaction():
        check_permissions_policy(document)
        if _size(document) > MANAGED_POLICY_QUOTA:
            raise ApiError("LimitExceededException", f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_QUOTA}")
        if ctx.store.managed_policy_named(name):
            raise ApiError(
                "EntityAlreadyExistsException",
                f"A policy called {name} already exists. Duplicate names are not allowed.",
            )
        policy = ctx.store.insert_managed_policy(
            name, path, ctx.arn(f"policy{path}{name}", service="iam"), document, p.get("Description"),
            tags, ctx.now(),
        )
    return {"Policy": _policy(policy)}


@operation("iam", "GetPolicy")
def get_policy(ctx: RequestContext, p: Params) -> dict:
    return {"Policy": _policy(_require_policy(ctx, p["PolicyArn"]))}


@operation("iam", "DeletePolicy")
def delete_policy(ctx: RequestContext, p: Params) -> None:
    with ctx.store.transaction():
        policy = _require_policy(ctx, p["PolicyArn"])
        if policy.attachment_count:
            raise ApiError("DeleteConflictException", "Cannot delete a policy attached to entities.")
        ctx.store.delete_managed_policy(policy.arn)


@operation("iam", "ListPolicies")
def list_policies(ctx: RequestContext, p: Params) -> dict:
    """Customer managed policies only: the local core has no catalogue of AWS managed ones, and
    no policy is used as a permissions boundary."""
    size = p.get("MaxItems", DEFAULT_MAX_ITEMS)
    after = _after(p.get("Marker"), str)
    if p.get("Scope") == "AWS" or p.get("PolicyUsageFilter") == "PermissionsBoundary":
        return {"Policies": [], "IsTruncated": False}
    policies = ctx.store.list_managed_policies(p.get("PathPrefix", "/"), p.get("OnlyAttached", False), after, size + 1)
    return {"Policies": [_policy(x, listed=True) for x in policies[:size]], **_page(policies, size, lambda x: x.name)}


@operation("iam", "GetPolicyVersion")
def get_policy_version(ctx: RequestContext, p: Params) -> dict:
    """Policies here have one version, v1, their default."""
    policy = _require_policy(ctx, p["PolicyArn"])
    if p["VersionId"] != "v1":
        raise ApiError("NoSuchEntityException", f"Policy {policy.arn} version {p['VersionId']} does not exist.")
    return {
        "PolicyVersion": {
            "Document": _encoded(policy.document),
            "VersionId": "v1",
            "IsDefaultVersion": True,
            "CreateDate": policy.create_date,
        }
    }
