"""The MQTT pane's message log: a bounded buffer that stays fast through a long, busy session.

Appends are O(1) (a deque with a maximum length, plus per-topic counters); views, filters, plots
and exports walk a snapshot lazily, so a flood of messages never waits on what the screen shows.
Pausing freezes the views at the last message seen while messages keep being recorded, so nothing
is lost and resuming shows what arrived meanwhile. The log is not tied to a connection: the UI
appends the `MessageReceived` events it drains from its queue, from any thread (appends take a lock).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from iot_tui.aws.mqtt import MessageReceived
from iot_tui.iotcore.topics import matches, validate_topic_filter

DEFAULT_CAPACITY = 10_000
_NOT_JSON = object()
_UNPARSED = object()
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(slots=True)
class LoggedMessage:
    """A received message with its place in the log; text and JSON are decoded once, on demand."""

    seq: int
    message: MessageReceived
    previous_seq: int | None
    _text: Any = _UNPARSED
    _json: Any = _UNPARSED

    @property
    def topic(self) -> str:
        return self.message.topic

    @property
    def time(self) -> float:
        return self.message.time

    @property
    def size(self) -> int:
        return len(self.message.payload)

    @property
    def text(self) -> str | None:
        """The payload as UTF-8 text, or None for binary payloads."""
        if self._text is _UNPARSED:
            try:
                self._text = self.message.payload.decode()
            except UnicodeDecodeError:
                self._text = None
        return self._text

    @property
    def is_json(self) -> bool:
        return self._parsed() is not _NOT_JSON

    @property
    def json(self) -> Any:
        """The payload parsed as JSON, or None when it is not JSON (check `is_json` for a JSON null)."""
        value = self._parsed()
        return None if value is _NOT_JSON else value

    def _parsed(self) -> Any:
        if self._json is _UNPARSED:
            text = self.text
            try:
                self._json = json.loads(text) if text is not None else _NOT_JSON
            except ValueError:
                self._json = _NOT_JSON
        return self._json


@dataclass
class TopicStats:
    topic: str
    count: int
    last: LoggedMessage


@dataclass
class TopicNode:
    """A level of the topic tree: `count` covers this topic and everything below it."""

    name: str
    topic: str
    count: int = 0
    last: LoggedMessage | None = None
    children: dict[str, TopicNode] = field(default_factory=dict)


class MessageLog:
    """Bounded buffer of received messages with views, filters, topic statistics and export."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._lock = threading.Lock()
        self._buffer: deque[LoggedMessage] = deque(maxlen=capacity)
        self._topics: dict[str, TopicStats] = {}
        self._next_seq = 1
        self._total = 0
        self._paused_at: int | None = None
        self.topic_filter: str | None = None
        self.text_filter: str | None = None
        self._count_cache: tuple[tuple, int] | None = None

    # -- recording --

    @property
    def capacity(self) -> int:
        return self._buffer.maxlen or 0

    def set_capacity(self, capacity: int) -> None:
        """Resize; shrinking drops the oldest messages."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        with self._lock:
            self._buffer = deque(self._buffer, maxlen=capacity)

    def append(self, message: MessageReceived) -> LoggedMessage:
        """Record one message (O(1))."""
        with self._lock:
            stats = self._topics.get(message.topic)
            entry = LoggedMessage(self._next_seq, message, stats.last.seq if stats else None)
            self._next_seq += 1
            self._total += 1
            self._buffer.append(entry)
            if stats is None:
                self._topics[message.topic] = TopicStats(message.topic, 1, entry)
            else:
                stats.count += 1
                stats.last = entry
            return entry

    def clear(self) -> None:
        """Forget every message and topic count (sequence numbers keep growing)."""
        with self._lock:
            self._buffer.clear()
            self._topics.clear()
            self._total = 0
            if self._paused_at is not None:
                self._paused_at = self._next_seq - 1

    def __len__(self) -> int:
        return len(self._buffer)

    @property
    def total(self) -> int:
        """Messages recorded since the start (or the last clear, counting those evicted)."""
        return self._total

    # -- pause --

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def pause(self) -> None:
        with self._lock:
            if self._paused_at is None:
                self._paused_at = self._next_seq - 1

    def resume(self) -> None:
        with self._lock:
            self._paused_at = None

    @property
    def pending(self) -> int:
        """Messages recorded since the pause, shown on resume."""
        if self._paused_at is None:
            return 0
        return self._next_seq - 1 - self._paused_at

    # -- filters and views --

    def set_filter(self, topic_filter: str | None = None, text: str | None = None) -> None:
        """Show only messages whose topic matches `topic_filter` (`+`, `#`) and whose topic or payload
        contains `text` (case-insensitive). Raises TopicError for an invalid filter."""
        if topic_filter:
            validate_topic_filter(topic_filter)
        self.topic_filter = topic_filter or None
        self.text_filter = text.lower() if text else None

    def matches(self, entry: LoggedMessage) -> bool:
        if self.topic_filter is not None and not matches(self.topic_filter, entry.topic):
            return False
        if self.text_filter is not None:
            needle = self.text_filter
            if needle not in entry.topic.lower() and needle not in (entry.text or "").lower():
                return False
        return True

    def _snapshot(self) -> list[LoggedMessage]:
        with self._lock:
            entries = list(self._buffer)
            limit = self._paused_at
        if limit is not None:
            while entries and entries[-1].seq > limit:
                entries.pop()
        return entries

    def view(self, newest_first: bool = True, filtered: bool = True) -> Iterator[LoggedMessage]:
        """The messages shown, lazily: newest first, or oldest first (follow mode scrolls to the end)."""
        entries = self._snapshot()
        ordered = reversed(entries) if newest_first else iter(entries)
        if not filtered or (self.topic_filter is None and self.text_filter is None):
            return ordered
        return (entry for entry in ordered if self.matches(entry))

    def page(self, start: int, count: int, newest_first: bool = True) -> list[LoggedMessage]:
        return list(islice(self.view(newest_first), start, start + count))

    def tail(self, count: int) -> list[LoggedMessage]:
        """Follow mode: the last `count` shown messages, oldest first."""
        return list(reversed(self.page(0, count, newest_first=True)))

    def count_view(self) -> int:
        """How many messages the filtered view holds (cached until the log or filter changes)."""
        with self._lock:
            first = self._buffer[0].seq if self._buffer else 0
            key = (self.topic_filter, self.text_filter, self._paused_at, first, self._next_seq)
        if self._count_cache is not None and self._count_cache[0] == key:
            return self._count_cache[1]
        count = sum(1 for _ in self.view())
        self._count_cache = (key, count)
        return count

    def get(self, seq: int) -> LoggedMessage | None:
        with self._lock:
            if not self._buffer:
                return None
            index = seq - self._buffer[0].seq
            if 0 <= index < len(self._buffer):
                return self._buffer[index]
            return None

    def previous(self, entry: LoggedMessage) -> LoggedMessage | None:
        """The message before `entry` on the same topic, for the diff (None once evicted)."""
        return self.get(entry.previous_seq) if entry.previous_seq is not None else None

    # -- topics --

    def topics(self) -> dict[str, TopicStats]:
        """Per-topic message counts and last message, over everything recorded since the last clear."""
        with self._lock:
            return dict(self._topics)

    def topic_tree(self) -> TopicNode:
        """The topics as a tree of levels (the root has name and topic ""), counts summed upwards."""
        root = TopicNode("", "")
        for topic, stats in sorted(self.topics().items()):
            node = root
            root.count += stats.count
            levels = topic.split("/")
            for depth, level in enumerate(levels):
                path = "/".join(levels[:depth + 1])
                node = node.children.setdefault(level, TopicNode(level, path))
                node.count += stats.count
            node.last = stats.last
        return root

    # -- numbers for the plot --

    @staticmethod
    def numeric_fields(entry: LoggedMessage) -> list[str]:
        """Paths (`a.b`, `list[0]`) of the numbers in a JSON payload, to pick one to plot."""
        return [path for path, _ in _numbers(entry.json, "")] if entry.is_json else []

    def series(self, path: str, topic_filter: str | None = None, limit: int | None = None) -> list[tuple[float, float]]:
        """(time, value) of a numeric JSON field across the buffer, oldest first; missing values skipped."""
        parts = _parse_path(path)
        points: list[tuple[float, float]] = []
        for entry in self.view(newest_first=True, filtered=False):
            if topic_filter is not None and not matches(topic_filter, entry.topic):
                continue
            if not entry.is_json:
                continue
            value = _lookup(entry.json, parts)
            if isinstance(value, int | float) and not isinstance(value, bool):
                points.append((entry.time, float(value)))
                if limit is not None and len(points) >= limit:
                    break
        points.reverse()
        return points

    # -- export --

    def export_ndjson(self, path: Path | str, filtered: bool = True) -> int:
        """Write the buffer (or the filtered view) oldest first, one JSON object a line; returns the count."""
        entries = list(self.view(newest_first=False, filtered=filtered))
        with _atomic_writer(Path(path)) as out:
            for entry in entries:
                out.write(json.dumps(_record(entry), ensure_ascii=False) + "\n")
        return len(entries)

    def export_csv(self, path: Path | str, filtered: bool = True) -> int:
        """The same as CSV: seq, time, topic, qos, retain, size, encoding, payload, properties."""
        entries = list(self.view(newest_first=False, filtered=filtered))
        with _atomic_writer(Path(path)) as out:
            writer = csv.writer(out)
            writer.writerow(["seq", "time", "topic", "qos", "retain", "size", "encoding", "payload", "properties"])
            for entry in entries:
                record = _record(entry)
                writer.writerow([record["seq"], record["time"], record["topic"], record["qos"],
                                 str(record["retain"]).lower(), record["size"], record["encoding"], record["payload"],
                                 json.dumps(record["properties"]) if record["properties"] else ""])
        return len(entries)


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _record(entry: LoggedMessage) -> dict[str, Any]:
    message = entry.message
    text = entry.text
    return {
        "seq": entry.seq,
        "time": iso_time(message.time),
        "topic": message.topic,
        "qos": message.qos,
        "retain": message.retain,
        "size": entry.size,
        "encoding": "utf-8" if text is not None else "base64",
        "payload": text if text is not None else base64.b64encode(message.payload).decode(),
        "properties": message.properties,
    }


@contextmanager
def _atomic_writer(path: Path) -> Iterator[TextIO]:
    """Write to a temporary file beside `path`, then rename: a failed export leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _numbers(value: Any, prefix: str) -> Iterator[tuple[str, float]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield prefix, value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from _numbers(child, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _numbers(child, f"{prefix}[{index}]")


def _parse_path(path: str) -> list[str | int]:
    return [key if key else int(index) for key, index in _PATH_PART.findall(path)]


def _lookup(value: Any, parts: list[str | int]) -> Any:
    for part in parts:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return None
        elif not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
