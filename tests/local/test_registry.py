"""The thing registry through real boto3: things, types, groups, principals, with AWS's errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import error_code, http_status


def test_create_describe_update_delete_thing(iot, region):
    created = iot.create_thing(thingName="Vehicle-VIN-001", attributePayload={"attributes": {"country": "Japan"}})
    assert created["thingArn"] == f"arn:aws:iot:{region}:000000000000:thing/Vehicle-VIN-001"
    assert len(created["thingId"]) == 36
    described = iot.describe_thing(thingName="Vehicle-VIN-001")
    assert described["attributes"] == {"country": "Japan"}
    assert described["version"] == 1
    assert described["defaultClientId"] == "Vehicle-VIN-001"

    iot.update_thing(thingName="Vehicle-VIN-001", attributePayload={"attributes": {"color": "red"}, "merge": True})
    described = iot.describe_thing(thingName="Vehicle-VIN-001")
    assert described["attributes"] == {"country": "Japan", "color": "red"}
    assert described["version"] == 2

    iot.update_thing(thingName="Vehicle-VIN-001", attributePayload={"attributes": {"color": ""}, "merge": True})
    assert iot.describe_thing(thingName="Vehicle-VIN-001")["attributes"] == {"country": "Japan"}
    iot.update_thing(thingName="Vehicle-VIN-001", attributePayload={"attributes": {"a": "b"}})
    assert iot.describe_thing(thingName="Vehicle-VIN-001")["attributes"] == {"a": "b"}

    iot.delete_thing(thingName="Vehicle-VIN-001")
    with pytest.raises(ClientError) as excinfo:
        iot.describe_thing(thingName="Vehicle-VIN-001")
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert http_status(excinfo) == 404
    # AWS answers success when deleting a thing that does not exist.
    iot.delete_thing(thingName="Vehicle-VIN-001")


def test_create_thing_is_idempotent_only_with_the_same_config(iot):
    first = iot.create_thing(thingName="t1", attributePayload={"attributes": {"k": "v"}})
    again = iot.create_thing(thingName="t1", attributePayload={"attributes": {"k": "v"}})
    assert again["thingId"] == first["thingId"]
    with pytest.raises(ClientError) as excinfo:
        iot.create_thing(thingName="t1", attributePayload={"attributes": {"k": "other"}})
    assert error_code(excinfo) == "ResourceAlreadyExistsException"
    assert http_status(excinfo) == 409
    assert excinfo.value.response["resourceId"] == first["thingId"]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("bad name", "regular expression pattern"), ("x" * 129, "less than or equal to 128")],
)
def test_thing_name_validation(iot, name, fragment):
    with pytest.raises(ClientError) as excinfo:
        iot.create_thing(thingName=name)
    assert error_code(excinfo) == "InvalidRequestException"
    assert http_status(excinfo) == 400
    assert fragment in str(excinfo.value)


def test_attribute_limits(iot):
    with pytest.raises(ClientError) as excinfo:
        iot.create_thing(thingName="many", attributePayload={"attributes": {f"a{i}": "v" for i in range(4)}})
    assert error_code(excinfo) == "InvalidRequestException"
    iot.create_thing_type(thingTypeName="T")
    attributes = {f"a{i}": "v" for i in range(50)}
    iot.create_thing(thingName="many", thingTypeName="T", attributePayload={"attributes": attributes})
    with pytest.raises(ClientError) as excinfo:
        iot.create_thing(thingName="toomany", thingTypeName="T",
                         attributePayload={"attributes": {f"a{i}": "v" for i in range(51)}})
    assert error_code(excinfo) == "InvalidRequestException"
    with pytest.raises(ClientError) as excinfo:
        iot.create_thing(thingName="badvalue", attributePayload={"attributes": {"k": "no spaces allowed"}})
    assert error_code(excinfo) == "InvalidRequestException"


def test_expected_version_conflict(iot):
    iot.create_thing(thingName="v")
    iot.update_thing(thingName="v", attributePayload={"attributes": {"a": "1"}}, expectedVersion=1)
    with pytest.raises(ClientError) as excinfo:
        iot.update_thing(thingName="v", attributePayload={"attributes": {"a": "2"}}, expectedVersion=1)
    assert error_code(excinfo) == "VersionConflictException"
    assert http_status(excinfo) == 409
    with pytest.raises(ClientError) as excinfo:
        iot.delete_thing(thingName="v", expectedVersion=1)
    assert error_code(excinfo) == "VersionConflictException"
    iot.delete_thing(thingName="v", expectedVersion=2)


def test_list_things_pagination_and_filters(iot):
    iot.create_thing_type(thingTypeName="SedanVehicle")
    for i in range(1, 13):
        iot.create_thing(
            thingName=f"Vehicle-VIN-{i:03}",
            thingTypeName="SedanVehicle" if i % 3 == 0 else None,
            attributePayload={"attributes": {"country": "Germany" if i % 2 else "Japan", "serial": f"S{i:03}"}},
        ) if i % 3 == 0 else iot.create_thing(
            thingName=f"Vehicle-VIN-{i:03}",
            attributePayload={"attributes": {"country": "Germany" if i % 2 else "Japan", "serial": f"S{i:03}"}},
        )
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"maxResults": 5, **({"nextToken": token} if token else {})}
        answer = iot.list_things(**kwargs)
        seen += [t["thingName"] for t in answer["things"]]
        pages += 1
        token = answer.get("nextToken")
        if not token:
            break
    assert seen == [f"Vehicle-VIN-{i:03}" for i in range(1, 13)]
    assert pages == 3

    by_type = iot.list_things(thingTypeName="SedanVehicle")["things"]
    assert [t["thingName"] for t in by_type] == ["Vehicle-VIN-003", "Vehicle-VIN-006", "Vehicle-VIN-009", "Vehicle-VIN-012"]
    assert all(t["thingTypeName"] == "SedanVehicle" for t in by_type)

    japan = iot.list_things(attributeName="country", attributeValue="Japan")["things"]
    assert [t["thingName"] for t in japan] == [f"Vehicle-VIN-{i:03}" for i in range(2, 13, 2)]
    prefix = iot.list_things(attributeName="serial", attributeValue="S01", usePrefixAttributeValue=True)["things"]
    assert [t["thingName"] for t in prefix] == ["Vehicle-VIN-010", "Vehicle-VIN-011", "Vehicle-VIN-012"]
    both = iot.list_things(thingTypeName="SedanVehicle", attributeName="country", attributeValue="Japan")["things"]
    assert [t["thingName"] for t in both] == ["Vehicle-VIN-006", "Vehicle-VIN-012"]

    paginator = iot.get_paginator("list_things")
    names = [t["thingName"] for p in paginator.paginate(PaginationConfig={"PageSize": 4}) for t in p["things"]]
    assert len(names) == 12

    with pytest.raises(ClientError) as excinfo:
        iot.list_things(nextToken="not-a-token")
    assert error_code(excinfo) == "InvalidRequestException"


def test_regions_are_isolated(core, iot, region):
    from tests.conftest import client

    iot.create_thing(thingName="only-here")
    other = client("iot", core, region + "-other")
    assert other.list_things()["things"] == []
    with pytest.raises(ClientError):
        other.describe_thing(thingName="only-here")


def test_thing_types_lifecycle(iot, clock, region):
    created = iot.create_thing_type(
        thingTypeName="TruckVehicle",
        thingTypeProperties={"thingTypeDescription": "Trucks", "searchableAttributes": ["country", "customerId"]},
    )
    assert created["thingTypeArn"].endswith(":thingtype/TruckVehicle")
    same = iot.create_thing_type(
        thingTypeName="TruckVehicle",
        thingTypeProperties={"thingTypeDescription": "Trucks", "searchableAttributes": ["country", "customerId"]},
    )
    assert same["thingTypeId"] == created["thingTypeId"]
    with pytest.raises(ClientError) as excinfo:
        iot.create_thing_type(thingTypeName="TruckVehicle", thingTypeProperties={"thingTypeDescription": "Other"})
    assert error_code(excinfo) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as excinfo:
        iot.create_thing_type(thingTypeName="X", thingTypeProperties={"searchableAttributes": ["a", "b", "c", "d"]})
    assert error_code(excinfo) == "InvalidRequestException"

    described = iot.describe_thing_type(thingTypeName="TruckVehicle")
    assert described["thingTypeProperties"]["searchableAttributes"] == ["country", "customerId"]
    assert described["thingTypeMetadata"]["deprecated"] is False
    assert [t["thingTypeName"] for t in iot.list_thing_types()["thingTypes"]] == ["TruckVehicle"]

    iot.create_thing(thingName="truck1", thingTypeName="TruckVehicle")
    with pytest.raises(ClientError) as excinfo:
        iot.delete_thing_type(thingTypeName="TruckVehicle")
    assert error_code(excinfo) == "InvalidRequestException"  # not deprecated

    iot.deprecate_thing_type(thingTypeName="TruckVehicle")
    assert iot.describe_thing_type(thingTypeName="TruckVehicle")["thingTypeMetadata"]["deprecated"] is True
    with pytest.raises(ClientError) as excinfo:
        iot.create_thing(thingName="truck2", thingTypeName="TruckVehicle")
    assert error_code(excinfo) == "InvalidRequestException"
    with pytest.raises(ClientError) as excinfo:
        iot.delete_thing_type(thingTypeName="TruckVehicle")
    assert error_code(excinfo) == "InvalidRequestException"  # the 5-minute rule
    assert "deprecated less than" in str(excinfo.value)

    clock.advance(301)
    with pytest.raises(ClientError) as excinfo:
        iot.delete_thing_type(thingTypeName="TruckVehicle")
    assert error_code(excinfo) == "DeleteConflictException"  # truck1 still uses it
    iot.delete_thing(thingName="truck1")
    iot.delete_thing_type(thingTypeName="TruckVehicle")
    with pytest.raises(ClientError) as excinfo:
        iot.describe_thing_type(thingTypeName="TruckVehicle")
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_undo_deprecation(iot):
    iot.create_thing_type(thingTypeName="SUVVehicle")
    iot.deprecate_thing_type(thingTypeName="SUVVehicle")
    iot.deprecate_thing_type(thingTypeName="SUVVehicle", undoDeprecate=True)
    assert iot.describe_thing_type(thingTypeName="SUVVehicle")["thingTypeMetadata"]["deprecated"] is False
    iot.create_thing(thingName="suv", thingTypeName="SUVVehicle")
    with pytest.raises(ClientError) as excinfo:
        iot.deprecate_thing_type(thingTypeName="Missing")
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_thing_groups_hierarchy_and_membership(iot):
    iot.create_thing_group(thingGroupName="CustomerFleet", thingGroupProperties={"thingGroupDescription": "Customers"})
    iot.create_thing_group(thingGroupName="Europe", parentGroupName="CustomerFleet")
    iot.create_thing_group(thingGroupName="Germany", parentGroupName="Europe")
    iot.create_thing_group(thingGroupName="TestFleet")
    with pytest.raises(ClientError) as excinfo:
        iot.create_thing_group(thingGroupName="Orphan", parentGroupName="Missing")
    assert error_code(excinfo) == "ResourceNotFoundException"

    described = iot.describe_thing_group(thingGroupName="Germany")
    assert described["thingGroupMetadata"]["parentGroupName"] == "Europe"
    assert [g["groupName"] for g in described["thingGroupMetadata"]["rootToParentThingGroups"]] == ["CustomerFleet", "Europe"]
    assert described["version"] == 1

    all_groups = [g["groupName"] for g in iot.list_thing_groups()["thingGroups"]]
    assert all_groups == ["CustomerFleet", "Europe", "Germany", "TestFleet"]
    roots = [g["groupName"] for g in iot.list_thing_groups(recursive=False)["thingGroups"]]
    assert roots == ["CustomerFleet", "TestFleet"]
    children = [g["groupName"] for g in iot.list_thing_groups(parentGroup="CustomerFleet", recursive=False)["thingGroups"]]
    assert children == ["Europe"]
    subtree = [g["groupName"] for g in iot.list_thing_groups(parentGroup="CustomerFleet", recursive=True)["thingGroups"]]
    assert subtree == ["Europe", "Germany"]
    assert [g["groupName"] for g in iot.list_thing_groups(namePrefixFilter="Eu")["thingGroups"]] == ["Europe"]

    iot.create_thing(thingName="car1")
    iot.create_thing(thingName="car2")
    iot.add_thing_to_thing_group(thingGroupName="Germany", thingName="car1")
    iot.add_thing_to_thing_group(thingGroupArn=described["thingGroupArn"], thingName="car2")
    iot.add_thing_to_thing_group(thingGroupName="TestFleet", thingName="car1")
    assert iot.list_things_in_thing_group(thingGroupName="Germany")["things"] == ["car1", "car2"]
    assert iot.list_things_in_thing_group(thingGroupName="CustomerFleet")["things"] == []
    assert iot.list_things_in_thing_group(thingGroupName="CustomerFleet", recursive=True)["things"] == ["car1", "car2"]
    assert [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="car1")["thingGroups"]] == ["Germany", "TestFleet"]
    iot.remove_thing_from_thing_group(thingGroupName="Germany", thingName="car1")
    assert iot.list_things_in_thing_group(thingGroupName="Germany")["things"] == ["car2"]

    updated = iot.update_thing_group(
        thingGroupName="Germany",
        thingGroupProperties={"thingGroupDescription": "DE", "attributePayload": {"attributes": {"tz": "CET"}}},
        expectedVersion=1,
    )
    assert updated["version"] == 2
    with pytest.raises(ClientError) as excinfo:
        iot.update_thing_group(thingGroupName="Germany", thingGroupProperties={}, expectedVersion=1)
    assert error_code(excinfo) == "VersionConflictException"

    with pytest.raises(ClientError) as excinfo:
        iot.delete_thing_group(thingGroupName="Europe")
    assert error_code(excinfo) == "InvalidRequestException"
    iot.delete_thing_group(thingGroupName="Germany")
    iot.delete_thing_group(thingGroupName="Europe")
    assert iot.list_thing_groups_for_thing(thingName="car2")["thingGroups"] == []
    iot.delete_thing_group(thingGroupName="NeverExisted")


def test_deleting_a_thing_removes_its_memberships(iot):
    iot.create_thing_group(thingGroupName="G")
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingGroupName="G", thingName="t")
    iot.delete_thing(thingName="t")
    assert iot.list_things_in_thing_group(thingGroupName="G")["things"] == []


def test_thing_principals(iot, region):
    iot.create_thing(thingName="device")
    iot.create_thing(thingName="other")
    cert = iot.create_keys_and_certificate(setAsActive=True)
    arn = cert["certificateArn"]
    iot.attach_thing_principal(thingName="device", principal=arn)
    iot.attach_thing_principal(thingName="device", principal=arn)  # idempotent
    assert iot.list_thing_principals(thingName="device")["principals"] == [arn]
    assert iot.list_principal_things(principal=arn)["things"] == ["device"]
    v2 = iot.list_thing_principals_v2(thingName="device")["thingPrincipalObjects"]
    assert v2 == [{"principal": arn, "thingPrincipalType": "NON_EXCLUSIVE_THING"}]

    with pytest.raises(ClientError) as excinfo:
        iot.delete_thing(thingName="device")
    assert error_code(excinfo) == "InvalidRequestException"

    with pytest.raises(ClientError) as excinfo:
        iot.attach_thing_principal(thingName="missing", principal=arn)
    assert error_code(excinfo) == "ResourceNotFoundException"
    missing_cert = f"arn:aws:iot:{region}:000000000000:cert/{'0' * 64}"
    with pytest.raises(ClientError) as excinfo:
        iot.attach_thing_principal(thingName="device", principal=missing_cert)
    assert error_code(excinfo) == "ResourceNotFoundException"

    with pytest.raises(ClientError) as excinfo:
        iot.attach_thing_principal(thingName="other", principal=arn, thingPrincipalType="EXCLUSIVE_THING")
    assert error_code(excinfo) == "InvalidRequestException"

    iot.detach_thing_principal(thingName="device", principal=arn)
    assert iot.list_thing_principals(thingName="device")["principals"] == []
    iot.delete_thing(thingName="device")


def test_deleting_a_group_detaches_its_policies(iot):
    iot.create_thing_group(thingGroupName="Policed")
    arn = iot.describe_thing_group(thingGroupName="Policed")["thingGroupArn"]
    document = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}'
    iot.create_policy(policyName="GroupPolicy", policyDocument=document)
    iot.attach_policy(policyName="GroupPolicy", target=arn)
    with pytest.raises(ClientError) as excinfo:
        iot.delete_policy(policyName="GroupPolicy")
    assert error_code(excinfo) == "DeleteConflictException"
    iot.delete_thing_group(thingGroupName="Policed")
    assert iot.list_targets_for_policy(policyName="GroupPolicy")["targets"] == []
    iot.delete_policy(policyName="GroupPolicy")
