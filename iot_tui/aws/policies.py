"""IoT policies: templates, validation before the API is called, versions and diffs, and a simulator.

Plain functions over a boto3 `iot` client. AWS errors are botocore's ClientError untouched; a
document that would be refused is reported as `Problem`s (or PolicyDocumentError) before any call.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from iot_tui.assets import ASSETS_DIR
from iot_tui.aws.registry import pages
from iot_tui.iotcore.policy import (
    AuthContext,
    MalformedPolicyError,
    StatementRef,
    client_arn,
    evaluate,
    parse_policy,
    thing_arn,
    topic_arn,
    topicfilter_arn,
)

TEMPLATES_DIR = ASSETS_DIR / "policies"
PRODUCTION_WARNING = ('"Action": "iot:*" with "Resource": "*" lets any device do anything: fine for learning, '
                      "never for production")
_ROW = re.compile(r"^\|\s*`([^`]+\.json)`\s*\|\s*(.+?)\s*\|\s*$")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")

Severity = Literal["error", "warning"]


class PolicyDocumentError(ValueError):
    """The document has errors AWS would refuse it for; `problems` says where."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(p.text for p in problems))


@dataclass(frozen=True)
class Problem:
    """One finding in a document; line and column are 1-based when known."""

    severity: Severity
    message: str
    line: int | None = None
    column: int | None = None

    @property
    def text(self) -> str:
        where = f"line {self.line}, column {self.column}: " if self.line is not None else ""
        return f"{self.severity}: {where}{self.message}"


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    text: str

    def render(self, region: str, account: str) -> str:
        """The document for a target: `{{region}}` and `{{account}}` filled, `${iot:...}` left to AWS."""
        return self.text.replace("{{region}}", region).replace("{{account}}", account)


@dataclass(frozen=True)
class PolicyVersion:
    version_id: str
    is_default: bool
    created: datetime | None


@dataclass(frozen=True)
class Simulation:
    """The answer to "may this principal do that": the verdict and what decided it."""

    action: str
    resource: str
    decision: str
    deciding_policy: str | None
    statement: StatementRef | None
    source: Literal["TestAuthorization", "local evaluation"]
    allowed_by: list[str] = field(default_factory=list)
    denied_by: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.decision == "ALLOWED"

    @property
    def verdict(self) -> str:
        return "Allowed" if self.allowed else "Denied"


# -- templates --


def templates(directory: Path = TEMPLATES_DIR) -> list[Template]:
    """The shipped templates, described by the table in their README."""
    readme = directory / "README.md"
    descriptions = {}
    if readme.is_file():
        for line in readme.read_text().splitlines():
            row = _ROW.match(line)
            if row:
                descriptions[row.group(1)] = row.group(2)
    return [Template(path.stem, descriptions.get(path.name, ""), path.read_text())
            for path in sorted(directory.glob("*.json"))]


def template(name: str, directory: Path = TEMPLATES_DIR) -> Template:
    for found in templates(directory):
        if found.name == name:
            return found
    raise ValueError(f"no policy template {name!r}; choose one of "
                     f"{', '.join(t.name for t in templates(directory))}")


# -- validation --


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def validate_document(text: str) -> list[Problem]:
    """JSON errors with line and column, then AWS's policy grammar, then the production warning."""
    if not text.strip():
        return [Problem("error", "the policy document is empty")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return [Problem("error", f"invalid JSON: {error.msg}", error.lineno, error.colno)]
    problems = []
    for match in _PLACEHOLDER.finditer(text):
        problems.append(Problem("error", f"template placeholder {match.group(0)} is not filled in",
                                *_position(text, match.start())))
    try:
        parse_policy(text)
    except MalformedPolicyError as error:
        problems.append(Problem("error", error.detail))
        return problems
    statements = data["Statement"] if isinstance(data["Statement"], list) else [data["Statement"]]
    for statement in statements:
        actions = {action.lower() for action in _as_list(statement.get("Action", []))}
        if (statement.get("Effect") == "Allow" and {"iot:*", "*"} & actions
                and "*" in _as_list(statement.get("Resource", []))):
            index = text.lower().find('"iot:*"')
            line, column = _position(text, index) if index >= 0 else (None, None)
            problems.append(Problem("warning", PRODUCTION_WARNING, line, column))
    return problems


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def check_document(text: str) -> None:
    """Raise PolicyDocumentError when the document has errors; warnings do not stop anything."""
    errors = [p for p in validate_document(text) if p.severity == "error"]
    if errors:
        raise PolicyDocumentError(errors)


def pretty(document: str) -> str:
    """Stable pretty JSON, so diffs show changes and not formatting."""
    return json.dumps(json.loads(document), indent=2) + "\n"


# -- policies and versions --


def create_policy(iot: Any, name: str, document: str) -> dict[str, Any]:
    if not name.strip():
        raise ValueError("the policy needs a name")
    check_document(document)
    return iot.create_policy(policyName=name, policyDocument=document)


def create_from_template(iot: Any, name: str, chosen: Template, region: str, account: str) -> dict[str, Any]:
    return create_policy(iot, name, chosen.render(region, account))


def create_version(iot: Any, name: str, document: str, set_default: bool = True) -> dict[str, Any]:
    """A new version (AWS keeps at most five); the default one is what devices are judged by."""
    check_document(document)
    return iot.create_policy_version(policyName=name, policyDocument=document, setAsDefault=set_default)


def set_default_version(iot: Any, name: str, version_id: str) -> None:
    iot.set_default_policy_version(policyName=name, policyVersionId=version_id)


def list_versions(iot: Any, name: str) -> list[PolicyVersion]:
    """Oldest first, by version number."""
    versions = [PolicyVersion(v["versionId"], v["isDefaultVersion"], v.get("createDate"))
                for v in iot.list_policy_versions(policyName=name)["policyVersions"]]
    return sorted(versions, key=lambda v: int(v.version_id))


def version_document(iot: Any, name: str, version_id: str) -> str:
    return iot.get_policy_version(policyName=name, policyVersionId=version_id)["policyDocument"]


def diff_documents(old: str, new: str, old_label: str = "a", new_label: str = "b") -> str:
    """A unified diff of the two documents as pretty JSON; empty when they mean the same."""
    return "".join(difflib.unified_diff(pretty(old).splitlines(keepends=True), pretty(new).splitlines(keepends=True),
                                        old_label, new_label))


def diff_versions(iot: Any, name: str, a: str, b: str) -> str:
    return diff_documents(version_document(iot, name, a), version_document(iot, name, b),
                          f"{name} v{a}", f"{name} v{b}")


def list_targets(iot: Any, name: str) -> list[str]:
    """The certificates (and other principals) this policy is attached to."""
    return list(pages(iot.list_targets_for_policy, "targets", token_name="marker", policyName=name))


# -- the simulator --

# Actions the simulator offers: TestAuthorization's action type (None: it has none) and the resource kind.
ACTIONS: dict[str, tuple[str | None, str]] = {
    "Connect": ("CONNECT", "client id"),
    "Publish": ("PUBLISH", "topic"),
    "Subscribe": ("SUBSCRIBE", "topic filter"),
    "Receive": ("RECEIVE", "topic"),
    "RetainPublish": (None, "topic"),
    "GetThingShadow": (None, "thing name"),
    "UpdateThingShadow": (None, "thing name"),
    "DeleteThingShadow": (None, "thing name"),
}
_ARNS = {"client id": client_arn, "topic": topic_arn, "topic filter": topicfilter_arn, "thing name": thing_arn}


def resource_arn(principal_arn: str, action: str, resource: str) -> str:
    """The resource ARN for an action, in the principal's region and account; ARNs pass unchanged."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    if resource.startswith("arn:"):
        return resource
    if not resource:
        raise ValueError(f"{action} needs a {ACTIONS[action][1]}")
    parts = principal_arn.split(":")
    if len(parts) < 6:
        raise ValueError(f"not a principal ARN: {principal_arn!r}")
    return _ARNS[ACTIONS[action][1]](parts[3], parts[4], resource)


def simulate(iot: Any, principal_arn: str, action: str, resource: str, client_id: str | None = None,
             policy_names: Sequence[str] = ()) -> Simulation:
    """Allowed or Denied for a certificate, with the deciding policy and statement.

    `policy_names` are judged as if attached too, to try a policy before attaching it.

    Connect/Publish/Subscribe/Receive ask TestAuthorization, on AWS and the local core alike;
    TestAuthorization knows no other action, so the rest are judged here by the policy evaluator
    over GetEffectivePolicies. Either way the deciding statement is found by evaluating the
    deciding policy's document locally (TestAuthorization names only policies).
    """
    if action == "Connect" and not resource:
        resource = client_id or ""
    arn = resource_arn(principal_arn, action, resource)
    context = _auth_context(iot, principal_arn, client_id)
    action_type = ACTIONS[action][0]
    if action_type is None:
        return _evaluate_locally(iot, principal_arn, f"iot:{action}", arn, context, policy_names)
    kwargs: dict[str, Any] = {"principal": principal_arn,
                              "authInfos": [{"actionType": action_type, "resources": [arn]}]}
    if client_id:
        kwargs["clientId"] = client_id
    if policy_names:
        kwargs["policyNamesToAdd"] = list(policy_names)
    result = iot.test_authorization(**kwargs)["authResults"][0]
    allowed = [p["policyName"] for p in (result.get("allowed") or {}).get("policies", [])]
    denied = [p["policyName"] for p in ((result.get("denied") or {}).get("explicitDeny") or {}).get("policies", [])]
    decision = result["authDecision"]
    deciding = denied[0] if decision == "EXPLICIT_DENY" else allowed[0] if decision == "ALLOWED" and allowed else None
    statement = None
    if deciding is not None:
        document = iot.get_policy(policyName=deciding)["policyDocument"]
        statement = evaluate([(deciding, parse_policy(document))], f"iot:{action}", arn, context).deciding
    return Simulation(f"iot:{action}", arn, decision, deciding, statement, "TestAuthorization", allowed, denied)


def _auth_context(iot: Any, principal_arn: str, client_id: str | None) -> AuthContext:
    """The connection AWS would see: thing variables resolve when the client id names an attached thing."""
    _, _, _, region, account, *_ = principal_arn.split(":")
    thing = None
    if client_id and client_id in pages(iot.list_principal_things, "things", principal=principal_arn):
        thing = iot.describe_thing(thingName=client_id)
    return AuthContext(
        region=region, account_id=account, client_id=client_id,
        thing_name=thing["thingName"] if thing else None,
        thing_type_name=thing.get("thingTypeName") if thing else None,
        thing_attributes=thing.get("attributes", {}) if thing else {},
        is_attached=thing is not None,
        certificate_id=principal_arn.rsplit("/", 1)[-1] if ":cert/" in principal_arn else None,
    )


def _evaluate_locally(iot: Any, principal_arn: str, action: str, arn: str, context: AuthContext,
                      policy_names: Sequence[str]) -> Simulation:
    kwargs: dict[str, Any] = {"principal": principal_arn}
    if context.thing_name:
        kwargs["thingName"] = context.thing_name
    documents = [(p["policyName"], p["policyDocument"])
                 for p in iot.get_effective_policies(**kwargs)["effectivePolicies"]]
    documents += [(name, iot.get_policy(policyName=name)["policyDocument"]) for name in policy_names]
    decision = evaluate([(name, parse_policy(text)) for name, text in documents], action, arn, context)
    deciding = decision.deciding.policy_name if decision.deciding else None
    return Simulation(action, arn, decision.decision, deciding, decision.deciding, "local evaluation",
                      decision.allowing, decision.denying)
