"""Parsing AWS IoT SQL: the statement's shape, keywords versus field names, and errors with positions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_tui.iotcore.sql import Rule, SqlParseError, parse
from iot_tui.iotcore.sql.nodes import (
    ArrayLiteral,
    Binary,
    Call,
    Case,
    Cast,
    Field,
    Index,
    Literal,
    Member,
    ObjectLiteral,
    Select,
    SelectItem,
    Star,
    Subquery,
    Unary,
)


def test_seed_statement() -> None:
    rule = parse("SELECT * FROM 'testRulesEngineTopic/+/temperature' WHERE temperature > 30")
    assert isinstance(rule, Rule)
    assert rule.select == Select((SelectItem(Star()),))
    assert rule.topic_filter == "testRulesEngineTopic/+/temperature"
    assert rule.where == Binary(">", Field("temperature"), Literal(30))


@pytest.mark.parametrize(
    "sql",
    [
        "select * from 'a/b' where x = 1",
        "SeLeCt * FrOm 'a/b' WhErE x = 1",
        "SELECT\n  *\nFROM\t'a/b'\nWHERE\n x = 1",
    ],
)
def test_keywords_are_case_insensitive(sql: str) -> None:
    rule = parse(sql)
    assert rule.topic_filter == "a/b"
    assert rule.where == Binary("=", Field("x"), Literal(1))


def test_double_quoted_topic_filter() -> None:
    assert parse('SELECT * FROM "t/#"').topic_filter == "t/#"


def test_from_is_optional_for_basic_ingest_rules() -> None:
    rule = parse("SELECT * WHERE a > 1")
    assert rule.topic_filter is None
    assert rule.where is not None


def test_words_like_timestamp_value_topic_are_fields() -> None:
    rule = parse("SELECT timestamp, value, topic FROM 'x' WHERE value > 3")
    assert rule.select.items == (
        SelectItem(Field("timestamp")),
        SelectItem(Field("value")),
        SelectItem(Field("topic")),
    )
    assert rule.where == Binary(">", Field("value"), Literal(3))


def test_words_like_timestamp_are_functions_when_called() -> None:
    rule = parse("SELECT timestamp() AS timestamp, topic(2) AS topic, value FROM 'x'")
    assert rule.select.items == (
        SelectItem(Call("timestamp", ()), "timestamp"),
        SelectItem(Call("topic", (Literal(2),)), "topic"),
        SelectItem(Field("value")),
    )


def test_identifiers_that_start_with_keywords() -> None:
    rule = parse("SELECT selector, fromage, android, ordinal, endpoint, nullable, truely FROM 'x'")
    assert [item.expr for item in rule.select.items] == [
        Field(n) for n in ("selector", "fromage", "android", "ordinal", "endpoint", "nullable", "truely")
    ]


def test_select_value_keyword_only_before_an_expression() -> None:
    assert parse("SELECT VALUE color FROM 'x'").select == Select((SelectItem(Field("color")),), value=True)
    assert parse("SELECT value FROM 'x'").select == Select((SelectItem(Field("value")),))
    assert parse("SELECT value AS v FROM 'x'").select == Select((SelectItem(Field("value"), "v"),))
    assert parse("SELECT value, x FROM 'x'").select.value is False
    assert parse("SELECT value * 2 AS d FROM 'x'").select.items[0].expr == Binary("*", Field("value"), Literal(2))
    assert parse("SELECT value IN [1] AS i FROM 'x'").select.items[0].expr == Binary(
        "IN", Field("value"), ArrayLiteral((Literal(1),))
    )
    assert parse("SELECT value and ok AS b FROM 'x'").select.items[0].expr == Binary("AND", Field("value"), Field("ok"))
    assert parse("SELECT VALUE NOT ok FROM 'x'").select == Select((SelectItem(Unary("NOT", Field("ok"))),), value=True)


def test_nested_paths() -> None:
    rule = parse("SELECT a.b, a[0], a.b[1].c, get_thing_shadow('t', 'r').state.reported FROM 'x'")
    exprs = [item.expr for item in rule.select.items]
    assert exprs[0] == Member(Field("a"), "b")
    assert exprs[1] == Index(Field("a"), Literal(0))
    assert exprs[2] == Member(Index(Member(Field("a"), "b"), Literal(1)), "c")
    assert exprs[3] == Member(Member(Call("get_thing_shadow", (Literal("t"), Literal("r"))), "state"), "reported")


def test_dotted_alias() -> None:
    assert parse("SELECT foo.bar AS bar.baz FROM 'x'").select.items == (
        SelectItem(Member(Field("foo"), "bar"), "bar.baz"),
    )


def test_star_with_fields_and_aliases() -> None:
    rule = parse("SELECT *, temperature AS t, * AS copy FROM 'x'")
    assert rule.select.items == (SelectItem(Star()), SelectItem(Field("temperature"), "t"), SelectItem(Star(), "copy"))


def test_literals() -> None:
    rule = parse(
        "SELECT 1 AS i, 2.5 AS d, 1e3 AS e, 10.0 AS w, -4 AS n, 'it\\'s' AS s, \"dq\" AS q, "
        "true AS t, FALSE AS f, null AS z, [1, 'a', [2]] AS arr, {'k': 1, \"j\": [true]} AS obj FROM 'x'"
    )
    values = {item.alias: item.expr for item in rule.select.items}
    assert values["i"] == Literal(1)
    assert values["d"] == Literal(2.5)
    assert values["e"] == Literal(1000)
    assert values["w"] == Literal(10)  # SQL V2: whole-number Decimals are Ints
    assert values["n"] == Literal(-4)
    assert values["s"] == Literal("it's")
    assert values["q"] == Literal("dq")
    assert values["t"] == Literal(True)
    assert values["f"] == Literal(False)
    assert values["z"] == Literal(None)
    assert values["arr"] == ArrayLiteral((Literal(1), Literal("a"), ArrayLiteral((Literal(2),))))
    assert values["obj"] == ObjectLiteral((("k", Literal(1)), ("j", ArrayLiteral((Literal(True),)))))


def test_string_escapes() -> None:
    rule = parse(r"SELECT 'a\nb\t\u00e9\\\"' AS s FROM 'x'")
    assert rule.select.items[0].expr == Literal('a\nb\té\\"')


def test_operator_precedence() -> None:
    where = parse("SELECT * FROM 'x' WHERE NOT a = 1 + 2 * 3 OR b AND c").where
    assert where == Binary(
        "OR",
        Unary("NOT", Binary("=", Field("a"), Binary("+", Literal(1), Binary("*", Literal(2), Literal(3))))),
        Binary("AND", Field("b"), Field("c")),
    )


def test_left_associative_arithmetic_and_parentheses() -> None:
    assert parse("SELECT a - b - c AS r FROM 'x'").select.items[0].expr == Binary(
        "-", Binary("-", Field("a"), Field("b")), Field("c")
    )
    assert parse("SELECT a - (b - c) AS r FROM 'x'").select.items[0].expr == Binary(
        "-", Field("a"), Binary("-", Field("b"), Field("c"))
    )


@pytest.mark.parametrize("op", ["=", "<>", "<", "<=", ">", ">="])
def test_comparison_operators(op: str) -> None:
    assert parse(f"SELECT * FROM 'x' WHERE a {op} 1").where == Binary(op, Field("a"), Literal(1))


def test_bang_equals_is_not_equal() -> None:
    assert parse("SELECT * FROM 'x' WHERE a != 1").where == Binary("<>", Field("a"), Literal(1))


def test_in_operator() -> None:
    assert parse("SELECT * FROM 'x' WHERE a IN [1, 2]").where == Binary(
        "IN", Field("a"), ArrayLiteral((Literal(1), Literal(2)))
    )


def test_case_forms() -> None:
    simple = parse("SELECT CASE c WHEN 'g' THEN 'go' WHEN 'r' THEN 'stop' ELSE 'x' END AS i FROM 'x'")
    assert simple.select.items[0].expr == Case(
        Field("c"), ((Literal("g"), Literal("go")), (Literal("r"), Literal("stop"))), Literal("x")
    )
    searched = parse("SELECT case when t > 30 then 'hot' end AS i FROM 'x'")
    assert searched.select.items[0].expr == Case(None, ((Binary(">", Field("t"), Literal(30)), Literal("hot")),), None)


def test_function_names_are_case_insensitive() -> None:
    rule = parse("SELECT Round(a) AS r, isNull(b) AS n, UPPER(c) AS u FROM 'x'")
    assert [item.expr for item in rule.select.items] == [
        Call("round", (Field("a"),)),
        Call("isnull", (Field("b"),)),
        Call("upper", (Field("c"),)),
    ]


def test_cast_syntax() -> None:
    rule = parse("SELECT cast(a AS Int) AS i, CAST(b as decimal) AS d, cast(c AS Boolean) AS b FROM 'x'")
    assert [item.expr for item in rule.select.items] == [
        Cast(Field("a"), "int"),
        Cast(Field("b"), "decimal"),
        Cast(Field("c"), "boolean"),
    ]


def test_star_argument() -> None:
    rule = parse("SELECT encode(*, 'base64') AS data FROM 'x'")
    assert rule.select.items[0].expr == Call("encode", (Star(), Literal("base64")))


# ------------------------------------------------------------------------------- errors


def _error(sql: str) -> SqlParseError:
    with pytest.raises(SqlParseError) as caught:
        parse(sql)
    return caught.value


@pytest.mark.parametrize(
    ("sql", "line", "column", "fragment"),
    [
        ("SELECT FROM 'a'", 1, 8, "Expected an expression but found 'FROM'"),
        ("SELECT a FROM", 1, 14, "Expected a string but found end of input"),
        ("SELECT a FROM 'x' WHERE", 1, 24, "Expected an expression but found end of input"),
        ("SELECT a\nFROM 'x'\nWHERE a >", 3, 10, "Expected an expression but found end of input"),
        ("SELECT a b FROM 'x'", 1, 10, "found 'b'"),
        ("SELCT a FROM 'x'", 1, 1, "Expected SELECT but found 'SELCT'"),
        ("SELECT (a FROM 'x'", 1, 11, "Expected ')' but found 'FROM'"),
        ("SELECT a FROM 'x", 1, 15, "Unterminated string literal"),
        ("SELECT 'abc FROM 'x'", 1, 19, "found 'x'"),
        ("SELECT a FROM 'x' WHERE a ^ 2", 1, 27, "Unexpected character '^'"),
        ("SELECT CASE WHEN a THEN 1 FROM 'x'", 1, 27, "found 'FROM'"),
        ("SELECT a FROM x", 1, 15, "Expected a string but found 'x'"),
        ("SELECT a FROM 'a/#/b'", 1, 15, "Invalid topic filter in FROM"),
        ("SELECT a FROM ''", 1, 15, "Invalid topic filter in FROM"),
        ("SELECT foo(1) FROM 'x'", 1, 8, "Undefined function: foo"),
        ("SELECT a,\n  nosuch(b) FROM 'x'", 2, 3, "Undefined function: nosuch"),
        ("SELECT cast(a AS Foo) FROM 'x'", 1, 18, "Unsupported cast type: Foo"),
        ("SELECT upper(a AS Int) FROM 'x'", 1, 8, "Unexpected AS in call to upper"),
        ("SELECT cast(a) FROM 'x'", 1, 8, "cast requires the form cast(<expression> AS <type>)"),
        ("SELECT 1e99999 FROM 'x'", 1, 8, "Number literal out of range"),
        ("", 1, 1, "Expected SELECT but found end of input"),
    ],
)
def test_syntax_errors_carry_message_and_position(sql: str, line: int, column: int, fragment: str) -> None:
    error = _error(sql)
    assert fragment in error.message
    assert (error.line, error.column) == (line, column)
    assert str(error) == f"{error.message} at {line}:{column}"
    assert error.aws_code == "SqlParseException"


def test_keywords_cannot_be_field_names() -> None:
    assert "found 'from'" in _error("SELECT a, from FROM 'x'").message


def test_parentheses_add_no_depth() -> None:
    assert parse("SELECT " + "(" * 200 + "1" + ")" * 200 + " AS x FROM 'x'").select.items[0].expr == Literal(1)


def test_too_deep_nesting_is_a_parse_error() -> None:
    assert "nested too deeply" in _error("SELECT " + "[" * 200 + "]" * 200 + " AS x FROM 'x'").message
    assert "nested too deeply" in _error("SELECT " + "-" * 500 + "a AS x FROM 'x'").message


_SQL_ALPHABET = st.sampled_from(
    ["SELECT ", "FROM ", "WHERE ", "AS ", "CASE ", "WHEN ", "THEN ", "ELSE ", "END ", "AND ", "OR ", "NOT ",
     "IN ", "VALUE ", "cast(", "topic(", "encode(", "x", "a.b", "[", "]", "{", "}", "(", ")", ",", "*", "+",
     "-", "/", "%", "=", "<>", "!=", "<", ">=", "'t/+'", '"s"', "'", '"', "1", "2.5", "1e400", "9" * 5000,
     "true", "null", " ", "\n", ":", ".", "\\", "#", "é", "\x00"]
)  # fmt: skip


@given(st.lists(_SQL_ALPHABET, max_size=30).map("".join))
def test_parser_raises_only_sql_parse_error_on_token_soup(sql: str) -> None:
    try:
        parse(sql)
    except SqlParseError as error:
        assert error.line >= 1 and error.column >= 1


@given(st.text(max_size=80))
def test_parser_raises_only_sql_parse_error_on_random_text(sql: str) -> None:
    for text in (sql, "SELECT " + sql, f"SELECT * FROM 'x' WHERE {sql}"):
        try:
            parse(text)
        except SqlParseError as error:
            assert error.line >= 1 and error.column >= 1


def test_nested_select() -> None:
    rule = parse("SELECT (SELECT VALUE n FROM e WHERE v > 1) AS names FROM 'x'")
    assert rule.select.items[0].expr == Subquery(
        Select((SelectItem(Field("n")),), value=True), Field("e"), Binary(">", Field("v"), Literal(1))
    )
