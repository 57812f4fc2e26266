"""Substitution templates in rule actions (AWS "Substitution templates")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_tui.iotcore.sql import SqlParseError, substitute_template

from .helpers import context

PAYLOAD = b'{"deviceid": "iot123", "temp": 54.98, "coords": {"latitude": 47.6}, "tags": ["a", "b"]}'


def test_republish_topic_from_the_reference() -> None:
    assert substitute_template("${topic()}/republish", PAYLOAD, context("my/iot/topic")) == "my/iot/topic/republish"


def test_functions_fields_and_operators() -> None:
    ctx = context("devices/dev-7/telemetry")
    assert substitute_template("republish/${topic(2)}/${clientid()}", PAYLOAD, ctx) == "republish/dev-7/client-1"
    assert substitute_template("${deviceid}:${temp}", PAYLOAD, ctx) == "iot123:54.98"
    assert substitute_template("${coords.latitude}|${tags[1]}|${tags}", PAYLOAD, ctx) == '47.6|b|["a","b"]'
    assert substitute_template("${upper(deviceid) + '-' + round(temp)}", PAYLOAD, ctx) == "IOT123-55"
    assert substitute_template("${get({'k': 'v'}, 'k')}", PAYLOAD, ctx) == "v"
    assert substitute_template("${'}'}", PAYLOAD, ctx) == "}"


def test_undefined_becomes_empty() -> None:
    assert substitute_template("a/${missing}/b", PAYLOAD, context()) == "a//b"
    assert substitute_template("${null}", PAYLOAD, context()) == ""


def test_templates_without_expressions() -> None:
    assert substitute_template("plain/topic", PAYLOAD, context()) == "plain/topic"
    assert substitute_template("", PAYLOAD, context()) == ""
    assert substitute_template("cost: $5 {x}", PAYLOAD, context()) == "cost: $5 {x}"


def test_decoded_messages_and_binary_payloads() -> None:
    assert substitute_template("${a}", {"a": 1}, context()) == "1"
    assert substitute_template("${encode(*, 'base64')}", b"\x00\x01", context()) == "AAE="
    assert substitute_template("${deviceid}", b"\x00\x01", context()) == ""


def test_basic_ingest_topic_prefix_is_dropped() -> None:
    assert substitute_template("${topic()}", PAYLOAD, context("$aws/rules/MyRule/a/b")) == "a/b"


@pytest.mark.parametrize(
    ("template", "column", "fragment"),
    [
        ("a/${topic(2)", 3, "Unterminated substitution template"),
        ("a/${}", 5, "Expected an expression but found end of input"),
        ("ab/${nosuch()}", 6, "Undefined function: nosuch"),
        ("x${a +}", 7, "Expected an expression"),
        ("x${[" + "[" * 150 + "]" * 151 + "}", 4, "nested too deeply"),
    ],
)
def test_malformed_templates(template: str, column: int, fragment: str) -> None:
    with pytest.raises(SqlParseError) as caught:
        substitute_template(template, PAYLOAD, context())
    assert fragment in caught.value.message
    assert (caught.value.line, caught.value.column) == (1, column)


@given(st.text(max_size=40))
def test_templates_raise_only_sql_parse_error(template: str) -> None:
    for text in (template, "${" + template + "}", "a/${" + template):
        try:
            substitute_template(text, PAYLOAD, context())
        except SqlParseError as error:
            assert error.column >= 1


def test_errors_in_multi_line_templates() -> None:
    with pytest.raises(SqlParseError) as caught:
        substitute_template("line one\n${upper(a,\n  nosuch(b))}", PAYLOAD, context())
    assert (caught.value.line, caught.value.column) == (3, 3)
