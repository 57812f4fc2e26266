"""What users type as messages and shadow states."""

from __future__ import annotations

import pytest

from iot_tui.aws.payloads import PayloadError, parse_json, parse_key_values, parse_object, typed_value


def test_key_values_are_typed_and_nested():
    assert parse_key_values('speed=40 ratio=2.5 on=true off=False gone=null name="a b" lights.front=on') == {
        "speed": 40, "ratio": 2.5, "on": True, "off": False, "gone": None, "name": "a b", "lights": {"front": "on"},
    }
    assert typed_value("nan") == "nan" and typed_value("1e3") == 1000.0 and typed_value("007") == 7


@pytest.mark.parametrize("text", ["", "speed", "=3", 'a="unclosed', "a=1 a.b=2"])
def test_bad_pairs_say_why(text):
    with pytest.raises(PayloadError):
        parse_key_values(text)


def test_json_errors_carry_line_and_column():
    with pytest.raises(PayloadError) as excinfo:
        parse_json('{\n  "a": 1,\n  "b": }')
    assert (excinfo.value.line, excinfo.value.column) == (3, 8)
    assert "line 3, column 8" in str(excinfo.value)


def test_parse_object_takes_json_or_pairs():
    assert parse_object(' {"a": {"b": 1}} ') == {"a": {"b": 1}}
    assert parse_object("a=1") == {"a": 1}
    with pytest.raises(PayloadError):
        parse_object("[1, 2]")
