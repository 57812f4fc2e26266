"""Every binding of the app and of the current view, with its id for remapping."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from iot_tui.ui.keymap import keymap_file


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "dismiss", "Close", id="help-close")]

    def __init__(self, sections: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("Keys", classes="dialog-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Static(f"Remap keys by id in {keymap_file()}, e.g. {{\"toggle-inspector\": \"f12\"}}. "
                         "Ctrl+P lists every command of this screen.", classes="dialog-body")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Where", "Key", "Does", "Id")
        for where, bindings in self.sections:
            for binding in bindings:
                keys = ", ".join(self.app.get_key_display(Binding(k.strip(), "")) for k in binding.key.split(","))
                table.add_row(where, keys, binding.description or binding.action, binding.id or "")
        table.focus()
