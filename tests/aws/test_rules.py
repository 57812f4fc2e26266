"""The rules builder's client layer against the local core: drafts, the role, rules, the dry run."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from iot_tui.aws import rules
from tests.conftest import client


@pytest.fixture
def iam(core, region):
    return client("iam", core, region)


def test_templates_make_valid_drafts():
    for template in rules.TEMPLATES:
        draft = rules.RuleDraft.from_template(f"rule_{template.key}", template)
        assert draft.problems() == [], template.key
        result = rules.dry_run(draft, template.sample_topic, json.dumps(template.sample_payload))
        assert result.matched, (template.key, result.reason)


def test_draft_sql_preview_and_problems():
    draft = rules.RuleDraft("HighTemp", "temperature, topic(2) AS device", "sensors/+/t", "temperature > 30")
    assert draft.sql == "SELECT temperature, topic(2) AS device FROM 'sensors/+/t' WHERE temperature > 30"
    assert rules.RuleDraft("x", where="").sql == "SELECT * FROM 'testRulesEngineTopic/#'"

    bad = rules.RuleDraft("bad name", select="temperature,", where="temperature >", republish_topic="a/+/b", qos=2)
    fields = {p.field for p in bad.problems()}
    assert fields == {"name", "sql", "qos", "republish_topic"}
    sql_problem = next(p for p in bad.problems() if p.field == "sql")
    assert sql_problem.line == 1 and sql_problem.column > 1


def test_dry_run_explains_why_a_message_does_not_match():
    draft = rules.RuleDraft("t", "temperature", "sensors/+/t", "temperature > 30", "alerts/${topic(2)}", qos=1)
    hot = rules.dry_run(draft, "sensors/kitchen/t", '{"temperature": 31, "x": 1}')
    assert hot.matched
    (preview,) = hot.previews
    assert (preview.action, preview.topic, preview.qos) == ("republish", "alerts/kitchen", 1)
    assert json.loads(preview.payload) == {"temperature": 31}
    cold = rules.dry_run(draft, "sensors/kitchen/t", '{"temperature": 20}')
    assert not cold.matched and "WHERE" in cold.reason
    elsewhere = rules.dry_run(draft, "other/kitchen/t", '{"temperature": 40}')
    assert not elsewhere.matched and "FROM" in elsewhere.reason
    broken = rules.dry_run(rules.RuleDraft("t", select="("), "a", "{}")
    assert not broken.matched and "SQL error at 1:" in broken.reason


def test_role_rule_lifecycle_on_the_local_core(iot, iam, region):
    topics = ["alerts/temperature/${topic(2)}"]
    arn = rules.ensure_role(iam, region, "000000000000", topics, role_name=f"IoTRulesEngineRole-{region}")
    assert arn == rules.ensure_role(iam, region, "000000000000", topics, role_name=f"IoTRulesEngineRole-{region}")
    policy = iam.get_role_policy(RoleName=f"IoTRulesEngineRole-{region}", PolicyName=rules.REPUBLISH_POLICY_NAME)
    assert policy["PolicyDocument"]["Statement"][0]["Resource"] == [
        f"arn:aws:iot:{region}:000000000000:topic/alerts/temperature/*"]

    draft = rules.RuleDraft.from_template("HighTemperature", rules.TEMPLATES[0])
    rules.create_rule(iot, draft, arn, sleep=lambda _s: None)
    (summary,) = rules.list_rules(iot)
    assert summary.name == "HighTemperature" and summary.enabled
    assert summary.topic_pattern == "testRulesEngineTopic/+/temperature"
    assert rules.draft_from_rule(summary) == draft

    rules.set_enabled(iot, "HighTemperature", False)
    assert not rules.list_rules(iot)[0].enabled
    draft.where = "temperature > 40"
    rules.create_rule(iot, draft, arn, replace=True)
    assert rules.list_rules(iot)[0].sql.endswith("temperature > 40")
    rules.delete_rule(iot, "HighTemperature")
    assert rules.list_rules(iot) == []


def test_create_rule_retries_while_the_role_propagates(iot, iam, region):
    draft = rules.RuleDraft.from_template("Retried", rules.TEMPLATES[1])
    missing = f"arn:aws:iam::000000000000:role/NotYet-{region}"
    slept = []

    def create_role_then_sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:  # the role "propagates" after two retries
            iam.create_role(RoleName=f"NotYet-{region}", AssumeRolePolicyDocument=json.dumps(rules.TRUST_POLICY))

    rules.create_rule(iot, draft, missing, sleep=create_role_then_sleep)
    assert len(slept) == 2
    with pytest.raises(ClientError) as excinfo:
        rules.create_rule(iot, rules.RuleDraft("Never", republish_topic="x"),
                          "arn:aws:iam::000000000000:role/Never", sleep=lambda _s: None)
    assert excinfo.value.response["Error"]["Code"] == "InvalidRequestException"
