"""Thin reads over the registry APIs, shaped for the Registry screen and for scripts.

Each function takes an `iot` boto3 client and raises botocore's ClientError untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

ENDPOINT_TYPES: dict[str, str] = {
    "iot:Data-ATS": "MQTT and HTTPS for devices, with Amazon Trust Services certificates: use this one.",
    "iot:Data": "The legacy data endpoint with a VeriSign certificate; only for old devices.",
    "iot:CredentialProvider": "Exchanges a device certificate for temporary AWS credentials (role aliases).",
    "iot:Jobs": "The HTTPS endpoint of the Jobs data plane, for devices that fetch jobs over HTTP.",
}
PAGE_SIZES = (10, 25, 50, 100)


@dataclass(frozen=True)
class AttributeFilter:
    name: str
    value: str
    prefix: bool = False

    @classmethod
    def parse(cls, text: str) -> AttributeFilter | None:
        """`country=USA`, or `country=US*` for a prefix match; empty text means no filter."""
        text = text.strip()
        if not text:
            return None
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError("write the filter as name=value, or name=prefix* for a prefix match")
        value = value.strip()
        prefix = value.endswith("*")
        return cls(name.strip(), value.rstrip("*") if prefix else value, prefix)


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_token: str | None
    token: str | None = None


@dataclass
class ThingDetail:
    thing: dict[str, Any]
    groups: list[str] = field(default_factory=list)
    principals: list[str] = field(default_factory=list)


@dataclass
class GroupNode:
    name: str
    parent: str | None
    description: str | None
    members: list[str] = field(default_factory=list)
    children: list[GroupNode] = field(default_factory=list)


@dataclass
class CertificateInfo:
    certificate_id: str
    arn: str
    status: str
    created: Any
    things: list[str]
    policies: list[str] | None


@dataclass
class Endpoint:
    endpoint_type: str
    purpose: str
    address: str | None
    error: str | None = None


def pages(call: Callable[..., dict], key: str, token_name: str = "nextToken", **kwargs: Any) -> Iterator[Any]:
    """Every item of a paginated list call, following nextToken (or marker)."""
    token = None
    while True:
        answer = call(**kwargs, **({token_name: token} if token else {}))
        yield from answer.get(key, [])
        token = answer.get("nextMarker" if token_name == "marker" else token_name)
        if not token:
            return


def list_things_page(iot: Any, page_size: int = 25, next_token: str | None = None,
                     thing_type: str | None = None, attribute: AttributeFilter | None = None) -> Page:
    kwargs: dict[str, Any] = {"maxResults": page_size}
    if next_token:
        kwargs["nextToken"] = next_token
    if thing_type:
        kwargs["thingTypeName"] = thing_type
    if attribute is not None:
        kwargs.update(attributeName=attribute.name, attributeValue=attribute.value)
        if attribute.prefix:
            kwargs["usePrefixAttributeValue"] = True
    answer = iot.list_things(**kwargs)
    return Page(answer.get("things", []), answer.get("nextToken"), next_token)


def describe_thing(iot: Any, name: str) -> ThingDetail:
    thing = iot.describe_thing(thingName=name)
    thing.pop("ResponseMetadata", None)
    groups = [g["groupName"] for g in pages(iot.list_thing_groups_for_thing, "thingGroups", thingName=name)]
    principals = list(pages(iot.list_thing_principals, "principals", thingName=name))
    return ThingDetail(thing, groups, principals)


def list_thing_types(iot: Any) -> list[dict[str, Any]]:
    return list(pages(iot.list_thing_types, "thingTypes"))


def thing_group_tree(iot: Any) -> list[GroupNode]:
    """Root groups with their children and members, for a tree view."""
    nodes: dict[str, GroupNode] = {}
    for summary in pages(iot.list_thing_groups, "thingGroups"):
        group = iot.describe_thing_group(thingGroupName=summary["groupName"])
        nodes[summary["groupName"]] = GroupNode(
            name=summary["groupName"],
            parent=(group.get("thingGroupMetadata") or {}).get("parentGroupName"),
            description=(group.get("thingGroupProperties") or {}).get("thingGroupDescription"),
            members=list(pages(iot.list_things_in_thing_group, "things", thingGroupName=summary["groupName"])),
        )
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.parent or "")
        (parent.children if parent else roots).append(node)
    return roots


def list_certificates(iot: Any) -> list[CertificateInfo]:
    """Certificates with the things and policies attached; policies are None where unsupported."""
    result = []
    for cert in pages(iot.list_certificates, "certificates", token_name="marker"):
        arn = cert["certificateArn"]
        things = list(pages(iot.list_principal_things, "things", principal=arn))
        try:
            policies: list[str] | None = [
                p["policyName"] for p in pages(iot.list_attached_policies, "policies", token_name="marker", target=arn)
            ]
        except ClientError as error:
            if error.response["Error"]["Code"] != "NotImplementedException":
                raise
            policies = None
        result.append(CertificateInfo(cert["certificateId"], arn, cert["status"], cert.get("creationDate"),
                                      things, policies))
    return result


def describe_endpoints(iot: Any) -> list[Endpoint]:
    """All four endpoint types; one failing does not hide the others."""
    result = []
    for endpoint_type, purpose in ENDPOINT_TYPES.items():
        try:
            address = iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"]
            result.append(Endpoint(endpoint_type, purpose, address))
        except ClientError as error:
            result.append(Endpoint(endpoint_type, purpose, None, error.response["Error"]["Code"]))
    return result
