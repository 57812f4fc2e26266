"""Structural JSON differences for shadow versions and consecutive messages."""

from __future__ import annotations

from iot_tui.aws.json_diff import Change, changed_paths, diff


def test_added_removed_changed_nested():
    old = {"desired": {"speed": 40, "lights": {"front": "on", "rear": "on"}, "tags": [1, 2]}, "x": 1}
    new = {"desired": {"speed": 50, "lights": {"front": "on"}, "tags": [1, 2, 3], "mode": "eco"}, "x": 1.0}
    assert diff(old, new) == [
        Change(("desired", "lights", "rear"), "removed", old="on"),
        Change(("desired", "mode"), "added", new="eco"),
        Change(("desired", "speed"), "changed", 40, 50),
        Change(("desired", "tags"), "changed", [1, 2], [1, 2, 3]),
    ]
    assert diff({"a": True}, {"a": 1}) == [Change(("a",), "changed", True, 1)]
    assert diff(1, 1.0) == []


def test_changed_paths_include_parents():
    assert changed_paths({"a": {"b": 1}}, {"a": {"b": 2}}) == {("a",), ("a", "b")}
    assert Change((), "changed").dotted == "(document)"
