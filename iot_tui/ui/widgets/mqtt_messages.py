"""How the MQTT pane shows things: the status line, a message's detail, the topic tree, diagnostics.

Pure rendering from `iot_tui/aws` records to Textual `Content`, so the view stays about wiring
and these read the same in tests and snapshots.
"""

from __future__ import annotations

import json

from rich.text import Text
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Tree

from iot_tui.aws.core_log import CoreLogEntry
from iot_tui.aws.json_diff import diff
from iot_tui.aws.mqtt import MqttStats
from iot_tui.aws.mqtt_diagnose import Step
from iot_tui.aws.mqtt_log import LoggedMessage, TopicNode, iso_time
from iot_tui.aws.mqtt_payload import describe_payload
from iot_tui.ui.widgets.json_diff import render_changes

STATE_STYLES = {"connected": "bold $success", "connecting": "bold $warning", "reconnecting": "bold $warning",
                "disconnected": "bold $error"}


def clock_time(timestamp: float) -> str:
    """HH:MM:SS.mmm (UTC) for the log's time column."""
    return iso_time(timestamp)[11:23]


def render_status(stats: MqttStats | None, note: str = "") -> Content:
    """state · endpoint · client id · protocol · TLS · RTT · in/out, then the last error or note."""
    if stats is None:
        return Content.assemble(("disconnected", STATE_STYLES["disconnected"]), "  ", (note or "not connected", "dim"))
    rtt = f"{stats.rtt_ms:.0f} ms" if stats.rtt_ms is not None else "-"
    parts: list[str | tuple[str, str]] = [
        (stats.state, STATE_STYLES.get(stats.state, "bold")),
        f"  {stats.endpoint}  {stats.client_id}  MQTT {stats.protocol} ({stats.auth})"
        f"  TLS {stats.tls_version or '?'}  RTT {rtt}  in {stats.messages_in} out {stats.messages_out}",
    ]
    if stats.reconnects:
        parts.append(f"  reconnects {stats.reconnects}")
    if note or stats.last_error:
        parts.append(("  " + (note or stats.last_error or ""), "$error" if stats.last_error and not note else "dim"))
    return Content.assemble(*parts)


def short_payload(entry: LoggedMessage, width: int = 60) -> str:
    """One line of the payload; control bytes would garble the terminal, so binary is only sized."""
    text = entry.text
    line = text.replace("\n", " ").replace("\r", " ").replace("\t", " ") if text is not None else None
    if line is None or not line.isprintable():
        return f"<{entry.size} bytes binary>"
    return line[:width]


def render_detail(entry: LoggedMessage, previous: LoggedMessage | None) -> Content:
    """Topic, QoS, retain, time, size, properties, the payload pretty (or hex), and the diff with the previous."""
    message = entry.message
    view = describe_payload(message.payload)
    parts: list[str | tuple[str, str]] = [
        (message.topic, "bold"), "\n",
        f"QoS {message.qos}  retain {str(message.retain).lower()}  {iso_time(message.time)}  "
        f"{entry.size} bytes  {view.kind}  #{entry.seq}\n",
    ]
    if message.properties:
        parts += [("properties ", "dim"), json.dumps(message.properties, ensure_ascii=False), "\n"]
    parts += ["\n", view.text, "\n\n"]
    if previous is None:
        parts.append(("first message on this topic in the buffer", "dim italic"))
        return Content.assemble(*parts)
    if entry.is_json and previous.is_json:
        return Content.assemble(*parts) + render_changes(diff(previous.json, entry.json),
                                                          f"changes since #{previous.seq}")
    same = "same payload" if previous.message.payload == message.payload else "payload differs"
    parts.append((f"previous #{previous.seq}: {same}", "dim"))
    return Content.assemble(*parts)


def render_diagnosis(steps: list[Step], core_log: list[CoreLogEntry] | None) -> Content:
    """The steps, then (local core only) what the core logged about this client."""
    if core_log is None:
        return render_steps(steps)
    return Content.assemble(render_steps(steps), "\n\n", render_core_log(core_log))


def render_core_log(entries: list[CoreLogEntry]) -> Content:
    """The core's journal for this client, as AWS IoT logs name events (eventType, status)."""
    parts: list[str | tuple[str, str]] = [("Local core log for this client", "bold"), "\n"]
    if not entries:
        parts.append(("  nothing logged for this client id or certificate yet", "dim"))
    for entry in entries:
        style = "$success" if entry.status == "Success" else "$error" if entry.level != "INFO" else "$warning"
        parts += [(f"  {clock_time(entry.time)} ", "dim"), (f"{entry.event_type} {entry.status}", style),
                  f"  {entry.message}"]
        if not entry.attributed:
            parts.append((f"  (from {entry.peer}, before it named itself: may be another client)", "dim"))
        parts.append("\n")
    return Content.assemble(*parts).rstrip()


def render_steps(steps: list[Step]) -> Content:
    """Each step with its result; failures with the likely cause and the fix."""
    parts: list[str | tuple[str, str]] = []
    for step in steps:
        mark, style = {True: ("✓", "$success"), False: ("✗", "bold $error"), None: ("-", "dim")}[step.ok]
        parts += [(f"{mark} {step.name}", style), f"  {step.detail}"]
        if step.ms is not None and step.ok is not None:
            parts.append((f"  {step.ms:.0f} ms", "dim"))
        parts.append("\n")
        if step.cause:
            parts += [("    cause ", "bold"), step.cause, "\n"]
        if step.fix:
            parts += [("    fix   ", "bold"), step.fix, "\n"]
    return Content.assemble(*parts).rstrip()


class LiveLine(Widget):
    """A one-line readout redrawn in place many times a second: an update never asks for a new layout."""

    DEFAULT_CSS = "LiveLine { height: 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._content = Content("")

    def show(self, content: Content | str) -> None:
        content = Content(content) if isinstance(content, str) else content
        if content != self._content:
            self._content = content
            self.refresh()

    def render(self) -> Content:
        return self._content


class TopicTreeView(Tree[str]):
    """Topic levels with message counts; leaves show their last value. Rebuilt from `MessageLog.topic_tree`."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("topics", id=id)
        self.show_root = False

    def show(self, root: TopicNode) -> None:
        self.clear()
        self._add(self.root, root)
        self.root.expand_all()

    def _add(self, parent: object, node: TopicNode) -> None:
        for child in node.children.values():
            label = f"{child.name or '(empty)'} ({child.count})"
            if child.last is not None:
                label += f"  {short_payload(child.last, 40)}"
            tree_node = parent.add(Text(label), data=child.topic)  # type: ignore[attr-defined]
            self._add(tree_node, child)
