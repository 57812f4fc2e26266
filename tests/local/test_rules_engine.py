"""Topic rules run on the local core: SQL checked at creation, republish, Basic Ingest, error action."""

from __future__ import annotations

import base64
import json
import threading

import pytest
from botocore.exceptions import ClientError

from iot_tui.local.broker import codec
from tests.conftest import client, error_code

TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"}],
})
_roles = iter(range(1, 1_000_000))


class Captured:
    """Messages on the core's message path, as a subscriber of `#` would see them."""

    def __init__(self, server):
        self.core = server.core
        self.messages: list = []
        self.arrived = threading.Condition()
        self.core.listeners.append(self.on_message)

    def on_message(self, message) -> None:
        with self.arrived:
            self.messages.append(message)
            self.arrived.notify_all()

    def on(self, topic: str) -> list:
        return [m for m in self.messages if m.topic == topic]

    def wait_for(self, topic: str, count: int = 1, timeout: float = 5.0) -> list:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.on(topic)) >= count, timeout)
        return self.on(topic)

    def close(self) -> None:
        self.core.listeners.remove(self.on_message)


@pytest.fixture
def captured(core):
    spy = Captured(core)
    yield spy
    spy.close()


@pytest.fixture
def role_arn(core, region) -> str:
    iam = client("iam", core, region)
    name = f"IoTRulesEngineRole{next(_roles)}-{region}"
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]


def republish_rule(sql: str, topic: str, role_arn: str, **extra) -> dict:
    return {"sql": sql, "awsIotSqlVersion": "2016-03-23",
            "actions": [{"republish": {"roleArn": role_arn, "topic": topic, "qos": 1}}], **extra}


def test_sql_errors_answer_sql_parse_exception_with_the_position(iot, role_arn):
    with pytest.raises(ClientError) as excinfo:
        iot.create_topic_rule(ruleName="bad", topicRulePayload=republish_rule(
            "SELECT FROM 'a/b'", "out", role_arn))
    assert error_code(excinfo) == "SqlParseException"
    assert "1:8" in str(excinfo.value)
    with pytest.raises(ClientError) as excinfo:
        iot.create_topic_rule(ruleName="bad", topicRulePayload=republish_rule(
            "SELECT * FROM 'a/#/b'", "out", role_arn))
    assert error_code(excinfo) == "SqlParseException"


def test_republish_needs_a_role_that_trusts_iot(core, iot, region):
    with pytest.raises(ClientError) as excinfo:
        iot.create_topic_rule(ruleName="r", topicRulePayload=republish_rule(
            "SELECT * FROM 't'", "out", "arn:aws:iam::000000000000:role/Missing"))
    assert error_code(excinfo) == "InvalidRequestException"
    iam = client("iam", core, region)
    untrusting = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    arn = iam.create_role(RoleName=f"LambdaOnly-{region}", AssumeRolePolicyDocument=untrusting)["Role"]["Arn"]
    with pytest.raises(ClientError) as excinfo:
        iot.create_topic_rule(ruleName="r", topicRulePayload=republish_rule("SELECT * FROM 't'", "out", arn))
    assert error_code(excinfo) == "InvalidRequestException"


def test_a_rule_republishes_matching_messages(iot, iot_data, role_arn, captured):
    iot.create_topic_rule(ruleName="HighTemperature", topicRulePayload=republish_rule(
        "SELECT temperature, topic(2) AS device FROM 'testRulesEngineTopic/+/temperature' WHERE temperature > 30",
        "alerts/${topic(2)}", role_arn))
    listed = iot.list_topic_rules()["rules"]
    assert [(r["ruleName"], r["topicPattern"]) for r in listed] == [
        ("HighTemperature", "testRulesEngineTopic/+/temperature")]

    iot_data.publish(topic="testRulesEngineTopic/car7/temperature", qos=1, payload=b'{"temperature": 35, "x": 1}')
    iot_data.publish(topic="testRulesEngineTopic/car8/temperature", qos=1, payload=b'{"temperature": 20}')
    arrived = captured.wait_for("alerts/car7")
    assert [json.loads(m.payload) for m in arrived] == [{"temperature": 35, "device": "car7"}]
    assert arrived[0].qos == 1
    assert captured.on("alerts/car8") == []


def test_disabled_rules_do_not_run(iot, iot_data, role_arn, captured):
    iot.create_topic_rule(ruleName="LowBattery", topicRulePayload=republish_rule(
        "SELECT * FROM 'battery/+' WHERE battery < 15", "low/${topic(2)}", role_arn, ruleDisabled=True))
    iot_data.publish(topic="battery/a", payload=b'{"battery": 5}')
    assert captured.on("low/a") == []
    iot.enable_topic_rule(ruleName="LowBattery")
    iot_data.publish(topic="battery/b", payload=b'{"battery": 5}')
    assert len(captured.wait_for("low/b")) == 1
    iot.disable_topic_rule(ruleName="LowBattery")
    iot_data.publish(topic="battery/c", payload=b'{"battery": 5}')
    assert captured.on("low/c") == []
    iot.replace_topic_rule(ruleName="LowBattery", topicRulePayload=republish_rule(
        "SELECT battery FROM 'battery/+' WHERE battery < 50", "lower/${topic(2)}", role_arn))
    iot_data.publish(topic="battery/d", payload=b'{"battery": 40}')
    assert len(captured.wait_for("lower/d")) == 1
    iot.delete_topic_rule(ruleName="LowBattery")
    iot_data.publish(topic="battery/e", payload=b'{"battery": 40}')
    assert captured.on("lower/e") == []


def test_basic_ingest_runs_only_the_named_rule(iot, iot_data, role_arn, captured):
    iot.create_topic_rule(ruleName="Motion", topicRulePayload=republish_rule(
        "SELECT motion FROM 'sensors/motion' WHERE motion = 'detected'", "motion/out", role_arn))
    iot.create_topic_rule(ruleName="Other", topicRulePayload=republish_rule(
        "SELECT * FROM 'sensors/#'", "other/out", role_arn))
    iot_data.publish(topic="$aws/rules/Motion/sensors/motion", payload=b'{"motion": "detected"}')
    assert [json.loads(m.payload) for m in captured.wait_for("motion/out")] == [{"motion": "detected"}]
    assert captured.on("other/out") == []


def test_failed_actions_trigger_the_error_action(iot, iot_data, role_arn, captured):
    payload = republish_rule("SELECT * FROM 'orders/+'", "unused", role_arn)
    payload["actions"] = [{"lambda": {"functionArn": "arn:aws:lambda:us-east-1:000000000000:function:f"}}]
    payload["errorAction"] = {"republish": {"roleArn": role_arn, "topic": "errors/orders", "qos": 0}}
    iot.create_topic_rule(ruleName="Orders", topicRulePayload=payload)
    iot_data.publish(topic="orders/1", payload=b'{"id": 1}')
    (error,) = captured.wait_for("errors/orders")
    document = json.loads(error.payload)
    assert document["ruleName"] == "Orders"
    assert document["topic"] == "orders/1"
    assert base64.b64decode(document["base64OriginalPayload"]) == b'{"id": 1}'
    assert document["failures"][0]["failedAction"] == "LambdaAction"
    assert document["clientId"] == "n/a"


def test_republish_sends_its_mqtt5_headers(iot, iot_data, role_arn, captured):
    payload = republish_rule("SELECT * FROM 'meters/+'", "billing/${topic(2)}", role_arn)
    payload["actions"][0]["republish"]["headers"] = {
        "contentType": "application/json", "responseTopic": "acks/${topic(2)}",
        "correlationData": "cmVxLTE=", "messageExpiry": "${expiry}", "payloadFormatIndicator": "UTF8_DATA",
        "userProperties": [{"key": "meter", "value": "${topic(2)}"}],
    }
    iot.create_topic_rule(ruleName="Billing", topicRulePayload=payload)
    iot_data.publish(topic="meters/m9", payload=b'{"kwh": 3, "expiry": 90}')
    (out,) = captured.wait_for("billing/m9")
    assert dict(out.properties) == {
        codec.PAYLOAD_FORMAT_INDICATOR: 1, codec.MESSAGE_EXPIRY_INTERVAL: 90, codec.CONTENT_TYPE: "application/json",
        codec.RESPONSE_TOPIC: "acks/m9", codec.CORRELATION_DATA: b"req-1"}
    assert out.user_properties == (("meter", "m9"),)


def test_a_header_that_makes_no_valid_value_fails_the_action(iot, iot_data, role_arn, captured):
    payload = republish_rule("SELECT * FROM 'meters2/+'", "billing2", role_arn)
    payload["actions"][0]["republish"]["headers"] = {"messageExpiry": "${expiry}"}
    payload["errorAction"] = {"republish": {"roleArn": role_arn, "topic": "errors/billing2", "qos": 0}}
    iot.create_topic_rule(ruleName="Billing2", topicRulePayload=payload)
    iot_data.publish(topic="meters2/m1", payload=b'{"expiry": "soon"}')
    (error,) = captured.wait_for("errors/billing2")
    failure = json.loads(error.payload)["failures"][0]
    assert failure["failedAction"] == "RepublishAction" and "messageExpiry" in failure["errorMessage"]
    assert captured.on("billing2") == []


def test_republish_loops_stop(iot, iot_data, role_arn, captured):
    iot.create_topic_rule(ruleName="Echo", topicRulePayload=republish_rule("SELECT * FROM 'echo'", "echo", role_arn))
    iot_data.publish(topic="echo", payload=b'{"n": 1}')
    assert len(captured.wait_for("echo", count=9)) == 9  # the original and eight hops
    assert len(captured.on("echo")) == 9


def test_get_thing_shadow_in_rules(iot, iot_data, role_arn, captured):
    iot_data.update_thing_shadow(thingName="car1", payload=b'{"state": {"reported": {"speed": 50}}}')
    iot.create_topic_rule(ruleName="Enrich", topicRulePayload=republish_rule(
        f"SELECT get_thing_shadow('car1', '{role_arn}').state.reported.speed AS speed FROM 'enrich'",
        "enriched", role_arn))
    iot_data.publish(topic="enrich", payload=b"{}")
    assert [json.loads(m.payload) for m in captured.wait_for("enriched")] == [{"speed": 50}]
