"""A shadow's desired, reported and delta side by side, differing keys marked, each key's metadata time.

Reusable: it only renders what it is given (`ShadowColumns.show(columns)`), so any screen holding a
shadow document can use it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from iot_tui.aws.json_diff import changed_paths
from iot_tui.aws.shadows import Columns

Path = tuple[str, ...]


def clock_time(epoch: float | None) -> str:
    """UTC time of day: metadata timestamps are epoch seconds, and the date rarely matters here."""
    return time.strftime("%H:%M:%S", time.gmtime(epoch)) if epoch is not None else "--:--:--"


def latest_timestamp(metadata: Any) -> int | None:
    """The newest per-key timestamp: when the shadow's state last changed (the document's own
    `timestamp` is the time of the answer, not of the last update)."""
    if isinstance(metadata, dict):
        if isinstance(metadata.get("timestamp"), int | float) and len(metadata) == 1:
            return int(metadata["timestamp"])
        found = [t for t in (latest_timestamp(v) for v in metadata.values()) if t is not None]
        return max(found, default=None)
    if isinstance(metadata, list):
        found = [t for t in (latest_timestamp(v) for v in metadata) if t is not None]
        return max(found, default=None)
    return None


def render_state(state: dict[str, Any], metadata: dict[str, Any], marked: set[Path], empty: str) -> Content:
    """One line per key, nested objects indented; marked keys in the warning colour, times after values."""
    if not state:
        return Content.styled(empty, "dim italic")
    parts: list[str | tuple[str, str]] = []

    def walk(node: dict[str, Any], meta: Any, path: Path, depth: int) -> None:
        for key, value in node.items():
            here = (*path, key)
            child_meta = meta.get(key) if isinstance(meta, dict) else None
            mark = here in marked
            parts.append("  " * depth)
            parts.append(("● ", "bold $warning") if mark else "  ")
            parts.append((key, "bold $warning" if mark else "bold"))
            if isinstance(value, dict) and value:
                parts.append(":\n")
                walk(value, child_meta, here, depth + 1)
                continue
            parts.append(": ")
            parts.append((json.dumps(value), "$warning" if mark else ""))
            stamp = latest_timestamp(child_meta)
            if stamp is not None:
                parts.append((f"  {clock_time(stamp)}", "dim"))
            parts.append("\n")

    walk(state, metadata, (), 0)
    return Content.assemble(*parts).rstrip()


class ShadowColumns(Horizontal):
    """Desired, reported, delta: keys where desired and reported differ are marked in both."""

    DEFAULT_CSS = """
    ShadowColumns { height: 1fr; }
    ShadowColumns > VerticalScroll { width: 1fr; border: round $primary; padding: 0 1; }
    ShadowColumns > VerticalScroll:focus-within { border: round $accent; }
    """

    def compose(self) -> ComposeResult:
        for section in ("desired", "reported", "delta"):
            with VerticalScroll(id=f"column-{section}"):
                yield Static("", id=f"column-{section}-body")

    def on_mount(self) -> None:
        for section in ("desired", "reported", "delta"):
            self.query_one(f"#column-{section}", VerticalScroll).border_title = section

    def show(self, columns: Columns) -> None:
        differing = changed_paths(columns.desired, columns.reported)
        metadata = columns.metadata
        sections = {
            "desired": (columns.desired, differing, "no desired state"),
            "reported": (columns.reported, differing, "no reported state"),
            "delta": (columns.delta, set(), "in sync: no delta"),
        }
        for section, (state, marked, empty) in sections.items():
            meta = metadata.get(section) or {}
            body = render_state(state, meta, marked, empty)
            self.query_one(f"#column-{section}-body", Static).update(body)
            self.query_one(f"#column-{section}", VerticalScroll).border_subtitle = (
                f"{len(state)} key{'s' if len(state) != 1 else ''}" if state else "")
