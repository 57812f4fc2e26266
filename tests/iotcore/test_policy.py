"""Tests for iot_tui.iotcore.policy: parsing, validation and evaluation of AWS IoT policies."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iot_tui.iotcore.policy import (
    MAX_POLICY_CHARS,
    AuthContext,
    Decision,
    MalformedPolicyError,
    Policy,
    StatementRef,
    client_arn,
    evaluate,
    parse_policy,
    policy_size,
    thing_arn,
    topic_arn,
    topicfilter_arn,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> str:
    body: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        body["Version"] = version
    return json.dumps(body)


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def ctx(**overrides: Any) -> AuthContext:
    base: dict[str, Any] = {"region": REGION, "account_id": ACCOUNT, "client_id": "dev1"}
    base.update(overrides)
    return AuthContext(**base)


def check(
    policy: Policy | str, action: str, resource: str, context: AuthContext | None = None
) -> Decision:
    parsed = parse_policy(policy) if isinstance(policy, str) else policy
    return evaluate([("p", parsed)], action, resource, context or ctx())


def allowed(
    policy: Policy | str, action: str, resource: str, context: AuthContext | None = None
) -> bool:
    return check(policy, action, resource, context).allowed


# ------------------------------------------------------------------------ ARNs


def test_arn_helpers() -> None:
    assert client_arn(REGION, ACCOUNT, "c1") == f"{ARN}:client/c1"
    assert topic_arn(REGION, ACCOUNT, "a/b/c") == f"{ARN}:topic/a/b/c"
    assert topicfilter_arn(REGION, ACCOUNT, "a/+/#") == f"{ARN}:topicfilter/a/+/#"
    assert thing_arn(REGION, ACCOUNT, "t1") == f"{ARN}:thing/t1"
    assert thing_arn(REGION, ACCOUNT, "t1", "s1") == f"{ARN}:thing/t1/s1"
    assert client_arn("cn-north-1", "1", "c", partition="aws-cn") == (
        "arn:aws-cn:iot:cn-north-1:1:client/c"
    )
    c = ctx()
    assert c.client_arn() == f"{ARN}:client/dev1"
    assert c.topic_arn("x") == f"{ARN}:topic/x"
    assert c.topicfilter_arn("x/#") == f"{ARN}:topicfilter/x/#"
    assert c.thing_arn("t", "s") == f"{ARN}:thing/t/s"


# --------------------------------------------------------------------- parsing


def test_parse_keeps_structure() -> None:
    policy = parse_policy(
        doc(
            allow(["iot:Connect", "iot:Publish"], "*", Sid="First"),
            deny("iot:Publish", [f"{ARN}:topic/a", f"{ARN}:topic/b"]),
        )
    )
    assert policy.version == "2012-10-17"
    assert len(policy.statements) == 2
    first, second = policy.statements
    assert (first.index, first.effect, first.sid) == (0, "Allow", "First")
    assert first.actions == ("iot:Connect", "iot:Publish")
    assert first.resources == ("*",)
    assert (second.index, second.effect, second.sid) == (1, "Deny", None)
    assert second.resources == (f"{ARN}:topic/a", f"{ARN}:topic/b")
    assert not first.not_action and not first.not_resource


def test_statement_may_be_a_single_object_and_version_optional() -> None:
    policy = parse_policy(json.dumps({"Statement": allow("iot:*", "*")}))
    assert policy.version is None
    assert len(policy.statements) == 1


def test_old_version_and_other_services_accepted() -> None:
    policy = parse_policy(
        doc(allow(["greengrass:*", "iot:Get*", "iot:?onnect"], "*"), version="2008-10-17")
    )
    assert policy.version == "2008-10-17"


def test_non_variable_resources_are_compiled_at_parse_time() -> None:
    policy = parse_policy(doc(allow("iot:Publish", f"{ARN}:topic/a/*")))
    pattern = policy.statements[0]._resources[0]
    assert pattern.fixed is not None and pattern.fixed.fullmatch(f"{ARN}:topic/a/b")


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ("{", "Invalid JSON"),
        ('{"Statement": [}', "Invalid JSON"),
        ("[]", "JSON object"),
        ('"text"', "JSON object"),
        ('{"Version": "2012-10-17"}', "missing Statement"),
        ('{"Statement": []}', "empty list"),
        ('{"Statement": ["x"]}', "Statement 0 must be a JSON object"),
        ('{"Version": "2020-01-01", "Statement": []}', "Invalid Version"),
        ('{"Version": 1, "Statement": []}', "Invalid Version"),
        ('{"Statement": [], "Extra": 1}', "Unsupported top-level field 'Extra'"),
        ('{"Statement": {"Action": "iot:*", "Resource": "*"}}', "missing Effect"),
        (
            '{"Statement": {"Effect": "allow", "Action": "iot:*", "Resource": "*"}}',
            "invalid Effect",
        ),
        ('{"Statement": {"Effect": "Allow", "Resource": "*"}}', "missing Action"),
        ('{"Statement": {"Effect": "Allow", "Action": "iot:*"}}', "missing Resource"),
        ('{"Statement": {"Effect": "Allow", "Action": 5, "Resource": "*"}}', "string or a list"),
        ('{"Statement": {"Effect": "Allow", "Action": [], "Resource": "*"}}', "empty list"),
        (
            '{"Statement": {"Effect": "Allow", "Action": ["iot:Publish", 1], "Resource": "*"}}',
            "list of strings",
        ),
        ('{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": []}}', "empty list"),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": {"a": 1}}}',
            "string or a list",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iotPublish", "Resource": "*"}}',
            "Invalid action",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:Pub lish", "Resource": "*"}}',
            "Invalid action",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "topic/a"}}',
            "resources are invalid : topic/a",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": ""}}',
            "resources are invalid",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "NotAction": "iot:Connect", "Resource": "*"}}',
            "both Action and NotAction",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "NotResource": "*"}}',
            "both Resource and NotResource",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "iot:*", "Resource": "*"}}',
            "take no Principal",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Foo": 1}}',
            "'Foo'",
        ),
        ('{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Sid": 3}}', "Sid"),
        (
            '{"Statement": {"Effect": "Allow", "Effect": "Deny", "Action": "iot:*", "Resource": "*"}}',
            "Duplicate key 'Effect'",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": []}}',
            "Condition must be",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"StringSortOf": {"k": "v"}}}}',
            "Invalid Condition operator 'StringSortOf'",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"Maybe:StringEquals": {"k": "v"}}}}',
            "Invalid Condition operator",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"StringEquals": {}}}}',
            "needs an object",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"StringEquals": {"k": []}}}}',
            "at least one value",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"StringEquals": {"k": {"x": 1}}}}}',
            "strings, numbers or booleans",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"Null": {"k": "maybe"}}}}',
            "true or false",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}, "Id": NaN}',
            "NaN",
        ),
    ],
)
def test_malformed_documents(document: str, fragment: str) -> None:
    with pytest.raises(MalformedPolicyError) as info:
        parse_policy(document)
    message = str(info.value)
    assert message.startswith("Policy document is malformed: ")
    assert fragment in message
    assert isinstance(info.value, ValueError)


def _document_of_size(size: int, padding: str = "") -> str:
    """A valid document with exactly ``size`` non-whitespace characters."""
    base = doc(allow("iot:Publish", f"{ARN}:topic/"))
    base = base.replace(" ", "")
    filler = "x" * (size - len(base))
    text = base.replace(":topic/", f":topic/{filler}")
    return text.replace(",", "," + padding)


def test_size_limit_counts_characters_excluding_whitespace() -> None:
    exact = _document_of_size(MAX_POLICY_CHARS)
    assert policy_size(exact) == 2048
    parse_policy(exact)

    padded = _document_of_size(MAX_POLICY_CHARS, padding=" \n\t" * 400)
    assert len(padded) > 3000
    assert policy_size(padded) == 2048
    parse_policy(padded)

    too_big = _document_of_size(MAX_POLICY_CHARS + 1)
    with pytest.raises(MalformedPolicyError, match="2049 characters excluding whitespace"):
        parse_policy(too_big)


# -------------------------------------------------------------- basic decisions


def test_allow_and_implicit_deny() -> None:
    policy = doc(allow("iot:Connect", f"{ARN}:client/dev1"))
    decision = check(policy, "iot:Connect", f"{ARN}:client/dev1")
    assert decision == Decision(
        allowed=True,
        decision="ALLOWED",
        action="iot:Connect",
        resource=f"{ARN}:client/dev1",
        allowing=["p"],
        denying=[],
        deciding=StatementRef("p", 0, "Allow", None),
    )
    other = check(policy, "iot:Connect", f"{ARN}:client/dev2")
    assert (other.allowed, other.decision, other.allowing, other.deciding) == (
        False,
        "IMPLICIT_DENY",
        [],
        None,
    )
    assert check(policy, "iot:Publish", f"{ARN}:client/dev1").decision == "IMPLICIT_DENY"
    assert evaluate([], "iot:Connect", f"{ARN}:client/dev1", ctx()).decision == "IMPLICIT_DENY"


def test_explicit_deny_overrides_allow_across_policies() -> None:
    open_policy = parse_policy(doc(allow("iot:*", "*")))
    locked = parse_policy(
        doc(
            allow("iot:Publish", f"{ARN}:topic/ok"),
            deny("iot:Publish", f"{ARN}:topic/secret/*", Sid="NoSecrets"),
        )
    )
    decision = evaluate(
        [("open", open_policy), ("locked", locked)], "iot:Publish", f"{ARN}:topic/secret/x", ctx()
    )
    assert decision.allowed is False
    assert decision.decision == "EXPLICIT_DENY"
    assert decision.allowing == ["open"]
    assert decision.denying == ["locked"]
    assert decision.deciding == StatementRef("locked", 1, "Deny", "NoSecrets")

    fine = evaluate(
        [("open", open_policy), ("locked", locked)], "iot:Publish", f"{ARN}:topic/ok", ctx()
    )
    assert (fine.decision, fine.allowing, fine.denying) == ("ALLOWED", ["open", "locked"], [])
    assert fine.deciding == StatementRef("open", 0, "Allow", None)


def test_policy_named_once_even_with_several_matching_statements() -> None:
    policy = doc(
        allow("iot:*", "*"), allow("iot:Publish", "*"), deny("*", "*"), deny("iot:P*", "*")
    )
    decision = check(policy, "iot:Publish", f"{ARN}:topic/a")
    assert decision.allowing == ["p"] and decision.denying == ["p"]
    assert decision.deciding == StatementRef("p", 2, "Deny", None)


# --------------------------------------------------------------------- actions


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("iot:Publish", "iot:Publish", True),
        ("iot:Publish", "IOT:publish", True),
        ("IoT:PUBLISH", "iot:Publish", True),
        ("iot:Publish", "iot:RetainPublish", False),
        ("iot:*", "iot:UpdateThingShadow", True),
        ("iot:*", "greengrass:Discover", False),
        ("*", "greengrass:Discover", True),
        ("iot:Get*", "iot:GetThingShadow", True),
        ("iot:Get*", "iot:GetRetainedMessage", True),
        ("iot:Get*", "iot:UpdateThingShadow", False),
        ("iot:*Shadow", "iot:DeleteThingShadow", True),
        ("iot:*Shadow", "iot:ListNamedShadowsForThing", False),
        ("iot:?onnect", "iot:Connect", True),
        ("iot:?onnect", "iot:Connect2", False),
        ("iot:Connect", "iot:Connec", False),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert allowed(doc(allow(pattern, "*")), action, f"{ARN}:client/dev1") is expected


def test_not_action() -> None:
    policy = doc({"Effect": "Allow", "NotAction": ["iot:Publish", "iot:Retain*"], "Resource": "*"})
    assert parse_policy(policy).statements[0].not_action
    assert allowed(policy, "iot:Connect", f"{ARN}:client/dev1")
    assert allowed(policy, "iot:Subscribe", f"{ARN}:topicfilter/a")
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/a")
    assert not allowed(policy, "iot:RetainPublish", f"{ARN}:topic/a")


# ------------------------------------------------------------------- resources


@pytest.mark.parametrize(
    ("resource", "target", "expected"),
    [
        ("topic/a/b", "topic/a/b", True),
        ("topic/a/b", "topic/A/b", False),  # case-sensitive
        ("topic/a/*", "topic/a/b/c/d", True),  # * crosses levels
        ("topic/a/*", "topic/a/", True),
        ("topic/a/*", "topic/a", False),
        ("topic/a?", "topic/ab", True),
        ("topic/a?", "topic/a", False),
        ("topic/a?", "topic/abc", False),
        ("topic/*/x", "topic/p/q/x", True),
        ("topic/a.b", "topic/aXb", False),  # regex characters are literal
        ("topic/a(b)[c]{1}|$^\\", "topic/a(b)[c]{1}|$^\\", True),
        # MQTT wildcards are literal characters in policies.
        ("topicfilter/some/+/topic", "topicfilter/some/+/topic", True),
        ("topicfilter/some/+/topic", "topicfilter/some/x/topic", False),
        ("topicfilter/a/#", "topicfilter/a/#", True),
        ("topicfilter/a/#", "topicfilter/a/b", False),
        ("topic/a/#", "topic/a/b", False),
    ],
)
def test_resource_matching(resource: str, target: str, expected: bool) -> None:
    policy = doc(allow("iot:*", f"{ARN}:{resource}"))
    assert allowed(policy, "iot:Publish", f"{ARN}:{target}") is expected


def test_star_resource_and_other_account() -> None:
    assert allowed(doc(allow("iot:*", "*")), "iot:Publish", "arn:aws:iot:eu-west-1:999:topic/a")
    assert not allowed(
        doc(allow("iot:*", f"{ARN}:topic/*")), "iot:Publish", "arn:aws:iot:eu-west-1:999:topic/a"
    )
    assert allowed(
        doc(allow("iot:*", "arn:aws:iot:*:*:topic/*")),
        "iot:Publish",
        "arn:aws:iot:eu-west-1:9:topic/a",
    )


def test_not_resource() -> None:
    policy = doc(
        allow("iot:Publish", "*"),
        {"Effect": "Deny", "Action": "iot:Publish", "NotResource": f"{ARN}:topic/safe/*"},
    )
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/safe/1")
    decision = check(policy, "iot:Publish", f"{ARN}:topic/other")
    assert decision.decision == "EXPLICIT_DENY"
    assert decision.deciding == StatementRef("p", 1, "Deny", None)


def _glob_reference(pattern: str, text: str) -> bool:
    """Independent IAM glob: * any run, ? one character, everything else literal."""
    if not pattern:
        return not text
    head = pattern[0]
    if head == "*":
        return any(_glob_reference(pattern[1:], text[i:]) for i in range(len(text) + 1))
    if not text:
        return False
    if head == "?" or head == text[0]:
        return _glob_reference(pattern[1:], text[1:])
    return False


@settings(max_examples=200, deadline=None)
@given(
    pattern=st.text(alphabet="ab*?+#/.[", max_size=8),
    text=st.text(alphabet="ab+#/.[", max_size=8),
)
def test_resource_glob_agrees_with_reference(pattern: str, text: str) -> None:
    policy = doc(allow("iot:Publish", f"{ARN}:topic/{pattern}"))
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/{text}") is _glob_reference(pattern, text)


# ------------------------------------------------------------ policy variables


THING_POLICY = doc(
    allow("iot:Connect", f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"),
    allow("iot:Publish", f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}/*"),
    deny("iot:Publish", f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}/bar"),
)


def test_thing_name_variable_when_attached() -> None:
    c = ctx(client_id="t1", thing_name="t1", is_attached=True)
    assert allowed(THING_POLICY, "iot:Connect", f"{ARN}:client/t1", c)
    assert not allowed(THING_POLICY, "iot:Connect", f"{ARN}:client/t2", c)
    assert allowed(THING_POLICY, "iot:Publish", f"{ARN}:topic/t1/x", c)
    assert check(THING_POLICY, "iot:Publish", f"{ARN}:topic/t1/bar", c).decision == "EXPLICIT_DENY"


def test_thing_variables_unresolved_without_attachment() -> None:
    # Thing named but the certificate is not attached: nothing resolves, so no
    # Allow applies (and the Deny on t1/bar does not apply either).
    c = ctx(client_id="t1", thing_name="t1", is_attached=False)
    for action, resource in [
        ("iot:Connect", f"{ARN}:client/t1"),
        ("iot:Publish", f"{ARN}:topic/t1/x"),
        ("iot:Publish", f"{ARN}:topic/t1/bar"),
        ("iot:Publish", f"{ARN}:topic//x"),
        ("iot:Connect", f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"),
    ]:
        assert check(THING_POLICY, action, resource, c).decision == "IMPLICIT_DENY", resource
    no_thing = ctx(client_id="t1", is_attached=True)
    assert not allowed(THING_POLICY, "iot:Connect", f"{ARN}:client/t1", no_thing)


def test_unresolved_deny_does_not_block_other_allows() -> None:
    policy = doc(
        allow("iot:Publish", f"{ARN}:topic/*"),
        deny("iot:Publish", f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}/*"),
    )
    unattached = ctx(thing_name="t1", is_attached=False)
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/t1/x", unattached)
    attached = ctx(thing_name="t1", is_attached=True)
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/t1/x", attached)


def test_one_unresolved_resource_does_not_spoil_the_others() -> None:
    policy = doc(
        allow(
            "iot:Publish",
            [f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}", f"{ARN}:topic/${{iot:ClientId}}"],
        )
    )
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/dev1", ctx(is_attached=False))


def test_client_id_variable_and_literal_substitution() -> None:
    policy = doc(allow("iot:Publish", f"{ARN}:topic/my/${{iot:ClientId}}/*"))
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/my/dev1/a")
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/my/dev2/a")
    # A client id full of wildcards is substituted as literal text.
    star = ctx(client_id="*")
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/my/dev2/a", star)
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/my/*/a", star)
    dotted = ctx(client_id="a.b")
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/my/aXb/1", dotted)
    # No client id: unresolved.
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/my//a", ctx(client_id=None))


def test_thing_type_attributes_and_is_attached_variables() -> None:
    policy = doc(
        allow("iot:Publish", f"{ARN}:topic/type/${{iot:Connection.Thing.ThingTypeName}}"),
        allow("iot:Publish", f"{ARN}:topic/floor/${{iot:Connection.Thing.Attributes[floor]}}/*"),
        allow("iot:Publish", f"{ARN}:topic/attached/${{iot:Connection.Thing.IsAttached}}"),
    )
    c = ctx(
        thing_name="t1", thing_type_name="Lamp", thing_attributes={"floor": "2"}, is_attached=True
    )
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/type/Lamp", c)
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/type/lamp", c)
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/floor/2/a", c)
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/floor/3/a", c)
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/attached/true", c)
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/attached/false", c)

    untyped = ctx(thing_name="t1", thing_attributes={}, is_attached=True)
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/type/", untyped)
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/floor//a", untyped)
    unattached = ctx(thing_name="t1", thing_attributes={"floor": "2"}, is_attached=False)
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/floor/2/a", unattached)
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/attached/false", unattached)


CERT = {
    "certificate_subject": {
        "CommonName": ["LightBulb"],
        "Country": ["US", "CA", "MX"],
        "Organization": ["Example Corp", "AnyCompany"],
        "OrganizationalUnit": ["Lights*"],
        "Title": ["O=Acme, Inc."],
        "State": ["x" * 1025],
        "Surname": ["1", "2", "3", "4", "5", "6"],
    },
    "certificate_issuer": {"CommonName": ["IoT Devices Primary CA"]},
    "certificate_subject_alt_names": {"DNSName": ["example.com"], "IPAddress": ["1.2.3.4"]},
    "certificate_serial_number": "921285cbb7a5e086",
}


@pytest.mark.parametrize(
    ("variable", "topic", "expected"),
    [
        ("Certificate.Subject.CommonName", "LightBulb", True),
        ("certificate.subject.commonname", "LightBulb", True),  # names are case-insensitive
        ("Certificate.Subject.CommonName", "lightbulb", False),
        ("Certificate.Issuer.CommonName", "IoT Devices Primary CA", True),
        ("Certificate.Subject.Country", "US", True),  # first value by default
        ("Certificate.Subject.Country.0", "US", True),
        ("Certificate.Subject.Country.1", "CA", True),
        ("Certificate.Subject.Country.2", "MX", True),
        ("Certificate.Subject.Country.3", "", False),  # index out of range: unresolved
        ("Certificate.Subject.Surname.4", "5", True),
        ("Certificate.Subject.Surname.5", "6", False),  # only five items are kept
        ("Certificate.Subject.Country.List", "US", False),  # multi-valued: no substitution
        ("Certificate.Subject.OrganizationalUnit", "Lights*", False),  # wildcard in value
        ("Certificate.Subject.State", "x" * 1025, False),  # longer than 1024
        ("Certificate.Subject.Title", "O\\=Acme\\, Inc.", True),  # special characters escaped
        ("Certificate.Subject.Title", "O=Acme, Inc.", False),
        ("Certificate.Subject.AlternativeName.DNSName", "example.com", True),
        ("Certificate.Subject.AlternativeName.IPAddress", "1.2.3.4", True),
        ("Certificate.Issuer.AlternativeName.DNSName", "", False),
        ("Certificate.SerialNumber", "921285cbb7a5e086", True),
        ("Certificate.Subject.Pseudonym", "", False),
        ("Certificate.AvailableKeys", "", False),
        ("Certificate.Nonsense.CommonName", "", False),
        ("NoSuchVariable", "", False),
    ],
)
def test_certificate_variables(variable: str, topic: str, expected: bool) -> None:
    policy = doc(allow("iot:Publish", f"{ARN}:topic/c/${{iot:{variable}}}"))
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/c/{topic}", ctx(**CERT)) is expected


def test_escaped_special_characters_and_unknown_variables() -> None:
    policy = doc(allow("iot:Publish", f"{ARN}:topic/lit/${{*}}/${{?}}/${{$}}"))
    assert allowed(policy, "iot:Publish", f"{ARN}:topic/lit/*/?/$")
    assert not allowed(policy, "iot:Publish", f"{ARN}:topic/lit/a/b/$")
    unknown = doc(allow("iot:Publish", f"{ARN}:topic/${{iot:Thing.ThingName}}"))
    c = ctx(thing_name="t1", is_attached=True)
    assert not allowed(unknown, "iot:Publish", f"{ARN}:topic/t1", c)


def test_variables_are_literal_text_before_version_2012() -> None:
    resource = f"{ARN}:topic/${{iot:ClientId}}"
    for version in ("2008-10-17", None):
        policy = doc(allow("iot:Publish", resource), version=version)
        assert not allowed(policy, "iot:Publish", f"{ARN}:topic/dev1"), version
        assert allowed(policy, "iot:Publish", resource), version


# ------------------------------------------------------------------ conditions


def with_condition(condition: dict[str, Any], action: str = "iot:Connect") -> str:
    return doc(allow(action, "*", Condition=condition))


def connect_ok(condition: dict[str, Any], context: AuthContext) -> bool:
    return allowed(with_condition(condition), "iot:Connect", f"{ARN}:client/dev1", context)


def test_bool_is_attached_condition() -> None:
    condition = {"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}}
    assert parse_policy(with_condition(condition)).statements[0].has_condition
    assert connect_ok(condition, ctx(thing_name="dev1", is_attached=True))
    assert not connect_ok(condition, ctx(thing_name="dev1", is_attached=False))
    assert connect_ok({"Bool": {"iot:Connection.Thing.IsAttached": True}}, ctx(is_attached=True))


def test_string_equals_on_thing_type_and_attribute() -> None:
    condition = {
        "StringEquals": {
            "iot:Connection.Thing.Attributes[attributeName]": "attributeValue",
            "iot:Connection.Thing.ThingTypeName": "Thing_Type_Name",
        }
    }
    good = ctx(
        thing_name="dev1",
        thing_type_name="Thing_Type_Name",
        thing_attributes={"attributeName": "attributeValue"},
        is_attached=True,
    )
    assert connect_ok(condition, good)
    wrong_type = ctx(
        thing_name="dev1",
        thing_type_name="Other",
        thing_attributes={"attributeName": "attributeValue"},
        is_attached=True,
    )
    assert not connect_ok(condition, wrong_type)
    assert not connect_ok(condition, ctx())


def test_multi_value_certificate_conditions() -> None:
    all_of = {
        "ForAllValues:StringEquals": {
            "iot:Certificate.Subject.Organization.List": ["Example Corp", "AnyCompany"]
        }
    }
    any_of = {
        "ForAnyValue:StringEquals": {"iot:Certificate.Subject.Organization.List": ["AnyCompany"]}
    }
    both = ctx(certificate_subject={"Organization": ["Example Corp", "AnyCompany"]})
    one_other = ctx(certificate_subject={"Organization": ["Example Corp", "Evil Inc"]})
    none = ctx()
    assert connect_ok(all_of, both)
    assert not connect_ok(all_of, one_other)
    assert connect_ok(all_of, none)  # ForAllValues holds vacuously when the key is absent
    assert connect_ok(any_of, both)
    assert not connect_ok(any_of, one_other)
    assert not connect_ok(any_of, none)
    available = {
        "ForAnyValue:StringEquals": {
            "iot:Certificate.AvailableKeys": "iot:Certificate.Subject.Organization"
        }
    }
    assert connect_ok(available, both)
    assert not connect_ok(available, none)


def test_negated_operators_if_exists_and_null() -> None:
    not_equals = {"StringNotEquals": {"iot:Connection.Thing.ThingTypeName": "Camera"}}
    assert connect_ok(not_equals, ctx(thing_name="d", thing_type_name="Lamp", is_attached=True))
    assert not connect_ok(
        not_equals, ctx(thing_name="d", thing_type_name="Camera", is_attached=True)
    )
    assert connect_ok(not_equals, ctx())  # negated operator, key absent: true

    equals = {"StringEquals": {"iot:Connection.Thing.ThingTypeName": "Lamp"}}
    assert not connect_ok(equals, ctx())
    if_exists = {"StringEqualsIfExists": {"iot:Connection.Thing.ThingTypeName": "Lamp"}}
    assert connect_ok(if_exists, ctx())
    assert not connect_ok(
        if_exists, ctx(thing_name="d", thing_type_name="Camera", is_attached=True)
    )

    absent = {"Null": {"iot:Connection.Thing.ThingTypeName": "true"}}
    present = {"Null": {"iot:Connection.Thing.ThingTypeName": "false"}}
    lamp = ctx(thing_name="d", thing_type_name="Lamp", is_attached=True)
    assert connect_ok(absent, ctx()) and not connect_ok(absent, lamp)
    assert connect_ok(present, lamp) and not connect_ok(present, ctx())

    none_of = {"StringNotEquals": {"iot:ClientId": ["dev1", "dev2"]}}
    assert not connect_ok(none_of, ctx(client_id="dev2"))
    assert connect_ok(none_of, ctx(client_id="dev3"))


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringLike": {"iot:ClientId": "sensor-*"}}, {"client_id": "sensor-42"}, True),
        ({"StringLike": {"iot:ClientId": "sensor-*"}}, {"client_id": "Sensor-42"}, False),
        ({"StringNotLike": {"iot:ClientId": "sensor-*"}}, {"client_id": "cam-1"}, True),
        ({"StringEqualsIgnoreCase": {"iot:ClientId": "DEV1"}}, {}, True),
        ({"StringNotEqualsIgnoreCase": {"iot:ClientId": "DEV1"}}, {}, False),
        ({"StringEquals": {"iot:ClientId": "DEV1"}}, {}, False),
        ({"StringEquals": {"IOT:CLIENTID": "dev1"}}, {}, True),  # key names are case-insensitive
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "10.1.2.3"}, True),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "192.168.1.1"}, False),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "192.168.1.1"}, True),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "not-an-ip"}, False),
        ({"NumericLessThan": {"app:Load": 5}}, {"condition_keys": {"app:Load": ["3"]}}, True),
        ({"NumericLessThan": {"app:Load": "5"}}, {"condition_keys": {"app:Load": ["7"]}}, False),
        (
            {"NumericGreaterThanEquals": {"app:Load": "7"}},
            {"condition_keys": {"app:Load": "7"}},
            True,
        ),
        ({"NumericEquals": {"app:Load": "7"}}, {"condition_keys": {"app:Load": ["seven"]}}, False),
        (
            {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"condition_keys": {"aws:CurrentTime": ["2026-05-01T12:00:00Z"]}},
            True,
        ),
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"condition_keys": {"aws:CurrentTime": ["1777636800"]}},
            False,
        ),
        (
            {"ForAnyValue:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}},
            {"condition_keys": {"iot:ConnectAttributes": ["LastWill", "PersistentConnect"]}},
            True,
        ),
        (
            {"ForAllValues:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}},
            {"condition_keys": {"iot:ConnectAttributes": ["LastWill", "PersistentConnect"]}},
            False,
        ),
        (
            {"ArnLike": {"app:Source": f"{ARN}:thing/*"}},
            {"condition_keys": {"app:Source": [f"{ARN}:thing/t"]}},
            True,
        ),
        (
            {"ArnNotLike": {"app:Source": f"{ARN}:thing/*"}},
            {"condition_keys": {"app:Source": [f"{ARN}:thing/t"]}},
            False,
        ),
    ],
)
def test_condition_operators(
    condition: dict[str, Any], context: dict[str, Any], expected: bool
) -> None:
    assert connect_ok(condition, ctx(**context)) is expected


def test_condition_values_take_policy_variables() -> None:
    condition = {"StringEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}}
    assert connect_ok(condition, ctx(client_id="t1", thing_name="t1", is_attached=True))
    assert not connect_ok(condition, ctx(client_id="t2", thing_name="t1", is_attached=True))
    assert not connect_ok(condition, ctx(client_id="t1", thing_name="t1", is_attached=False))


def test_all_conditions_must_hold() -> None:
    condition = {
        "StringLike": {"iot:ClientId": "dev*"},
        "Bool": {"iot:Connection.Thing.IsAttached": "true"},
    }
    assert connect_ok(condition, ctx(thing_name="dev1", is_attached=True))
    assert not connect_ok(condition, ctx(thing_name="dev1", is_attached=False))
    assert not connect_ok(condition, ctx(client_id="cam", thing_name="cam", is_attached=True))


def test_conditional_deny() -> None:
    policy = doc(
        allow("iot:*", "*"),
        deny("iot:Connect", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": "false"}}),
    )
    assert allowed(
        policy, "iot:Connect", f"{ARN}:client/dev1", ctx(thing_name="dev1", is_attached=True)
    )
    decision = check(policy, "iot:Connect", f"{ARN}:client/dev1", ctx(is_attached=False))
    assert decision.decision == "EXPLICIT_DENY"
    assert decision.deciding == StatementRef("p", 1, "Deny", None)


# ------------------------------------------------------------------ the guide


def test_developer_guide_publish_subscribe_example() -> None:
    """The "Registered devices" example of the guide's Publish/Subscribe policies."""
    policy = parse_policy(
        doc(
            allow("iot:Connect", f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"),
            allow("iot:Subscribe", f"{ARN}:topicfilter/${{iot:Connection.Thing.ThingName}}/room*"),
            allow("iot:Receive", f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}/room*"),
        )
    )
    c = ctx(client_id="thing1", thing_name="thing1", is_attached=True)
    cases = [
        ("iot:Connect", c.client_arn(), True),
        ("iot:Subscribe", c.topicfilter_arn("thing1/room1"), True),
        ("iot:Subscribe", c.topicfilter_arn("thing1/room/+"), True),
        ("iot:Subscribe", c.topicfilter_arn("thing1/+"), False),
        ("iot:Subscribe", c.topicfilter_arn("thing2/room1"), False),
        ("iot:Receive", c.topic_arn("thing1/room2"), True),
        ("iot:Publish", c.topic_arn("thing1/room2"), False),
    ]
    for action, resource, expected in cases:
        decision = evaluate([("pubsub", policy)], action, resource, c)
        assert decision.allowed is expected, (action, resource)


def test_evaluate_reuses_compiled_patterns() -> None:
    """Many evaluations of the same variable resource hit the regex cache."""
    from iot_tui.iotcore import policy as policy_module

    parsed = parse_policy(doc(allow("iot:Publish", f"{ARN}:topic/${{iot:ClientId}}/*")))
    c = ctx(client_id="cache-test-client")
    check(parsed, "iot:Publish", f"{ARN}:topic/cache-test-client/0", c)
    before = policy_module._compile.cache_info()
    for i in range(50):
        assert check(parsed, "iot:Publish", f"{ARN}:topic/cache-test-client/{i}", c).allowed
    after = policy_module._compile.cache_info()
    assert after.misses == before.misses
    assert after.hits >= before.hits + 50


def test_message_mentions_aws_prefix_exactly() -> None:
    with pytest.raises(MalformedPolicyError) as info:
        parse_policy("{}")
    assert info.value.detail == "Policy document is missing Statement"
    assert re.fullmatch(r"Policy document is malformed: .+", str(info.value))
