"""The inspector sees every call of every client through one hook on the session."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from iot_tui.aws.inspector import ApiCall, as_cli_command, as_json, as_text


def test_every_client_of_the_session_is_recorded(clients, inspector, region):
    clients.iot.create_thing(thingName="inspected", attributePayload={"attributes": {"a": "1"}})
    clients.sts.get_caller_identity()
    with pytest.raises(ClientError):
        clients.iot_data.get_thing_shadow(thingName="inspected")
    calls = inspector.calls
    assert [(c.service, c.operation) for c in calls] == [
        ("iot", "CreateThing"), ("sts", "GetCallerIdentity"), ("iot-data", "GetThingShadow")]
    create, identity, shadow = calls
    assert create.method == "POST" and create.url.endswith("/things/inspected")
    assert create.params == {"thingName": "inspected", "attributePayload": {"attributes": {"a": "1"}}}
    assert create.status == 200 and create.ok and create.response["thingName"] == "inspected"
    assert create.region == region and create.duration_ms is not None and create.request_id
    assert identity.response["Account"] == "000000000000"
    assert shadow.status == 404 and shadow.error_code == "ResourceNotFoundException" and not shadow.ok


def test_listeners_hear_start_and_end(clients, inspector):
    heard: list[tuple[int, bool]] = []
    unsubscribe = inspector.subscribe(lambda call: heard.append((call.id, call.done)))
    clients.iot.list_things()
    unsubscribe()
    clients.iot.list_things()
    assert [done for _id, done in heard] == [False, True]


def test_query_string_is_part_of_the_url(clients, inspector):
    clients.iot.list_things(maxResults=3, attributeName="country", attributeValue="US")
    assert inspector.calls[-1].url.split("?", 1)[1] == "maxResults=3&attributeName=country&attributeValue=US"


def test_connection_failure_is_recorded(target, inspector):
    from dataclasses import replace

    dead = replace(target, control_url="http://127.0.0.1:9", max_attempts=1).connect(inspector)
    with pytest.raises(Exception):  # noqa: B017 - botocore's connection error class is the point
        dead.iot.list_things()
    assert inspector.calls[-1].error_code == "EndpointConnectionError"


def test_cli_command_replays_the_call(clients, inspector, region, core):
    clients.iot.create_thing(thingName="replayed", attributePayload={"attributes": {"k": "v=1"}})
    clients.iot.list_things(maxResults=5, attributeName="k", attributeValue="v=1")
    command = as_cli_command(inspector.calls[-1])
    assert command.startswith("aws iot list-things --max-results 5 --attribute-name k --attribute-value v=1")
    assert f"--endpoint-url {core.http_url} --region {region}" in command
    aws = Path(sys.executable).with_name("aws")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_CONFIG_FILE": "/dev/null"}
    answer = subprocess.run([str(aws), *shlex.split(command)[1:], "--output", "json"], env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    assert [t["thingName"] for t in json.loads(answer.stdout)["things"]] == ["replayed"]


def test_cli_command_for_booleans_and_structures():
    call = ApiCall(1, "iot", "CreateKeysAndCertificate", "eu-west-1", {"setAsActive": True}, 0.0,
                   url="https://iot.eu-west-1.amazonaws.com/keys-and-certificate")
    assert as_cli_command(call) == "aws iot create-keys-and-certificate --set-as-active --region eu-west-1"
    call.params = {"setAsActive": False, "tags": [{"Key": "a", "Value": "b"}]}
    assert "--no-set-as-active --tags '[{\"Key\":\"a\",\"Value\":\"b\"}]'" in as_cli_command(call)


def test_json_and_text_forms(clients, inspector):
    clients.iot.list_things()
    call = inspector.calls[-1]
    record = json.loads(as_json(call))
    assert record["operation"] == "ListThings" and record["status"] == 200 and "_started" not in record
    text = as_text(call)
    assert "ListThings  GET" in text and "Lists things one page at a time" in text
