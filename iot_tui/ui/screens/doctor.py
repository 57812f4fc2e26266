"""The setup check in the app: the same checks as `iot-tui doctor`, one line each with its fix."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, RichLog
from textual.worker import Worker

from iot_tui.aws.doctor import Check, run_checks
from iot_tui.ui.base import AwsFailed


class DoctorScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close", id="doctor-close")]

    class Checked(Message):
        def __init__(self, check: Check) -> None:
            super().__init__()
            self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Setup check: {self.app.target.label}", classes="dialog-title")  # type: ignore[attr-defined]
            yield RichLog(id="doctor-log", markup=True, wrap=True, min_width=20)

    def on_mount(self) -> None:
        self.query_one(RichLog).loading = True
        self.run_checks()

    @work(thread=True, group="doctor", exclusive=True, exit_on_error=False, name="setup check")
    def run_checks(self) -> None:
        for check in run_checks(self.app.clients):  # type: ignore[attr-defined]
            self.post_message(self.Checked(check))

    @on(Checked)
    def _checked(self, message: Checked) -> None:
        log = self.query_one(RichLog)
        log.loading = False
        check = message.check
        mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
        log.write(f"{mark} [b]{check.name}[/b]: {check.detail.replace('[', chr(92) + '[')}")
        if check.fix:
            log.write(f"     fix: {check.fix}")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state.name == "ERROR":
            self.query_one(RichLog).loading = False
            self.app.post_message(AwsFailed("setup check", event.worker.error))
