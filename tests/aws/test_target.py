"""Targets: where the app talks to, built from a core's health, the environment or flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from iot_tui.aws.target import Target, TargetError, resolve_target

HEALTH = {"service": "iot-tui local core", "host": "127.0.0.1", "region": "us-east-1", "accountId": "000000000000",
          "ports": {"http": 4580, "mqtt": 8883, "ws": 8443}, "caFile": "/data/ca/ca.crt", "dataDir": "/data"}


def test_local_target_takes_every_endpoint_and_port_from_health():
    target = Target.local(HEALTH)
    assert target.kind == "local"
    assert {target.control_url, target.data_url, target.sts_url, target.iam_url} == {"http://127.0.0.1:4580"}
    assert (target.mqtt_host, target.mqtt_port, target.ws_port) == ("localhost", 8883, 8443)
    assert target.ca_file == Path("/data/ca/ca.crt")
    assert target.label == "local core http://127.0.0.1:4580"
    assert not target.billable


def test_environment_target_honours_each_service_url():
    env = {"AWS_ENDPOINT_URL_IOT": "http://h:1", "AWS_ENDPOINT_URL_IOT_DATA_PLANE": "http://h:2",
           "AWS_ENDPOINT_URL_STS": "http://h:3", "AWS_ENDPOINT_URL_IAM": "http://h:4", "AWS_REGION": "eu-west-1",
           "IOT_TUI_MQTT_PORT": "1883", "IOT_TUI_WS_PORT": "9000", "IOT_TUI_CA_FILE": "/ca.pem"}
    target = Target.from_environment(env)
    assert target is not None and target.kind == "endpoint"
    assert (target.control_url, target.data_url, target.sts_url, target.iam_url) == (
        "http://h:1", "http://h:2", "http://h:3", "http://h:4")
    assert (target.region, target.mqtt_host, target.mqtt_port, target.ws_port) == ("eu-west-1", "h", 1883, 9000)
    assert target.label == "endpoint http://h:1 (eu-west-1)"


def test_environment_global_fallback_and_absence():
    target = Target.from_environment({"AWS_ENDPOINT_URL": "http://g:9"})
    assert target is not None and target.data_url == "http://g:9" and target.sts_url == "http://g:9"
    assert Target.from_environment({}) is None


def test_aws_without_region_is_a_clear_error(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(TargetError, match="--region"):
        Target.aws()
    with pytest.raises(TargetError, match="list-profiles"):
        Target.aws(profile="no-such-profile", region="us-east-1")
    target = Target.aws(region="eu-central-1")
    assert target.kind == "aws" and target.billable and target.control_url is None
    assert target.label == "AWS account ? eu-central-1 profile default"


def test_endpoint_url_uses_a_local_core_health(core, monkeypatch):
    for name in ("AWS_ENDPOINT_URL_IOT", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    target, process = resolve_target(endpoint_url=core.http_url, region="us-target-1")
    assert process is None
    assert target.kind == "endpoint" and target.region == "us-target-1"
    assert target.ca_file is not None and target.ca_file.exists()
    assert target.connect().iot.list_things()["things"] == []


def test_environment_wins_over_starting_a_core(core, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_IOT", core.http_url)
    monkeypatch.setenv("AWS_REGION", "us-target-2")
    target, process = resolve_target()
    assert process is None and target.kind == "endpoint" and target.control_url == core.http_url
    assert target.ca_file is not None
