"""The Fleet view: the sample fleet's plan, then setup or cleanup with progress, a live log and a summary."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Label, ProgressBar, RichLog, Static
from textual.worker import get_current_worker

from iot_tui.aws import fleet
from iot_tui.ui.base import AwsWidget
from iot_tui.ui.widgets.dialogs import CleanupScreen, ConfirmScreen

OUTCOME_STYLES = {"failed": "red", "created": "green", "deleted": "green", "existed": "dim",
                  "skipped": "yellow", "waiting": "yellow", "note": "cyan"}


class FleetView(AwsWidget):
    TITLE = "Fleet"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "setup", "Set up fleet", id="fleet-setup"),
        Binding("c", "cleanup", "Clean up fleet", id="fleet-cleanup"),
        Binding("k", "skip_wait", "Skip type wait", id="fleet-skip-wait"),
        Binding("n", "delete_now", "Delete types now", id="fleet-delete-now"),
    ]

    running: reactive[str | None] = reactive(None)
    waiting: reactive[bool] = reactive(False)

    class Progress(Message):
        def __init__(self, event: fleet.FleetEvent) -> None:
            super().__init__()
            self.event = event

    class Finished(Message):
        def __init__(self, operation: str, summary: fleet.Summary) -> None:
            super().__init__()
            self.operation = operation
            self.summary = summary

    class Discovered(Message):
        def __init__(self, plan: fleet.CleanupPlan) -> None:
            super().__init__()
            self.plan = plan

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.control = fleet.WaitControl()

    @property
    def sample(self) -> fleet.Fleet:
        return fleet.sample_fleet(self.app.seed, self.app.clock())  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        sample = self.sample
        with Horizontal(id="fleet-top"):
            with Vertical(id="fleet-plan"):
                yield Label("The sample fleet", classes="section-title")
                yield Static(_plan_text(sample), id="fleet-plan-text")
            yield DataTable(id="fleet-things", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="fleet-status"):
            yield ProgressBar(id="fleet-progress", show_eta=False)
            yield Label("Press s to set up the fleet, c to clean it up.", id="fleet-state")
        with Horizontal(id="fleet-bottom"):
            yield RichLog(id="fleet-log", markup=True, wrap=True, max_lines=2000, min_width=20)
            yield DataTable(id="fleet-summary", cursor_type="none", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#fleet-progress", ProgressBar).update(total=1, progress=0)
        things = self.query_one("#fleet-things", DataTable)
        things.add_columns("Thing", "Type", "Group", "Country", "Made")
        for thing in self.sample.things:
            a = thing.attributes
            things.add_row(thing.name, thing.thing_type, thing.group, a["country"], a["manufacturingDate"])
        self.query_one("#fleet-log", RichLog).border_title = "Log"
        self.query_one("#fleet-summary", DataTable).border_title = "Summary"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("setup", "cleanup"):
            return None if self.running else True
        if action in ("skip_wait", "delete_now"):
            return self.waiting
        return True

    def watch_running(self) -> None:
        self.refresh_bindings()

    def watch_waiting(self) -> None:
        self.refresh_bindings()

    # -- setup --

    def action_setup(self) -> None:
        sample = self.sample
        body = (f"Creates {len(sample.types)} thing types, {len(sample.groups)} thing groups and "
                f"{len(sample.things)} things on {self.app.target.label}. "  # type: ignore[attr-defined]
                "What already exists is kept; nothing is created twice.")
        if self.app.target.billable:  # type: ignore[attr-defined]
            body += "\n\n" + fleet.AWS_COST_NOTE

        def chosen(yes: bool | None) -> None:
            if yes:
                self._start("setup", len(sample.types) + len(sample.groups) + len(sample.things))
                self.run_setup(sample)

        self.app.push_screen(ConfirmScreen("Set up the sample fleet?", body, "Set up"), chosen)

    @work(thread=True, group="fleet", exclusive=True, exit_on_error=False, name="fleet setup")
    def run_setup(self, sample: fleet.Fleet) -> None:
        summary = fleet.Summary()
        for event in fleet.setup(self.clients.iot, sample):
            summary.add(event)
            self.post_message(self.Progress(event))
        self.post_message(self.Finished("setup", summary))

    # -- cleanup --

    def action_cleanup(self) -> None:
        self.running = "discover"
        self.query_one("#fleet-state", Label).update("Looking for sample resources…")
        self.busy(self.query_one("#fleet-summary"))
        self.run_discover(self.sample)

    @work(thread=True, group="fleet", exclusive=True, exit_on_error=False, name="fleet discovery")
    def run_discover(self, sample: fleet.Fleet) -> None:
        self.post_message(self.Discovered(fleet.discover(self.clients.iot, sample)))

    @on(Discovered)
    def _discovered(self, message: Discovered) -> None:
        self.running = None
        plan = message.plan
        if plan.empty and not plan.errors:
            self.query_one("#fleet-state", Label).update("No sample resources found: nothing to clean up.")
            return
        body = (f"Found {len(plan.things)} sample things, {len(plan.certificates)} certificates used only by them "
                f"({len(plan.shared_certificates)} shared ones are kept), {len(plan.groups)} groups and "
                f"{len(plan.types)} thing types. Nothing else is touched.\n\n"
                "AWS deletes a thing type only 5 minutes after deprecating it: wait (with a countdown), "
                "skip the types, or try deleting them now.")

        def chosen(mode: str | None) -> None:
            if mode:
                self._start("cleanup", max(plan.total, 1))
                self.control = fleet.WaitControl(cancelled=lambda: False)
                self.run_cleanup(plan, mode)

        self.app.push_screen(CleanupScreen(body), chosen)

    @work(thread=True, group="fleet", exclusive=True, exit_on_error=False, name="fleet cleanup")
    def run_cleanup(self, plan: fleet.CleanupPlan, mode: fleet.TypesMode) -> None:
        worker = get_current_worker()
        self.control.cancelled = lambda: worker.is_cancelled
        summary = fleet.Summary()
        events = fleet.cleanup(self.clients.iot, self.sample, mode, plan=plan, clock=self.app.clock,  # type: ignore[attr-defined]
                               control=self.control, cert_root=self.app.cert_root)  # type: ignore[attr-defined]
        for event in events:
            summary.add(event)
            self.post_message(self.Progress(event))
        self.post_message(self.Finished("cleanup", summary))

    def action_skip_wait(self) -> None:
        self.control.override = "skip"

    def action_delete_now(self) -> None:
        self.control.override = "now"

    # -- progress --

    def _start(self, operation: str, total: int) -> None:
        self.running = operation
        self.query_one("#fleet-progress", ProgressBar).update(total=total, progress=0)
        self.query_one("#fleet-summary", DataTable).clear(columns=True)
        self.query_one("#fleet-log", RichLog).write(f"[b]{operation} on {self.app.target.label}[/b]")  # type: ignore[attr-defined]
        self.query_one("#fleet-state", Label).update(f"{operation.capitalize()} in progress…")

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        event = message.event
        if event.kind == "countdown":
            self.waiting = True
            self.query_one("#fleet-state", Label).update(
                f"Thing types deletable in {event.remaining:.0f} s · k skip · n try now")
            return
        self.waiting = False
        self.query_one("#fleet-progress", ProgressBar).update(total=event.total, progress=event.step)
        style = OUTCOME_STYLES.get(event.outcome, "")
        line = event.line().replace("[", r"\[")
        self.query_one("#fleet-log", RichLog).write(f"[{style}]{line}[/]" if style else line)

    @on(Finished)
    def _finished(self, message: Finished) -> None:
        self.running = None
        self.waiting = False
        summary = message.summary
        table = self.query_one("#fleet-summary", DataTable)
        table.clear(columns=True)
        always = ["created", "existed"] if message.operation == "setup" else ["deleted"]
        outcomes = list(dict.fromkeys([*always, *(o for c in summary.counts.values() for o in c), fleet.FAILED]))
        outcomes.sort(key=lambda o: o == fleet.FAILED)
        table.add_column("Resource", width=12)
        for outcome in outcomes:
            table.add_column(outcome.capitalize(), width=max(len(outcome), 7))
        for kind, counts in summary.counts.items():
            table.add_row(kind, *(counts[o] for o in outcomes))
        verdict = "done" if summary.ok else f"done with {len(summary.failures)} failure(s): see the log"
        self.query_one("#fleet-state", Label).update(f"{message.operation.capitalize()} {verdict}.")


def _plan_text(sample: fleet.Fleet) -> str:
    lines = [f"[b]{len(sample.types)} thing types[/b], searchable by", "  " + ", ".join(fleet.SEARCHABLE)]
    lines += [f"  {name}: {text}" for name, text in sample.types.items()]
    lines += ["", f"[b]{len(sample.groups)} thing groups[/b]"]
    lines += [f"  {name}: {text}" for name, text in sample.groups.items()]
    lines += ["", f"[b]{len(sample.things)} things[/b] with a customerId, a country,",
              "a manufacturingDate, a random type and group."]
    return "\n".join(lines)
