"""Evaluating rules: FROM and WHERE, SELECT shapes, operators, Undefined, CASE and paths, per AWS's tables."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from iot_tui.iotcore.sql import UNDEFINED, parse
from iot_tui.iotcore.topics import matches

from .helpers import TOPIC, context, run, value, where

# ------------------------------------------------------------------------- seed examples

SEED_TOPIC = "testRulesEngineTopic/device-1/temperature"


@pytest.mark.parametrize(
    ("sql", "payload", "fires"),
    [
        ("SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE temperature > 30", {"temperature": 31}, True),
        ("SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE temperature > 30", {"temperature": 30}, False),
        ("SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE temperature > 30", {"temperature": "35.5"}, True),
        ("SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE temperature > 30", {"humidity": 80}, False),
        ("SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE battery < 15", {"battery": 9}, True),
        ("SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE battery < 15", {"battery": 15}, False),
        ("SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE motion = 'detected'", {"motion": "detected"}, True),
        ("SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE motion = 'detected'", {"motion": "none"}, False),
    ],
)
def test_seed_rules(sql: str, payload: dict[str, Any], fires: bool) -> None:
    out = run(sql, payload, topic=SEED_TOPIC)
    assert out == (payload if fires else None)


def test_from_filters_topics() -> None:
    sql = "SELECT * FROM 'testRulesEngineTopic/+/temperature'"
    assert run(sql, {"a": 1}, topic="testRulesEngineTopic/d/temperature") == {"a": 1}
    assert run(sql, {"a": 1}, topic="testRulesEngineTopic/d/battery") is None
    assert run(sql, {"a": 1}, topic="testRulesEngineTopic/d/temperature/x") is None
    assert run("SELECT * FROM 'a/#'", {"a": 1}, topic="a/") == {"a": 1}
    assert run("SELECT * FROM 'a/#'", {"a": 1}, topic="a") is None
    assert run("SELECT * FROM 'exact/topic'", {"a": 1}, topic="exact/topic") == {"a": 1}
    assert run("SELECT * FROM '#'", {"a": 1}, topic="$aws/things/x/shadow/update") is None


_LEVEL = st.sampled_from(["a", "b", "", "$x", "a.b", "+x"])
_FILTER_LEVEL = st.sampled_from(["a", "b", "", "$x", "+", "a.b"])


@given(
    st.lists(_FILTER_LEVEL, min_size=1, max_size=4),
    st.booleans(),
    st.lists(_LEVEL, min_size=1, max_size=5),
)
def test_compiled_topic_match_agrees_with_topics_matches(levels: list[str], hash_tail: bool, topic: list[str]) -> None:
    topic_filter = "/".join([*levels, "#"] if hash_tail else levels)
    assume(topic_filter)
    name = "/".join(topic)
    rule = parse(f"SELECT * FROM '{topic_filter}'")
    assert (rule.evaluate(b"{}", context(name)) is not None) == matches(topic_filter, name)


def test_basic_ingest_skips_from_and_strips_the_prefix() -> None:
    sql = "SELECT topic() AS t, topic(1) AS first FROM 'other/filter'"
    assert run(sql, {}, topic="$aws/rules/MyRule/Buildings/Building5/Lights") == {
        "t": "Buildings/Building5/Lights",
        "first": "Buildings",
    }
    assert run("SELECT * WHERE a = 1", {"a": 1}, topic="$aws/rules/Ingest/x") == {"a": 1}
    assert run("SELECT * WHERE a = 1", {"a": 1}, topic="x") is None


def test_where_must_be_true() -> None:
    assert where("true")
    assert where("'TRUE'")
    assert not where("false")
    assert not where("missing")
    assert not where("1")
    assert not where("'yes'")


def test_where_undefined_is_false() -> None:
    assert not where("missing > 3", {"a": 1})
    assert where("missing > 3 OR a = 1", {"a": 1})
    assert not where("missing > 3 AND a = 1", {"a": 1})
    assert not where("missing = 3", {"a": 1})
    assert not where("NOT (missing = 3)", {"a": 1})
    assert where("isUndefined(missing)", {"a": 1})


# -------------------------------------------------------------------------------- SELECT


def test_select_star_returns_the_payload() -> None:
    payload = {"color": "red", "temperature": 50, "nested": {"a": [1, 2]}}
    assert run("SELECT * FROM 'things/#'", payload) == payload


def test_select_fields_and_aliases() -> None:
    payload = {"color": "red", "temperature": 50}
    assert run("SELECT color FROM 'things/#'", payload) == {"color": "red"}
    assert run("SELECT color AS rgb FROM 'things/#'", payload) == {"rgb": "red"}
    assert run("SELECT color as my_color, temperature as fahrenheit FROM 'things/#'", payload) == {
        "my_color": "red",
        "fahrenheit": 50,
    }


def test_select_star_merges_with_items() -> None:
    payload = {"color": "red", "temperature": 50}
    assert run("SELECT *, 15 AS speed FROM 'things/#'", payload) == {"color": "red", "temperature": 50, "speed": 15}
    assert run("SELECT *, 'blue' AS color FROM 'things/#'", payload) == {"color": "blue", "temperature": 50}
    assert run("SELECT 'blue' AS color, * FROM 'things/#'", payload) == {"color": "red", "temperature": 50}


def test_select_star_alias_nests_the_payload() -> None:
    assert run("SELECT * AS message, clientid() AS who FROM 'things/#'", {"a": 1}) == {
        "message": {"a": 1},
        "who": "client-1",
    }


def test_dotted_aliases_nest_the_output() -> None:
    payload = {"foo": {"bar": "RED", "bar1": "GREEN"}, "state": {"on": True}}
    assert run("SELECT foo.bar AS bar.baz FROM 'things/#'", payload) == {"bar": {"baz": "RED"}}
    out = run("SELECT *, 1 AS state.level, state AS copy, 2 AS foo.bar.deep FROM 'things/#'", payload)
    assert out == {
        "foo": {"bar": {"deep": 2}, "bar1": "GREEN"},
        "state": {"on": True, "level": 1},
        "copy": {"on": True},
    }


def test_unaliased_items_take_field_or_function_names() -> None:
    out = run("SELECT a.b.c, d[0], clientid(), 1 + 1 FROM 'things/#'", {"a": {"b": {"c": 3}}, "d": [4]})
    assert out == {"c": 3, "_2": 4, "clientid": "client-1", "_4": 2}


def test_undefined_values_are_omitted() -> None:
    assert run("SELECT a, missing, b.missing, null AS n FROM 'things/#'", {"a": 1, "b": {}}) == {"a": 1, "n": None}


def test_the_reference_example() -> None:
    sql = "SELECT (temperature - 32) * 5 / 9 AS celsius, upper(color) as my_color FROM 'things/#'"
    assert run(sql, {"color": "red", "temperature": 50}) == {"celsius": 10, "my_color": "RED"}


def test_select_value() -> None:
    assert run("SELECT VALUE color FROM 'things/#'", {"color": "red"}) == b'"red"'
    assert run("SELECT VALUE [a, b] FROM 'things/#'", {"a": 1, "b": 2}) == b"[1,2]"
    assert run("SELECT VALUE state FROM 'things/#'", {"state": {"on": True}}) == {"on": True}
    assert run("SELECT VALUE missing FROM 'things/#'", {}) == b""


def test_binary_payloads() -> None:
    payload = b"\x00\xffraw bytes"
    assert run("SELECT * FROM 'things/#'", payload) == payload
    assert run("SELECT * FROM 'things/#' WHERE timestamp() % 1000 = 123", payload) == payload
    assert run("SELECT * FROM 'things/#' WHERE device_type = 'thermostat'", payload) is None
    assert run("SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM 'things/#'", payload) == {
        "data": "AP9yYXcgYnl0ZXM=",
        "ts": 1_700_000_000_123,
    }
    assert run("SELECT *, principal() AS p FROM 'things/#'", payload) == {"p": "ab" * 32}


def test_non_object_json_payloads() -> None:
    assert run("SELECT * FROM 'things/#'", b"80") == b"80"
    assert run("SELECT * FROM 'things/#'", b"[1, 2]") == b"[1, 2]"
    sql = (
        "SELECT decode(encode(*, 'base64'), 'base64') AS value FROM 'things/#' "
        "WHERE decode(encode(*, 'base64'), 'base64') > 50"
    )
    assert run(sql, b"80") == {"value": 80}


def test_whole_decimals_are_ints_in_sql_v2() -> None:
    assert run("SELECT * FROM 'things/#'", b'{"t": 10.0, "u": 10.5}') == {"t": 10, "u": 10.5}


# ----------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2", 3),
        ("1 + 2.5", 3.5),
        ("0.5 + 0.5", 1),
        ("'a' + 'b'", "ab"),
        ("'a' + 1", "a1"),
        ("1 + 'a'", "1a"),
        ("'n' + 1.5", "n1.5"),
        ("'v' + true", "vtrue"),
        ("'v' + [1, 'x']", 'v[1,"x"]'),
        ("'v' + {'k': 1}", 'v{"k":1}'),
        ("'1' + 2", "12"),
        ("'v' + null", UNDEFINED),
        ("'v' + missing", UNDEFINED),
        ("true + 1", UNDEFINED),
        ("null + 1", UNDEFINED),
        ("[1] + [2]", UNDEFINED),
        ("7 - 2", 5),
        ("7 - 2.5", 4.5),
        ("'7' - 2", 5),
        ("'7.5' - '0.5'", 7),
        ("'x' - 1", UNDEFINED),
        ("3 * 4", 12),
        ("'3' * 1.5", 4.5),
        ("true * 1", UNDEFINED),
        ("7 / 2", 3),
        ("-7 / 2", -3),
        ("7 / 2.5", 2.8),
        ("7 / 2.0", 3),  # SQL V2 reads the literal 2.0 as the Int 2
        ("7.5 / 2.5", 3),
        ("'7' / 2", 3.5),
        ("1 / 0", UNDEFINED),
        ("1.5 / 0", UNDEFINED),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("7.5 % 2", 1.5),
        ("'8' % 3", 2),
        ("7 % 0", UNDEFINED),
        ("-a", -5),
        ("-'2.5'", -2.5),
        ("-'x'", UNDEFINED),
        ("-missing", UNDEFINED),
    ],
)
def test_arithmetic(expression: str, expected: Any) -> None:
    result = value(expression, {"a": 5})
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 = 1", True),
        ("1 = 1.0", True),
        ("1 = 2", False),
        ("'a' = 'a'", True),
        ("'1' = 1", False),
        ("true = true", True),
        ("true = 1", False),
        ("null = null", True),
        ("[1, 2] = [1, 2]", True),
        ("[1, 2] = [2, 1]", False),
        ("{'a': 1, 'b': 2} = {'b': 2, 'a': 1}", True),
        ("{'a': 1} = {'a': true}", False),
        ("missing = 1", UNDEFINED),
        ("1 = missing", UNDEFINED),
        ("missing = missing", UNDEFINED),
        ("1 <> 2", True),
        ("1 <> 1.0", False),
        ("1 != 2", True),
        ("'1' <> 1", True),
        ("null <> null", False),
        ("[1] <> [1]", False),
        ("missing <> 1", UNDEFINED),
        ("2 > 1", True),
        ("2 > 2", False),
        ("2 >= 2", True),
        ("1 < 2.5", True),
        ("3 <= 2", False),
        ("'10' > 9", True),
        ("'10' > '9'", True),
        ("'1e2' >= 100", True),
        ("'abc' > 1", UNDEFINED),
        ("true > false", UNDEFINED),
        ("null < 1", UNDEFINED),
        ("missing > 1", UNDEFINED),
        ("a > 4", True),
        ("a < '6'", True),
    ],
)
def test_comparisons(expression: str, expected: Any) -> None:
    assert value(expression, {"a": 5}) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("true AND true", True),
        ("true AND false", False),
        ("'TRUE' AND 'true'", True),
        ("'false' OR true", True),
        ("false OR false", False),
        ("true AND 1", UNDEFINED),
        ("true AND missing", UNDEFINED),
        ("missing AND missing", UNDEFINED),
        ("false AND missing", False),
        ("missing AND false", False),
        ("true OR 'maybe'", True),
        ("'maybe' OR true", True),
        ("false OR 'maybe'", UNDEFINED),
        ("missing OR missing", UNDEFINED),
        ("NOT true", False),
        ("NOT 'False'", True),
        ("NOT 0", UNDEFINED),
        ("NOT missing", UNDEFINED),
        ("1 IN [1, 2]", True),
        ("1.0 IN [1, 2]", True),
        ("'1' IN [1, 2]", False),
        ("[1] IN [[1], 2]", True),
        ("3 IN [1, 2]", False),
        ("missing IN [1]", UNDEFINED),
        ("1 IN 1", UNDEFINED),
    ],
)
def test_boolean_operators(expression: str, expected: Any) -> None:
    assert value(expression) is expected


def test_huge_numbers_do_not_raise() -> None:
    big = "9" * 400
    assert value(f"{big} + 1.5") is UNDEFINED
    assert value(f"{big} * 2") == int(big) * 2
    assert value("1e300 * 1e300") is UNDEFINED
    assert value("abs('1e400')") is UNDEFINED
    assert run("SELECT * FROM 'things/#'", b'{"a": 1e400}') == b'{"a": 1e400}'  # beyond a double: not JSON here


# ------------------------------------------------------------------------ paths and CASE


def test_nested_paths() -> None:
    payload = {"a": {"b": [{"c": 1}, {"c": 2}], "d": {"e": None}}, "arr": [[1, 2], [3]]}
    assert value("a.b[1].c", payload) == 2
    assert value("a.b[0]", payload) == {"c": 1}
    assert value("arr[1][0]", payload) == 3
    assert value("arr['1']", payload) == [3]
    assert value("arr[1.7]", payload) == [3]
    assert value("a.d.e", payload) is None
    assert value("a['d']", payload) == {"e": None}
    assert value("a.b[5].c", payload) is UNDEFINED
    assert value("a.b[-1]", payload) is UNDEFINED
    assert value("a.b.c", payload) is UNDEFINED
    assert value("a.missing.deeper", payload) is UNDEFINED
    assert value("arr.x", payload) is UNDEFINED
    assert value("({'k': [1, {'z': 9}]}).k[1].z", payload) == 9
    assert value("decode('eyJ0ZW1wZXJhdHVyZSI6IDMzfQ==', 'base64').temperature") == 33


def test_literal_collections_drop_undefined() -> None:
    assert value("[1, missing, 'x']") == [1, "x"]
    assert value("{'a': missing, 'b': 2}") == {"b": 2}
    assert value("{'latitude': get(p, 0), 'longitude': get(p, 1)}", {"p": [47.6, -122.3]}) == {
        "latitude": 47.6,
        "longitude": -122.3,
    }


@pytest.mark.parametrize(
    ("color", "expected"),
    [("green", "go"), ("yellow", "caution"), ("red", "stop"), ("blue", "you are not at a stop light")],
)
def test_simple_case_from_the_reference(color: str, expected: str) -> None:
    sql = (
        "SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' WHEN 'red' THEN 'stop' "
        "ELSE 'you are not at a stop light' END as instructions FROM 'things/#'"
    )
    assert run(sql, {"color": color}) == {"instructions": expected}


def test_case_edge_cases() -> None:
    assert value("CASE x WHEN 1 THEN 'one' END", {"x": 2}) is UNDEFINED
    assert value("CASE missing WHEN 1 THEN 'one' ELSE 'other' END") is UNDEFINED
    assert value("CASE x WHEN 1 THEN 'first' WHEN 1.0 THEN 'second' END", {"x": 1}) == "first"
    assert value("CASE x WHEN missing THEN 'no' ELSE 'else' END", {"x": 1}) == "else"
    assert value("CASE WHEN t > 30 THEN 'hot' WHEN t > 10 THEN 'mild' ELSE 'cold' END", {"t": 20}) == "mild"
    assert value("CASE WHEN missing > 1 THEN 'x' ELSE 'undefined is not true' END") == "undefined is not true"
    assert value("CASE WHEN 'true' THEN 'string truth' END") == "string truth"


def test_evaluate_does_not_share_state_between_messages() -> None:
    rule = parse("SELECT *, newuuid() AS id FROM 'things/#'")
    ids = iter(["one", "two"])
    ctx = context(newuuid=lambda: next(ids))
    first = rule.evaluate(json.dumps({"a": 1}).encode(), ctx)
    second = rule.evaluate(json.dumps({"a": 2}).encode(), ctx)
    assert first == {"a": 1, "id": "one"}
    assert second == {"a": 2, "id": "two"}


def test_default_topic_for_helpers() -> None:
    assert value("topic()") == TOPIC


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from("abcxyz"), children, max_size=4),
    max_leaves=12,
)
_EVERYTHING = parse(
    "SELECT *, a + b AS s, a - b AS d, a * b AS m, a / b AS q, a % b AS r, -a AS n, a.b[0].c AS p, "
    "CASE a WHEN b THEN 1 ELSE 2 END AS k, concat(a, b, x) AS cc, substring(a, b) AS ss, round(a) AS ro, "
    "cast(a AS Int) AS ci, cast(b AS Boolean) AS cb, cast(x AS String) AS cs, upper(y) AS u, get(a, b) AS g, "
    "power(a, b) AS pw, sqrt(a) AS sq, trunc(a, b) AS tr, bitand(a, b) AS ba, decode(x, 'base64') AS de, "
    "encode(a, 'base64') AS en, a IN b AS i, lpad(a, b) AS lp "
    "FROM '#' WHERE a = b OR a <> b OR a < b OR NOT (a >= b) OR isUndefined(a) OR true"
)


@given(_JSON)
def test_evaluation_never_raises_on_any_json(payload: Any) -> None:
    out = _EVERYTHING.evaluate(json.dumps(payload).encode(), context("x"))
    assert out is not None
    assert isinstance(out, dict | bytes)
    if isinstance(out, dict):
        json.dumps(out)


@given(st.binary(max_size=40))
def test_evaluation_never_raises_on_any_bytes(payload: bytes) -> None:
    assert _EVERYTHING.evaluate(payload, context("x")) is not None


# ------------------------------------------------------------------ nested object queries

SENML = {
    "e": [
        {"n": "temperature", "u": "Cel", "t": 1234, "v": 22.5},
        {"n": "light", "u": "lm", "t": 1235, "v": 135},
        {"n": "acidity", "u": "pH", "t": 1235, "v": 7},
    ]
}


def test_nested_object_queries_from_the_reference() -> None:
    assert run("SELECT (SELECT VALUE n FROM e) as sensors FROM 'things/#'", SENML) == {
        "sensors": ["temperature", "light", "acidity"]
    }
    assert run("SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'things/#'", SENML) == {
        "temperature": [{"v": 22.5}]
    }
    sql = "SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature FROM 'things/#'"
    assert run(sql, SENML) == {"temperature": 22.5}


def test_nested_object_query_edge_cases() -> None:
    assert value("(SELECT * FROM e WHERE v > 100)", SENML) == [SENML["e"][1]]
    assert value("(SELECT n, missing FROM e WHERE t = 1235)", SENML) == [{"n": "light"}, {"n": "acidity"}]
    assert value("(SELECT VALUE missing FROM e)", SENML) == []
    assert value("(SELECT VALUE a FROM o)", {"o": {"a": 1}}) == [1]
    assert value("(SELECT VALUE a FROM missing)", SENML) is UNDEFINED
    assert value("(SELECT VALUE topic(1) FROM e WHERE v < 10)", SENML) == ["things"]


def test_long_boolean_chains_are_not_too_deep() -> None:
    devices = [f"d{i}" for i in range(500)]
    condition = " OR ".join(f"device = '{d}'" for d in devices)
    assert where(condition, {"device": "d499"})
    assert not where(condition, {"device": "other"})
    assert where(" AND ".join(["a = 1"] * 500), {"a": 1})


def test_deeply_nested_payloads_compare_without_recursion() -> None:
    deep = "[" * 900 + "]" * 900
    payload = f'{{"a": {deep}, "b": {deep}}}'.encode()
    assert run("SELECT a = b AS e, a IN [b] AS i FROM 'things/#'", payload) == {"e": True, "i": True}
