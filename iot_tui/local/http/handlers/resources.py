"""Account-level operations: DescribeEndpoint, tags on any IoT ARN, topic rules, STS GetCallerIdentity.

Topic rules are stored and returned here; the rules engine that runs them reads the same store.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from iot_tui.iotcore.sql import SqlParseError
from iot_tui.iotcore.sql import parse as parse_sql
from iot_tui.local.http.errors import ApiError, already_exists, invalid_request, not_found
from iot_tui.local.http.ops import Params, RequestContext, operation
from iot_tui.local.http.paging import page
from iot_tui.local.store.resources import TopicRule, check_tag_keys

# DescribeEndpoint: the documented four, and iot:DeviceAdvisor, which AWS accepts undocumented
# (aws/aws-sdk#175). Omitting the type gives the legacy iot:Data (VeriSign) endpoint.
ENDPOINT_TYPES = frozenset(
    {"iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs", "iot:DeviceAdvisor"}
)
# Listening on these, the core is reached as `localhost`: the name its server certificate carries.
_LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "0.0.0.0", "::", "localhost"})

TAG_PAGE_SIZE = 50
RULE_PAGE_SIZE = 1000
SQL_VERSIONS = frozenset({"2015-10-08", "2016-03-23", "beta"})
# A payload without awsIotSqlVersion gets 2015-10-08 (AWS::IoT::TopicRule TopicRulePayload docs).
DEFAULT_SQL_VERSION = "2015-10-08"
# Every rule action that acts with an IAM role names it in `roleArn`; the role must trust IoT.
IOT_SERVICE_PRINCIPAL = "iot.amazonaws.com"
_IOT_ARN = re.compile(
    r"^arn:aws[a-z-]*:iot:(?P<region>[^:]*):(?P<account>[^:]*):(?P<type>[a-zA-Z]+)/(?P<id>.+)$"
)

CALLER_USER_NAME = "iot-tui-local"


@operation("iot", "DescribeEndpoint")
def describe_endpoint(ctx: RequestContext, p: Params) -> dict:
    """Every endpoint type is this one core; ports come from the core, not from this answer."""
    endpoint_type = p.get("endpointType", "iot:Data")
    if endpoint_type not in ENDPOINT_TYPES:
        raise invalid_request(f"Endpoint type {endpoint_type} is not valid.")
    host = ctx.core.config.host
    return {"endpointAddress": "localhost" if host in _LOCAL_HOSTS else host}


@operation("sts", "GetCallerIdentity")
def get_caller_identity(ctx: RequestContext, p: Params) -> dict:
    """Tools call this first to learn the account; the local core has one identity."""
    return {
        "UserId": ctx.access_key_id,
        "Account": ctx.account_id,
        "Arn": ctx.arn(f"user/{CALLER_USER_NAME}", service="iam"),
    }


# -- tags --


def _tag_target(ctx: RequestContext, arn: str) -> None:
    """An IoT ARN of this region and account; a rule must exist (other families' resources are taken on trust)."""
    match = _IOT_ARN.match(arn)
    if match is None:
        raise invalid_request(f"{arn} is not a valid AWS IoT resource ARN")
    if match["region"] != ctx.region or match["account"] != ctx.account_id:
        raise not_found(
            f"The resource {arn} does not exist in {ctx.region} of account {ctx.account_id}"
        )
    if match["type"] == "rule" and ctx.store.get_topic_rule(ctx.region, match["id"]) is None:
        raise not_found(f"The resource {arn} does not exist")


@operation("iot", "TagResource")
def tag_resource(ctx: RequestContext, p: Params) -> dict:
    with ctx.store.transaction():
        _tag_target(ctx, p["resourceArn"])
        ctx.store.set_tags(ctx.region, p["resourceArn"], p["tags"])
    return {}


@operation("iot", "UntagResource")
def untag_resource(ctx: RequestContext, p: Params) -> dict:
    """Keys the resource does not have are ignored; `aws:` keys cannot be removed."""
    check_tag_keys(p["tagKeys"], "tagKeys")
    with ctx.store.transaction():
        _tag_target(ctx, p["resourceArn"])
        ctx.store.delete_tags(ctx.region, p["resourceArn"], p["tagKeys"])
    return {}


@operation("iot", "ListTagsForResource")
def list_tags_for_resource(ctx: RequestContext, p: Params) -> dict:
    arn = p["resourceArn"]
    _tag_target(ctx, arn)

    def fetch(after: str, limit: int) -> list[tuple[str, str | None]]:
        return ctx.store.list_tags(ctx.region, arn, after, limit)

    tags, token = page(fetch, p.get("nextToken"), TAG_PAGE_SIZE, lambda tag: tag[0])
    return {
        "tags": [
            {"Key": key} if value is None else {"Key": key, "Value": value} for key, value in tags
        ],
        "nextToken": token,
    }


# -- topic rules --


def rule_arn(ctx: RequestContext, name: str) -> str:
    return ctx.arn(f"rule/{name}")


def _rule_denied(name: str) -> ApiError:
    """AWS answers a rule that does not exist as if access were denied (401), not with a 404."""
    return ApiError("UnauthorizedException", f"Access to topic rule '{name}' was denied")


def _require_rule(ctx: RequestContext, name: str) -> TopicRule:
    rule = ctx.store.get_topic_rule(ctx.region, name)
    if rule is None:
        raise _rule_denied(name)
    return rule


def _check_roles(ctx: RequestContext, payload: dict[str, Any]) -> None:
    """Each action's role must exist and trust iot.amazonaws.com, or the rule could never act."""
    actions = list(payload.get("actions") or [])
    if payload.get("errorAction"):
        actions.append(payload["errorAction"])
    for action in actions:
        for settings in action.values():
            role = settings.get("roleArn") if isinstance(settings, dict) else None
            if role and not ctx.store.role_trusts_service(role, IOT_SERVICE_PRINCIPAL):
                raise invalid_request(
                    f"IAM role {role} does not exist or does not trust {IOT_SERVICE_PRINCIPAL} to assume it"
                )


def _rule_from_payload(ctx: RequestContext, name: str, payload: dict[str, Any], created_at: float) -> TopicRule:
    sql = payload["sql"]
    try:
        parsed = parse_sql(sql)
    except SqlParseError as error:
        raise ApiError("SqlParseException", str(error)) from None
    if parsed.topic_filter is None:
        raise ApiError("SqlParseException", "A topic rule needs a FROM clause naming a topic filter")
    version = payload.get("awsIotSqlVersion") or DEFAULT_SQL_VERSION
    if version not in SQL_VERSIONS:
        raise invalid_request(
            f"Unsupported awsIotSqlVersion {version}: use one of {', '.join(sorted(SQL_VERSIONS))}"
        )
    _check_roles(ctx, payload)
    return TopicRule(
        name=name,
        sql=sql,
        topic_pattern=parsed.topic_filter,
        description=payload.get("description"),
        actions=payload["actions"],
        error_action=payload.get("errorAction"),
        disabled=bool(payload.get("ruleDisabled")),
        sql_version=version,
        created_at=created_at,
    )


def _tags_from_header(value: str | None) -> list[dict[str, str]]:
    """CreateTopicRule takes its tags as a URL-encoded query string: `k1=v1&k2=v2`."""
    return [
        {"Key": key, "Value": val} for key, val in parse_qsl(value or "", keep_blank_values=True)
    ]


@operation("iot", "CreateTopicRule")
def create_topic_rule(ctx: RequestContext, p: Params) -> dict:
    name = p["ruleName"]
    rule = _rule_from_payload(ctx, name, p["topicRulePayload"], ctx.now())
    tags = _tags_from_header(p.get("tags"))
    arn = rule_arn(ctx, name)
    with ctx.store.transaction():
        if ctx.store.get_topic_rule(ctx.region, name) is not None:
            raise already_exists(f"Rule {name} already exists", resource_arn=arn)
        ctx.store.insert_topic_rule(ctx.region, rule)
        if tags:
            ctx.store.set_tags(ctx.region, arn, tags)
    ctx.core.topic_rules_changed()
    return {}


@operation("iot", "GetTopicRule")
def get_topic_rule(ctx: RequestContext, p: Params) -> dict:
    rule = _require_rule(ctx, p["ruleName"])
    return {
        "ruleArn": rule_arn(ctx, rule.name),
        "rule": {
            "ruleName": rule.name,
            "sql": rule.sql,
            "description": rule.description,
            "createdAt": rule.created_at,
            "actions": rule.actions,
            "errorAction": rule.error_action,
            "ruleDisabled": rule.disabled,
            "awsIotSqlVersion": rule.sql_version,
        },
    }


@operation("iot", "ListTopicRules")
def list_topic_rules(ctx: RequestContext, p: Params) -> dict:
    """`topic` keeps the rules whose FROM topic is exactly that topic."""

    def fetch(after: str, limit: int) -> list[TopicRule]:
        return ctx.store.list_topic_rules(
            ctx.region, after, limit, p.get("topic"), p.get("ruleDisabled")
        )

    rules, token = page(
        fetch, p.get("nextToken"), p.get("maxResults") or RULE_PAGE_SIZE, lambda r: r.name
    )
    return {
        "rules": [
            {
                "ruleArn": rule_arn(ctx, rule.name),
                "ruleName": rule.name,
                "topicPattern": rule.topic_pattern,
                "createdAt": rule.created_at,
                "ruleDisabled": rule.disabled,
            }
            for rule in rules
        ],
        "nextToken": token,
    }


@operation("iot", "ReplaceTopicRule")
def replace_topic_rule(ctx: RequestContext, p: Params) -> dict:
    """The payload replaces the whole rule; its name, creation time and tags stay."""
    name = p["ruleName"]
    with ctx.store.transaction():
        current = _require_rule(ctx, name)
        ctx.store.replace_topic_rule(
            ctx.region, _rule_from_payload(ctx, name, p["topicRulePayload"], current.created_at)
        )
    ctx.core.topic_rules_changed()
    return {}


@operation("iot", "DeleteTopicRule")
def delete_topic_rule(ctx: RequestContext, p: Params) -> dict:
    name = p["ruleName"]
    with ctx.store.transaction():
        _require_rule(ctx, name)
        ctx.store.delete_topic_rule(ctx.region, name)
        ctx.store.delete_tags_for(ctx.region, rule_arn(ctx, name))
    ctx.core.topic_rules_changed()
    return {}


def _set_disabled(ctx: RequestContext, name: str, disabled: bool) -> dict:
    with ctx.store.transaction():
        _require_rule(ctx, name)
        ctx.store.set_topic_rule_disabled(ctx.region, name, disabled)
    ctx.core.topic_rules_changed()
    return {}


@operation("iot", "EnableTopicRule")
def enable_topic_rule(ctx: RequestContext, p: Params) -> dict:
    return _set_disabled(ctx, p["ruleName"], False)


@operation("iot", "DisableTopicRule")
def disable_topic_rule(ctx: RequestContext, p: Params) -> dict:
    return _set_disabled(ctx, p["ruleName"], True)
