"""What every view that calls AWS shares: its workers' failures go to the app's one error handler."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.message import Message
from textual.widget import Widget
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from iot_tui.aws.target import Clients


class AwsFailed(Message):
    """A worker's call failed; bubbles to the app, which shows code, message and meaning."""

    def __init__(self, action: str, error: BaseException) -> None:
        super().__init__()
        self.action = action
        self.error = error


class Loaded(Message):
    """A view's data arrived from its worker; each view nests its own subclasses of it."""

    def __init__(self, data: Any) -> None:
        super().__init__()
        self.data = data


class AwsWidget(Widget):
    """A widget whose thread workers call boto3; it clears its loading state when they end."""

    @property
    def clients(self) -> Clients:
        return self.app.clients  # type: ignore[attr-defined]

    def action_refresh(self) -> None:
        """Reload what this view shows; views that load anything override it."""

    def activated(self) -> None:
        """Its tab was shown: views load lazily here, and refresh what may have changed meanwhile."""

    # Set by the app when it mounts the view for a tab being shown: activate once mounted.
    activate_when_mounted = False

    def activate(self) -> None:
        """Shown: load (activated), and focus inside so the footer shows this view's keys."""
        self.activate_when_mounted = False
        self.activated()
        self.focus_first()

    def on_mount(self) -> None:
        # Runs after the subclass's own on_mount (Textual walks the MRO), with every child mounted.
        if self.activate_when_mounted:
            self.activate()

    # Where focus lands when the view is shown; the first focusable widget when None.
    FOCUS_FIRST: ClassVar[str | None] = None

    _wants_focus = False

    def focus_first(self) -> None:
        """Focus the view's main widget; if it is still loading, focus it when loading ends."""
        chosen = self.query(self.FOCUS_FIRST) if self.FOCUS_FIRST else self.query("*")
        focusable = [w for w in chosen if w.focusable and w.display]
        self._wants_focus = not focusable
        if focusable:
            focusable[0].focus()

    def busy(self, *widgets: Widget) -> None:
        """Show loading over these widgets until this view's workers end; a pane that is one
        widget marks itself, so its widget stays focusable while loading."""
        for widget in widgets:
            widget.loading = True

    def _done(self) -> None:
        for widget in [self, *self.query("*")]:
            if widget.loading:
                widget.loading = False
        # A loading widget refuses focus: give it now if the view was shown while loading.
        focused = self.screen.focused
        lost = focused is None or any(not node.display for node in focused.ancestors_with_self)
        shown = self.screen is self.app.screen and all(n.display for n in self.ancestors_with_self)
        if shown and (lost or self._wants_focus):
            self.focus_first()

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.post_message(AwsFailed(event.worker.name or event.worker.group, event.worker.error))
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            event.stop()
            if not any(w.node is self and w.is_running for w in self.app.workers):
                self._done()

    def commands(self) -> list[tuple[str, str, Any]]:
        """(title, help, action) for the command palette: this view's bindings that have a description."""
        return [(b.description, b.tooltip or f"key {b.key}", b.action) for b in self._bindings_list() if b.description]

    def _bindings_list(self) -> list[Any]:
        return [b for b in self.BINDINGS if not isinstance(b, tuple)]
