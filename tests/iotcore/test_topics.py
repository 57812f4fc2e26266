"""Tests for iot_tui.iotcore.topics: AWS IoT Core topic rules and the subscription trie."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iot_tui.iotcore import topics
from iot_tui.iotcore.topics import (
    TopicError,
    TopicTrie,
    basic_ingest_rule,
    is_reserved,
    matches,
    presence_topic,
    reserved_publish_allowed,
    reserved_subscribe_allowed,
    split_shared,
    subscription_event_topic,
    validate_topic_filter,
    validate_topic_name,
)


def test_limits_match_aws_quotas() -> None:
    assert topics.MAX_TOPIC_BYTES == 256
    assert topics.MAX_SLASHES == 7
    assert topics.MAX_PAYLOAD_BYTES == 131072
    assert topics.MAX_CLIENT_ID_BYTES == 128
    assert topics.MAX_FILTERS_PER_SUBSCRIBE == 8
    assert topics.MAX_SUBSCRIPTIONS_PER_CONNECTION == 50
    assert topics.MAX_INFLIGHT_QOS1 == 100


# ---------------------------------------------------------------- topic names


@pytest.mark.parametrize(
    "topic",
    [
        "a",
        "sensor/temperature/room1",
        "/",
        "a//b",
        "sensor/",
        "$aws/things/t1/shadow/update",
        "a/b/c/d/e/f/g/h",  # exactly 7 slashes
        "x" * 256,
        "é" * 128,  # 256 bytes of UTF-8
        "$aws/rules/myRule/" + "/".join("abcdefgh"),  # 7 slashes after the prefix
        "$aws/rules/r/" + "x" * 256,  # prefix not counted toward the 256 bytes
        "with space/and-ünïcödé",
    ],
)
def test_valid_topic_names(topic: str) -> None:
    validate_topic_name(topic)


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("", "empty"),
        ("a/+/b", "wildcard"),
        ("a/#", "wildcard"),
        ("a+b", "wildcard"),
        ("a\x00b", "NUL"),
        ("x" * 257, "257 bytes"),
        ("é" * 129, "258 bytes"),
        ("a/b/c/d/e/f/g/h/i", "8 forward slashes"),
        ("/" * 8, "8 forward slashes"),
        ("$aws/rules/r/" + "/".join("abcdefghi"), "8 forward slashes"),
        ("$aws/rules/r/" + "x" * 257, "257 bytes"),
        ("bad\ud800surrogate", "UTF-8"),
    ],
)
def test_invalid_topic_names(topic: str, fragment: str) -> None:
    with pytest.raises(TopicError) as info:
        validate_topic_name(topic)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)
    assert info.value.topic == topic


def test_topic_error_message_names_topic_and_limit() -> None:
    with pytest.raises(TopicError) as info:
        validate_topic_name("a/b/c/d/e/f/g/h/i")
    assert str(info.value) == (
        "Topic name has 8 forward slashes; AWS IoT Core allows at most 7: 'a/b/c/d/e/f/g/h/i'"
    )
    assert info.value.reason.startswith("Topic name has 8")


# -------------------------------------------------------------- topic filters


@pytest.mark.parametrize(
    "topic_filter",
    [
        "#",
        "+",
        "a/+/b",
        "a/#",
        "+/+/#",
        "a//b",
        "/",
        "/+",
        "$aws/events/presence/connected/+",
        "a/b/c/d/e/f/g/#",  # 7 slashes
        "$share/group/a/#",
        "$share/g/" + "/".join("abcdefgh"),  # 7 slashes after the share prefix
        "$share/g/#",
        "x" * 256,
    ],
)
def test_valid_topic_filters(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize(
    ("topic_filter", "fragment"),
    [
        ("", "empty"),
        ("a/#/b", "last level"),
        ("#/a", "last level"),
        ("a#", "whole level"),
        ("a/b#", "whole level"),
        ("##", "whole level"),
        ("a+", "whole level"),
        ("+a/b", "whole level"),
        ("a/++", "whole level"),
        ("a\x00", "NUL"),
        ("x" * 257, "257 bytes"),
        ("a/b/c/d/e/f/g/h/#", "8 forward slashes"),
        ("$share/g", "$share/<name>/<filter>"),
        ("$share//a", "name must not be empty"),
        ("$share/g+/a", "must not contain"),
        ("$share/g#/a", "must not contain"),
        ("$share/g/", "no topic filter"),
        ("$share/g/a/#/b", "last level"),
        ("$share/g/" + "/".join("abcdefghi"), "8 forward slashes"),
    ],
)
def test_invalid_topic_filters(topic_filter: str, fragment: str) -> None:
    with pytest.raises(TopicError) as info:
        validate_topic_filter(topic_filter)
    assert fragment in str(info.value)


# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [
        ("$share/g1/sensor/#", ("g1", "sensor/#")),
        ("$share/g1/#", ("g1", "#")),
        ("$share/g1/", ("g1", "")),
        ("$share/g1", (None, "$share/g1")),
        ("sensor/#", (None, "sensor/#")),
        ("$SHARE/g/a", (None, "$SHARE/g/a")),
        ("share/g/a", (None, "share/g/a")),
    ],
)
def test_split_shared(topic_filter: str, expected: tuple[str | None, str]) -> None:
    assert split_shared(topic_filter) == expected


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (
            "$aws/rules/BuildingManager/Buildings/B5/Floor2",
            ("BuildingManager", "Buildings/B5/Floor2"),
        ),
        ("$aws/rules/r/t", ("r", "t")),
        ("$aws/rules/r", ("r", "")),
        ("$aws/rules/r/", ("r", "")),
        ("$aws/rules/", None),
        ("$aws/rules//x", None),
        ("$aws/things/t/shadow/update", None),
        ("aws/rules/r/t", None),
    ],
)
def test_basic_ingest_rule(topic: str, expected: tuple[str, str] | None) -> None:
    assert basic_ingest_rule(topic) == expected


def test_reserved_topic_helpers() -> None:
    assert is_reserved("$aws/x")
    assert not is_reserved("aws/x")
    assert presence_topic("connected", "dev1") == "$aws/events/presence/connected/dev1"
    assert presence_topic("disconnected", "d") == "$aws/events/presence/disconnected/d"
    assert subscription_event_topic("subscribed", "c") == "$aws/events/subscriptions/subscribed/c"
    assert (
        subscription_event_topic("unsubscribed", "c") == "$aws/events/subscriptions/unsubscribed/c"
    )
    with pytest.raises(ValueError):
        presence_topic("subscribed", "c")
    with pytest.raises(ValueError):
        subscription_event_topic("connected", "c")


@pytest.mark.parametrize(
    ("topic", "allowed"),
    [
        ("plain/topic", True),
        ("$aws/rules/r/a/b", True),
        ("$aws/rules/r", True),
        ("$aws/things/t1/shadow/update", True),
        ("$aws/things/t1/shadow/get", True),
        ("$aws/things/t1/shadow/delete", True),
        ("$aws/things/t1/shadow/name/s1/update", True),
        ("$aws/things/t1/shadow/update/accepted", False),
        ("$aws/things/t1/shadow/update/delta", False),
        ("$aws/things/t1/shadow/name/s1/update/documents", False),
        ("$aws/things/t1/jobs/get", True),
        ("$aws/things/t1/jobs/start-next", True),
        ("$aws/things/t1/jobs/job-1/update", True),
        ("$aws/things/t1/jobs/notify", False),
        ("$aws/things/t1/defender/metrics/json", True),
        ("$aws/things/t1/defender/metrics/xml", False),
        ("$aws/certificates/create/json", True),
        ("$aws/certificates/create-from-csr/cbor", True),
        ("$aws/provisioning-templates/tpl/provision/json", True),
        ("$aws/events/presence/connected/c1", False),
        ("$SYS/broker/load", False),
        ("$foo", False),
    ],
)
def test_reserved_publish_allowed(topic: str, allowed: bool) -> None:
    assert reserved_publish_allowed(topic) is allowed


@pytest.mark.parametrize(
    ("topic_filter", "allowed"),
    [
        ("a/#", True),
        ("#", True),
        ("$aws/events/presence/connected/+", True),
        ("$aws/things/t1/shadow/update/delta", True),
        ("$aws/rules/r/#", False),
        ("$aws/rules/r/t", False),
        ("$share/g/$aws/rules/r/t", False),
        ("$share/g/a/b", True),
        ("$SYS/#", False),
    ],
)
def test_reserved_subscribe_allowed(topic_filter: str, allowed: bool) -> None:
    assert reserved_subscribe_allowed(topic_filter) is allowed


# ------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        # AWS: "sensor/#" matches "sensor/" and below, but not "sensor" itself.
        ("sensor/#", "sensor", False),
        ("sensor/#", "sensor/", True),
        ("sensor/#", "sensor/temperature", True),
        ("sensor/#", "sensor/temperature/room1", True),
        ("sensor/#", "sensorx", False),
        ("sensor/+", "sensor", False),
        ("sensor/+", "sensor/", True),
        ("sensor/+", "sensor/a", True),
        ("sensor/+", "sensor/a/b", False),
        ("sensor/+/room1", "sensor/temperature/room1", True),
        ("sensor/+/room1", "sensor/temperature/room2", False),
        ("+", "a", True),
        ("+", "", True),
        ("+", "/a", False),
        ("+/+", "/a", True),
        ("/+", "/a", True),
        ("#", "a", True),
        ("#", "a/b/c", True),
        ("#", "/", True),
        ("a/b", "a/b", True),
        ("a/b", "A/b", False),
        ("a/b", "a/b/", False),
        ("a/b/", "a/b", False),
        ("a//b", "a//b", True),
        ("a/+/b", "a//b", True),
        # Wildcards at the first level never match "$" topics (MQTT 4.7.2).
        ("#", "$aws/events/presence/connected/c", False),
        ("+/events/#", "$aws/events/x", False),
        ("+", "$x", False),
        ("$aws/#", "$aws/events/x", True),
        ("$aws/+/x", "$aws/events/x", True),
        ("$aws/things/+/shadow/update", "$aws/things/t1/shadow/update", True),
        ("a/#", "a/$x", True),
        # Shared subscriptions match like their real filter.
        ("$share/g/sensor/+", "sensor/a", True),
        ("$share/g/sensor/+", "$share/g/sensor/a", False),
        ("$share/g/#", "$aws/x", False),
    ],
)
def test_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


# ------------------------------------------------------------------------ trie


def test_trie_add_match_remove() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a/#", "hash")
    trie.add("a/+", "plus")
    trie.add("+/b", "first-plus")
    trie.add("a/b", "exact")
    trie.add("#", "all")
    trie.add("$share/g/a/b", "shared")
    assert len(trie) == 6
    assert sorted(trie.match("a/b")) == ["all", "exact", "first-plus", "hash", "plus", "shared"]
    assert sorted(trie.match("a")) == ["all"]
    assert sorted(trie.match("a/")) == ["all", "hash", "plus"]
    assert sorted(trie.match("a/b/c")) == ["all", "hash"]
    assert trie.match("$a/b") == []

    assert trie.remove("a/#", "hash") is True
    assert trie.remove("a/#", "hash") is False
    assert trie.remove("a/#", "other") is False
    assert trie.remove("never/added", "x") is False
    assert len(trie) == 5
    assert sorted(trie.match("a/b/c")) == ["all"]


def test_trie_same_pair_is_stored_once_but_filters_count_separately() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a/b", "c1")
    trie.add("a/b", "c1")
    assert len(trie) == 1
    trie.add("a/+", "c1")
    trie.add("$share/g/a/b", "c1")
    assert len(trie) == 3
    assert Counter(trie.match("a/b")) == Counter({"c1": 3})
    assert sorted(trie.match_items("a/b")) == [("$share/g/a/b", "c1"), ("a/+", "c1"), ("a/b", "c1")]
    # Removing the plain filter keeps the shared one (they share a node).
    assert trie.remove("a/b", "c1")
    assert sorted(trie.match_items("a/b")) == [("$share/g/a/b", "c1"), ("a/+", "c1")]


def test_trie_rejects_invalid_filters() -> None:
    trie: TopicTrie[int] = TopicTrie()
    for bad in ("", "a/#/b", "a+", "$share/g"):
        with pytest.raises(TopicError):
            trie.add(bad, 1)
    assert len(trie) == 0


def test_trie_prunes_empty_levels() -> None:
    trie: TopicTrie[int] = TopicTrie()
    trie.add("a/b/c/d", 1)
    trie.add("a/+/#", 2)
    trie.add("a/b", 3)
    trie.remove("a/b/c/d", 1)
    trie.remove("a/+/#", 2)
    assert list(trie._root.children) == ["a"]
    assert trie._root.children["a"].plus is None
    assert list(trie._root.children["a"].children["b"].children) == []
    trie.remove("a/b", 3)
    assert trie._root.empty()
    assert list(trie.items()) == []


def test_trie_items_lists_everything() -> None:
    trie: TopicTrie[int] = TopicTrie()
    pairs = {("a/#", 1), ("+", 2), ("#", 3), ("$share/x/a/+", 4), ("a/b", 5)}
    for f, v in pairs:
        trie.add(f, v)
    assert set(trie.items()) == pairs


# ------------------------------------------------------- hypothesis properties

_levels = st.sampled_from(["a", "b", "ab", "", "$s", "$aws", "x y"])
_topics = st.lists(_levels, min_size=1, max_size=6).map("/".join)


@st.composite
def _filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.sampled_from(["a", "b", "ab", "", "$s", "$aws", "+"]), max_size=5))
    if draw(st.booleans()) or not levels:
        levels.append("#")
    topic_filter = "/".join(levels) or "+"  # [""] would be the empty filter
    if draw(st.integers(0, 4)) == 0:
        topic_filter = f"$share/{draw(st.sampled_from(['g1', 'g2']))}/{topic_filter}"
    return topic_filter


@settings(max_examples=150, deadline=None)
@given(
    filters=st.lists(_filters(), max_size=25),
    probes=st.lists(_topics, min_size=1, max_size=10),
    removals=st.sets(st.integers(0, 24)),
)
def test_trie_agrees_with_brute_force(
    filters: list[str], probes: list[str], removals: set[int]
) -> None:
    trie: TopicTrie[int] = TopicTrie()
    live = dict(enumerate(filters))
    for value, topic_filter in live.items():
        trie.add(topic_filter, value)
    for value in removals:
        if value in live:
            assert trie.remove(live.pop(value), value)
    assert len(trie) == len(live)
    for topic in probes:
        expected = Counter(v for v, f in live.items() if matches(f, topic))
        assert Counter(trie.match(topic)) == expected, topic


@given(_topics)
def test_topic_matches_itself_and_hash(topic: str) -> None:
    assert matches(topic, topic)
    assert matches("#", topic) is (not topic.startswith("$"))


@given(_topics, _topics)
def test_hash_suffix_matches_exactly_the_deeper_topics(prefix: str, rest: str) -> None:
    topic_filter = prefix + "/#"
    assert matches(topic_filter, prefix + "/" + rest)
    assert not matches(topic_filter, prefix)
