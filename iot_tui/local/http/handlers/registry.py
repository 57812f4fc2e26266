"""The thing registry: things, thing types, thing groups and thing principals, with AWS's rules."""

from __future__ import annotations

import uuid
from typing import Any

from iot_tui.local.http.errors import (
    already_exists,
    delete_conflict,
    found,
    invalid_request,
    not_found,
    version_conflict,
)
from iot_tui.local.http.ops import Params, RequestContext, operation
from iot_tui.local.http.paging import page
from iot_tui.local.store.registry import Thing, ThingGroup, ThingType

DEFAULT_PAGE = 50
MAX_ATTRIBUTES_WITHOUT_TYPE = 3
MAX_ATTRIBUTES_WITH_TYPE = 50
MAX_SEARCHABLE_ATTRIBUTES = 3
MAX_GROUPS_PER_THING = 10
MAX_GROUP_DEPTH = 7


def thing_arn(ctx: RequestContext, name: str) -> str:
    return ctx.arn(f"thing/{name}")


def thing_type_arn(ctx: RequestContext, name: str) -> str:
    return ctx.arn(f"thingtype/{name}")


def group_arn(ctx: RequestContext, name: str) -> str:
    return ctx.arn(f"thinggroup/{name}")


def _name_from_arn(value: str, kind: str) -> str:
    """Operations accept a name or an ARN (`...:thinggroup/<name>`)."""
    if value.startswith("arn:"):
        resource = value.split(":", 5)[-1]
        prefix = f"{kind}/"
        if not resource.startswith(prefix):
            raise invalid_request(f"{value} is not a {kind} ARN")
        return resource[len(prefix):]
    return value


def require_thing(ctx: RequestContext, name: str) -> Thing:
    return found(ctx.store.get_thing(ctx.region, name), f"Thing {name} cannot be found.")


def require_group(ctx: RequestContext, name: str) -> ThingGroup:
    return found(ctx.store.get_group(ctx.region, name), f"Thing Group {name} cannot be found.")


def _usable_thing_type(ctx: RequestContext, name: str) -> ThingType:
    thing_type = found(ctx.store.get_thing_type(ctx.region, name), f"Thing Type {name} cannot be found.")
    if thing_type.deprecated:
        raise invalid_request(f"Can not create new thing with depreciated thing type : {name}")
    return thing_type


def _check_attribute_count(attributes: dict[str, str], thing_type: str | None) -> None:
    limit = MAX_ATTRIBUTES_WITH_TYPE if thing_type else MAX_ATTRIBUTES_WITHOUT_TYPE
    if len(attributes) > limit:
        kind = "with" if thing_type else "without"
        raise invalid_request(f"A thing {kind} a thing type can have at most {limit} attributes")


def _merge_attributes(current: dict[str, str], payload: dict[str, Any] | None) -> dict[str, str]:
    """AWS: merge=false replaces every attribute; with merge, an empty value removes one."""
    if not payload or "attributes" not in payload:
        return dict(current)
    given = payload.get("attributes") or {}
    if not payload.get("merge"):
        return {k: v for k, v in given.items() if v != ""}
    merged = dict(current)
    for key, value in given.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _check_expected_version(expected: int | None, actual: int, what: str) -> None:
    if expected is not None and expected != actual:
        raise version_conflict(
            f"The version for {what} does not match the expected version. Expected {expected}, current {actual}."
        )


def _tag(ctx: RequestContext, arn: str, tags: list[dict[str, str]] | None) -> None:
    if tags:
        ctx.store.set_tags(ctx.region, arn, tags)


# -- things --


@operation("iot", "CreateThing")
def create_thing(ctx: RequestContext, p: Params) -> dict:
    name = p["thingName"]
    type_name = p.get("thingTypeName")
    attributes = (p.get("attributePayload") or {}).get("attributes") or {}
    if p.get("billingGroupName"):
        raise not_found(f"Billing group {p['billingGroupName']} cannot be found.")
    with ctx.store.transaction():
        existing = ctx.store.get_thing(ctx.region, name)
        if existing is not None:
            if existing.thing_type == type_name and existing.attributes == attributes:
                return {"thingName": name, "thingArn": thing_arn(ctx, name), "thingId": existing.id}
            raise already_exists(
                f"Thing {name} already exists in account with different attributes",
                existing.id, thing_arn(ctx, name),
            )
        if type_name:
            _usable_thing_type(ctx, type_name)
        _check_attribute_count(attributes, type_name)
        thing = Thing(name, str(uuid.uuid4()), type_name, dict(attributes), 1, None)
        ctx.store.put_thing(ctx.region, thing)
    return {"thingName": name, "thingArn": thing_arn(ctx, name), "thingId": thing.id}


@operation("iot", "DescribeThing")
def describe_thing(ctx: RequestContext, p: Params) -> dict:
    thing = require_thing(ctx, p["thingName"])
    return {
        "defaultClientId": thing.name,
        "thingName": thing.name,
        "thingId": thing.id,
        "thingArn": thing_arn(ctx, thing.name),
        "thingTypeName": thing.thing_type,
        "attributes": thing.attributes,
        "version": thing.version,
        "billingGroupName": thing.billing_group,
    }


@operation("iot", "UpdateThing")
def update_thing(ctx: RequestContext, p: Params) -> dict:
    with ctx.store.transaction():
        thing = require_thing(ctx, p["thingName"])
        _check_expected_version(p.get("expectedVersion"), thing.version, f"thing {thing.name}")
        if p.get("removeThingType") and p.get("thingTypeName"):
            raise invalid_request("Cannot set removeThingType to true and give a thingTypeName at the same time")
        if p.get("removeThingType"):
            thing.thing_type = None
        elif p.get("thingTypeName"):
            _usable_thing_type(ctx, p["thingTypeName"])
            thing.thing_type = p["thingTypeName"]
        thing.attributes = _merge_attributes(thing.attributes, p.get("attributePayload"))
        _check_attribute_count(thing.attributes, thing.thing_type)
        thing.version += 1
        ctx.store.put_thing(ctx.region, thing)
    return {}


@operation("iot", "DeleteThing")
def delete_thing(ctx: RequestContext, p: Params) -> dict:
    """AWS answers success for a thing that does not exist; a thing with principals cannot go."""
    with ctx.store.transaction():
        thing = ctx.store.get_thing(ctx.region, p["thingName"])
        if thing is None:
            return {}
        _check_expected_version(p.get("expectedVersion"), thing.version, f"thing {thing.name}")
        if ctx.store.principals_of_thing(ctx.region, thing.name, limit=1):
            raise invalid_request(
                f"Cannot delete thing {thing.name} which has principals attached. Detach its principals first."
            )
        ctx.store.delete_thing(ctx.region, thing.name)
        ctx.store.delete_tags_for(ctx.region, thing_arn(ctx, thing.name))
    return {}


@operation("iot", "ListThings")
def list_things(ctx: RequestContext, p: Params) -> dict:
    attribute = None
    if p.get("attributeName") is not None or p.get("attributeValue") is not None:
        if p.get("attributeName") is None or p.get("attributeValue") is None:
            raise invalid_request("attributeName and attributeValue must be given together")
        attribute = (p["attributeName"], p["attributeValue"], bool(p.get("usePrefixAttributeValue")))
    elif p.get("usePrefixAttributeValue"):
        raise invalid_request("usePrefixAttributeValue needs attributeName and attributeValue")

    def fetch(after: str, limit: int) -> list[Thing]:
        return ctx.store.list_things(ctx.region, after, limit, p.get("thingTypeName"), attribute)

    things, token = page(fetch, p.get("nextToken"), p.get("maxResults") or DEFAULT_PAGE, lambda t: t.name)
    return {
        "things": [
            {
                "thingName": t.name,
                "thingTypeName": t.thing_type,
                "thingArn": thing_arn(ctx, t.name),
                "attributes": t.attributes,
                "version": t.version,
            }
            for t in things
        ],
        "nextToken": token,
    }


# -- thing types --


def _thing_type_description(ctx: RequestContext, t: ThingType) -> dict:
    properties: dict[str, Any] = {"searchableAttributes": t.searchable}
    if t.description is not None:
        properties["thingTypeDescription"] = t.description
    metadata: dict[str, Any] = {"deprecated": t.deprecated, "creationDate": t.creation_date}
    if t.deprecation_date is not None:
        metadata["deprecationDate"] = t.deprecation_date
    return {
        "thingTypeName": t.name,
        "thingTypeId": t.id,
        "thingTypeArn": thing_type_arn(ctx, t.name),
        "thingTypeProperties": properties,
        "thingTypeMetadata": metadata,
    }


@operation("iot", "CreateThingType")
def create_thing_type(ctx: RequestContext, p: Params) -> dict:
    name = p["thingTypeName"]
    properties = p.get("thingTypeProperties") or {}
    searchable = list(properties.get("searchableAttributes") or [])
    if len(searchable) > MAX_SEARCHABLE_ATTRIBUTES:
        raise invalid_request(f"A thing type can have at most {MAX_SEARCHABLE_ATTRIBUTES} searchable attributes")
    description = properties.get("thingTypeDescription")
    arn = thing_type_arn(ctx, name)
    with ctx.store.transaction():
        existing = ctx.store.get_thing_type(ctx.region, name)
        if existing is not None:
            if existing.description == description and existing.searchable == searchable:
                return {"thingTypeName": name, "thingTypeArn": arn, "thingTypeId": existing.id}
            raise already_exists(f"Thing Type {name} already exists with different properties", existing.id, arn)
        thing_type = ThingType(name, str(uuid.uuid4()), description, searchable, False, None, ctx.now())
        ctx.store.insert_thing_type(ctx.region, thing_type)
        _tag(ctx, arn, p.get("tags"))
    return {"thingTypeName": name, "thingTypeArn": arn, "thingTypeId": thing_type.id}


def _require_thing_type(ctx: RequestContext, name: str) -> ThingType:
    return found(ctx.store.get_thing_type(ctx.region, name), f"Thing Type {name} cannot be found.")


@operation("iot", "DescribeThingType")
def describe_thing_type(ctx: RequestContext, p: Params) -> dict:
    return _thing_type_description(ctx, _require_thing_type(ctx, p["thingTypeName"]))


@operation("iot", "ListThingTypes")
def list_thing_types(ctx: RequestContext, p: Params) -> dict:
    def fetch(after: str, limit: int) -> list[ThingType]:
        return ctx.store.list_thing_types(ctx.region, after, limit, p.get("thingTypeName"))

    types, token = page(fetch, p.get("nextToken"), p.get("maxResults") or DEFAULT_PAGE, lambda t: t.name)
    return {"thingTypes": [_thing_type_description(ctx, t) for t in types], "nextToken": token}


@operation("iot", "DeprecateThingType")
def deprecate_thing_type(ctx: RequestContext, p: Params) -> dict:
    with ctx.store.transaction():
        thing_type = _require_thing_type(ctx, p["thingTypeName"])
        if p.get("undoDeprecate"):
            ctx.store.set_thing_type_deprecation(ctx.region, thing_type.name, False, None)
        elif not thing_type.deprecated:
            ctx.store.set_thing_type_deprecation(ctx.region, thing_type.name, True, ctx.now())
    return {}


@operation("iot", "DeleteThingType")
def delete_thing_type(ctx: RequestContext, p: Params) -> dict:
    """AWS: deprecate first, wait five minutes, and no thing may still use the type."""
    with ctx.store.transaction():
        thing_type = _require_thing_type(ctx, p["thingTypeName"])
        if not thing_type.deprecated or thing_type.deprecation_date is None:
            raise invalid_request(f"Thing type {thing_type.name} must be deprecated before it can be deleted")
        wait = ctx.core.config.deprecation_wait
        remaining = thing_type.deprecation_date + wait - ctx.now()
        if remaining > 0:
            raise invalid_request(
                f"Thing type {thing_type.name} was deprecated less than {wait:g} seconds ago; "
                f"it can be deleted in {remaining:.0f} seconds"
            )
        if ctx.store.thing_type_in_use(ctx.region, thing_type.name):
            raise delete_conflict(f"Thing type {thing_type.name} is still associated with one or more things")
        ctx.store.delete_thing_type(ctx.region, thing_type.name)
        ctx.store.delete_tags_for(ctx.region, thing_type_arn(ctx, thing_type.name))
    return {}


# -- thing groups --


def _ancestry(ctx: RequestContext, group: ThingGroup) -> list[ThingGroup]:
    """The chain from the root group down to this group's parent."""
    chain = []
    parent = group.parent
    while parent is not None:
        ancestor = ctx.store.get_group(ctx.region, parent)
        if ancestor is None:
            break
        chain.append(ancestor)
        parent = ancestor.parent
    return list(reversed(chain))


def _group_properties(group: ThingGroup) -> dict:
    properties: dict[str, Any] = {"attributePayload": {"attributes": group.attributes}}
    if group.description is not None:
        properties["thingGroupDescription"] = group.description
    return properties


@operation("iot", "CreateThingGroup")
def create_thing_group(ctx: RequestContext, p: Params) -> dict:
    name = p["thingGroupName"]
    parent = p.get("parentGroupName")
    properties = p.get("thingGroupProperties") or {}
    description = properties.get("thingGroupDescription")
    attributes = (properties.get("attributePayload") or {}).get("attributes") or {}
    arn = group_arn(ctx, name)
    with ctx.store.transaction():
        existing = ctx.store.get_group(ctx.region, name)
        if existing is not None:
            if (existing.parent, existing.description, existing.attributes) == (parent, description, attributes):
                return {"thingGroupName": name, "thingGroupArn": arn, "thingGroupId": existing.id}
            raise already_exists(f"Thing Group {name} already exists with different properties", existing.id, arn)
        if parent is not None:
            parent_group = require_group(ctx, parent)
            if len(_ancestry(ctx, parent_group)) + 2 > MAX_GROUP_DEPTH:
                raise invalid_request(f"Thing group hierarchies can be at most {MAX_GROUP_DEPTH} levels deep")
        group = ThingGroup(name, str(uuid.uuid4()), parent, description, dict(attributes), 1, ctx.now())
        ctx.store.put_group(ctx.region, group)
        _tag(ctx, arn, p.get("tags"))
    return {"thingGroupName": name, "thingGroupArn": arn, "thingGroupId": group.id}


@operation("iot", "DescribeThingGroup")
def describe_thing_group(ctx: RequestContext, p: Params) -> dict:
    group = require_group(ctx, p["thingGroupName"])
    metadata: dict[str, Any] = {"creationDate": group.creation_date}
    if group.parent is not None:
        metadata["parentGroupName"] = group.parent
        metadata["rootToParentThingGroups"] = [
            {"groupName": g.name, "groupArn": group_arn(ctx, g.name)} for g in _ancestry(ctx, group)
        ]
    return {
        "thingGroupName": group.name,
        "thingGroupId": group.id,
        "thingGroupArn": group_arn(ctx, group.name),
        "version": group.version,
        "thingGroupProperties": _group_properties(group),
        "thingGroupMetadata": metadata,
    }


@operation("iot", "UpdateThingGroup")
def update_thing_group(ctx: RequestContext, p: Params) -> dict:
    with ctx.store.transaction():
        group = require_group(ctx, p["thingGroupName"])
        _check_expected_version(p.get("expectedVersion"), group.version, f"thing group {group.name}")
        properties = p["thingGroupProperties"]
        if "thingGroupDescription" in properties:
            group.description = properties["thingGroupDescription"]
        group.attributes = _merge_attributes(group.attributes, properties.get("attributePayload"))
        group.version += 1
        ctx.store.put_group(ctx.region, group)
    return {"version": group.version}


@operation("iot", "DeleteThingGroup")
def delete_thing_group(ctx: RequestContext, p: Params) -> dict:
    with ctx.store.transaction():
        group = ctx.store.get_group(ctx.region, p["thingGroupName"])
        if group is None:
            return {}
        _check_expected_version(p.get("expectedVersion"), group.version, f"thing group {group.name}")
        if ctx.store.child_groups(ctx.region, group.name):
            raise invalid_request(
                f"Cannot delete thing group : {group.name} when there are still child groups attached to it"
            )
        ctx.store.delete_group(ctx.region, group.name)
        ctx.store.detach_all_policies(ctx.region, group_arn(ctx, group.name))
        ctx.store.delete_tags_for(ctx.region, group_arn(ctx, group.name))
    return {}


@operation("iot", "ListThingGroups")
def list_thing_groups(ctx: RequestContext, p: Params) -> dict:
    parent = p.get("parentGroup")
    if parent is not None:
        require_group(ctx, parent)
    # Without a parent, AWS lists every group unless recursive is explicitly false.
    recursive = p.get("recursive", parent is None)

    def fetch(after: str, limit: int) -> list[ThingGroup]:
        return ctx.store.list_groups(ctx.region, after, limit, parent, p.get("namePrefixFilter"), recursive)

    groups, token = page(fetch, p.get("nextToken"), p.get("maxResults") or DEFAULT_PAGE, lambda g: g.name)
    return {
        "thingGroups": [{"groupName": g.name, "groupArn": group_arn(ctx, g.name)} for g in groups],
        "nextToken": token,
    }


def _group_and_thing(ctx: RequestContext, p: Params) -> tuple[ThingGroup, Thing]:
    group_ref = p.get("thingGroupName") or p.get("thingGroupArn")
    thing_ref = p.get("thingName") or p.get("thingArn")
    if not group_ref or not thing_ref:
        raise invalid_request("Give the thing group (name or ARN) and the thing (name or ARN)")
    group = require_group(ctx, _name_from_arn(group_ref, "thinggroup"))
    thing = require_thing(ctx, _name_from_arn(thing_ref, "thing"))
    return group, thing


@operation("iot", "AddThingToThingGroup")
def add_thing_to_thing_group(ctx: RequestContext, p: Params) -> dict:
    with ctx.store.transaction():
        group, thing = _group_and_thing(ctx, p)
        groups = ctx.store.groups_of_thing(ctx.region, thing.name)
        if group.name not in groups and len(groups) >= MAX_GROUPS_PER_THING:
            raise invalid_request(f"Thing {thing.name} already belongs to {MAX_GROUPS_PER_THING} thing groups")
        ctx.store.add_member(ctx.region, group.name, thing.name)
    return {}


@operation("iot", "RemoveThingFromThingGroup")
def remove_thing_from_thing_group(ctx: RequestContext, p: Params) -> dict:
    with ctx.store.transaction():
        group, thing = _group_and_thing(ctx, p)
        ctx.store.remove_member(ctx.region, group.name, thing.name)
    return {}


@operation("iot", "ListThingsInThingGroup")
def list_things_in_thing_group(ctx: RequestContext, p: Params) -> dict:
    group = require_group(ctx, p["thingGroupName"])
    groups = [group.name]
    if p.get("recursive"):
        groups += ctx.store.descendant_groups(ctx.region, group.name)

    def fetch(after: str, limit: int) -> list[str]:
        return ctx.store.things_in_groups(ctx.region, groups, after, limit)

    names, token = page(fetch, p.get("nextToken"), p.get("maxResults") or DEFAULT_PAGE, lambda n: n)
    return {"things": names, "nextToken": token}


@operation("iot", "ListThingGroupsForThing")
def list_thing_groups_for_thing(ctx: RequestContext, p: Params) -> dict:
    thing = require_thing(ctx, p["thingName"])
    names = ctx.store.groups_of_thing(ctx.region, thing.name)
    start = names.index(p["nextToken"]) + 1 if p.get("nextToken") in names else 0
    size = p.get("maxResults") or DEFAULT_PAGE
    chunk = names[start:start + size]
    token = chunk[-1] if start + size < len(names) else None
    return {
        "thingGroups": [{"groupName": n, "groupArn": group_arn(ctx, n)} for n in chunk],
        "nextToken": token,
    }


# -- thing principals --


def _require_principal(ctx: RequestContext, principal: str) -> None:
    """A certificate principal must exist in this region; other principal kinds are taken as given."""
    if ":cert/" not in principal:
        if principal.startswith("arn:"):
            raise invalid_request(f"Principal {principal} is not a certificate ARN")
        return
    if not ctx.store.certificate_arn_exists(ctx.region, principal):
        raise not_found(f"The certificate {principal} does not exist.")


@operation("iot", "AttachThingPrincipal")
def attach_thing_principal(ctx: RequestContext, p: Params) -> dict:
    principal = p["principal"]
    exclusive = p.get("thingPrincipalType") == "EXCLUSIVE_THING"
    with ctx.store.transaction():
        thing = require_thing(ctx, p["thingName"])
        _require_principal(ctx, principal)
        others = [t for t in ctx.store.things_of_principal(ctx.region, principal) if t != thing.name]
        if exclusive and others:
            raise invalid_request(f"Principal {principal} is already attached to thing {others[0]}")
        ctx.store.attach_principal(ctx.region, thing.name, principal, p.get("thingPrincipalType"))
    return {}


@operation("iot", "DetachThingPrincipal")
def detach_thing_principal(ctx: RequestContext, p: Params) -> dict:
    with ctx.store.transaction():
        thing = require_thing(ctx, p["thingName"])
        ctx.store.detach_principal(ctx.region, thing.name, p["principal"])
    return {}


def _thing_principals_page(ctx: RequestContext, p: Params) -> tuple[list[dict], str | None]:
    thing = require_thing(ctx, p["thingName"])

    def fetch(after: str, limit: int) -> list[dict]:
        return ctx.store.principals_of_thing(ctx.region, thing.name, after, limit)

    return page(fetch, p.get("nextToken"), p.get("maxResults") or DEFAULT_PAGE, lambda r: r["principal"])


@operation("iot", "ListThingPrincipals")
def list_thing_principals(ctx: RequestContext, p: Params) -> dict:
    rows, token = _thing_principals_page(ctx, p)
    return {"principals": [r["principal"] for r in rows], "nextToken": token}


@operation("iot", "ListThingPrincipalsV2")
def list_thing_principals_v2(ctx: RequestContext, p: Params) -> dict:
    rows, token = _thing_principals_page(ctx, p)
    wanted = p.get("thingPrincipalType")
    objects = [
        {"principal": r["principal"], "thingPrincipalType": r["type"] or "NON_EXCLUSIVE_THING"}
        for r in rows
        if wanted is None or (r["type"] or "NON_EXCLUSIVE_THING") == wanted
    ]
    return {"thingPrincipalObjects": objects, "nextToken": token}


@operation("iot", "ListPrincipalThings")
def list_principal_things(ctx: RequestContext, p: Params) -> dict:
    principal = p["principal"]
    _require_principal(ctx, principal)

    def fetch(after: str, limit: int) -> list[str]:
        return ctx.store.things_of_principal(ctx.region, principal, after, limit)

    names, token = page(fetch, p.get("nextToken"), p.get("maxResults") or DEFAULT_PAGE, lambda n: n)
    return {"things": names, "nextToken": token}
