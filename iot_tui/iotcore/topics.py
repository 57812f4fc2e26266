"""AWS IoT Core MQTT topic rules: validation, matching and a subscription trie.

Pure logic, standard library only. The local broker, the rules engine and the UI
all need the same answers to "is this a legal topic?" and "does this filter match
this topic?", so they live here once.

AWS specifics (MQTT topics, Reserved topics, Basic Ingest, quotas pages):
- topic names and filters: at most 256 bytes of UTF-8 and at most 7 forward
  slashes; the Basic Ingest prefix ``$aws/rules/<rule>/`` counts toward neither;
- ``sensor/#`` matches ``sensor/`` but not ``sensor`` (stricter than MQTT);
- filters starting with ``+`` or ``#`` never match topics starting with ``$``;
- topics starting with ``$`` are reserved: clients may publish and subscribe
  only where AWS allows (see ``reserved_publish_allowed``).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = [
    "BASIC_INGEST_PREFIX",
    "MAX_CLIENT_ID_BYTES",
    "MAX_FILTERS_PER_SUBSCRIBE",
    "MAX_INFLIGHT_QOS1",
    "MAX_PAYLOAD_BYTES",
    "MAX_SLASHES",
    "MAX_SUBSCRIPTIONS_PER_CONNECTION",
    "MAX_TOPIC_BYTES",
    "SHARE_PREFIX",
    "TopicError",
    "TopicTrie",
    "basic_ingest_rule",
    "is_reserved",
    "matches",
    "presence_topic",
    "reserved_publish_allowed",
    "reserved_subscribe_allowed",
    "split_shared",
    "subscription_event_topic",
    "validate_topic_filter",
    "validate_topic_name",
]

MAX_TOPIC_BYTES = 256
MAX_SLASHES = 7
MAX_PAYLOAD_BYTES = 128 * 1024
# MQTT 5's Message Expiry Interval is a four-byte integer (seconds).
MAX_MESSAGE_EXPIRY = 2**32 - 1
MAX_CLIENT_ID_BYTES = 128
MAX_FILTERS_PER_SUBSCRIBE = 8
MAX_SUBSCRIPTIONS_PER_CONNECTION = 50
MAX_INFLIGHT_QOS1 = 100

BASIC_INGEST_PREFIX = "$aws/rules/"
SHARE_PREFIX = "$share/"


class TopicError(ValueError):
    """A topic name or filter that AWS IoT Core would refuse.

    ``topic`` is the offending string, ``reason`` the human explanation.
    """

    def __init__(self, reason: str, topic: str = "") -> None:
        self.reason = reason
        self.topic = topic
        super().__init__(f"{reason}: {topic!r}" if topic else reason)


# --------------------------------------------------------------------------- helpers


def split_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split ``$share/<name>/<filter>`` into (name, filter); (None, filter) otherwise.

    Does not validate: ``$share/x`` (no filter part) comes back as (None, "$share/x")
    so that validation can report it.
    """
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    name, sep, real = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not sep:
        return None, topic_filter
    return name, real


def basic_ingest_rule(topic: str) -> tuple[str, str] | None:
    """Return (rule name, rest topic) for ``$aws/rules/<rule>[/<rest>]``, else None.

    The rest is what the rule's SQL sees as the topic (``topic(n)`` skips the prefix).
    """
    if not topic.startswith(BASIC_INGEST_PREFIX):
        return None
    rule, _, rest = topic[len(BASIC_INGEST_PREFIX) :].partition("/")
    if not rule:
        return None
    return rule, rest


def is_reserved(name: str) -> bool:
    """Topics and filters starting with ``$`` belong to AWS IoT Core."""
    return name.startswith("$")


def presence_topic(event: str, client_id: str) -> str:
    """``$aws/events/presence/<connected|disconnected>/<clientId>``."""
    if event not in ("connected", "disconnected"):
        raise ValueError(f"presence event must be 'connected' or 'disconnected', not {event!r}")
    return f"$aws/events/presence/{event}/{client_id}"


def subscription_event_topic(event: str, client_id: str) -> str:
    """``$aws/events/subscriptions/<subscribed|unsubscribed>/<clientId>``."""
    if event not in ("subscribed", "unsubscribed"):
        raise ValueError(
            f"subscription event must be 'subscribed' or 'unsubscribed', not {event!r}"
        )
    return f"$aws/events/subscriptions/{event}/{client_id}"


_LEVEL = r"[^/]+"
_FORMAT = r"(?:json|cbor)"
# Reserved topics a *client* may publish to (Reserved topics page): Basic Ingest,
# Device Shadow requests, Jobs requests, Device Defender metrics, fleet provisioning
# and MQTT-based file delivery. Everything else under "$" is AWS's to publish.
_RESERVED_PUBLISH = re.compile(
    "|".join(
        [
            rf"\$aws/rules/{_LEVEL}(?:/.*)?",
            rf"\$aws/things/{_LEVEL}/shadow(?:/name/{_LEVEL})?/(?:get|update|delete)",
            rf"\$aws/things/{_LEVEL}/jobs/(?:get|start-next)",
            rf"\$aws/things/{_LEVEL}/jobs/{_LEVEL}/(?:get|update)",
            rf"\$aws/things/{_LEVEL}/defender/metrics/{_FORMAT}",
            rf"\$aws/things/{_LEVEL}/streams/{_LEVEL}/(?:get|describe)/{_FORMAT}",
            rf"\$aws/certificates/create(?:-from-csr)?/{_FORMAT}",
            rf"\$aws/provisioning-templates/{_LEVEL}/provision/{_FORMAT}",
        ]
    ),
    re.DOTALL,
)


def reserved_publish_allowed(topic: str) -> bool:
    """May a client PUBLISH to this topic? Always true for non-reserved topics.

    AWS terminates the connection of a client publishing to any other ``$`` topic.
    """
    if not topic.startswith("$"):
        return True
    return _RESERVED_PUBLISH.fullmatch(topic) is not None


def reserved_subscribe_allowed(topic_filter: str) -> bool:
    """May a client SUBSCRIBE to this filter? Always true for non-reserved filters.

    AWS lets clients subscribe under ``$aws/`` (events, shadow and job replies, ...)
    but never to Basic Ingest topics, which bypass the broker; other ``$`` filters
    are not supported. Shared subscriptions are judged by their real filter.
    """
    _, real = split_shared(topic_filter)
    if not real.startswith("$"):
        return True
    if real.startswith(BASIC_INGEST_PREFIX):
        return False
    return real.startswith("$aws/")


# ----------------------------------------------------------------------- validation


def _encoded_length(text: str, what: str) -> int:
    """UTF-8 byte length; lone surrogates cannot be sent in MQTT, so refuse them."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise TopicError(f"{what} is not valid UTF-8", text) from None


def _check_limits(text: str, what: str, counted: str) -> None:
    """Byte and slash quotas; ``counted`` is the part AWS counts (prefix excluded)."""
    if "\x00" in text:
        raise TopicError(f"{what} must not contain the NUL character (U+0000)", text)
    _encoded_length(text, what)
    size = _encoded_length(counted, what)
    if size > MAX_TOPIC_BYTES:
        raise TopicError(
            f"{what} is {size} bytes of UTF-8; AWS IoT Core allows at most {MAX_TOPIC_BYTES}",
            text,
        )
    slashes = counted.count("/")
    if slashes > MAX_SLASHES:
        raise TopicError(
            f"{what} has {slashes} forward slashes; AWS IoT Core allows at most {MAX_SLASHES}",
            text,
        )


def _counted_part(topic: str) -> str:
    """The part of a topic AWS counts toward the quotas (Basic Ingest prefix excluded)."""
    ingest = basic_ingest_rule(topic)
    return ingest[1] if ingest is not None else topic


def validate_topic_name(topic: str) -> None:
    """Raise TopicError unless ``topic`` is a legal PUBLISH topic name.

    Checks syntax and quotas only; whether a client may publish to a reserved
    ``$`` topic is ``reserved_publish_allowed``.
    """
    if not topic:
        raise TopicError("Topic name must not be empty")
    if "+" in topic or "#" in topic:
        raise TopicError("Topic name must not contain the wildcard characters '+' or '#'", topic)
    _check_limits(topic, "Topic name", _counted_part(topic))


def _check_filter_levels(topic_filter: str, original: str) -> None:
    """``+`` must be a whole level; ``#`` must be a whole level and the last one."""
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if level in ("+", "#"):
            if level == "#" and i != last:
                raise TopicError(
                    "'#' is allowed only as the last level of a topic filter", original
                )
            continue
        if "+" in level:
            raise TopicError("'+' must occupy a whole level of a topic filter", original)
        if "#" in level:
            raise TopicError("'#' must occupy a whole level of a topic filter", original)


def validate_topic_filter(topic_filter: str) -> None:
    """Raise TopicError unless ``topic_filter`` is a legal SUBSCRIBE topic filter.

    Accepts shared subscriptions ``$share/<name>/<filter>``: the name must be
    non-empty without ``+``/``#``, the filter is validated on its own and the
    ``$share/<name>/`` prefix does not count toward the quotas.
    """
    if not topic_filter:
        raise TopicError("Topic filter must not be empty")
    share, real = split_shared(topic_filter)
    if share is None and topic_filter.startswith(SHARE_PREFIX):
        raise TopicError("Shared subscription must be '$share/<name>/<filter>'", topic_filter)
    if share is not None:
        if not share:
            raise TopicError("Shared subscription name must not be empty", topic_filter)
        if "+" in share or "#" in share:
            raise TopicError("Shared subscription name must not contain '+' or '#'", topic_filter)
        if not real:
            raise TopicError("Shared subscription has no topic filter after its name", topic_filter)
    _check_filter_levels(real, topic_filter)
    _check_limits(topic_filter, "Topic filter", real)


# ------------------------------------------------------------------------- matching


def matches(topic_filter: str, topic: str) -> bool:
    """Does ``topic_filter`` match ``topic`` under MQTT rules as AWS applies them?

    ``#`` needs at least one more level (``a/#`` matches ``a/`` and ``a/b`` but not
    ``a``); wildcards in the first level do not match ``$`` topics. A shared
    filter ``$share/<name>/<f>`` matches like ``f``.
    """
    share, real = split_shared(topic_filter)
    if share is not None:
        topic_filter = real
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    if topic.startswith("$") and f_levels[0] in ("+", "#"):
        return False
    n_topic = len(t_levels)
    for i, level in enumerate(f_levels):
        if level == "#":
            return i < n_topic
        if i >= n_topic:
            return False
        if level != "+" and level != t_levels[i]:
            return False
    return len(f_levels) == n_topic


# ----------------------------------------------------------------------------- trie

V = TypeVar("V", bound=Hashable)


def _multi_level(real: str) -> bool:
    """Does the (non-shared) filter end with a ``#`` level?"""
    return real == "#" or real.endswith("/#")


class _Node(Generic[V]):
    """One topic level: literal children, a ``+`` child, and values ending here."""

    __slots__ = ("children", "hash_values", "plus", "values")

    def __init__(self) -> None:
        self.children: dict[str, _Node[V]] = {}
        self.plus: _Node[V] | None = None
        # Keyed by (original filter, value): the same value may subscribe with
        # several filters (say ``a/b`` and ``$share/g/a/b``) and each counts.
        self.values: dict[tuple[str, V], None] = {}
        self.hash_values: dict[tuple[str, V], None] = {}

    def empty(self) -> bool:
        return not (self.children or self.plus or self.values or self.hash_values)


class TopicTrie(Generic[V]):
    """Subscription index: which (filter, value) pairs match a topic, fast.

    Gives exactly the answers of ``matches`` (including shared filters, the
    ``$`` rule and AWS's ``#`` rule) but walks one trie level per topic level
    instead of testing every filter. Values must be hashable; adding the same
    (filter, value) twice stores it once.
    """

    def __init__(self) -> None:
        self._root: _Node[V] = _Node()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def _path(self, real: str, create: bool) -> list[_Node[V]] | None:
        """Nodes from the root to the node for ``real`` (without a final ``#``)."""
        levels = real.split("/")
        if _multi_level(real):
            levels.pop()
        node = self._root
        path = [node]
        for level in levels:
            if level == "+":
                nxt = node.plus
                if nxt is None and create:
                    nxt = node.plus = _Node()
            else:
                nxt = node.children.get(level)
                if nxt is None and create:
                    nxt = node.children[level] = _Node()
            if nxt is None:
                return None
            node = nxt
            path.append(node)
        return path

    def add(self, topic_filter: str, value: V) -> None:
        """Index ``value`` under ``topic_filter``; raises TopicError for bad filters."""
        validate_topic_filter(topic_filter)
        _, real = split_shared(topic_filter)
        path = self._path(real, create=True)
        assert path is not None
        bucket = path[-1].hash_values if _multi_level(real) else path[-1].values
        key = (topic_filter, value)
        if key not in bucket:
            bucket[key] = None
            self._size += 1

    def remove(self, topic_filter: str, value: V) -> bool:
        """Forget ``value`` under ``topic_filter``; False if it was not there."""
        _, real = split_shared(topic_filter)
        path = self._path(real, create=False)
        if path is None:
            return False
        bucket = path[-1].hash_values if _multi_level(real) else path[-1].values
        key = (topic_filter, value)
        if key not in bucket:
            return False
        del bucket[key]
        self._size -= 1
        self._prune(real, path)
        return True

    def _prune(self, real: str, path: list[_Node[V]]) -> None:
        """Drop nodes left empty so a long-running broker does not leak levels."""
        levels = real.split("/")
        if _multi_level(real):
            levels.pop()
        for depth in range(len(levels), 0, -1):
            node = path[depth]
            if not node.empty():
                return
            parent = path[depth - 1]
            level = levels[depth - 1]
            if level == "+":
                parent.plus = None
            else:
                del parent.children[level]

    def match_items(self, topic: str) -> list[tuple[str, V]]:
        """(original filter, value) for every subscription matching ``topic``."""
        levels = topic.split("/")
        n = len(levels)
        dollar = topic.startswith("$")
        out: list[tuple[str, V]] = []
        stack: list[tuple[_Node[V], int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            if i == n:
                out.extend(node.values)
                continue
            if not (dollar and i == 0):
                if node.hash_values:
                    out.extend(node.hash_values)
                if node.plus is not None:
                    stack.append((node.plus, i + 1))
            child = node.children.get(levels[i])
            if child is not None:
                stack.append((child, i + 1))
        return out

    def match(self, topic: str) -> list[V]:
        """Values of every subscription matching ``topic`` (one per matching filter)."""
        return [value for _, value in self.match_items(topic)]

    def items(self) -> Iterator[tuple[str, V]]:
        """Every stored (filter, value) pair, in no particular order."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            yield from node.values
            yield from node.hash_values
            stack.extend(node.children.values())
            if node.plus is not None:
                stack.append(node.plus)
