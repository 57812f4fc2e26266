"""IoTApp: the target in the header, one tab per working screen, the API inspector beside them.

Built by `make_app` with its dependencies injected (target, clock, seed) so tests and
snapshots build the very same app against a test core with fixed data.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Header, TabbedContent, TabPane

from iot_tui.aws import fleet
from iot_tui.aws.explain import explain_error
from iot_tui.aws.inspector import ApiCall, Inspector
from iot_tui.aws.target import Target
from iot_tui.ui.base import AwsFailed, AwsWidget
from iot_tui.ui.commands import ScreenCommands
from iot_tui.ui.screens.help import HelpScreen
from iot_tui.ui.widgets.api_inspector import ApiInspector

if TYPE_CHECKING:
    from iot_tui.aws.mqtt import ConnectionPool

# One tab per working screen: (title, tab id, view id, "module:class"). Only the first view is
# mounted at start; each other one (and its imports: awscrt, lark...) on its tab's first show.
VIEWS: tuple[tuple[str, str, str, str], ...] = (
    ("Fleet", "tab-fleet", "fleet", "iot_tui.ui.screens.fleet:FleetView"),
    ("Registry", "tab-registry", "registry", "iot_tui.ui.screens.registry:RegistryView"),
    ("Certificates", "tab-certificates", "certificates", "iot_tui.ui.screens.certificates:CertificatesView"),
    ("MQTT", "tab-mqtt", "mqtt", "iot_tui.ui.screens.mqtt:MqttView"),
    ("Shadows", "tab-shadows", "shadows", "iot_tui.ui.screens.shadows:ShadowsView"),
    ("Rules", "tab-rules", "rules", "iot_tui.ui.screens.rules:RulesView"),
)


def _view(tab_id: str) -> AwsWidget:
    _, _, view_id, path = next(view for view in VIEWS if view[1] == tab_id)
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)(id=view_id)


class IoTApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "iot-tui"
    COMMANDS = App.COMMANDS | {ScreenCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1,question_mark", "help", "Help", id="help"),
        Binding("1", "show_tab('tab-fleet')", "Fleet tab", id="tab-fleet", show=False),
        Binding("2", "show_tab('tab-registry')", "Registry tab", id="tab-registry", show=False),
        Binding("3", "show_tab('tab-certificates')", "Certificates tab", id="tab-certificates", show=False),
        Binding("4", "show_tab('tab-mqtt')", "MQTT tab", id="tab-mqtt", show=False),
        Binding("5", "show_tab('tab-shadows')", "Shadows tab", id="tab-shadows", show=False),
        Binding("6", "show_tab('tab-rules')", "Rules tab", id="tab-rules", show=False),
        Binding("f2", "toggle_inspector", "Inspector", id="toggle-inspector"),
        Binding("f3", "toggle_dark", "Light/dark", id="toggle-theme"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
    ]

    class IdentityFound(Message):
        def __init__(self, account: str) -> None:
            super().__init__()
            self.account = account

    class TargetResolved(Message):
        """A new target is ready (and the local core process started for it, if any)."""

        def __init__(self, target: Target, process: Any) -> None:
            super().__init__()
            self.target = target
            self.process = process

    def __init__(self, target: Target, clock: Callable[[], float] = time.time, seed: int | None = None,
                 inspector: Inspector | None = None, cert_root: Path | None = None,
                 keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.keymap = keymap or {}
        self.target = target
        self.clock = clock
        self.seed = seed
        self.inspector = inspector or Inspector(clock=clock)
        self.cert_root = cert_root
        self.clients = target.connect(self.inspector)
        self._unsubscribe: Callable[[], None] | None = None
        # Local cores this app started when the user switched target; stopped on exit.
        self._core_processes: list[Any] = []

    @cached_property
    def mqtt_pool(self) -> ConnectionPool:
        """One MQTT connection per identity, shared by every screen that subscribes or publishes.

        Made on first use: awscrt takes a while to import and the first frame need not wait for it.
        """
        from iot_tui.aws.mqtt import ConnectionPool, MqttConnection

        return ConnectionPool(lambda settings: MqttConnection(settings, clock=self.clock))

    def compose(self) -> ComposeResult:
        yield Header(icon="◈")
        with Horizontal(id="body"):
            with TabbedContent(id="tabs"):
                for index, (title, tab_id, _, _) in enumerate(VIEWS):
                    with TabPane(title, id=tab_id):
                        if index == 0:
                            yield _view(tab_id)
            yield ApiInspector(id="inspector", classes="-hidden")
        yield Footer()

    def on_mount(self) -> None:
        self.set_keymap(self.keymap)
        self.sub_title = self.target.label
        self.call_after_refresh(self._tab_activated)
        self._follow_inspector()
        if self.target.kind == "aws":
            self.find_identity()

    def _follow_inspector(self) -> None:
        """The inspector panel shows every call so far, then each new one."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        inspector = self.query_one(ApiInspector)
        inspector.show(list(self.inspector.calls))
        self._unsubscribe = self.inspector.subscribe(inspector.record)

    @on(TabbedContent.TabActivated, "#tabs")
    def _tab_activated(self) -> None:
        """Activate the shown view, focus inside it so the footer shows its keys, not the tab bar's.

        A tab shown for the first time gets its view now; the view activates itself once its
        children are mounted (AwsWidget.on_mount), since activating loads into them.
        """
        active = self.query_one("#tabs", TabbedContent).active
        if not active:
            return
        pane = self.query_one(f"#{active}", TabPane)
        views = pane.query(AwsWidget)
        if not views:
            view = _view(active)
            view.activate_when_mounted = True
            pane.mount(view)
        elif views.first().is_mounted:
            views.first().activate()
        else:
            views.first().activate_when_mounted = True

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if "mqtt_pool" in self.__dict__:
            self.mqtt_pool.close_all()
        for process in self._core_processes:
            process.stop()

    @work(thread=True, group="identity", exclusive=True, exit_on_error=False, name="identity")
    def find_identity(self) -> None:
        """The header names the AWS account: learnt from GetCallerIdentity, which also checks credentials."""
        self.post_message(self.IdentityFound(self.clients.sts.get_caller_identity()["Account"]))

    @on(IdentityFound)
    def _identity(self, message: IdentityFound) -> None:
        from dataclasses import replace

        self.target = replace(self.target, account_id=message.account)
        self.sub_title = self.target.label

    def on_worker_state_changed(self, event: Any) -> None:
        """The app's own workers (identity) report like every view's: through AwsFailed."""
        if event.state.name == "ERROR" and event.worker.node is self:
            self.post_message(AwsFailed(event.worker.name, event.worker.error))

    # -- the one place worker errors are shown --

    @on(AwsFailed)
    def show_failure(self, message: AwsFailed) -> None:
        code, text, meaning, fix = explain_error(message.error)
        self.notify(f"{text}\n\n{meaning}\nFix: {fix}", title=f"{message.action}: {code}", severity="error",
                    timeout=12)

    # -- views and commands --

    def active_view(self) -> AwsWidget | None:
        active = self.query_one("#tabs", TabbedContent).active
        views = self.query_one(f"#{active}", TabPane).query(AwsWidget) if active else []
        return views.first() if views else None

    def app_commands(self) -> list[tuple[str, str, str]]:
        return [
            ("Toggle API inspector", "Show every AWS call of this session", "toggle_inspector"),
            ("Run setup check", "Credentials, identity, permissions, endpoint, TLS (iot-tui doctor)", "doctor"),
            ("Show Fleet", "The sample fleet: setup and cleanup", "show_tab('tab-fleet')"),
            ("Show Registry", "Things, types, groups, certificates, endpoints", "show_tab('tab-registry')"),
            ("Show MQTT", "Connect, subscribe, publish and watch messages", "show_tab('tab-mqtt')"),
            ("Show Shadows", "A device shadow: desired, reported, delta, history, simulator", "show_tab('tab-shadows')"),
            ("Switch target", "The local core, an endpoint URL, or real AWS (profile and region)", "switch_target"),
            ("Help: keys", "Every key binding", "help"),
        ]

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_toggle_inspector(self) -> None:
        inspector = self.query_one(ApiInspector)
        inspector.toggle_class("-hidden")
        if not inspector.has_class("-hidden"):
            inspector.query_one("#inspector-calls").focus()

    def action_help(self) -> None:
        sections: list[tuple[str, list[Binding]]] = [("App", [b for b in self.BINDINGS if isinstance(b, Binding)])]
        view = self.active_view()
        if view is not None:
            sections.append((view.TITLE, list(view.BINDINGS)))
            pane = getattr(view, "current_pane", lambda: None)()
            if pane is not None:
                sections.append((f"{view.TITLE} pane", list(pane.BINDINGS)))
        sections.append(("Inspector", list(ApiInspector.BINDINGS)))
        self.push_screen(HelpScreen(sections))

    def action_switch_target(self) -> None:
        from iot_tui.ui.widgets.target_dialog import SwitchTargetScreen

        self.push_screen(SwitchTargetScreen(self.target.label), self._target_chosen)

    def _target_chosen(self, choice: Any) -> None:
        if choice is not None:
            self.resolve_new_target(choice)

    @work(thread=True, group="target", exclusive=True, exit_on_error=False, name="switch target")
    def resolve_new_target(self, choice: Any) -> None:
        """May start a local core, or read AWS credentials: off the event loop."""
        from iot_tui.aws.target import resolve_target

        target, process = resolve_target(choice.kind == "aws", choice.profile, choice.region, choice.endpoint_url)
        self.post_message(self.TargetResolved(target, process))

    @on(TargetResolved)
    async def _target_resolved(self, message: TargetResolved) -> None:
        """Every view is rebuilt on the new target, so nothing from the old one lingers."""
        if message.process is not None:
            self._core_processes.append(message.process)
        if "mqtt_pool" in self.__dict__:
            self.mqtt_pool.close_all()
            del self.__dict__["mqtt_pool"]
        self.target = message.target
        self.clients = message.target.connect(self.inspector)
        self.sub_title = self.target.label
        await self.recompose()
        self._follow_inspector()
        self.call_after_refresh(self._tab_activated)
        if self.target.kind == "aws":
            self.find_identity()
        self.notify(f"Now working on {self.target.label}", title="Target switched")

    def action_doctor(self) -> None:
        from iot_tui.ui.screens.doctor import DoctorScreen

        self.push_screen(DoctorScreen())


def make_app(target: Target, clock: Callable[[], float] = time.time, seed: int | None = None,
             inspector: Inspector | None = None, cert_root: Path | None = None,
             keymap: dict[str, str] | None = None) -> IoTApp:
    """The one way to build the app: the CLI, the tests and the benchmarks all come through here."""
    return IoTApp(target, clock, seed, inspector, cert_root or fleet.certificates_dir(), keymap)


__all__ = ["ApiCall", "IoTApp", "make_app"]
