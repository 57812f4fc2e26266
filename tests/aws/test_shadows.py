"""Shadows through the client layer against the local core, and the viewer's history."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from iot_tui.aws import shadows
from iot_tui.aws.shadows import ShadowHistory, ShadowRef


def test_classic_and_named_shadow_round_trip(iot_data):
    classic = ShadowRef("car1")
    named = ShadowRef("car1", "battery")
    assert shadows.get_shadow(iot_data, classic) is None
    accepted = shadows.update_state(iot_data, classic, "desired", {"speed": 40}, client_token="t1")
    assert accepted["state"] == {"desired": {"speed": 40}} and accepted["clientToken"] == "t1"
    shadows.update_state(iot_data, classic, "reported", {"speed": 30})
    shadows.update_state(iot_data, named, "reported", {"level": 80})

    document = shadows.get_shadow(iot_data, classic)
    cols = shadows.columns(document)
    assert (cols.desired, cols.reported, cols.delta, cols.version) == ({"speed": 40}, {"speed": 30}, {"speed": 40}, 2)
    assert "timestamp" in cols.metadata["desired"]["speed"]
    assert shadows.list_named_shadows(iot_data, "car1") == ["battery"]
    assert classic.topic("update/delta") == "$aws/things/car1/shadow/update/delta"
    assert named.topic("get") == "$aws/things/car1/shadow/name/battery/get"

    with pytest.raises(ClientError) as excinfo:
        shadows.update_state(iot_data, classic, "desired", {"speed": 1}, version=1)
    assert excinfo.value.response["Error"]["Code"] == "ConflictException"
    shadows.update_state(iot_data, classic, "desired", {"speed": None}, version=2)
    assert shadows.columns(shadows.get_shadow(iot_data, classic)).desired == {}

    assert shadows.delete_shadow(iot_data, named)["version"] == 1
    assert shadows.get_shadow(iot_data, named) is None
    assert shadows.columns(None).version is None


def test_history_keeps_each_version_once_and_diffs_any_two():
    history = ShadowHistory(ShadowRef("car1"))
    history.add({"state": {"desired": {"a": 1}, "delta": {"a": 1}}, "version": 1, "timestamp": 10}, "get")
    history.add_documents_message({
        "previous": {"state": {"desired": {"a": 1}}, "version": 1},
        "current": {"state": {"desired": {"a": 2}, "reported": {"a": 1}}, "version": 2},
    })
    history.add({"state": {}, "version": 2}, "get")
    history.add(None, "get")
    assert history.versions() == [1, 2]
    assert history.snapshots[1].source == "get"
    assert [c.dotted for c in history.diff(1, 2)] == ["desired.a", "reported"]
