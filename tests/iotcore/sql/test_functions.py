"""SQL functions, with the examples and tables of the AWS IoT SQL reference's "Functions" page."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest

from iot_tui.iotcore.sql import UNDEFINED, EvalContext, parse
from iot_tui.iotcore.sql.functions import FUNCTIONS

from .helpers import context, value

# --------------------------------------------------------------------------- metadata


def test_topic() -> None:
    ctx = {"topic": "things/myThings/thingOne"}
    assert value("topic()", **ctx) == "things/myThings/thingOne"
    assert value("topic(1)", **ctx) == "things"
    assert value("topic(3)", **ctx) == "thingOne"
    assert value("topic('2')", **ctx) == "myThings"
    assert value("topic(2.9)", **ctx) == "myThings"
    assert value("topic(0)", **ctx) is UNDEFINED
    assert value("topic(4)", **ctx) is UNDEFINED
    assert value("topic('x')", **ctx) is UNDEFINED
    assert value("topic(null)", **ctx) is UNDEFINED
    assert value("topic(missing)", **ctx) is UNDEFINED


def test_message_metadata_functions() -> None:
    assert value("clientid()") == "client-1"
    assert value("principal()") == "ab" * 32
    assert value("accountid()") == "123456789012"
    assert value("traceid()") == "11111111-2222-3333-4444-555555555555"
    assert value("timestamp()") == 1_700_000_000_123
    assert value("newuuid()") == "00000000-0000-4000-8000-000000000000"
    assert value("sql_version()") == "2016-03-23"


def test_metadata_defaults_when_not_given() -> None:
    rule = parse(
        "SELECT clientid() AS c, principal() AS p, accountid() AS a, traceid() AS t, "
        "timestamp() AS ts, newuuid() AS u FROM '#'"
    )
    out = rule.evaluate(b"{}", EvalContext(topic="x"))
    assert isinstance(out, dict)
    assert out["c"] == "n/a"  # not published over MQTT
    assert "p" not in out and "a" not in out and "t" not in out
    assert isinstance(out["ts"], int) and out["ts"] > 1_600_000_000_000
    assert len(out["u"]) == 36


def test_timestamp_is_read_once_per_evaluation() -> None:
    out = parse("SELECT timestamp() AS a, timestamp() AS b FROM '#'").evaluate(b"{}", EvalContext(topic="x"))
    assert isinstance(out, dict) and out["a"] == out["b"]


def test_get_thing_shadow() -> None:
    calls: list[tuple[str, str, str | None]] = []
    shadows = {("MyThing", None): {"state": {"reported": {"alarm": "ON"}}}, ("MyThing", "named"): {"state": {}}}

    def getter(thing: str, role_arn: str, shadow_name: str | None) -> dict[str, Any] | None:
        calls.append((thing, role_arn, shadow_name))
        return shadows.get((thing, shadow_name))

    role = "arn:aws:iam::123456789012:role/AllowsThingShadowAccess"
    sql = f"SELECT * FROM '#' WHERE get_thing_shadow('MyThing', '{role}').state.reported.alarm = 'ON'"
    assert parse(sql).evaluate(b'{"a": 1}', context("x", get_thing_shadow=getter)) == {"a": 1}
    assert value(f"get_thing_shadow('MyThing', 'named', '{role}')", get_thing_shadow=getter) == {"state": {}}
    assert value(f"get_thing_shadow('Other', '{role}')", get_thing_shadow=getter) is UNDEFINED
    assert value(f"get_thing_shadow(1, '{role}')", get_thing_shadow=getter) is UNDEFINED
    assert calls == [("MyThing", role, None), ("MyThing", role, "named"), ("Other", role, None)]
    assert value(f"get_thing_shadow('MyThing', '{role}')") is UNDEFINED  # no getter injected


# ---------------------------------------------------------------------------- numeric


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("abs(-5)", 5),
        ("abs(-5.5)", 5.5),
        ("abs('-5.123')", 5.123),
        ("abs(true)", UNDEFINED),
        ("abs('x')", UNDEFINED),
        ("abs(null)", UNDEFINED),
        ("ceil(1.2)", 2),
        ("ceil(-1.2)", -1),
        ("ceil('1.2')", 2),
        ("ceil(3)", 3),
        ("ceil([1])", UNDEFINED),
        ("floor(1.2)", 1),
        ("floor(-1.2)", -2),
        ("floor('x')", UNDEFINED),
        ("round(1.2)", 1),
        ("round(1.5)", 2),
        ("round(1.7)", 2),
        ("round(-1.1)", -1),
        ("round(-1.5)", -2),
        ("round('2.5')", 3),
        ("round(7)", 7),
        ("round(false)", UNDEFINED),
        ("sign(-7)", -1),
        ("sign(0)", 0),
        ("sign(13)", 1),
        ("sign('-0.5')", -1),
        ("sqrt(9)", 3),
        ("sqrt(2)", math.sqrt(2)),
        ("sqrt(-1)", UNDEFINED),
        ("power(2, 5)", 32),
        ("power('2', 0.5)", math.sqrt(2)),
        ("power(10, 400)", UNDEFINED),
        ("power('x', 2)", UNDEFINED),
        ("mod(8, 3)", 2),
        ("mod(-8, 3)", -2),
        ("mod(8.5, 3)", 2.5),
        ("remainder(8, 3)", 2),
        ("mod(8, 0)", UNDEFINED),
        ("nanvl(8, 3)", 8),
        ("nanvl(missing, 3)", 3),
        ("nanvl(null, 'x')", "x"),
        ("nanvl('a', 3)", "a"),
        ("trunc(2.3, 0)", 2),
        ("trunc(2.3123, 2)", 2.31),
        ("trunc(2.888, 2)", 2.88),
        ("trunc(5, 2)", 5),
        ("trunc(0.29, 2)", 0.29),
        ("trunc(-2.888, 1)", -2.8),
        ("trunc(123456.789, 40)", 123456.789),
        ("trunc(2.5, -1)", 2),
        ("exp(0)", 1),
        ("ln(1)", 0),
        ("log(100)", 2),
        ("ln(0)", UNDEFINED),
        ("sin(0)", 0),
        ("cos(0)", 1),
        ("atan2(0, 1)", 0),
        ("bitand(13, 5)", 5),
        ("bitor(13, 5)", 13),
        ("bitxor(13, 5)", 8),
        ("bitnot(13)", -14),
        ("bitand(1, 'x')", UNDEFINED),
    ],
)
def test_numeric_functions(expression: str, expected: Any) -> None:
    result = value(expression)
    if expected is UNDEFINED:
        assert result is UNDEFINED
    else:
        assert result == pytest.approx(expected) and type(result) is type(expected)


# ----------------------------------------------------------------------------- string


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("lower('HELLO')", "hello"),
        ("lower(['HELLO'])", '["hello"]'),
        ("upper('hello')", "HELLO"),
        ("upper(['hello'])", '["HELLO"]'),
        ("upper(12)", "12"),
        ("upper(null)", UNDEFINED),
        ("upper(missing)", UNDEFINED),
        ("trim(' hi ')", "hi"),
        ("trim(true)", "true"),
        ("ltrim(' h i ')", "h i "),
        ("rtrim(' h i ')", " h i"),
        ("length('hi')", 2),
        ("length(false)", 5),
        ("length(null)", UNDEFINED),
        ("numbytes('hi')", 2),
        ("numbytes('€')", 3),
        ("concat()", UNDEFINED),
        ("concat(1)", 1),
        ("concat([1, 2, 3], 4)", [1, 2, 3, 4]),
        ("concat([1, 2, 3], 'hello')", [1, 2, 3, "hello"]),
        ("concat('con', 'cat')", "concat"),
        ("concat(1, 'hello')", "1hello"),
        ("concat('he', 'is', 'man')", "heisman"),
        ("concat([1, 2, 3], 'hello', [4, 5, 6])", [1, 2, 3, "hello", 4, 5, 6]),
        ("concat('a', missing)", UNDEFINED),
        ("substring('012345', 0)", "012345"),
        ("substring('012345', 2)", "2345"),
        ("substring('012345', 2.745)", "2345"),
        ("substring(123, 2)", "3"),
        ("substring('012345', -1)", "012345"),
        ("substring(true, 1.2)", "rue"),
        ("substring(false, -2.411E247)", "false"),
        ("substring('012345', 1, 3)", "12"),
        ("substring('012345', -50, 50)", "012345"),
        ("substring('012345', 3, 1)", ""),
        ("substring('012345', 'x')", UNDEFINED),
        ("substring('012345', 1, null)", UNDEFINED),
        ("indexof('abcd', 'bc')", 1),
        ("indexof('abcd', 'x')", -1),
        ("indexof(12345, 34)", 2),
        ("startswith('ranger', 'ran')", True),
        ("startswith('ranger', 'x')", False),
        ("startswith(123, 1)", True),
        ("startswith(null, 'a')", UNDEFINED),
        ("endswith('cat', 'at')", True),
        ("endswith('cat', missing)", UNDEFINED),
        ("replace('abcd', 'bc', 'x')", "axd"),
        ("replace('abcdabcd', 'b', 'x')", "axcdaxcd"),
        ("replace(1.5, '.', ',')", "1,5"),
        ("replace('a', null, 'b')", UNDEFINED),
        ("lpad('hello', 2)", "  hello"),
        ("rpad('hello', 2)", "hello  "),
        ("rpad(1, 3)", "1   "),
        ("lpad('x', -4)", "x"),
        ("chr(65)", "A"),
        ("chr('49')", "1"),
        ("chr(300)", UNDEFINED),
        ("md5('hello')", "5d41402abc4b2a76b9719d911017c592"),
        ("sha256('hello')", hashlib.sha256(b"hello").hexdigest()),
        ("sha1(5)", hashlib.sha1(b"5").hexdigest()),
    ],
)
def test_string_functions(expression: str, expected: Any) -> None:
    result = value(expression)
    assert result == expected and type(result) is type(expected)


# ------------------------------------------------------------------ types and collections


@pytest.mark.parametrize(
    ("argument", "is_null", "is_undefined"),
    [("5", False, False), ("'a'", False, False), ("null", True, False), ("missing", False, True), ("[]", False, False)],
)
def test_is_null_and_is_undefined(argument: str, is_null: bool, is_undefined: bool) -> None:
    assert value(f"isNull({argument})") is is_null
    assert value(f"isUndefined({argument})") is is_undefined


def test_is_undefined_of_a_function_given_bad_arguments() -> None:
    assert value("isUndefined(floor([1, 2, 3]))") is True


def test_get() -> None:
    assert value("get(['a', 'b', 'c'], 1)") == "b"
    assert value("get({'a': 'b'}, 'a')") == "b"
    assert value("get('abc', 1)") == "b"
    assert value("get(['a'], '0')") == "a"
    assert value("get(['a'], 5)") is UNDEFINED
    assert value("get({'a': 1}, 1)") is UNDEFINED
    assert value("get(get(get(mydata, 'item2'), '0'), 'my-key')", {"mydata": {"item2": {"0": {"my-key": "v"}}}}) == "v"


def test_wrong_number_of_arguments_is_undefined() -> None:
    assert value("upper('a', 'b')") is UNDEFINED
    assert value("topic(1, 2)") is UNDEFINED
    assert value("clientid(1)") is UNDEFINED


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cast(true AS Int)", 1),
        ("cast(false AS Integer)", 0),
        ("cast(2.7 AS Int)", 2),
        ("cast(-2.7 AS Int)", -3),
        ("cast('5.9' AS Int)", 5),
        ("cast('x' AS Int)", UNDEFINED),
        ("cast(null AS Int)", UNDEFINED),
        ("cast(5 AS Decimal)", 5),
        ("cast('1.5' AS Decimal)", 1.5),
        ("cast(true AS Decimal)", 1),
        ("cast('2.5' AS Double)", 2.5),
        ("cast([1] AS Decimal)", UNDEFINED),
        ("cast(0 AS Boolean)", False),
        ("cast(0.1 AS Bool)", True),
        ("cast('TRUE' AS Boolean)", True),
        ("cast('yes' AS Boolean)", UNDEFINED),
        ("cast(null AS Boolean)", UNDEFINED),
        ("cast(5 AS String)", "5"),
        ("cast(1.5 AS varchar)", "1.5"),
        ("cast(true AS Text)", "true"),
        ("cast([1, 'a', null] AS String)", '[1,"a",null]'),
        ("cast({'a': 1} AS nvarchar)", '{"a":1}'),
        ("cast(null AS String)", UNDEFINED),
        ("cast(missing AS String)", UNDEFINED),
    ],
)
def test_cast(expression: str, expected: Any) -> None:
    result = value(expression)
    assert result == expected and type(result) is type(expected)


def test_encode_and_decode() -> None:
    assert value("encode('hello', 'base64')") == "aGVsbG8="
    assert value("encode(12, 'base64')") == "MTI="
    assert value("encode('x', 'hex')") is UNDEFINED
    assert value("encode(missing, 'base64')") is UNDEFINED
    assert value("decode('aGVsbG8=', 'base64')") == "hello"
    assert (
        value("decode(encoded_temp, 'base64').temperature", {"encoded_temp": "eyAidGVtcGVyYXR1cmUiOiAzMyB9Cg=="}) == 33
    )
    assert value("decode('not base64!', 'base64')") is None
    assert value("decode('aGVsbG8=', 'rot13')") is UNDEFINED
    assert value("decode(5, 'base64')") is UNDEFINED


def test_encode_star_uses_the_raw_payload() -> None:
    rule = parse("SELECT encode(*, 'base64') AS data FROM '#'")
    assert rule.evaluate(b'{"a": 1}', context("x")) == {"data": "eyJhIjogMX0="}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("exp(1)", math.e),
        ("ln(exp(2))", 2),
        ("log(1000)", 3),
        ("sin(1)", math.sin(1)),
        ("cos(1)", math.cos(1)),
        ("tan(1)", math.tan(1)),
        ("asin(1)", math.asin(1)),
        ("acos(0.5)", math.acos(0.5)),
        ("atan(1)", math.atan(1)),
        ("atan2(1, 1)", math.atan2(1, 1)),
        ("sinh(1)", math.sinh(1)),
        ("cosh(1)", math.cosh(1)),
        ("tanh(1)", math.tanh(1)),
        ("asin(2)", UNDEFINED),
        ("exp(100000)", UNDEFINED),
        ("sqrt('x')", UNDEFINED),
    ],
)
def test_double_precision_functions(expression: str, expected: Any) -> None:
    result = value(expression)
    assert result is UNDEFINED if expected is UNDEFINED else result == pytest.approx(expected)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_answers_undefined_rather_than_raising(name: str) -> None:
    function = FUNCTIONS[name]
    for count in range(function.min_args, min(function.max_args, 3) + 1):
        for argument in ("missing", "null", "[1]", "{'a': 1}", "true", "'x'", "-1.5", "99999999999999999999999"):
            value(f"{name}({', '.join([argument] * count)})")
