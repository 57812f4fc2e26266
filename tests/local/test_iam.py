"""IAM roles and policies through real boto3 and the AWS CLI, over IAM's query protocol.

IAM is global, so tests do not stay apart by region: each names its roles and policies with a
prefix of its own and lists under a path of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.local.store.iam import trusts_service
from tests.conftest import NO_RETRY, client, error_code, http_status

ACCOUNT = "000000000000"
IOT = "iot.amazonaws.com"
AWS_MANAGED = "arn:aws:iam::aws:policy/service-role/AWSIoTRuleActions"


def trust_policy(service: str = IOT, effect: str = "Allow", action: str | list[str] = "sts:AssumeRole") -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Principal": {"Service": service}, "Action": action}],
    })


def permissions_policy(topic: str = "alerts/*") -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"arn:aws:iot:*:{ACCOUNT}:topic/{topic}"}
        ],
    })


def failure(call, **kwargs) -> pytest.ExceptionInfo:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return excinfo


def message(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Message"]


@pytest.fixture
def iam(core, region):
    return client("iam", core, region)


@pytest.fixture
def prefix(region) -> str:
    """Unique to the test: IAM names are account-wide."""
    return region.replace("us-test-", "t") + "-"


@pytest.fixture
def store(core):
    return core.core.store


@pytest.fixture
def role(iam, prefix) -> str:
    name = f"{prefix}IoTRulesEngineRole"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy())
    return name


def raw_answer(iam, operation: str) -> list[bytes]:
    """The XML bodies of `operation`'s answers, before botocore decodes them."""
    bodies: list[bytes] = []
    iam.meta.events.register(
        f"after-call.iam.{operation}", lambda http_response, **_: bodies.append(http_response.content)
    )
    return bodies


# -- CreateRole, GetRole --


def test_create_role_answers_the_role(iam, prefix, clock):
    name = f"{prefix}republish"
    role = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=trust_policy(), Description="rules engine", MaxSessionDuration=7200
    )["Role"]
    assert role["RoleName"] == name
    assert role["Path"] == "/"
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{name}"
    assert role["RoleId"].startswith("AROA") and len(role["RoleId"]) == 21 and role["RoleId"].isalnum()
    assert role["CreateDate"] == datetime.fromtimestamp(int(clock.now), UTC)
    assert role["AssumeRolePolicyDocument"] == json.loads(trust_policy())
    assert role["Description"] == "rules engine"
    assert role["MaxSessionDuration"] == 7200
    assert "Tags" not in role


def test_get_role_answers_what_create_stored(iam, prefix):
    name = f"{prefix}r"
    created = iam.create_role(RoleName=name, Path="/service-role/iot/", AssumeRolePolicyDocument=trust_policy())
    got = iam.get_role(RoleName=name)["Role"]
    assert got["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/service-role/iot/{name}"
    assert got["Path"] == "/service-role/iot/"
    assert got["MaxSessionDuration"] == 3600
    assert got["RoleLastUsed"] == {}
    assert {k: v for k, v in got.items() if k != "RoleLastUsed"} == created["Role"]


def test_role_ids_differ_between_roles(iam, prefix):
    ids = {
        iam.create_role(RoleName=f"{prefix}{n}", AssumeRolePolicyDocument=trust_policy())["Role"]["RoleId"]
        for n in "abc"
    }
    assert len(ids) == 3


def test_role_names_are_not_distinguished_by_case(iam, prefix):
    iam.create_role(RoleName=f"{prefix}ProdRole", AssumeRolePolicyDocument=trust_policy())
    assert iam.get_role(RoleName=f"{prefix}PRODROLE")["Role"]["RoleName"] == f"{prefix}ProdRole"
    excinfo = failure(iam.create_role, RoleName=f"{prefix}prodrole", AssumeRolePolicyDocument=trust_policy())
    assert error_code(excinfo) == "EntityAlreadyExists"


def test_duplicate_role_is_entity_already_exists(iam, role):
    excinfo = failure(iam.create_role, RoleName=role, AssumeRolePolicyDocument=trust_policy())
    assert error_code(excinfo) == "EntityAlreadyExists"
    assert http_status(excinfo) == 409
    assert message(excinfo) == f"Role with name {role} already exists."


def test_missing_role_is_no_such_entity(iam, prefix):
    excinfo = failure(iam.get_role, RoleName=f"{prefix}nope")
    assert error_code(excinfo) == "NoSuchEntity"
    assert http_status(excinfo) == 404
    assert message(excinfo) == f"The role with name {prefix}nope cannot be found."


def test_roles_are_global(core, iam, role):
    """IAM has no regions: a client of any region sees the same roles."""
    other = client("iam", core, "eu-west-1")
    assert other.get_role(RoleName=role)["Role"]["Arn"] == iam.get_role(RoleName=role)["Role"]["Arn"]


def test_tags_given_at_creation(iam, prefix):
    name = f"{prefix}tagged"
    created = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=trust_policy(), Tags=[{"Key": "team", "Value": "iot"}]
    )
    assert created["Role"]["Tags"] == [{"Key": "team", "Value": "iot"}]
    assert iam.get_role(RoleName=name)["Role"]["Tags"] == [{"Key": "team", "Value": "iot"}]
    excinfo = failure(
        iam.create_role, RoleName=f"{prefix}dup", AssumeRolePolicyDocument=trust_policy(),
        Tags=[{"Key": "Team", "Value": "a"}, {"Key": "team", "Value": "b"}],
    )
    assert error_code(excinfo) == "InvalidInput"
    assert message(excinfo) == "Duplicate tag keys found. Please note that Tag keys are case insensitive."


@pytest.mark.parametrize(
    "kwargs",
    [{"RoleName": "a b"}, {"Path": "no-slashes"}, {"MaxSessionDuration": 60}, {"MaxSessionDuration": 43201}],
)
def test_members_are_validated_from_the_model(core, prefix, kwargs):
    """Checked by the core too, for clients that do not validate (here: botocore told not to)."""
    iam = boto3.client(
        "iam", endpoint_url=core.http_url, region_name="us-east-1", aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY, config=NO_RETRY.merge(Config(parameter_validation=False)),
    )
    params = {"RoleName": f"{prefix}v", "AssumeRolePolicyDocument": trust_policy(), **kwargs}
    excinfo = failure(iam.create_role, **params)
    assert http_status(excinfo) == 400
    assert error_code(excinfo) == "ValidationError"
    assert "validation error detected" in message(excinfo)
    member = next(iter(kwargs))
    assert f"at '{member[0].lower()}{member[1:]}'" in message(excinfo)


def test_permissions_boundaries_are_refused_not_ignored(iam, prefix):
    excinfo = failure(
        iam.create_role, RoleName=f"{prefix}b", AssumeRolePolicyDocument=trust_policy(),
        PermissionsBoundary=AWS_MANAGED,
    )
    assert error_code(excinfo) == "NotImplementedException"
    assert http_status(excinfo) == 400


def statement(**fields) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [fields]})


IOT_PRINCIPAL = {"Service": IOT}
MALFORMED_TRUST = [
    ("{not json", "This policy contains invalid Json"),
    (json.dumps({"Version": "2012-10-17"}), "Syntax errors in policy."),
    (json.dumps({"Version": "2012-10-17", "Statement": []}), "Syntax errors in policy."),
    (json.dumps({"Statement": json.loads(trust_policy())["Statement"], "Extra": 1}), "Syntax errors in policy."),
    (statement(Effect="Maybe", Principal=IOT_PRINCIPAL, Action="sts:AssumeRole"), "Syntax errors in policy."),
    (
        json.dumps({"Version": "2012-10-18", "Statement": json.loads(trust_policy())["Statement"]}),
        "The policy failed legacy parsing",
    ),
    (
        statement(Effect="Allow", Action="sts:AssumeRole"),
        "Invalid principal in policy: com.amazon.balsa.error.InvalidPolicyException: "
        "The passed in policy has a statement with no principals!",
    ),
    (
        statement(Effect="Allow", Principal=IOT_PRINCIPAL, Action="sts:AssumeRole", Resource="*"),
        "Has prohibited field Resource.",
    ),
    (statement(Effect="Allow", Principal=IOT_PRINCIPAL), "Policy statement must contain actions."),
    (
        statement(Effect="Allow", Principal=IOT_PRINCIPAL, Action="AssumeRole"),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
    ),
    (
        statement(Effect="Allow", Principal=IOT_PRINCIPAL, Action="iot:Publish"),
        "Trust Policy statement actions can only be sts:AssumeRole, "
        "sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity",
    ),
    (
        statement(Effect="Allow", Principal={"Service": "iot"}, Action="sts:AssumeRole"),
        'Invalid principal in policy: "SERVICE":"iot"',
    ),
    (
        statement(
            Effect="Allow", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/no-such-role"}, Action="sts:AssumeRole"
        ),
        f'Invalid principal in policy: "AWS":"arn:aws:iam::{ACCOUNT}:role/no-such-role"',
    ),
    (
        json.dumps({
            "Statement": [
                {"Sid": "a", "Effect": "Allow", "Principal": IOT_PRINCIPAL, "Action": "sts:AssumeRole"},
                {"Sid": "a", "Effect": "Allow", "Principal": IOT_PRINCIPAL, "Action": "sts:TagSession"},
            ]
        }),
        "Statement IDs (SID) in a single policy must be unique.",
    ),
]


@pytest.mark.parametrize(("document", "expected"), MALFORMED_TRUST)
def test_malformed_trust_policy(iam, prefix, document, expected):
    excinfo = failure(iam.create_role, RoleName=f"{prefix}m", AssumeRolePolicyDocument=document)
    assert error_code(excinfo) == "MalformedPolicyDocument"
    assert http_status(excinfo) == 400
    assert message(excinfo) == expected
    assert error_code(failure(iam.get_role, RoleName=f"{prefix}m")) == "NoSuchEntity"


def test_trust_policy_may_name_an_existing_role_account_or_anyone(iam, role, prefix):
    principals = [
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/{role}"},
        {"AWS": ACCOUNT},
        {"AWS": "*"},
        {"Service": [IOT, "lambda.amazonaws.com"]},
        "*",
    ]
    for index, principal in enumerate(principals):
        document = statement(Effect="Allow", Principal=principal, Action="sts:AssumeRole")
        iam.create_role(RoleName=f"{prefix}p{index}", AssumeRolePolicyDocument=document)


def test_trust_policy_quota_counts_no_white_space(iam, prefix):
    document = statement(Effect="Allow", Principal=IOT_PRINCIPAL, Action="sts:AssumeRole", Sid="x" * 1900)
    spaced = json.dumps(json.loads(document), indent=40)
    assert len(spaced) > 2048
    iam.create_role(RoleName=f"{prefix}spaced", AssumeRolePolicyDocument=spaced)
    big = statement(Effect="Allow", Principal=IOT_PRINCIPAL, Action="sts:AssumeRole", Sid="x" * 2000)
    excinfo = failure(iam.create_role, RoleName=f"{prefix}big", AssumeRolePolicyDocument=big)
    assert error_code(excinfo) == "LimitExceeded"
    assert http_status(excinfo) == 409
    assert message(excinfo) == "Cannot exceed quota for ACLSizePerRole: 2048"


def test_documents_are_answered_url_encoded_and_kept_as_given(iam, prefix):
    """IAM answers RFC 3986 URL-encoded documents; botocore decodes them into objects."""
    document = json.dumps(json.loads(trust_policy()), indent=2)
    bodies = raw_answer(iam, "GetRole")
    iam.create_role(RoleName=f"{prefix}enc", AssumeRolePolicyDocument=document)
    assert iam.get_role(RoleName=f"{prefix}enc")["Role"]["AssumeRolePolicyDocument"] == json.loads(document)
    encoded = document.replace("\n", "%0A").replace(" ", "%20").replace('"', "%22").replace(":", "%3A")
    encoded = encoded.replace("{", "%7B").replace("}", "%7D").replace("[", "%5B").replace("]", "%5D")
    encoded = encoded.replace(",", "%2C")
    assert f"<AssumeRolePolicyDocument>{encoded}</AssumeRolePolicyDocument>".encode() in bodies[0]


# -- DeleteRole --


def test_delete_role(iam, role):
    assert iam.delete_role(RoleName=role)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert error_code(failure(iam.get_role, RoleName=role)) == "NoSuchEntity"
    excinfo = failure(iam.delete_role, RoleName=role)
    assert error_code(excinfo) == "NoSuchEntity"
    assert message(excinfo) == f"The role with name {role} cannot be found."


def test_delete_role_conflicts_while_policies_remain(iam, role):
    iam.put_role_policy(RoleName=role, PolicyName="republish", PolicyDocument=permissions_policy())
    iam.attach_role_policy(RoleName=role, PolicyArn=AWS_MANAGED)
    excinfo = failure(iam.delete_role, RoleName=role)
    assert error_code(excinfo) == "DeleteConflict"
    assert http_status(excinfo) == 409
    assert message(excinfo) == "Cannot delete entity, must detach all policies first."
    iam.detach_role_policy(RoleName=role, PolicyArn=AWS_MANAGED)
    excinfo = failure(iam.delete_role, RoleName=role)
    assert error_code(excinfo) == "DeleteConflict"
    assert message(excinfo) == "Cannot delete entity, must delete policies first."
    iam.delete_role_policy(RoleName=role, PolicyName="republish")
    iam.delete_role(RoleName=role)
    assert error_code(failure(iam.get_role, RoleName=role)) == "NoSuchEntity"


def test_a_recreated_role_is_a_new_role(iam, role):
    first = iam.get_role(RoleName=role)["Role"]["RoleId"]
    iam.delete_role(RoleName=role)
    second = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust_policy())["Role"]["RoleId"]
    assert first != second


# -- ListRoles --


def test_list_roles_by_path_prefix_in_pages(iam, prefix):
    path = f"/{prefix}list/"
    names = [f"{prefix}{n}" for n in ("b", "A", "c", "D", "e")]
    for name in names:
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=trust_policy())
    iam.create_role(RoleName=f"{prefix}elsewhere", Path=f"/{prefix}other/", AssumeRolePolicyDocument=trust_policy())
    seen, kwargs = [], {"PathPrefix": path, "MaxItems": 2}
    while True:
        page = iam.list_roles(**kwargs)
        assert len(page["Roles"]) <= 2
        seen += page["Roles"]
        if not page["IsTruncated"]:
            assert "Marker" not in page
            break
        kwargs["Marker"] = page["Marker"]
    assert [r["RoleName"] for r in seen] == sorted(names, key=str.lower)
    assert all(set(r) == {
        "Path", "RoleName", "RoleId", "Arn", "CreateDate", "AssumeRolePolicyDocument", "MaxSessionDuration"
    } for r in seen)
    assert seen[0]["AssumeRolePolicyDocument"] == json.loads(trust_policy())
    pages = iam.get_paginator("list_roles").paginate(PathPrefix=f"/{prefix}", PaginationConfig={"PageSize": 1})
    everything = [r["RoleName"] for r in pages.build_full_result()["Roles"]]
    assert set(everything) == {*names, f"{prefix}elsewhere"}


def test_list_roles_with_a_bad_marker(iam):
    excinfo = failure(iam.list_roles, Marker="not a marker")
    assert error_code(excinfo) == "ValidationError"
    assert http_status(excinfo) == 400


# -- UpdateAssumeRolePolicy --


def test_update_assume_role_policy(iam, role, store):
    assert store.role_trusts_service(role, IOT)
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=trust_policy("lambda.amazonaws.com"))
    assert iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"] == json.loads(
        trust_policy("lambda.amazonaws.com")
    )
    assert not store.role_trusts_service(role, IOT)


def test_update_assume_role_policy_errors(iam, role, prefix):
    excinfo = failure(iam.update_assume_role_policy, RoleName=f"{prefix}nope", PolicyDocument=trust_policy())
    assert error_code(excinfo) == "NoSuchEntity"
    assert http_status(excinfo) == 404
    excinfo = failure(iam.update_assume_role_policy, RoleName=role, PolicyDocument="[]")
    assert error_code(excinfo) == "MalformedPolicyDocument"
    assert iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"] == json.loads(trust_policy())


# -- inline policies --


def test_put_get_list_delete_role_policy(iam, role):
    bodies = raw_answer(iam, "GetRolePolicy")
    iam.put_role_policy(RoleName=role, PolicyName="republish", PolicyDocument=permissions_policy())
    got = iam.get_role_policy(RoleName=role, PolicyName="republish")
    assert {k: got[k] for k in ("RoleName", "PolicyName", "PolicyDocument")} == {
        "RoleName": role, "PolicyName": "republish", "PolicyDocument": json.loads(permissions_policy()),
    }
    assert b"<PolicyDocument>%7B%22Version%22%3A%20%222012-10-17%22%2C" in bodies[0]
    iam.put_role_policy(RoleName=role, PolicyName="republish", PolicyDocument=permissions_policy("other/*"))
    document = iam.get_role_policy(RoleName=role, PolicyName="republish")["PolicyDocument"]
    assert document == json.loads(permissions_policy("other/*"))
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["republish"]
    iam.delete_role_policy(RoleName=role, PolicyName="republish")
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []


def test_list_role_policies_in_pages(iam, role):
    for name in ("c", "a", "b"):
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=permissions_policy())
    first = iam.list_role_policies(RoleName=role, MaxItems=2)
    assert first["PolicyNames"] == ["a", "b"] and first["IsTruncated"]
    second = iam.list_role_policies(RoleName=role, MaxItems=2, Marker=first["Marker"])
    assert second["PolicyNames"] == ["c"] and not second["IsTruncated"]


def test_role_policy_errors(iam, role, prefix):
    excinfo = failure(iam.get_role_policy, RoleName=role, PolicyName="nope")
    assert error_code(excinfo) == "NoSuchEntity"
    assert http_status(excinfo) == 404
    assert message(excinfo) == "The role policy with name nope cannot be found."
    assert message(failure(iam.delete_role_policy, RoleName=role, PolicyName="nope")) == (
        "The role policy with name nope cannot be found."
    )
    for call in (iam.get_role_policy, iam.delete_role_policy):
        excinfo = failure(call, RoleName=f"{prefix}nope", PolicyName="p")
        assert message(excinfo) == f"The role with name {prefix}nope cannot be found."
    excinfo = failure(
        iam.put_role_policy, RoleName=f"{prefix}nope", PolicyName="p", PolicyDocument=permissions_policy()
    )
    assert error_code(excinfo) == "NoSuchEntity"
    assert error_code(failure(iam.list_role_policies, RoleName=f"{prefix}nope")) == "NoSuchEntity"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("nope", "This policy contains invalid Json"),
        (
            statement(Effect="Allow", Principal=IOT_PRINCIPAL, Action="iot:Publish", Resource="*"),
            "Policy document should not specify a principal.",
        ),
        (statement(Effect="Allow", Action="iot:Publish"), "Policy statement must contain resources."),
        (statement(Effect="Allow", Resource="*"), "Policy statement must contain actions."),
        (
            statement(Effect="Allow", Action="iot:Publish", Resource="topic/a"),
            'Resource topic/a must be in ARN format or "*".',
        ),
        (statement(Effect="Allow", Action="iot:a:b", Resource="*"), "Actions/Condition can contain only one colon."),
        (statement(Effect="Allow", Action="i o t:Publish", Resource="*"), "Vendor i o t is not valid"),
    ],
)
def test_malformed_permissions_policy(iam, role, document, expected):
    excinfo = failure(iam.put_role_policy, RoleName=role, PolicyName="p", PolicyDocument=document)
    assert error_code(excinfo) == "MalformedPolicyDocument"
    assert http_status(excinfo) == 400
    assert message(excinfo) == expected


def test_inline_policies_share_one_size_quota(iam, role):
    document = statement(Effect="Allow", Action="iot:Publish", Resource="*", Sid="x" * 5200)
    iam.put_role_policy(RoleName=role, PolicyName="one", PolicyDocument=document)
    iam.put_role_policy(RoleName=role, PolicyName="one", PolicyDocument=document)  # a replacement, not a second
    excinfo = failure(iam.put_role_policy, RoleName=role, PolicyName="two", PolicyDocument=document)
    assert error_code(excinfo) == "LimitExceeded"
    assert http_status(excinfo) == 409
    assert message(excinfo) == f"Maximum policy size of 10240 bytes exceeded for role {role}"


# -- attached managed policies --


def test_attach_list_detach_role_policies(iam, role, prefix):
    customer = iam.create_policy(
        PolicyName=f"{prefix}republish", Path="/iot/", PolicyDocument=permissions_policy()
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=AWS_MANAGED)
    iam.attach_role_policy(RoleName=role, PolicyArn=customer)
    iam.attach_role_policy(RoleName=role, PolicyArn=customer)  # again: no error, no second entry
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == [
        {"PolicyName": "AWSIoTRuleActions", "PolicyArn": AWS_MANAGED},
        {"PolicyName": f"{prefix}republish", "PolicyArn": customer},
    ]
    only_iot = iam.list_attached_role_policies(RoleName=role, PathPrefix="/iot/")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in only_iot] == [customer]
    first = iam.list_attached_role_policies(RoleName=role, MaxItems=1)
    assert first["IsTruncated"] and first["AttachedPolicies"][0]["PolicyArn"] == AWS_MANAGED
    second = iam.list_attached_role_policies(RoleName=role, MaxItems=1, Marker=first["Marker"])
    assert not second["IsTruncated"] and second["AttachedPolicies"][0]["PolicyArn"] == customer
    assert iam.get_policy(PolicyArn=customer)["Policy"]["AttachmentCount"] == 1
    iam.detach_role_policy(RoleName=role, PolicyArn=customer)
    assert iam.get_policy(PolicyArn=customer)["Policy"]["AttachmentCount"] == 0
    excinfo = failure(iam.detach_role_policy, RoleName=role, PolicyArn=customer)
    assert error_code(excinfo) == "NoSuchEntity"
    assert http_status(excinfo) == 404
    assert message(excinfo) == f"Policy {customer} was not found."


def test_attach_role_policy_errors(iam, role, prefix):
    missing = f"arn:aws:iam::{ACCOUNT}:policy/{prefix}missing"
    excinfo = failure(iam.attach_role_policy, RoleName=role, PolicyArn=missing)
    assert error_code(excinfo) == "NoSuchEntity"
    assert message(excinfo) == f"Policy {missing} does not exist or is not attachable."
    other_account = "arn:aws:iam::123456789012:policy/theirs"
    assert error_code(failure(iam.attach_role_policy, RoleName=role, PolicyArn=other_account)) == "NoSuchEntity"
    excinfo = failure(iam.attach_role_policy, RoleName=role, PolicyArn="arn:aws:iot:::policy/not-iam")
    assert error_code(excinfo) == "InvalidInput"
    assert http_status(excinfo) == 400
    assert message(excinfo) == "ARN arn:aws:iot:::policy/not-iam is not valid."
    excinfo = failure(iam.attach_role_policy, RoleName=f"{prefix}nope", PolicyArn=AWS_MANAGED)
    assert message(excinfo) == f"The role with name {prefix}nope cannot be found."
    assert error_code(failure(iam.detach_role_policy, RoleName=f"{prefix}nope", PolicyArn=AWS_MANAGED)) == (
        "NoSuchEntity"
    )
    assert error_code(failure(iam.list_attached_role_policies, RoleName=f"{prefix}nope")) == "NoSuchEntity"


def test_attached_policies_quota(iam, role):
    for index in range(10):
        iam.attach_role_policy(RoleName=role, PolicyArn=f"arn:aws:iam::aws:policy/Policy{index}")
    excinfo = failure(iam.attach_role_policy, RoleName=role, PolicyArn="arn:aws:iam::aws:policy/Policy10")
    assert error_code(excinfo) == "LimitExceeded"
    assert http_status(excinfo) == 409
    assert message(excinfo) == "Cannot exceed quota for PoliciesPerRole: 10"


# -- customer managed policies --


def test_create_get_list_delete_policy(iam, prefix, clock):
    name = f"{prefix}republish"
    created = iam.create_policy(
        PolicyName=name, Path=f"/{prefix}/", PolicyDocument=permissions_policy(), Description="republish alerts"
    )["Policy"]
    arn = f"arn:aws:iam::{ACCOUNT}:policy/{prefix}/{name}"
    assert created["Arn"] == arn
    assert created["PolicyId"].startswith("ANPA") and len(created["PolicyId"]) == 21
    assert created["DefaultVersionId"] == "v1"
    assert created["AttachmentCount"] == 0 and created["IsAttachable"] is True
    assert created["CreateDate"] == created["UpdateDate"] == datetime.fromtimestamp(int(clock.now), UTC)
    assert iam.get_policy(PolicyArn=arn)["Policy"] == created
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert version["Document"] == json.loads(permissions_policy()) and version["IsDefaultVersion"] is True
    assert error_code(failure(iam.get_policy_version, PolicyArn=arn, VersionId="v2")) == "NoSuchEntity"
    listed = iam.list_policies(Scope="Local", PathPrefix=f"/{prefix}/")["Policies"]
    assert [p["Arn"] for p in listed] == [arn] and "Description" not in listed[0]
    assert iam.list_policies(Scope="Local", PathPrefix=f"/{prefix}/", OnlyAttached=True)["Policies"] == []
    assert iam.list_policies(Scope="AWS", PathPrefix=f"/{prefix}/")["Policies"] == []
    iam.delete_policy(PolicyArn=arn)
    excinfo = failure(iam.get_policy, PolicyArn=arn)
    assert error_code(excinfo) == "NoSuchEntity"
    assert http_status(excinfo) == 404
    assert message(excinfo) == f"Policy {arn} was not found."
    assert error_code(failure(iam.delete_policy, PolicyArn=arn)) == "NoSuchEntity"


def test_policy_errors(iam, role, prefix):
    arn = iam.create_policy(PolicyName=f"{prefix}p", PolicyDocument=permissions_policy())["Policy"]["Arn"]
    excinfo = failure(iam.create_policy, PolicyName=f"{prefix}P", PolicyDocument=permissions_policy())
    assert error_code(excinfo) == "EntityAlreadyExists"
    assert http_status(excinfo) == 409
    assert message(excinfo) == f"A policy called {prefix}P already exists. Duplicate names are not allowed."
    excinfo = failure(iam.create_policy, PolicyName=f"{prefix}q", PolicyDocument=trust_policy())
    assert error_code(excinfo) == "MalformedPolicyDocument"
    big = statement(Effect="Allow", Action="iot:Publish", Resource="*", Sid="x" * 6144)
    excinfo = failure(iam.create_policy, PolicyName=f"{prefix}big", PolicyDocument=big)
    assert error_code(excinfo) == "LimitExceeded"
    assert message(excinfo) == "Cannot exceed quota for PolicySize: 6144"
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert iam.list_policies(Scope="Local", OnlyAttached=True, PathPrefix="/")["Policies"][0]["AttachmentCount"] >= 1
    excinfo = failure(iam.delete_policy, PolicyArn=arn)
    assert error_code(excinfo) == "DeleteConflict"
    assert http_status(excinfo) == 409
    assert message(excinfo) == "Cannot delete a policy attached to entities."
    assert error_code(failure(iam.get_policy, PolicyArn="not-an-arn-but-long-enough")) == "InvalidInput"


def test_list_policies_in_pages(iam, prefix):
    path = f"/{prefix}/"
    for name in ("c", "a", "b"):
        iam.create_policy(PolicyName=f"{prefix}{name}", Path=path, PolicyDocument=permissions_policy())
    first = iam.list_policies(PathPrefix=path, MaxItems=2)
    assert [p["PolicyName"] for p in first["Policies"]] == [f"{prefix}a", f"{prefix}b"] and first["IsTruncated"]
    second = iam.list_policies(PathPrefix=path, MaxItems=2, Marker=first["Marker"])
    assert [p["PolicyName"] for p in second["Policies"]] == [f"{prefix}c"] and not second["IsTruncated"]


# -- the rules engine's check: does the role trust iot.amazonaws.com? --


def test_role_trusts_service(iam, role, prefix, store):
    arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    assert store.role_trusts_service(role, IOT)
    assert store.role_trusts_service(arn, IOT)
    assert not store.role_trusts_service(arn.replace("role/", "role/other/"), IOT)
    assert not store.role_trusts_service(role, "lambda.amazonaws.com")
    assert not store.role_trusts_service(f"{prefix}nope", IOT)


@pytest.mark.parametrize(
    ("document", "trusted"),
    [
        (trust_policy(), True),
        (trust_policy(action=["sts:TagSession", "sts:AssumeRole"]), True),
        (trust_policy(action="sts:*"), True),
        (trust_policy(action="STS:assumerole"), True),
        (trust_policy(action="sts:AssumeRoleWithSAML"), False),
        (trust_policy(service="lambda.amazonaws.com"), False),
        (trust_policy(effect="Deny"), False),
        (statement(Effect="Allow", Principal="*", Action="sts:AssumeRole"), True),
        (statement(Effect="Allow", Principal={"Service": ["a.amazonaws.com", IOT]}, Action="sts:AssumeRole"), True),
        (
            json.dumps({"Statement": [
                json.loads(trust_policy())["Statement"][0],
                {"Effect": "Deny", "Principal": {"Service": IOT}, "Action": "sts:*"},
            ]}),
            False,
        ),
        ("not json", False),
    ],
)
def test_trusts_service(document, trusted):
    assert trusts_service(document, IOT) is trusted


# -- other clients: the endpoint from the environment, the AWS CLI --


def test_iam_client_from_aws_endpoint_url_iam(core, prefix, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", core.http_url)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    session = boto3.Session(
        aws_access_key_id=LOCAL_ACCESS_KEY_ID, aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY, region_name="us-east-1"
    )
    iam = session.client("iam", config=NO_RETRY)
    assert iam.meta.endpoint_url == core.http_url
    iam.create_role(RoleName=f"{prefix}env", AssumeRolePolicyDocument=trust_policy())
    assert iam.get_role(RoleName=f"{prefix}env")["Role"]["RoleName"] == f"{prefix}env"


def test_aws_cli_against_the_core(core, prefix, tmp_path: Path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    aws = str(Path(sys.executable).with_name("aws"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [aws, "iam", *args, "--endpoint-url", core.http_url, "--output", "json"],
            check=False, env=env, capture_output=True, text=True, timeout=60,
        )

    name = f"{prefix}cli"
    (tmp_path / "trust.json").write_text(trust_policy())
    trust_file = f"file://{tmp_path / 'trust.json'}"
    created = run("create-role", "--role-name", name, "--assume-role-policy-document", trust_file)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["Role"]["AssumeRolePolicyDocument"] == json.loads(trust_policy())
    put = run("put-role-policy", "--role-name", name, "--policy-name", "republish",
              "--policy-document", permissions_policy())
    assert put.returncode == 0, put.stderr
    got = json.loads(run("get-role-policy", "--role-name", name, "--policy-name", "republish").stdout)
    assert got["PolicyDocument"] == json.loads(permissions_policy())
    assert run("attach-role-policy", "--role-name", name, "--policy-arn", AWS_MANAGED).returncode == 0
    conflict = run("delete-role", "--role-name", name)
    assert conflict.returncode == 255  # AWS CLI v1: 255 for a service error
    assert "(DeleteConflict)" in conflict.stderr
    missing = run("get-role", "--role-name", f"{prefix}nope")
    assert missing.returncode == 255  # AWS CLI v1: 255 for a service error
    assert f"(NoSuchEntity) when calling the GetRole operation: The role with name {prefix}nope cannot be found." in (
        missing.stderr
    )
