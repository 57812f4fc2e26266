"""DescribeEndpoint, tags, topic rules and STS GetCallerIdentity through real boto3 and the AWS CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.local.http.handlers import resources as handlers
from tests.conftest import client, error_code, http_status

ACCOUNT = "000000000000"
PAYLOAD = {
    "sql": "SELECT temperature FROM 'sensors/+/telemetry' WHERE temperature > 50",
    "description": "hot sensors",
    "actions": [
        {
            "republish": {
                "topic": "alerts/hot",
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/iot",
                "qos": 1,
            }
        }
    ],
    "errorAction": {
        "republish": {"topic": "alerts/errors", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/iot"}
    },
    "ruleDisabled": False,
    "awsIotSqlVersion": "2016-03-23",
}


@pytest.fixture(autouse=True, scope="module")
def iot_role(core) -> None:
    """The rules here republish with role `iot`, which must exist and trust AWS IoT (IAM is global)."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    iam = client("iam", core, "us-east-1")
    try:
        iam.create_role(RoleName="iot", AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass


def failure(call, **kwargs) -> pytest.ExceptionInfo:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return excinfo


# -- DescribeEndpoint --


@pytest.mark.parametrize(
    "endpoint_type",
    ["iot:Data-ATS", "iot:Data", "iot:CredentialProvider", "iot:Jobs", "iot:DeviceAdvisor"],
)
def test_every_endpoint_type_is_this_core(iot, endpoint_type):
    assert iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"] == "localhost"


def test_endpoint_type_may_be_omitted(iot):
    assert iot.describe_endpoint()["endpointAddress"] == "localhost"


@pytest.mark.parametrize("endpoint_type", ["iot:Data-ats", "iot:Job", "data", ""])
def test_unknown_endpoint_type_is_an_invalid_request(iot, endpoint_type):
    excinfo = failure(iot.describe_endpoint, endpointType=endpoint_type)
    assert error_code(excinfo) == "InvalidRequestException"
    assert http_status(excinfo) == 400


# -- STS --


def test_get_caller_identity(sts):
    identity = sts.get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/iot-tui-local"
    assert identity["UserId"] == LOCAL_ACCESS_KEY_ID


def test_caller_identity_names_the_calling_key(core, region):
    sts = client("sts", core, region, access_key="AKIAOTHERKEY00000000")
    assert sts.get_caller_identity()["UserId"] == "AKIAOTHERKEY00000000"


# -- tags --


def tags_of(iot, arn: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for result in iot.get_paginator("list_tags_for_resource").paginate(resourceArn=arn):
        found.update({tag["Key"]: tag.get("Value") for tag in result["tags"]})
    return found


def test_tag_list_untag(iot, region):
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:thinggroup/floor-1"
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []
    iot.tag_resource(
        resourceArn=arn, tags=[{"Key": "env", "Value": "beta"}, {"Key": "team", "Value": "a"}]
    )
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "prod"}, {"Key": "empty"}])
    listed = iot.list_tags_for_resource(resourceArn=arn)
    assert listed["tags"] == [
        {"Key": "empty"},
        {"Key": "env", "Value": "prod"},
        {"Key": "team", "Value": "a"},
    ]
    assert "nextToken" not in listed

    iot.untag_resource(resourceArn=arn, tagKeys=["env", "not-there"])
    assert tags_of(iot, arn) == {"empty": None, "team": "a"}


def test_tags_are_per_resource_and_per_region(core, iot, region):
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:thingtype/sensor"
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "k", "Value": "v"}])
    assert tags_of(iot, f"arn:aws:iot:{region}:{ACCOUNT}:thingtype/other") == {}
    elsewhere = client("iot", core, f"{region}-b")
    excinfo = failure(elsewhere.list_tags_for_resource, resourceArn=arn)
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_letters_and_numbers_of_any_script_are_valid_keys(iot, region):
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:policy/p1"
    keys = ["température", "温度", "a b_c.d:e/f=g+h-i@j", "x" * 128]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": key, "Value": "v" * 256} for key in keys])
    assert set(tags_of(iot, arn)) == set(keys)


def test_list_tags_pages_with_next_token(iot, region, monkeypatch):
    monkeypatch.setattr(handlers, "TAG_PAGE_SIZE", 2)
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:cacert/abc"
    iot.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": str(i)} for i in range(5)])
    first = iot.list_tags_for_resource(resourceArn=arn)
    assert [t["Key"] for t in first["tags"]] == ["k0", "k1"]
    second = iot.list_tags_for_resource(resourceArn=arn, nextToken=first["nextToken"])
    assert [t["Key"] for t in second["tags"]] == ["k2", "k3"]
    assert tags_of(iot, arn) == {f"k{i}": str(i) for i in range(5)}

    excinfo = failure(iot.list_tags_for_resource, resourceArn=arn, nextToken="not-a-token")
    assert error_code(excinfo) == "InvalidRequestException"


@pytest.mark.parametrize(
    "arn",
    [
        "not-an-arn",
        "arn:aws:iot:{region}:000000000000:thinggroup",
        "arn:aws:iot:{region}:000000000000:/g",
        "arn:aws:s3:::bucket/key",
        "arn:aws:iot:{region}:000000000000",
    ],
)
def test_malformed_arn_is_an_invalid_request(iot, region, arn):
    arn = arn.format(region=region)
    for call, kwargs in [
        (iot.tag_resource, {"tags": [{"Key": "k", "Value": "v"}]}),
        (iot.untag_resource, {"tagKeys": ["k"]}),
        (iot.list_tags_for_resource, {}),
    ]:
        excinfo = failure(call, resourceArn=arn, **kwargs)
        assert error_code(excinfo) == "InvalidRequestException"
        assert http_status(excinfo) == 400


@pytest.mark.parametrize(
    "arn",
    ["arn:aws:iot:eu-west-9:000000000000:thing/t", "arn:aws:iot:{region}:123456789012:thing/t"],
)
def test_arn_of_another_region_or_account_is_not_found(iot, region, arn):
    excinfo = failure(
        iot.tag_resource, resourceArn=arn.format(region=region), tags=[{"Key": "k", "Value": "v"}]
    )
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert http_status(excinfo) == 404


def test_missing_rule_cannot_be_tagged(iot, region):
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:rule/nope"
    excinfo = failure(iot.tag_resource, resourceArn=arn, tags=[{"Key": "k", "Value": "v"}])
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert (
        error_code(failure(iot.list_tags_for_resource, resourceArn=arn))
        == "ResourceNotFoundException"
    )


@pytest.mark.parametrize(
    "tag",
    [
        {"Key": "k" * 129, "Value": "v"},
        {"Key": "k", "Value": "v" * 257},
        {"Key": "a*b", "Value": "v"},
        {"Key": "tab\there", "Value": "v"},
        {"Key": "aws:owner", "Value": "v"},
        {"Key": "AWS:owner", "Value": "v"},
    ],
)
def test_tag_rules(iot, region, tag):
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:thinggroup/g"
    excinfo = failure(iot.tag_resource, resourceArn=arn, tags=[tag])
    assert error_code(excinfo) == "InvalidRequestException"
    assert http_status(excinfo) == 400
    assert tags_of(iot, arn) == {}


def test_reserved_keys_cannot_be_removed(iot, region):
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:thinggroup/g"
    excinfo = failure(
        iot.untag_resource, resourceArn=arn, tagKeys=["aws:cloudformation:stack-name"]
    )
    assert error_code(excinfo) == "InvalidRequestException"


def test_at_most_50_tags_per_resource(iot, region):
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:thingtype/t"
    excinfo = failure(
        iot.tag_resource, resourceArn=arn, tags=[{"Key": f"k{i}", "Value": ""} for i in range(51)]
    )
    assert error_code(excinfo) == "LimitExceededException"
    assert http_status(excinfo) == 410
    assert tags_of(iot, arn) == {}

    iot.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": ""} for i in range(50)])
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "k0", "Value": "overwritten"}])
    excinfo = failure(iot.tag_resource, resourceArn=arn, tags=[{"Key": "k50", "Value": ""}])
    assert error_code(excinfo) == "LimitExceededException"
    tags = tags_of(iot, arn)
    assert len(tags) == 50
    assert tags["k0"] == "overwritten"


# -- topic rules --


def test_create_get_topic_rule(iot, region, clock):
    iot.create_topic_rule(ruleName="hot_sensors", topicRulePayload=PAYLOAD)
    got = iot.get_topic_rule(ruleName="hot_sensors")
    assert got["ruleArn"] == f"arn:aws:iot:{region}:{ACCOUNT}:rule/hot_sensors"
    rule = got["rule"]
    assert rule["ruleName"] == "hot_sensors"
    assert rule["sql"] == PAYLOAD["sql"]
    assert rule["description"] == "hot sensors"
    assert rule["actions"] == PAYLOAD["actions"]
    assert rule["errorAction"] == PAYLOAD["errorAction"]
    assert rule["ruleDisabled"] is False
    assert rule["awsIotSqlVersion"] == "2016-03-23"
    assert rule["createdAt"] == datetime.fromtimestamp(clock.now, UTC)


def test_rule_defaults(iot):
    iot.create_topic_rule(
        ruleName="minimal", topicRulePayload={"sql": "SELECT * FROM 'a/b'", "actions": []}
    )
    rule = iot.get_topic_rule(ruleName="minimal")["rule"]
    assert rule["awsIotSqlVersion"] == "2015-10-08"
    assert rule["ruleDisabled"] is False
    assert rule["actions"] == []
    assert "errorAction" not in rule


def test_create_topic_rule_with_tags(iot, region):
    iot.create_topic_rule(
        ruleName="tagged", topicRulePayload=PAYLOAD, tags="env=beta&owner=team%20a&flag="
    )
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:rule/tagged"
    assert tags_of(iot, arn) == {"env": "beta", "owner": "team a", "flag": ""}


def test_bad_tags_leave_no_rule(iot):
    excinfo = failure(iot.create_topic_rule, ruleName="r", topicRulePayload=PAYLOAD, tags="aws:x=1")
    assert error_code(excinfo) == "InvalidRequestException"
    assert error_code(failure(iot.get_topic_rule, ruleName="r")) == "UnauthorizedException"


def test_same_rule_name_already_exists(iot, region):
    iot.create_topic_rule(ruleName="r1", topicRulePayload=PAYLOAD)
    excinfo = failure(iot.create_topic_rule, ruleName="r1", topicRulePayload=PAYLOAD)
    assert error_code(excinfo) == "ResourceAlreadyExistsException"
    assert http_status(excinfo) == 409
    assert excinfo.value.response["resourceArn"] == f"arn:aws:iot:{region}:{ACCOUNT}:rule/r1"


@pytest.mark.parametrize("name", ["has-dash", "has space", "x" * 129])
def test_rule_name_pattern(iot, name):
    excinfo = failure(iot.create_topic_rule, ruleName=name, topicRulePayload=PAYLOAD)
    assert error_code(excinfo) == "InvalidRequestException"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"sql": "SELECT *", "actions": []}, "SqlParseException"),
        ({"sql": "SELECT * FROM a/b", "actions": []}, "SqlParseException"),
        (
            {"sql": "SELECT * FROM 'a'", "actions": [], "awsIotSqlVersion": "2020-01-01"},
            "InvalidRequestException",
        ),
        (
            {"sql": "SELECT * FROM 'a'", "actions": [{"lambda": {"functionArn": "f"}}] * 11},
            "InvalidRequestException",
        ),
    ],
)
def test_bad_rule_payloads(iot, payload, code):
    excinfo = failure(iot.create_topic_rule, ruleName="bad", topicRulePayload=payload)
    assert error_code(excinfo) == code
    assert http_status(excinfo) == 400


def test_list_topic_rules_with_filters_and_pages(iot, region, clock):
    sqls = {
        "a_rule": "SELECT * FROM 'sensors/+/telemetry'",
        "b_rule": 'select * from "sensors/#"',
        "c_rule": "SELECT * FROM 'sensors/+/telemetry' WHERE x = 'from y'",
    }
    for name, sql in sqls.items():
        iot.create_topic_rule(ruleName=name, topicRulePayload={"sql": sql, "actions": []})
    iot.disable_topic_rule(ruleName="c_rule")

    rules = iot.list_topic_rules()["rules"]
    assert rules[0] == {
        "ruleArn": f"arn:aws:iot:{region}:{ACCOUNT}:rule/a_rule",
        "ruleName": "a_rule",
        "topicPattern": "sensors/+/telemetry",
        "createdAt": datetime.fromtimestamp(clock.now, UTC),
        "ruleDisabled": False,
    }
    assert [(r["ruleName"], r["topicPattern"]) for r in rules] == [
        ("a_rule", "sensors/+/telemetry"),
        ("b_rule", "sensors/#"),
        ("c_rule", "sensors/+/telemetry"),
    ]
    by_topic = iot.list_topic_rules(topic="sensors/+/telemetry")["rules"]
    assert [r["ruleName"] for r in by_topic] == ["a_rule", "c_rule"]
    assert [r["ruleName"] for r in iot.list_topic_rules(ruleDisabled=True)["rules"]] == ["c_rule"]
    assert [r["ruleName"] for r in iot.list_topic_rules(ruleDisabled=False)["rules"]] == [
        "a_rule",
        "b_rule",
    ]

    first = iot.list_topic_rules(maxResults=2)
    assert [r["ruleName"] for r in first["rules"]] == ["a_rule", "b_rule"]
    second = iot.list_topic_rules(maxResults=2, nextToken=first["nextToken"])
    assert [r["ruleName"] for r in second["rules"]] == ["c_rule"]
    assert "nextToken" not in second
    excinfo = failure(iot.list_topic_rules, maxResults=10001)
    assert error_code(excinfo) == "InvalidRequestException"


def test_replace_topic_rule_keeps_creation_time_and_tags(iot, region, clock):
    iot.create_topic_rule(ruleName="r", topicRulePayload=PAYLOAD, tags="k=v")
    created = iot.get_topic_rule(ruleName="r")["rule"]["createdAt"]
    clock.advance(60)
    iot.replace_topic_rule(
        ruleName="r", topicRulePayload={"sql": "SELECT * FROM 'other/topic'", "actions": []}
    )
    rule = iot.get_topic_rule(ruleName="r")["rule"]
    assert rule["sql"] == "SELECT * FROM 'other/topic'"
    assert rule["createdAt"] == created
    assert "description" not in rule
    assert rule["awsIotSqlVersion"] == "2015-10-08"
    assert iot.list_topic_rules(topic="other/topic")["rules"][0]["ruleName"] == "r"
    assert tags_of(iot, f"arn:aws:iot:{region}:{ACCOUNT}:rule/r") == {"k": "v"}

    excinfo = failure(
        iot.replace_topic_rule, ruleName="r", topicRulePayload={"sql": "SELECT 1", "actions": []}
    )
    assert error_code(excinfo) == "SqlParseException"


def test_enable_disable_topic_rule(iot):
    iot.create_topic_rule(ruleName="r", topicRulePayload={**PAYLOAD, "ruleDisabled": True})
    assert iot.get_topic_rule(ruleName="r")["rule"]["ruleDisabled"] is True
    iot.enable_topic_rule(ruleName="r")
    assert iot.get_topic_rule(ruleName="r")["rule"]["ruleDisabled"] is False
    iot.disable_topic_rule(ruleName="r")
    iot.disable_topic_rule(ruleName="r")
    assert iot.list_topic_rules()["rules"][0]["ruleDisabled"] is True


def test_delete_topic_rule_drops_its_tags(iot, region):
    arn = f"arn:aws:iot:{region}:{ACCOUNT}:rule/r"
    iot.create_topic_rule(ruleName="r", topicRulePayload=PAYLOAD)
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "k", "Value": "v"}])
    iot.delete_topic_rule(ruleName="r")
    assert iot.list_topic_rules()["rules"] == []
    iot.create_topic_rule(ruleName="r", topicRulePayload=PAYLOAD)
    assert tags_of(iot, arn) == {}


def test_missing_rule_is_unauthorized_as_on_aws(iot):
    """AWS answers UnauthorizedException (401) "Access to topic rule 'x' was denied" for a missing rule."""
    calls = [
        (iot.get_topic_rule, {}),
        (iot.delete_topic_rule, {}),
        (iot.enable_topic_rule, {}),
        (iot.disable_topic_rule, {}),
        (iot.replace_topic_rule, {"topicRulePayload": PAYLOAD}),
    ]
    for call, kwargs in calls:
        excinfo = failure(call, ruleName="missing", **kwargs)
        assert error_code(excinfo) == "UnauthorizedException"
        assert http_status(excinfo) == 401
        assert (
            excinfo.value.response["Error"]["Message"]
            == "Access to topic rule 'missing' was denied"
        )


def test_rules_are_regional(core, iot, region):
    iot.create_topic_rule(ruleName="r", topicRulePayload=PAYLOAD)
    elsewhere = client("iot", core, f"{region}-b")
    assert elsewhere.list_topic_rules()["rules"] == []
    elsewhere.create_topic_rule(ruleName="r", topicRulePayload=PAYLOAD)


# -- the AWS CLI --


def test_aws_cli_against_the_core(core, region, tmp_path: Path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_ENDPOINT_URL_IOT": core.http_url,
        "AWS_ENDPOINT_URL_STS": core.http_url,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    aws = str(Path(sys.executable).with_name("aws"))

    def run(*args: str) -> dict:
        done = subprocess.run(
            [aws, *args, "--output", "json"],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert run("sts", "get-caller-identity") == {
        "UserId": LOCAL_ACCESS_KEY_ID,
        "Account": ACCOUNT,
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/iot-tui-local",
    }
    assert run("iot", "describe-endpoint", "--endpoint-type", "iot:Data-ATS") == {
        "endpointAddress": "localhost"
    }


def test_tags_given_at_creation_by_another_family(iot, region):
    """Families tag through the store's `set_tags`: the same rules, the same listing."""
    iot.create_thing_type(thingTypeName="sensor", tags=[{"Key": "env", "Value": "beta"}])
    assert tags_of(iot, f"arn:aws:iot:{region}:{ACCOUNT}:thingtype/sensor") == {"env": "beta"}
    excinfo = failure(
        iot.create_thing_type, thingTypeName="other", tags=[{"Key": "aws:x", "Value": "v"}]
    )
    assert error_code(excinfo) == "InvalidRequestException"
    assert (
        error_code(failure(iot.describe_thing_type, thingTypeName="other"))
        == "ResourceNotFoundException"
    )
