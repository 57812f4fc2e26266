"""What users type as shadow states and messages: JSON objects or typed key=value pairs."""

from __future__ import annotations

import pytest

from iot_tui.aws.payloads import PayloadError, parse_json, parse_key_values, parse_object


def test_key_values_are_typed_and_nested():
    assert parse_key_values('speed=40 ratio=2.5 on=true gone=null name="a b" lights.front=on big=1e3 id=007') == {
        "speed": 40, "ratio": 2.5, "on": True, "gone": None, "name": "a b", "lights": {"front": "on"},
        "big": 1000.0, "id": "007",
    }


@pytest.mark.parametrize("text", ["speed", "=3", 'a="unclosed', "a=1 a.b=2"])
def test_bad_pairs_say_where(text):
    with pytest.raises(PayloadError) as excinfo:
        parse_key_values(text)
    assert excinfo.value.line == 1


def test_json_errors_carry_line_and_column():
    with pytest.raises(PayloadError) as excinfo:
        parse_json('{\n  "a": 1,\n  "b": }')
    assert (excinfo.value.line, excinfo.value.column) == (3, 8)
    assert "line 3, column 8" in str(excinfo.value)


def test_parse_object_takes_json_or_pairs():
    assert parse_object(' {"a": {"b": 1}} ') == {"a": {"b": 1}}
    assert parse_object("a=1") == {"a": 1}
    for text in ("[1, 2]", "   "):
        with pytest.raises(PayloadError):
            parse_object(text)
