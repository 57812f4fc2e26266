"""Policies on a real local core: templates, validation before the API, versions and diffs, the simulator."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from iot_tui.aws import certs, device_files, policies
from tests.conftest import error_code

DENY_SECRET = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "NoSecrets", "Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/*/secret/*"}]})


def test_templates_come_with_their_descriptions():
    found = {t.name: t for t in policies.templates()}
    assert sorted(found) == ["basic-pubsub", "full-learning", "least-privilege", "shadow-device"]
    assert all(t.description for t in found.values())
    assert "never use" in found["full-learning"].description
    rendered = found["basic-pubsub"].render("eu-west-1", "123456789012")
    assert "arn:aws:iot:eu-west-1:123456789012:client/${iot:ClientId}" in rendered
    assert "{{" not in rendered
    with pytest.raises(ValueError, match="no policy template 'nope'; choose one of basic-pubsub"):
        policies.template("nope")


@pytest.mark.parametrize("name", ["basic-pubsub", "least-privilege", "shadow-device"])
def test_rendered_templates_are_clean(name):
    assert policies.validate_document(policies.template(name).render("us-east-1", "000000000000")) == []


def test_full_learning_template_warns_for_production():
    problems = policies.validate_document(policies.template("full-learning").render("us-east-1", "000000000000"))
    assert problems == [policies.Problem("warning", policies.PRODUCTION_WARNING, 6, 17)]
    policies.check_document(policies.template("full-learning").text)  # a warning never stops anything


def test_any_spelling_of_everything_warns():
    for action in ('"IoT:*"', '"*"', '["iot:Connect", "iot:*"]'):
        text = f'{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": {action}, "Resource": "*"}}}}'
        assert [p.severity for p in policies.validate_document(text)] == ["warning"]
    scoped = '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "arn:aws:iot:*"}}'
    assert policies.validate_document(scoped) == []


def test_json_errors_have_line_and_column():
    text = '{\n  "Version": "2012-10-17"\n  "Statement": []\n}'
    (problem,) = policies.validate_document(text)
    assert (problem.severity, problem.line, problem.column) == ("error", 3, 3)
    assert problem.message.startswith("invalid JSON: Expecting ',' delimiter")
    assert problem.text.startswith("error: line 3, column 3: invalid JSON")


@pytest.mark.parametrize("document, message", [
    ("  \n", "the policy document is empty"),
    ('{"Version": "2012-10-17", "Statement": [{"Action": "iot:Connect", "Resource": "*"}]}',
     "Statement 0 is missing Effect; use 'Allow' or 'Deny'"),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "client"}]}',
     "The following resources are invalid : client"),
    ('{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}', "Duplicate key 'Version'"),
    (json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"arn:aws:iot:r:a:topic/{'x' * 2100}"}]}),
     "the maximum is 2048"),
])
def test_grammar_errors(document, message):
    problems = policies.validate_document(document)
    assert [p.severity for p in problems] == ["error"]
    assert message in problems[0].message


def test_unfilled_placeholders_are_errors():
    problems = policies.validate_document(policies.template("basic-pubsub").text)
    assert {p.message for p in problems} == {"template placeholder {{region}} is not filled in",
                                            "template placeholder {{account}} is not filled in"}
    assert (problems[0].line, problems[0].column) == (7, 32)


def test_invalid_documents_never_reach_the_api(iot):
    with pytest.raises(policies.PolicyDocumentError) as excinfo:
        policies.create_policy(iot, "Broken", '{"Version": "2012-10-17",')
    assert excinfo.value.problems[0].line == 1
    with pytest.raises(ValueError, match="needs a name"):
        policies.create_policy(iot, " ", DENY_SECRET)
    assert iot.list_policies()["policies"] == []


def test_versions_default_and_diff(iot, region):
    first = policies.create_from_template(iot, "Pubsub", policies.template("basic-pubsub"), region, "000000000000")
    assert first["policyVersionId"] == "1"
    document = json.loads(first["policyDocument"])
    document["Statement"][1]["Resource"] = document["Statement"][1]["Resource"].replace("sdk/test", "sdk/prod")
    policies.create_version(iot, "Pubsub", json.dumps(document), set_default=False)
    assert [(v.version_id, v.is_default) for v in policies.list_versions(iot, "Pubsub")] == [("1", True), ("2", False)]
    policies.set_default_version(iot, "Pubsub", "2")
    assert [(v.version_id, v.is_default) for v in policies.list_versions(iot, "Pubsub")] == [("1", False), ("2", True)]
    diff = policies.diff_versions(iot, "Pubsub", "1", "2").splitlines()
    assert diff[:2] == ["--- Pubsub v1", "+++ Pubsub v2"]
    assert [line for line in diff if line[:1] in "+-" and not line.startswith(("---", "+++"))] == [
        f'-      "Resource": "arn:aws:iot:{region}:000000000000:topic/sdk/test/*"',
        f'+      "Resource": "arn:aws:iot:{region}:000000000000:topic/sdk/prod/*"',
    ]
    assert policies.diff_documents('{"a": 1}', '{ "a" : 1 }') == ""
    with pytest.raises(policies.PolicyDocumentError):
        policies.create_version(iot, "Pubsub", "{}")
    with pytest.raises(ClientError) as excinfo:
        policies.create_version(iot, "Missing", DENY_SECRET)
    assert error_code(excinfo) == "ResourceNotFoundException"


@pytest.fixture
def device(iot, target, tmp_path) -> certs.CertificateResult:
    """Vehicle-VIN-001 with a certificate that holds the least-privilege and shadow policies and a Deny;
    FullLearning exists but is attached to nothing."""
    for name, text in (("LeastPrivilege", policies.template("least-privilege").render(target.region, "000000000000")),
                       ("ShadowDevice", policies.template("shadow-device").render(target.region, "000000000000")),
                       ("DenySecret", DENY_SECRET),
                       ("FullLearning", policies.template("full-learning").text)):
        policies.create_policy(iot, name, text)
    iot.create_thing(thingName="Vehicle-VIN-001")
    result = certs.create_and_attach(iot, "Vehicle-VIN-001", target, device_files.certificates_root(tmp_path),
                                     policy_name="LeastPrivilege")
    certs.attach_policy(iot, result.certificate_id, "ShadowDevice")
    certs.attach_policy(iot, result.certificate_id, "DenySecret")
    return result


def test_list_targets(iot, device):
    assert policies.list_targets(iot, "LeastPrivilege") == [device.certificate_arn]


def test_simulate_with_test_authorization(iot, device, region):
    arn = device.certificate_arn
    connect = policies.simulate(iot, arn, "Connect", "", "Vehicle-VIN-001")
    assert (connect.verdict, connect.source) == ("Allowed", "TestAuthorization")
    assert connect.resource == f"arn:aws:iot:{region}:000000000000:client/Vehicle-VIN-001"
    assert connect.deciding_policy == "LeastPrivilege"
    assert (connect.statement.policy_name, connect.statement.statement_index) == ("LeastPrivilege", 0)
    stranger = policies.simulate(iot, arn, "Connect", "someone-else", "someone-else")
    assert (stranger.verdict, stranger.decision, stranger.deciding_policy) == ("Denied", "IMPLICIT_DENY", None)
    publish = policies.simulate(iot, arn, "Publish", "devices/Vehicle-VIN-001/speed", "Vehicle-VIN-001")
    assert publish.allowed and publish.statement.statement_index == 1
    secret = policies.simulate(iot, arn, "Publish", "devices/Vehicle-VIN-001/secret/x", "Vehicle-VIN-001")
    assert (secret.verdict, secret.decision, secret.deciding_policy) == ("Denied", "EXPLICIT_DENY", "DenySecret")
    assert secret.statement.sid == "NoSecrets" and secret.statement.effect == "Deny"
    assert "LeastPrivilege" in secret.allowed_by
    subscribe = policies.simulate(iot, arn, "Subscribe", "devices/Vehicle-VIN-001/*", "Vehicle-VIN-001")
    assert subscribe.allowed and subscribe.resource.endswith(":topicfilter/devices/Vehicle-VIN-001/*")


def test_simulate_actions_test_authorization_lacks(iot, device):
    arn = device.certificate_arn
    own = policies.simulate(iot, arn, "UpdateThingShadow", "Vehicle-VIN-001", "Vehicle-VIN-001")
    assert (own.verdict, own.source, own.deciding_policy) == ("Allowed", "local evaluation", "ShadowDevice")
    assert own.action == "iot:UpdateThingShadow" and own.statement.statement_index == 3
    other = policies.simulate(iot, arn, "GetThingShadow", "Vehicle-VIN-002", "Vehicle-VIN-001")
    assert other.verdict == "Denied" and other.deciding_policy is None
    retain = policies.simulate(iot, arn, "RetainPublish", "devices/Vehicle-VIN-001/x", "Vehicle-VIN-001")
    assert retain.decision == "IMPLICIT_DENY"
    trial = policies.simulate(iot, arn, "RetainPublish", "devices/Vehicle-VIN-001/x", "Vehicle-VIN-001",
                              policy_names=["FullLearning"])
    assert (trial.verdict, trial.deciding_policy) == ("Allowed", "FullLearning")


def test_simulate_a_policy_before_attaching_it(iot, device):
    publish = policies.simulate(iot, device.certificate_arn, "Publish", "sdk/test/x", "Vehicle-VIN-001")
    assert publish.verdict == "Denied"
    trial = policies.simulate(iot, device.certificate_arn, "Publish", "sdk/test/x", "Vehicle-VIN-001",
                              policy_names=["FullLearning"])
    assert (trial.verdict, trial.deciding_policy, trial.statement.statement_index) == ("Allowed", "FullLearning", 0)
    assert policies.list_targets(iot, "FullLearning") == []


def test_simulate_input_errors():
    with pytest.raises(ValueError, match="unknown action 'Fly'"):
        policies.resource_arn("arn:aws:iot:r:1:cert/x", "Fly", "x")
    with pytest.raises(ValueError, match="Publish needs a topic$"):
        policies.resource_arn("arn:aws:iot:r:1:cert/x", "Publish", "")
    assert policies.resource_arn("arn:aws:iot:r:1:cert/x", "Publish", "arn:aws:iot:r:1:topic/t") == (
        "arn:aws:iot:r:1:topic/t")
