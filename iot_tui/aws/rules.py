"""Topic rules the way the rules builder makes them: drafts, the republish role, and an offline dry run.

The dry run uses the same IoT SQL evaluator (`iot_tui.iotcore.sql`) as the local core's rules
engine, so what it shows is what the local core does; on AWS it is a faithful preview, not AWS's
own evaluation, and the UI labels it so.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from iot_tui.iotcore.sql import EvalContext, SqlParseError, parse, substitute_template
from iot_tui.iotcore.topics import TopicError, basic_ingest_rule, matches, validate_topic_name

RULE_NAME = re.compile(r"[a-zA-Z0-9_]{1,128}")
ROLE_NAME = "IoTRulesEngineRole"
REPUBLISH_POLICY_NAME = "IoTRulesEngineRepublish"
SQL_VERSION = "2016-03-23"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
# IAM is eventually consistent on AWS: a role created seconds ago may not be assumable yet.
ROLE_PROPAGATION_ATTEMPTS = 6
ROLE_PROPAGATION_DELAY = 2.0


@dataclass(frozen=True)
class EventTemplate:
    """A starting point for a rule: the seed's three event types, and a blank one."""

    key: str
    label: str
    select: str
    topic: str
    where: str
    republish_topic: str
    sample_topic: str
    sample_payload: dict[str, Any]


TEMPLATES = (
    EventTemplate("temperature", "Temperature above 30", "*", "testRulesEngineTopic/+/temperature",
                  "temperature > 30", "alerts/temperature/${topic(2)}",
                  "testRulesEngineTopic/vehicle1/temperature", {"temperature": 35, "unit": "C"}),
    EventTemplate("battery", "Battery below 15%", "*", "testRulesEngineTopic/+/battery", "battery < 15",
                  "alerts/battery/${topic(2)}", "testRulesEngineTopic/vehicle1/battery", {"battery": 9}),
    EventTemplate("motion", "Motion detected", "*", "testRulesEngineTopic/+/motion", "motion = 'detected'",
                  "alerts/motion/${topic(2)}", "testRulesEngineTopic/vehicle1/motion", {"motion": "detected"}),
    EventTemplate("custom", "Custom", "*", "testRulesEngineTopic/#", "", "republished/${topic()}",
                  "testRulesEngineTopic/vehicle1/custom", {"value": 1}),
)


@dataclass(frozen=True)
class Problem:
    """What is wrong with a draft, and where (field, 1-based line and column when known)."""

    field: str
    message: str
    line: int | None = None
    column: int | None = None


@dataclass
class RuleDraft:
    name: str
    select: str = "*"
    topic: str = "testRulesEngineTopic/#"
    where: str = ""
    republish_topic: str = "republished/${topic()}"
    qos: int = 0
    description: str = ""
    disabled: bool = False

    @classmethod
    def from_template(cls, name: str, template: EventTemplate) -> RuleDraft:
        return cls(name, template.select, template.topic, template.where, template.republish_topic,
                   description=template.label)

    @property
    def sql(self) -> str:
        sql = f"SELECT {self.select.strip() or '*'} FROM '{self.topic}'"
        return f"{sql} WHERE {self.where.strip()}" if self.where.strip() else sql

    def problems(self) -> list[Problem]:
        """Everything CreateTopicRule would refuse, found before calling it."""
        found = []
        if not RULE_NAME.fullmatch(self.name):
            found.append(Problem("name", "a rule name is 1-128 letters, digits and underscores"))
        try:
            parse(self.sql)
        except SqlParseError as error:
            found.append(Problem("sql", error.message, error.line, error.column))
        if self.qos not in (0, 1):
            found.append(Problem("qos", "AWS IoT supports QoS 0 and 1"))
        sample = substitute_sample(self.republish_topic)
        if sample is None:
            found.append(Problem("republish_topic", "the substitution template does not parse"))
        else:
            try:
                validate_topic_name(sample)
            except TopicError as error:
                found.append(Problem("republish_topic", str(error)))
        return found

    def payload(self, role_arn: str) -> dict[str, Any]:
        """The topicRulePayload for CreateTopicRule / ReplaceTopicRule."""
        payload: dict[str, Any] = {
            "sql": self.sql,
            "awsIotSqlVersion": SQL_VERSION,
            "ruleDisabled": self.disabled,
            "actions": [{"republish": {"roleArn": role_arn, "topic": self.republish_topic, "qos": self.qos}}],
        }
        if self.description:
            payload["description"] = self.description
        return payload


def substitute_sample(template: str) -> str | None:
    """The template with every `${...}` replaced by a sample level, to check the topic's shape."""
    try:
        return substitute_template(template, b"{}", EvalContext(topic="sample/topic/level"))
    except SqlParseError:
        return None


def republish_policy(region: str, account: str, topics: list[str]) -> dict[str, Any]:
    """Least privilege: iot:Publish only on the republish topics (templates widened to `*`)."""
    resources = sorted({f"arn:aws:iot:{region}:{account}:topic/{re.sub(r'[$][{][^}]*[}]', '*', t)}" for t in topics})
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": resources}]}


def ensure_role(iam: Any, region: str, account: str, topics: list[str], role_name: str = ROLE_NAME) -> str:
    """The republish role: created with the IoT trust policy when missing; its policy kept current."""
    try:
        arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchEntity":
            raise
        arn = iam.create_role(
            RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="Lets AWS IoT rules republish messages (created by iot-tui)",
        )["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName=REPUBLISH_POLICY_NAME,
                        PolicyDocument=json.dumps(republish_policy(region, account, topics)))
    return arn


def _role_not_ready(error: ClientError) -> bool:
    message = error.response["Error"].get("Message", "")
    return error.response["Error"]["Code"] == "InvalidRequestException" and "role" in message.lower()


def create_rule(iot: Any, draft: RuleDraft, role_arn: str, replace: bool = False,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """CreateTopicRule (or ReplaceTopicRule), retrying while a new role propagates through IAM."""
    call = iot.replace_topic_rule if replace else iot.create_topic_rule
    for attempt in range(ROLE_PROPAGATION_ATTEMPTS):
        try:
            call(ruleName=draft.name, topicRulePayload=draft.payload(role_arn))
            return
        except ClientError as error:
            if not _role_not_ready(error) or attempt == ROLE_PROPAGATION_ATTEMPTS - 1:
                raise
            sleep(ROLE_PROPAGATION_DELAY * (attempt + 1))


def set_enabled(iot: Any, name: str, enabled: bool) -> None:
    (iot.enable_topic_rule if enabled else iot.disable_topic_rule)(ruleName=name)


def delete_rule(iot: Any, name: str) -> None:
    iot.delete_topic_rule(ruleName=name)


@dataclass
class RuleSummary:
    name: str
    enabled: bool
    sql: str
    topic_pattern: str
    actions: list[dict[str, Any]]
    description: str = ""
    created: Any = None


def list_rules(iot: Any) -> list[RuleSummary]:
    """Every rule with its SQL and actions (ListTopicRules gives only names and topics)."""
    summaries = []
    for page in iot.get_paginator("list_topic_rules").paginate():
        for item in page.get("rules", []):
            rule = iot.get_topic_rule(ruleName=item["ruleName"])["rule"]
            summaries.append(RuleSummary(
                item["ruleName"], not rule.get("ruleDisabled", False), rule["sql"], item.get("topicPattern", ""),
                rule.get("actions", []), rule.get("description", ""), item.get("createdAt"),
            ))
    return summaries


def draft_from_rule(summary: RuleSummary) -> RuleDraft | None:
    """Back from a stored rule to the builder's fields, when it has the builder's shape."""
    match = re.fullmatch(r"\s*SELECT\s+(.*?)\s+FROM\s+'([^']*)'(?:\s+WHERE\s+(.*))?\s*", summary.sql,
                         re.IGNORECASE | re.DOTALL)
    republish = next((a["republish"] for a in summary.actions if "republish" in a), None)
    if match is None or republish is None:
        return None
    return RuleDraft(summary.name, match[1], match[2], match[3] or "", republish["topic"],
                     int(republish.get("qos", 0)), summary.description, disabled=not summary.enabled)


@dataclass
class ActionPreview:
    action: str
    topic: str
    qos: int
    payload: str


@dataclass
class DryRun:
    matched: bool
    reason: str
    previews: list[ActionPreview] = field(default_factory=list)


def dry_run(draft: RuleDraft, topic: str, payload: str, client_id: str = "iot-tui-dry-run",
            now_ms: int | None = None) -> DryRun:
    """Whether the rule matches this message, and the exact message each action would send."""
    try:
        rule = parse(draft.sql)
    except SqlParseError as error:
        return DryRun(False, f"SQL error at {error.line}:{error.column}: {error.message}")
    context = EvalContext(topic=topic, client_id=client_id, timestamp_ms=now_ms, trace_id="dry-run")
    raw = payload.encode()
    output = rule.evaluate(raw, context)
    if output is None:
        if rule.topic_filter is not None and not _from_matches(rule.topic_filter, topic):
            return DryRun(False, f"FROM '{rule.topic_filter}' does not match topic {topic}")
        return DryRun(False, "WHERE is not true for this message")
    body = output.decode(errors="replace") if isinstance(output, bytes) else json.dumps(output, indent=2)
    try:
        republish_topic = substitute_template(draft.republish_topic, raw, context)
    except SqlParseError as error:
        return DryRun(True, f"matched, but the republish topic does not parse: {error}")
    return DryRun(True, "matched", [ActionPreview("republish", republish_topic, draft.qos, body)])


def _from_matches(topic_filter: str, topic: str) -> bool:
    return basic_ingest_rule(topic) is not None or matches(topic_filter, topic)
