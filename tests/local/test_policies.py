"""AWS IoT policies through real boto3: versions, attachments, effective policies and
TestAuthorization, with AWS's error codes, statuses and messages."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import error_code, http_status

ACCOUNT = "000000000000"


def document(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str, resource: str = "*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str, resource: str = "*") -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


CONNECT_ALL = document(allow("iot:Connect"))


def arn(region: str, resource: str) -> str:
    return f"arn:aws:iot:{region}:{ACCOUNT}:{resource}"


def fails(call, *args, **kwargs) -> pytest.ExceptionInfo:
    with pytest.raises(ClientError) as excinfo:
        call(*args, **kwargs)
    return excinfo


def certificate(iot) -> str:
    return iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]


def names(policies: list[dict]) -> list[str]:
    return [p["policyName"] for p in policies]


# -- policies and versions --


def test_create_get_list_delete_policy(iot, region, clock):
    created = iot.create_policy(policyName="Connect", policyDocument=CONNECT_ALL)
    assert created["policyArn"] == arn(region, "policy/Connect")
    assert created["policyVersionId"] == "1"
    assert created["policyDocument"] == CONNECT_ALL

    got = iot.get_policy(policyName="Connect")
    assert got["policyDocument"] == CONNECT_ALL
    assert got["defaultVersionId"] == "1"
    assert got["creationDate"].timestamp() == pytest.approx(clock.now)
    assert got["lastModifiedDate"] == got["creationDate"]
    assert len(got["generationId"]) == 64

    listed = iot.list_policies()
    assert listed["policies"] == [
        {"policyName": "Connect", "policyArn": arn(region, "policy/Connect")}
    ]
    assert "nextMarker" not in listed

    iot.delete_policy(policyName="Connect")
    excinfo = fails(iot.get_policy, policyName="Connect")
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)
    assert excinfo.value.response["Error"]["Message"] == "Policy not found"
    assert error_code(fails(iot.delete_policy, policyName="Connect")) == "ResourceNotFoundException"


def test_create_policy_with_a_taken_name(iot, region):
    iot.create_policy(policyName="Taken", policyDocument=CONNECT_ALL)
    excinfo = fails(iot.create_policy, policyName="Taken", policyDocument=CONNECT_ALL)
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceAlreadyExistsException", 409)
    assert excinfo.value.response["Error"]["Message"] == (
        "Policy cannot be created - name already exists (name=Taken)"
    )
    assert excinfo.value.response["resourceArn"] == arn(region, "policy/Taken")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        json.dumps({"Version": "2012-10-17"}),
        json.dumps({"Statement": [{"Effect": "Maybe", "Action": "iot:Connect", "Resource": "*"}]}),
        document(allow("iot:Publish", "topic/no-arn")),
        document(allow("iot:Publish", "arn:aws:iot:us-east-1:1:topic/" + "x" * 2048)),
    ],
)
def test_malformed_documents_are_refused(iot, text):
    excinfo = fails(iot.create_policy, policyName="Bad", policyDocument=text)
    assert (error_code(excinfo), http_status(excinfo)) == ("MalformedPolicyException", 400)
    assert excinfo.value.response["Error"]["Message"].startswith("Policy document is malformed")
    assert error_code(fails(iot.get_policy, policyName="Bad")) == "ResourceNotFoundException"


def test_policy_name_is_validated_by_the_model(iot):
    excinfo = fails(iot.create_policy, policyName="bad name", policyDocument=CONNECT_ALL)
    assert (error_code(excinfo), http_status(excinfo)) == ("InvalidRequestException", 400)
    assert "regular expression pattern" in str(excinfo.value)


def test_tags_given_at_creation_are_kept_and_dropped_with_the_policy(iot, region):
    policy = arn(region, "policy/Tagged")
    iot.create_policy(
        policyName="Tagged", policyDocument=CONNECT_ALL, tags=[{"Key": "env", "Value": "dev"}]
    )
    assert iot.list_tags_for_resource(resourceArn=policy)["tags"] == [
        {"Key": "env", "Value": "dev"}
    ]
    iot.delete_policy(policyName="Tagged")
    iot.create_policy(policyName="Tagged", policyDocument=CONNECT_ALL)
    assert iot.list_tags_for_resource(resourceArn=policy)["tags"] == []


def test_list_policies_pages_newest_first_unless_ascending(iot):
    for index in range(5):
        iot.create_policy(policyName=f"p{index}", policyDocument=CONNECT_ALL)

    def collect(**kwargs) -> tuple[list[str], int]:
        seen, pages, marker = [], 0, None
        while True:
            page = iot.list_policies(pageSize=2, **({"marker": marker} if marker else {}), **kwargs)
            seen += names(page["policies"])
            pages += 1
            marker = page.get("nextMarker")
            if marker is None:
                return seen, pages

    assert collect() == (["p4", "p3", "p2", "p1", "p0"], 3)
    assert collect(ascendingOrder=True) == (["p0", "p1", "p2", "p3", "p4"], 3)
    assert names(iot.list_policies(pageSize=5)["policies"]) == ["p4", "p3", "p2", "p1", "p0"]

    excinfo = fails(iot.list_policies, marker="bm90IGEgbnVtYmVy")
    assert (error_code(excinfo), http_status(excinfo)) == ("InvalidRequestException", 400)


def test_policy_versions(iot, region, clock):
    iot.create_policy(policyName="Versioned", policyDocument=CONNECT_ALL)
    created_at = iot.get_policy(policyName="Versioned")
    publish = document(allow("iot:Publish"))
    clock.advance(60)

    second = iot.create_policy_version(policyName="Versioned", policyDocument=publish)
    assert second["policyVersionId"] == "2"
    assert second["isDefaultVersion"] is False
    assert second["policyArn"] == arn(region, "policy/Versioned")
    assert iot.get_policy(policyName="Versioned")["policyDocument"] == CONNECT_ALL

    third = iot.create_policy_version(
        policyName="Versioned", policyDocument=publish, setAsDefault=True
    )
    assert (third["policyVersionId"], third["isDefaultVersion"]) == ("3", True)
    got = iot.get_policy(policyName="Versioned")
    assert (got["defaultVersionId"], got["policyDocument"]) == ("3", publish)
    assert got["creationDate"] == created_at["creationDate"]
    assert got["lastModifiedDate"].timestamp() == pytest.approx(clock.now)
    assert got["generationId"] != created_at["generationId"]

    versions = iot.list_policy_versions(policyName="Versioned")["policyVersions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in versions] == [
        ("3", True),
        ("2", False),
        ("1", False),
    ]
    first = iot.get_policy_version(policyName="Versioned", policyVersionId="1")
    assert first["policyDocument"] == CONNECT_ALL
    assert first["isDefaultVersion"] is False
    assert first["policyName"] == "Versioned"
    assert first["creationDate"] == created_at["creationDate"]
    assert first["lastModifiedDate"].timestamp() == pytest.approx(clock.now)

    iot.set_default_policy_version(policyName="Versioned", policyVersionId="1")
    got = iot.get_policy(policyName="Versioned")
    assert (got["defaultVersionId"], got["policyDocument"]) == ("1", CONNECT_ALL)
    assert iot.get_policy_version(policyName="Versioned", policyVersionId="1")["isDefaultVersion"]


def test_five_versions_at_most_and_ids_are_never_reused(iot):
    iot.create_policy(policyName="Full", policyDocument=CONNECT_ALL)
    for _ in range(4):
        iot.create_policy_version(policyName="Full", policyDocument=CONNECT_ALL)
    excinfo = fails(iot.create_policy_version, policyName="Full", policyDocument=CONNECT_ALL)
    assert (error_code(excinfo), http_status(excinfo)) == ("VersionsLimitExceededException", 409)
    assert excinfo.value.response["Error"]["Message"] == (
        "The policy Full already has the maximum number of versions (5)"
    )

    iot.delete_policy_version(policyName="Full", policyVersionId="5")
    again = iot.create_policy_version(policyName="Full", policyDocument=CONNECT_ALL)
    assert again["policyVersionId"] == "6"
    versions = iot.list_policy_versions(policyName="Full")["policyVersions"]
    assert [v["versionId"] for v in versions] == ["6", "4", "3", "2", "1"]


def test_version_errors(iot):
    iot.create_policy(policyName="V", policyDocument=CONNECT_ALL)
    iot.create_policy_version(policyName="V", policyDocument=CONNECT_ALL)

    excinfo = fails(iot.delete_policy_version, policyName="V", policyVersionId="1")
    assert (error_code(excinfo), http_status(excinfo)) == ("DeleteConflictException", 409)
    assert "default version" in excinfo.value.response["Error"]["Message"]

    for call in (iot.get_policy_version, iot.set_default_policy_version, iot.delete_policy_version):
        excinfo = fails(call, policyName="V", policyVersionId="9")
        assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)
        excinfo = fails(call, policyName="Missing", policyVersionId="1")
        assert error_code(excinfo) == "ResourceNotFoundException"
    assert (
        error_code(fails(iot.list_policy_versions, policyName="Missing"))
        == "ResourceNotFoundException"
    )
    excinfo = fails(iot.create_policy_version, policyName="Missing", policyDocument=CONNECT_ALL)
    assert error_code(excinfo) == "ResourceNotFoundException"

    excinfo = fails(iot.create_policy_version, policyName="V", policyDocument="{}")
    assert (error_code(excinfo), http_status(excinfo)) == ("MalformedPolicyException", 400)
    excinfo = fails(iot.get_policy_version, policyName="V", policyVersionId="one")
    assert (error_code(excinfo), http_status(excinfo)) == ("InvalidRequestException", 400)


def test_delete_policy_needs_no_other_versions_and_no_targets(iot, region):
    iot.create_policy(policyName="Busy", policyDocument=CONNECT_ALL)
    iot.create_policy_version(policyName="Busy", policyDocument=CONNECT_ALL, setAsDefault=True)
    excinfo = fails(iot.delete_policy, policyName="Busy")
    assert (error_code(excinfo), http_status(excinfo)) == ("DeleteConflictException", 409)
    assert excinfo.value.response["Error"]["Message"] == (
        "The policy cannot be deleted as versions other than than default version exist"
    )
    iot.delete_policy_version(policyName="Busy", policyVersionId="1")

    cert = certificate(iot)
    iot.attach_policy(policyName="Busy", target=cert)
    excinfo = fails(iot.delete_policy, policyName="Busy")
    assert (error_code(excinfo), http_status(excinfo)) == ("DeleteConflictException", 409)
    assert excinfo.value.response["Error"]["Message"] == (
        "The policy cannot be deleted as the policy is attached to one or more principals (name=Busy)"
    )
    iot.detach_policy(policyName="Busy", target=cert)
    iot.delete_policy(policyName="Busy")
    assert iot.list_policies()["policies"] == []


# -- attachments --


def test_attach_detach_certificate(iot, region):
    cert = certificate(iot)
    iot.create_policy(policyName="A", policyDocument=CONNECT_ALL)
    iot.create_policy(policyName="B", policyDocument=CONNECT_ALL)
    iot.attach_policy(policyName="A", target=cert)
    iot.attach_policy(policyName="A", target=cert)  # again: no error, no duplicate
    iot.attach_policy(policyName="B", target=cert)

    assert iot.list_attached_policies(target=cert)["policies"] == [
        {"policyName": "A", "policyArn": arn(region, "policy/A")},
        {"policyName": "B", "policyArn": arn(region, "policy/B")},
    ]
    assert iot.list_targets_for_policy(policyName="A")["targets"] == [cert]

    iot.detach_policy(policyName="A", target=cert)
    iot.detach_policy(policyName="A", target=cert)  # not attached: nothing to do
    assert names(iot.list_attached_policies(target=cert)["policies"]) == ["B"]
    assert iot.list_targets_for_policy(policyName="A")["targets"] == []


def test_attach_errors(iot, region):
    cert = certificate(iot)
    iot.create_policy(policyName="P", policyDocument=CONNECT_ALL)

    excinfo = fails(iot.attach_policy, policyName="Missing", target=cert)
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)

    missing = arn(region, "cert/" + "0" * 64)
    excinfo = fails(iot.attach_policy, policyName="P", target=missing)
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)
    assert (
        excinfo.value.response["Error"]["Message"]
        == "The certificate given in the principal does not exist."
    )
    # A certificate of this region named with another region's ARN does not exist there.
    excinfo = fails(iot.attach_policy, policyName="P", target=cert.replace(region, "eu-west-1"))
    assert error_code(excinfo) == "ResourceNotFoundException"
    excinfo = fails(iot.list_attached_policies, target=missing)
    assert error_code(excinfo) == "ResourceNotFoundException"

    excinfo = fails(iot.attach_policy, policyName="P", target=arn(region, "thinggroup/nope"))
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)

    for target in ("not-a-target", arn(region, "thing/t1"), "arn:aws:s3:::bucket"):
        excinfo = fails(iot.attach_policy, policyName="P", target=target)
        assert (error_code(excinfo), http_status(excinfo)) == ("InvalidRequestException", 400)
    assert (
        error_code(fails(iot.detach_policy, policyName="P", target="junk"))
        == "InvalidRequestException"
    )

    excinfo = fails(iot.list_targets_for_policy, policyName="Missing")
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)


def test_ten_policies_per_target(iot):
    cert = certificate(iot)
    for index in range(11):
        iot.create_policy(policyName=f"p{index:02}", policyDocument=CONNECT_ALL)
    for index in range(10):
        iot.attach_policy(policyName=f"p{index:02}", target=cert)
    excinfo = fails(iot.attach_policy, policyName="p10", target=cert)
    assert (error_code(excinfo), http_status(excinfo)) == ("LimitExceededException", 410)
    iot.attach_policy(policyName="p03", target=cert)  # already attached: still fine at the limit

    first = iot.list_attached_policies(target=cert, pageSize=4)
    assert names(first["policies"]) == ["p00", "p01", "p02", "p03"]
    rest = iot.list_attached_policies(target=cert, pageSize=10, marker=first["nextMarker"])
    assert names(rest["policies"]) == [f"p{index:02}" for index in range(4, 10)]
    assert "nextMarker" not in rest


def test_thing_group_and_cognito_targets(iot, region):
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing_group(thingGroupName="floor", parentGroupName="fleet")
    fleet, floor = arn(region, "thinggroup/fleet"), arn(region, "thinggroup/floor")
    cognito = f"{region}:11111111-2222-3333-4444-555555555555"
    for name in ("Fleet", "Floor", "Cognito"):
        iot.create_policy(policyName=name, policyDocument=CONNECT_ALL)
    iot.attach_policy(policyName="Fleet", target=fleet)
    iot.attach_policy(policyName="Floor", target=floor)
    iot.attach_policy(policyName="Cognito", target=cognito)

    assert names(iot.list_attached_policies(target=floor)["policies"]) == ["Floor"]
    assert names(iot.list_attached_policies(target=floor, recursive=True)["policies"]) == [
        "Fleet",
        "Floor",
    ]
    assert names(iot.list_attached_policies(target=cognito)["policies"]) == ["Cognito"]
    assert iot.list_targets_for_policy(policyName="Fleet")["targets"] == [fleet]

    excinfo = fails(
        iot.attach_policy,
        policyName="Fleet",
        target=f"arn:aws:iot:{region}:999999999999:thinggroup/fleet",
    )
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_list_targets_for_policy_pages(iot, region):
    iot.create_policy(policyName="Shared", policyDocument=CONNECT_ALL)
    targets = [f"{region}:0000000{index}-aaaa-bbbb-cccc-dddddddddddd" for index in range(5)]
    for target in targets:
        iot.attach_policy(policyName="Shared", target=target)
    first = iot.list_targets_for_policy(policyName="Shared", pageSize=3)
    assert first["targets"] == targets[:3]
    second = iot.list_targets_for_policy(
        policyName="Shared", pageSize=3, marker=first["nextMarker"]
    )
    assert second["targets"] == targets[3:]
    assert "nextMarker" not in second


def test_legacy_principal_apis(iot, region):
    cert = certificate(iot)
    iot.create_policy(policyName="Old", policyDocument=CONNECT_ALL)
    iot.create_policy(policyName="Older", policyDocument=CONNECT_ALL)
    iot.attach_principal_policy(policyName="Old", principal=cert)
    iot.attach_principal_policy(policyName="Older", principal=cert)

    assert names(iot.list_principal_policies(principal=cert)["policies"]) == ["Older", "Old"]
    assert names(iot.list_principal_policies(principal=cert, ascendingOrder=True)["policies"]) == [
        "Old",
        "Older",
    ]
    page = iot.list_principal_policies(principal=cert, pageSize=1)
    assert names(page["policies"]) == ["Older"]
    assert names(
        iot.list_principal_policies(principal=cert, marker=page["nextMarker"])["policies"]
    ) == ["Old"]
    assert iot.list_policy_principals(policyName="Old")["principals"] == [cert]
    # Unlike ListTargetsForPolicy, AWS answers an unknown policy with an empty list.
    assert iot.list_policy_principals(policyName="Missing")["principals"] == []

    iot.detach_principal_policy(policyName="Old", principal=cert)
    assert names(iot.list_principal_policies(principal=cert)["policies"]) == ["Older"]

    iot.create_thing_group(thingGroupName="g")
    excinfo = fails(
        iot.attach_principal_policy, policyName="Old", principal=arn(region, "thinggroup/g")
    )
    assert (error_code(excinfo), http_status(excinfo)) == ("InvalidRequestException", 400)
    assert excinfo.value.response["Error"]["Message"] == "The given ARN does not represent a cert"
    missing = arn(region, "cert/" + "f" * 64)
    excinfo = fails(iot.attach_principal_policy, policyName="Old", principal=missing)
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)
    excinfo = fails(iot.detach_principal_policy, policyName="Missing", principal=cert)
    assert error_code(excinfo) == "ResourceNotFoundException"


# -- effective policies and TestAuthorization --


def test_get_effective_policies(iot, region):
    cert = certificate(iot)
    iot.create_thing(thingName="sensor-1")
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="line", parentGroupName="site")
    iot.add_thing_to_thing_group(thingGroupName="line", thingName="sensor-1")
    docs = {name: document(allow(f"iot:{name}")) for name in ("Connect", "Publish", "Subscribe")}
    for name, text in docs.items():
        iot.create_policy(policyName=name, policyDocument=text)
    iot.attach_policy(policyName="Connect", target=cert)
    iot.attach_policy(policyName="Publish", target=arn(region, "thinggroup/line"))
    iot.attach_policy(policyName="Subscribe", target=arn(region, "thinggroup/site"))

    effective = iot.get_effective_policies(principal=cert, thingName="sensor-1")[
        "effectivePolicies"
    ]
    assert effective == [
        {
            "policyName": name,
            "policyArn": arn(region, f"policy/{name}"),
            "policyDocument": docs[name],
        }
        for name in ("Connect", "Publish", "Subscribe")
    ]
    assert names(iot.get_effective_policies(principal=cert)["effectivePolicies"]) == ["Connect"]

    excinfo = fails(iot.get_effective_policies, principal=cert, thingName="nope")
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)


def test_effective_policies_for_certificate_serve_the_broker(core, iot, region):
    cert = certificate(iot)
    iot.create_thing(thingName="dev")
    iot.create_thing_group(thingGroupName="parent")
    iot.create_thing_group(thingGroupName="child", parentGroupName="parent")
    iot.add_thing_to_thing_group(thingGroupName="child", thingName="dev")
    iot.attach_thing_principal(thingName="dev", principal=cert)
    for name in ("OnCert", "OnParent", "Unrelated"):
        iot.create_policy(policyName=name, policyDocument=CONNECT_ALL)
    iot.create_policy_version(
        policyName="OnCert", policyDocument=document(allow("iot:Publish")), setAsDefault=True
    )
    iot.attach_policy(policyName="OnCert", target=cert)
    iot.attach_policy(policyName="OnParent", target=arn(region, "thinggroup/parent"))

    assert core.core.store.effective_policies_for_certificate(region, cert) == [
        ("OnCert", document(allow("iot:Publish"))),
        ("OnParent", CONNECT_ALL),
    ]
    assert (
        core.core.store.effective_policies_for_certificate(region, arn(region, "cert/none")) == []
    )


def connect(region: str, client_id: str) -> dict:
    return {"actionType": "CONNECT", "resources": [arn(region, f"client/{client_id}")]}


def publish(region: str, *topics: str) -> dict:
    return {"actionType": "PUBLISH", "resources": [arn(region, f"topic/{t}") for t in topics]}


def test_authorization_allow_explicit_and_implicit_deny(iot, region):
    cert = certificate(iot)
    iot.create_policy(policyName="Allow", policyDocument=document(allow("iot:*")))
    iot.create_policy(
        policyName="Deny",
        policyDocument=document(deny("iot:Publish", arn(region, "topic/secret/*"))),
    )
    iot.create_policy(
        policyName="Quiet",
        policyDocument=document(allow("iot:Subscribe", arn(region, "topicfilter/a"))),
    )
    for name in ("Allow", "Deny", "Quiet"):
        iot.attach_policy(policyName=name, target=cert)

    results = iot.test_authorization(
        principal=cert,
        authInfos=[publish(region, "open"), publish(region, "open", "secret/plans")],
    )["authResults"]
    allowed, denied = results
    assert allowed["authDecision"] == "ALLOWED"
    assert allowed["authInfo"] == publish(region, "open")
    assert names(allowed["allowed"]["policies"]) == ["Allow"]
    assert names(allowed["denied"]["implicitDeny"]["policies"]) == ["Deny", "Quiet"]
    assert allowed["denied"]["explicitDeny"]["policies"] == []
    assert allowed["missingContextValues"] == []

    assert denied["authDecision"] == "EXPLICIT_DENY"
    assert denied["denied"]["explicitDeny"]["policies"] == [
        {"policyName": "Deny", "policyArn": arn(region, "policy/Deny")}
    ]

    iot.detach_policy(policyName="Allow", target=cert)
    implicit = iot.test_authorization(principal=cert, authInfos=[publish(region, "open")])[
        "authResults"
    ][0]
    assert implicit["authDecision"] == "IMPLICIT_DENY"
    assert implicit["allowed"]["policies"] == []
    assert names(implicit["denied"]["implicitDeny"]["policies"]) == ["Deny", "Quiet"]


def test_authorization_uses_the_default_version_and_add_skip_lists(iot, region):
    cert = certificate(iot)
    iot.create_policy(policyName="Evolving", policyDocument=document(deny("iot:Connect")))
    iot.create_policy_version(policyName="Evolving", policyDocument=CONNECT_ALL, setAsDefault=True)
    iot.create_policy(policyName="Blocker", policyDocument=document(deny("iot:Connect")))
    iot.attach_policy(policyName="Evolving", target=cert)

    def decide(**kwargs) -> str:
        result = iot.test_authorization(principal=cert, authInfos=[connect(region, "c")], **kwargs)
        return result["authResults"][0]["authDecision"]

    assert decide() == "ALLOWED"
    assert decide(policyNamesToAdd=["Blocker"]) == "EXPLICIT_DENY"
    assert decide(policyNamesToSkip=["Evolving"]) == "IMPLICIT_DENY"
    excinfo = fails(
        iot.test_authorization,
        principal=cert,
        authInfos=[connect(region, "c")],
        policyNamesToAdd=["Missing"],
    )
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)


def test_authorization_resolves_policy_variables(iot, region):
    cert = certificate(iot)
    iot.create_thing_type(thingTypeName="Lamp")
    iot.create_thing(
        thingName="lamp-1",
        thingTypeName="Lamp",
        attributePayload={"attributes": {"room": "kitchen"}},
    )
    iot.attach_thing_principal(thingName="lamp-1", principal=cert)
    iot.create_policy(
        policyName="Things",
        policyDocument=document(
            allow("iot:Connect", arn(region, "client/${iot:Connection.Thing.ThingName}")),
            allow(
                "iot:Publish", arn(region, "topic/rooms/${iot:Connection.Thing.Attributes[room]}/*")
            ),
            allow("iot:Publish", arn(region, "topic/clients/${iot:ClientId}")),
            allow(
                "iot:Subscribe",
                "*",
                Condition={"StringEquals": {"iot:Connection.Thing.ThingTypeName": "Lamp"}},
            ),
        ),
    )
    iot.attach_policy(policyName="Things", target=cert)
    subscribe = {"actionType": "SUBSCRIBE", "resources": [arn(region, "topicfilter/any/#")]}

    def decisions(client_id: str) -> list[str]:
        infos = [
            connect(region, client_id),
            publish(region, "rooms/kitchen/light"),
            publish(region, "rooms/garage/light"),
            publish(region, f"clients/{client_id}"),
            subscribe,
        ]
        results = iot.test_authorization(principal=cert, clientId=client_id, authInfos=infos)[
            "authResults"
        ]
        return [r["authDecision"] for r in results]

    assert decisions("lamp-1") == ["ALLOWED", "ALLOWED", "IMPLICIT_DENY", "ALLOWED", "ALLOWED"]
    # A client id that is not the attached thing's name resolves no thing variables.
    assert decisions("stranger") == [
        "IMPLICIT_DENY",
        "IMPLICIT_DENY",
        "IMPLICIT_DENY",
        "ALLOWED",
        "IMPLICIT_DENY",
    ]


def test_authorization_with_an_exclusive_thing_and_group_policies(iot, region):
    cert = certificate(iot)
    iot.create_thing(thingName="meter")
    iot.attach_thing_principal(
        thingName="meter", principal=cert, thingPrincipalType="EXCLUSIVE_THING"
    )
    iot.create_thing_group(thingGroupName="meters")
    iot.add_thing_to_thing_group(thingGroupName="meters", thingName="meter")
    iot.create_policy(
        policyName="MeterTopics",
        policyDocument=document(
            allow("iot:Publish", arn(region, "topic/${iot:Connection.Thing.ThingName}/data"))
        ),
    )
    iot.attach_policy(policyName="MeterTopics", target=arn(region, "thinggroup/meters"))

    # Exclusively attached: the thing is known whatever the client id.
    result = iot.test_authorization(
        principal=cert, clientId="any-client", authInfos=[publish(region, "meter/data")]
    )["authResults"][0]
    assert result["authDecision"] == "ALLOWED"
    assert names(result["allowed"]["policies"]) == ["MeterTopics"]

    # Tested on the thing group itself, no thing is connected: the variable is unresolved.
    result = iot.test_authorization(
        principal=arn(region, "thinggroup/meters"), authInfos=[publish(region, "meter/data")]
    )["authResults"][0]
    assert result["authDecision"] == "IMPLICIT_DENY"


def test_authorization_errors(iot, region):
    excinfo = fails(
        iot.test_authorization,
        principal=arn(region, "cert/" + "a" * 64),
        authInfos=[connect(region, "c")],
    )
    assert (error_code(excinfo), http_status(excinfo)) == ("ResourceNotFoundException", 404)
    excinfo = fails(iot.test_authorization, principal="junk", authInfos=[connect(region, "c")])
    assert (error_code(excinfo), http_status(excinfo)) == ("InvalidRequestException", 400)
    for info in ({"actionType": "DELETE", "resources": ["*"]}, {"resources": ["*"]}):
        excinfo = fails(
            iot.test_authorization, principal=f"{region}:1234abcd-0000", authInfos=[info]
        )
        assert (error_code(excinfo), http_status(excinfo)) == ("InvalidRequestException", 400)
