"""The API inspector: every AWS call of the session, its request, answer and what they mean.

Fed by `Inspector` listeners on worker threads; `post_message` is thread-safe, and calls are
drained by a timer so a burst (fleet setup makes 50+ calls) repaints once, not per call.
"""

from __future__ import annotations

import json
import queue
from collections import OrderedDict
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Label, Static

from iot_tui.aws.explain import explain
from iot_tui.aws.inspector import ApiCall, as_cli_command, as_json

if TYPE_CHECKING:
    from rich.syntax import Syntax


class ApiInspector(Vertical):
    DEFAULT_CSS = """
    ApiInspector { width: 60; border-left: vkey $primary; background: $surface; }
    ApiInspector #inspector-calls { height: 40%; }
    ApiInspector #inspector-detail { height: 1fr; padding: 0 1; }
    ApiInspector .inspector-title { background: $primary-muted; width: 100%; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "copy_cli", "Copy as CLI", id="inspector-copy-cli"),
        Binding("j", "copy_json", "Copy as JSON", id="inspector-copy-json"),
        Binding("x", "clear", "Clear", id="inspector-clear"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.calls: OrderedDict[int, ApiCall] = OrderedDict()
        self._pending: queue.SimpleQueue[ApiCall] = queue.SimpleQueue()
        self._follow = True

    def compose(self) -> ComposeResult:
        yield Label("API inspector", classes="inspector-title")
        yield DataTable(id="inspector-calls", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="inspector-detail"):
            yield Static("No calls yet: every AWS call of this session shows here.", id="inspector-body")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("#", key="id", width=4)
        table.add_column("Operation", key="op", width=32)
        table.add_column("St", key="status", width=4)
        table.add_column("ms", key="ms", width=7)
        self.set_interval(0.1, self._drain)

    def record(self, call: ApiCall) -> None:
        """Called by the inspector's listener on worker threads: only a queue put happens there."""
        self._pending.put(call)

    def show(self, calls: list[ApiCall]) -> None:
        """Record calls and render at once (at startup and in tests)."""
        for call in calls:
            self._pending.put(call)
        self._drain()

    def _drain(self) -> None:
        pending: dict[int, ApiCall] = {}
        while not self._pending.empty():
            call = self._pending.get_nowait()
            pending[call.id] = call
        if not pending:
            return
        table = self.query_one(DataTable)
        for call in sorted(pending.values(), key=lambda c: c.id):
            cells = self._cells(call)
            if call.id in self.calls:
                for column, value in zip(("id", "op", "status", "ms"), cells, strict=True):
                    table.update_cell(str(call.id), column, value)
            else:
                table.add_row(*cells, key=str(call.id))
            self.calls[call.id] = call
        if self._follow and table.row_count:
            table.move_cursor(row=table.row_count - 1)
            self._render_detail(self._selected())

    def _cells(self, call: ApiCall) -> tuple[Text, str, Text, str]:
        style = "" if not call.done else ("green" if call.ok else "red")
        status = Text(str(call.status or ("…" if not call.done else "err")), style=style)
        ms = f"{call.duration_ms:.1f}" if call.duration_ms is not None else ""
        return Text(str(call.id)), f"{call.service}:{call.operation}", status, ms

    def _selected(self) -> ApiCall | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.calls.get(int(key)) if key else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one(DataTable)
        self._follow = event.cursor_row == table.row_count - 1
        self._render_detail(self._selected())

    def _render_detail(self, call: ApiCall | None) -> None:
        if call is None:
            return
        meaning = explain(call.service, call.operation, call.error_code, call.status)
        parts: list = [
            Text(f"{call.operation}", style="bold"),
            Text(f"{call.method} {call.url}", style="cyan"),
            Text(f"status {call.status if call.status is not None else '-'}  ·  "
                 f"{call.duration_ms if call.duration_ms is not None else '…'} ms  ·  {call.region}"),
            Text(""),
            Text("What it does: ", style="bold").append(meaning.does, style="not bold"),
            Text("What it means: ", style="bold").append(meaning.means, style="not bold"),
        ]
        if meaning.error:
            parts += [Text(f"{call.error_code}: {call.error_message}", style="red"),
                      Text("Meaning: ", style="bold").append(meaning.error, style="not bold"),
                      Text("Fix: ", style="bold").append(meaning.fix or "", style="not bold")]
        parts += [Text(""), Text("Parameters", style="bold"), _json(call.params)]
        if call.response:
            parts += [Text("Response", style="bold"), _json(call.response)]
        self.query_one("#inspector-body", Static).update(Group(*parts))

    def action_copy_cli(self) -> None:
        call = self._selected()
        if call is not None:
            self.app.copy_to_clipboard(as_cli_command(call))
            self.notify(as_cli_command(call), title="Copied as aws CLI command")

    def action_copy_json(self) -> None:
        call = self._selected()
        if call is not None:
            self.app.copy_to_clipboard(as_json(call))
            self.notify(f"call #{call.id} {call.operation}", title="Copied as JSON")

    def action_clear(self) -> None:
        self.calls.clear()
        self.query_one(DataTable).clear()
        self.query_one("#inspector-body", Static).update("Cleared.")


def _json(value: object) -> Syntax:
    from rich.syntax import Syntax  # pygments: imported when the inspector first shows a call, not at start

    return Syntax(json.dumps(value, indent=2, default=str), "json", word_wrap=True, background_color="default")
