"""The Shadows view: one device shadow's desired, reported and delta side by side, how it changed,
and both sides of it to play: the cloud (set desired) and the device (report, or let the simulator
answer every delta).

It stays current live over MQTT, through the app's shared connection pool, subscribed to the
shadow's update topics (documents, delta, accepted, rejected): as the device, with its certificate
from the wizard's folder, when the thing has one; else over WebSocket signed (SigV4) with the
target's credentials. Reported state goes over that connection too, so the device side of an
update is a real MQTT publish either way. Only when neither connection works does it poll
GetThingShadow every few seconds; the header says which way it is live, or why it polls, and the
device log has the full error. Every document it sees goes into a `ShadowHistory` so any two
versions can be diffed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import (
    DataTable,
    Input,
    Label,
    OptionList,
    Select,
    Static,
    Switch,
    TabbedContent,
    TabPane,
    TextArea,
)
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from iot_tui.aws import registry, shadows
from iot_tui.aws.device_files import ca_name, list_device_folders
from iot_tui.aws.explain import explain_error
from iot_tui.aws.payloads import PayloadError, parse_object
from iot_tui.aws.shadows import ShadowHistory, ShadowRef
from iot_tui.iotcore.shadow import ShadowError, validate_shadow_name
from iot_tui.ui.base import AwsWidget
from iot_tui.ui.widgets.dialogs import ConfirmScreen
from iot_tui.ui.widgets.json_columns import ShadowColumns, clock_time, latest_timestamp
from iot_tui.ui.widgets.json_diff import render_changes

if TYPE_CHECKING:
    from iot_tui.aws.mqtt import MqttConnection, MqttEvent, MqttSettings

CLASSIC_OPTION = "\0classic"
# The shadow topics the view follows; each message refreshes the view.
LIVE_TOPICS = ("update/documents", "update/delta", "update/accepted", "update/rejected")
# A rejected reply's integer code, as the HTTP API names it.
REJECTED_CODES = {400: "InvalidRequestException", 401: "UnauthorizedException", 403: "ForbiddenException",
                  404: "ResourceNotFoundException", 409: "ConflictException",
                  413: "RequestEntityTooLargeException", 429: "ThrottlingException",
                  500: "InternalFailureException"}
# The two ways to follow a shadow live, preferred first: the device's own identity, then the user's.
VIA_CERTIFICATE = "MQTT (certificate)"
VIA_WEBSOCKET = "WebSocket SigV4"
SECTIONS = [("desired (as the cloud)", "desired"), ("reported (as the device)", "reported")]


def merge_state(state: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """What a device holds after applying `patch` the way the shadow service does: null removes a key,
    objects merge, anything else replaces."""
    merged = dict(state)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_state(merged[key], value)
        else:
            merged[key] = value
    return merged


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2)


@dataclass
class Live:
    """A shadow followed over MQTT: the shared connection, our listener on it, the filters we hold,
    and which way it connected (`VIA_CERTIFICATE` or `VIA_WEBSOCKET`)."""

    connection: MqttConnection
    remove_listener: Callable[[], None]
    topics: list[str]
    via: str = VIA_CERTIFICATE


def failure_text(via: str, error: Exception) -> str:
    """`WebSocket SigV4 failed: <reason>. <what to check>`, from an MqttError or a settings ValueError."""
    reason = str(getattr(error, "reason", "") or error).rstrip(".")
    hint = getattr(error, "hint", "")
    return f"{via} failed: {reason}" + (f". {hint}" if hint else "")


@dataclass(frozen=True)
class Pending:
    """An update sent over MQTT, waiting for its accepted or rejected reply (matched by clientToken)."""

    request: str
    origin: str
    version: int | None


class ShadowsView(AwsWidget):
    TITLE = "Shadows"
    FOCUS_FIRST = "#shadow-things"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "refresh", "Refresh", id="shadows-refresh"),
        Binding("ctrl+e", "edit", "Edit state", id="shadows-edit",
                tooltip="Open the editor; it starts from the desired state when empty"),
        Binding("ctrl+s", "send", "Send edit", id="shadows-send",
                tooltip="Set desired, or report as the device, with the editor's state"),
        Binding("ctrl+r", "report_local", "Report local state", id="shadows-report-local"),
        Binding("ctrl+t", "toggle_simulator", "Simulator", id="shadows-simulator",
                tooltip="Act as the device: answer each delta by reporting the desired values"),
        Binding("ctrl+n", "new_shadow", "New named shadow", id="shadows-new"),
        Binding("delete", "delete", "Delete shadow", id="shadows-delete"),
    ]

    simulating: reactive[bool] = reactive(False)

    class ThingsLoaded(Message):
        def __init__(self, things: list[str]) -> None:
            super().__init__()
            self.things = things

    class NamesLoaded(Message):
        def __init__(self, thing: str, names: list[str], open_name: str | None) -> None:
            super().__init__()
            self.thing = thing
            self.names = names
            self.open_name = open_name

    class ShadowLoaded(Message):
        """A full document (or None: no shadow) and what the request that fetched it achieved."""

        def __init__(self, ref: ShadowRef, document: dict[str, Any] | None, source: str, result: str,
                     origin: str = "") -> None:
            super().__init__()
            self.ref = ref
            self.document = document
            self.source = source
            self.result = result
            self.origin = origin

    class UpdateRejected(Message):
        """AWS refused an update; `current` is the document as it is now when the cause was a 409."""

        def __init__(self, ref: ShadowRef, request: str, error: ClientError, current: dict[str, Any] | None,
                     origin: str, version: int | None) -> None:
            super().__init__()
            self.ref = ref
            self.request = request
            self.error = error
            self.current = current
            self.origin = origin
            self.version = version

    class LiveChanged(Message):
        """The MQTT subscription for `ref` is up (`live`), or could not be made (`reason`, short, says why).

        `detail` holds the full error of each way that failed (also when a later way worked)."""

        def __init__(self, ref: ShadowRef, live: Live | None, reason: str, detail: str = "") -> None:
            super().__init__()
            self.ref = ref
            self.live = live
            self.reason = reason
            self.detail = detail

    class ShadowMessage(Message):
        """A message on one of the shadow's topics, posted from awscrt's thread."""

        def __init__(self, ref: ShadowRef, topic: str, payload: bytes) -> None:
            super().__init__()
            self.ref = ref
            self.topic = topic
            self.payload = payload

    class MqttRejected(Message):
        """An update sent over MQTT came back on `update/rejected` with AWS's code and message."""

        def __init__(self, ref: ShadowRef, pending: Pending, code: int, text: str) -> None:
            super().__init__()
            self.ref = ref
            self.pending = pending
            self.code = code
            self.text = text

    def __init__(self, *, id: str | None = None, poll_seconds: float = 3.0, simulator_delay: float = 2.0) -> None:
        super().__init__(id=id)
        self._poll_seconds = poll_seconds
        self.simulator_delay = simulator_delay
        self.things: list[str] = []
        self.thing: str | None = None
        self.ref: ShadowRef | None = None
        self.document: dict[str, Any] | None = None
        self.history: ShadowHistory | None = None
        self.last_result = "no request yet"
        self._loaded = False
        self._answered_delta: int | None = None
        self._poll: Timer | None = None
        self._device_lines: list[tuple[str, str]] = []
        self.live: Live | None = None
        self.mode = "polling"  # "live", "connecting", or why the view polls ("WebSocket SigV4 failed", ...)
        self._pending: dict[str, Pending] = {}
        # The view's own WebSocket client id, made on first use: switching shadows keeps the connection.
        self._ws_client_id: str | None = None
        self._mqtt_host: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="shadows-body"):
            with Vertical(id="shadows-left"):
                yield Input(placeholder="search things", id="shadow-thing-search")
                yield OptionList(id="shadow-things")
                yield Label("Shadows", classes="section-title")
                yield OptionList(id="shadow-names")
                yield Input(placeholder="new named shadow + Enter", id="new-shadow-name")
            with Vertical(id="shadows-main"):
                yield Static("Pick a thing, then a shadow.", id="shadow-header")
                yield ShadowColumns(id="shadow-columns")
                with TabbedContent(id="shadow-tabs"):
                    with TabPane("Edit", id="shadow-edit-pane"):
                        with Horizontal(id="edit-bar"):
                            yield Select(SECTIONS, value="desired", allow_blank=False, id="edit-section")
                            yield Static("", id="edit-hint")
                        yield TextArea("", language="json", id="shadow-editor")
                        yield Static("", id="edit-error")
                    with TabPane("Device", id="shadow-device-pane"):
                        with Horizontal(id="device-bar"):
                            yield Switch(id="simulator")
                            yield Label("simulator: answer each delta after", id="simulator-label")
                            yield Input(str(self.simulator_delay), id="simulator-delay", type="number")
                            yield Label("seconds", id="simulator-unit")
                        with Horizontal(id="device-body"):
                            yield TextArea("{}", language="json", id="device-local")
                            with VerticalScroll(id="device-log-scroll"):
                                yield Static("", id="device-log")
                    with TabPane("History", id="shadow-history-pane"):
                        with Horizontal(id="history-body"):
                            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
                            with Vertical(id="history-diff-side"):
                                with Horizontal(id="history-pick"):
                                    yield Select([], prompt="from", id="diff-from")
                                    yield Select([], prompt="to", id="diff-to")
                                with VerticalScroll(id="history-diff-scroll"):
                                    yield Static("", id="history-diff")
        yield Static("", id="shadow-status")

    def on_mount(self) -> None:
        self.query_one("#shadow-things", OptionList).border_title = "Things"
        self.query_one("#device-local", TextArea).border_title = "Device's local state"
        self.query_one("#device-log-scroll", VerticalScroll).border_title = "Device log"
        self.query_one("#history-table", DataTable).add_columns("Ver", "At", "Seen in")
        self._poll = self.set_interval(self.poll_seconds, self._tick, pause=True)
        self._show()

    @property
    def poll_seconds(self) -> float:
        return self._poll_seconds

    @poll_seconds.setter
    def poll_seconds(self, seconds: float) -> None:
        """A new interval restarts the timer; it runs only while a shadow is open and not live."""
        self._poll_seconds = seconds
        if self._poll is not None:
            self._poll.stop()
            self._poll = self.set_interval(seconds, self._tick, pause=self.ref is None or self.live is not None)
            self._show()

    def activated(self) -> None:
        if not self._loaded:
            self._loaded = True
            self.load_things()

    # -- picking a thing and a shadow --

    @work(thread=True, group="shadow-things", exclusive=True, exit_on_error=False, name="list things")
    def load_things(self) -> None:
        things = [t["thingName"] for t in registry.pages(self.clients.iot.list_things, "things", maxResults=100)]
        self.post_message(self.ThingsLoaded(sorted(things)))

    @on(ThingsLoaded)
    def _things_loaded(self, message: ThingsLoaded) -> None:
        self.things = message.things
        self._fill_things()

    @on(Input.Changed, "#shadow-thing-search")
    def _fill_things(self) -> None:
        search = self.query_one("#shadow-thing-search", Input).value.strip().lower()
        options = self.query_one("#shadow-things", OptionList)
        options.clear_options()
        options.add_options([Option(name, id=name) for name in self.things if search in name.lower()])
        if not self.things:
            options.add_option(Option("no things: create one in Registry or Fleet", disabled=True))
        elif options.option_count:
            options.highlighted = 0

    @on(Input.Submitted, "#shadow-thing-search")
    def _search_done(self) -> None:
        self.query_one("#shadow-things", OptionList).focus()

    @on(OptionList.OptionSelected, "#shadow-things")
    def _thing_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.pick(event.option.id)

    def pick(self, thing: str, name: str = shadows.CLASSIC) -> None:
        """Show a thing's shadow names and open one (the classic shadow unless told)."""
        self.thing = thing
        self.load_names(thing, name)
        self.open(ShadowRef(thing, name))
        self.query_one("#shadow-names", OptionList).focus()

    @work(thread=True, group="shadow-names", exclusive=True, exit_on_error=False, name="list named shadows")
    def load_names(self, thing: str, open_name: str | None = None) -> None:
        self.post_message(self.NamesLoaded(thing, shadows.list_named_shadows(self.clients.iot_data, thing), open_name))

    @on(NamesLoaded)
    def _names_loaded(self, message: NamesLoaded) -> None:
        if message.thing != self.thing:
            return
        options = self.query_one("#shadow-names", OptionList)
        options.clear_options()
        options.add_options([Option("(classic)", id=CLASSIC_OPTION),
                             *[Option(name, id=name) for name in sorted(message.names)]])
        current = message.open_name if message.open_name is not None else (self.ref.name if self.ref else "")
        index = options.get_option_index(current or CLASSIC_OPTION) if current in ["", *message.names] else 0
        options.highlighted = index
        if message.open_name is not None and self.ref != ShadowRef(message.thing, message.open_name):
            self.open(ShadowRef(message.thing, message.open_name), fetch=False)

    @on(OptionList.OptionSelected, "#shadow-names")
    def _shadow_chosen(self, event: OptionList.OptionSelected) -> None:
        if self.thing is not None and event.option.id is not None:
            name = "" if event.option.id == CLASSIC_OPTION else event.option.id
            self.open(ShadowRef(self.thing, name))

    def open(self, ref: ShadowRef, fetch: bool = True) -> None:
        """Start afresh on another shadow: its own history, no answered delta, polling on.

        `fetch` is False when a worker already has its document on the way (a shadow just created)."""
        self.ref = ref
        self.document = None
        self.history = ShadowHistory(ref)
        self._answered_delta = None
        self.last_result = "loading"
        self.query_one("#edit-error", Static).update("")
        self.query_one("#history-table", DataTable).clear()
        previous, self.live = self.live, None
        if previous is not None:
            previous.remove_listener()  # nothing more from the old shadow; go_live lets go of the rest
        self.mode = "connecting"
        self._show()
        if fetch:
            self.fetch(ref, "get")
        if self._poll is not None:
            self._poll.resume()
        self.go_live(ref, previous)

    def action_new_shadow(self) -> None:
        if self.thing is None:
            self.notify("Pick a thing first.", severity="warning")
            return
        self.query_one("#new-shadow-name", Input).focus()

    @on(Input.Submitted, "#new-shadow-name")
    def _new_name(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if self.thing is None or not name:
            return
        try:
            validate_shadow_name(name)
        except ShadowError as error:
            self.notify(f"{error.message}: use 1 to 64 letters, digits, ':', '_', '-' or '$'.", severity="error")
            return
        self.create_named(self.thing, name)

    @work(thread=True, group="shadow-create", exclusive=True, exit_on_error=False, name="create named shadow")
    def create_named(self, thing: str, name: str) -> None:
        """A named shadow exists once it has been updated: an empty reported state creates it."""
        ref = ShadowRef(thing, name)
        answer = shadows.update_state(self.clients.iot_data, ref, "reported", {})
        document = shadows.get_shadow(self.clients.iot_data, ref)
        names = shadows.list_named_shadows(self.clients.iot_data, thing)
        self.post_message(self.NamesLoaded(thing, names, name))
        self.post_message(self.ShadowLoaded(ref, document, "create",
                                            f"UpdateThingShadow: created {name} (version {answer.get('version')})"))

    # -- reading --

    def action_refresh(self) -> None:
        if self.ref is None:
            self._loaded = True
            self.load_things()
            return
        self.load_names(self.ref.thing)
        self.fetch(self.ref, "get")

    def _tick(self) -> None:
        """Polling: the view is current within a few seconds, while it is shown or simulating."""
        shown = all(node.display for node in self.ancestors_with_self)
        running = any(w.group == "shadow-get" and w.is_running for w in self.workers)
        if self.ref is not None and (shown or self.simulating) and not running:
            self.fetch(self.ref, "poll")

    @work(thread=True, group="shadow-get", exclusive=True, exit_on_error=False, name="get thing shadow")
    def fetch(self, ref: ShadowRef, source: str) -> None:
        document = shadows.get_shadow(self.clients.iot_data, ref)
        found = f"version {document.get('version')}" if document else "no shadow yet (404)"
        self.post_message(self.ShadowLoaded(ref, document, source, f"GetThingShadow: {found}"))

    @on(ShadowLoaded)
    def _shadow_loaded(self, message: ShadowLoaded) -> None:
        if message.ref != self.ref or self.history is None:
            return
        before = self.document
        self.history.add(message.document, message.source)
        self.document = message.document
        # The refresh after an MQTT message, and polls that found nothing new, do not hide the result of
        # the last request made here.
        quiet = message.source == "mqtt" or (message.source == "poll" and (before or {}).get("version") == (
            message.document or {}).get("version"))
        if message.result and not quiet:
            self._result(message.result, message.origin)
        self._seed_local_state()
        self._show()
        self._show_history()
        self._simulate()

    def _result(self, result: str, origin: str) -> None:
        """A request's outcome goes to the status line, and beside whoever asked: the editor or the device."""
        self.last_result = result
        if origin == "editor":
            self.query_one("#edit-error", Static).update(Content.styled(result, "$success"))
        elif origin in ("device", "simulator"):
            self._device_log(result)

    def _seed_local_state(self) -> None:
        """The device starts from what it last reported, until someone edits its local state."""
        local = self.query_one("#device-local", TextArea)
        reported = shadows.columns(self.document).reported
        if local.text.strip() in ("", "{}") and reported:
            local.text = pretty(reported)

    # -- writing --

    def action_edit(self) -> None:
        self.query_one("#shadow-tabs", TabbedContent).active = "shadow-edit-pane"
        editor = self.query_one("#shadow-editor", TextArea)
        desired = shadows.columns(self.document).desired
        if not editor.text.strip() and desired:
            editor.text = pretty(desired)
        editor.focus()

    def action_send(self) -> None:
        if self.ref is None:
            self.notify("Pick a thing and a shadow first.", severity="warning")
            return
        error = self.query_one("#edit-error", Static)
        try:
            state = parse_object(self.query_one("#shadow-editor", TextArea).text)
        except PayloadError as problem:
            error.update(Content.assemble(("Not sent: ", "bold $error"), str(problem),
                                          ("\nJSON object, or key=value pairs; null removes a key.", "dim")))
            return
        section = self.query_one("#edit-section", Select).value
        version = (self.document or {}).get("version")
        error.update(Content.styled("sending...", "dim"))
        self.update(self.ref, "desired" if section == "desired" else "reported", state, version, "editor")

    def action_report_local(self) -> None:
        if self.ref is None:
            self.notify("Pick a thing and a shadow first.", severity="warning")
            return
        try:
            state = parse_object(self.query_one("#device-local", TextArea).text)
        except PayloadError as problem:
            self._device_log(f"local state not reported: {problem}", "$error")
            return
        self.update(self.ref, "reported", state, None, "device")

    @work(thread=True, group="shadow-update", exclusive=False, exit_on_error=False, name="update thing shadow")
    def update(self, ref: ShadowRef, section: shadows.Section, state: dict[str, Any], version: int | None,
               origin: str) -> None:
        """UpdateThingShadow, then GetThingShadow: the answer holds only what was sent, the viewer shows it all.

        Reported state is the device's: over MQTT when live (the reply comes on accepted/rejected), as
        the device with its certificate or over WebSocket SigV4 (AWS allows it by IAM policy), else
        over HTTP; each labelled so."""
        live = self.live
        if section == "reported" and live is not None and live.connection.connected:
            token = uuid.uuid4().hex[:16]
            request_body: dict[str, Any] = {"state": {section: state}, "clientToken": token}
            if version is not None:
                request_body["version"] = version
            request = ("update reported as device (MQTT)" if live.via == VIA_CERTIFICATE
                       else f"update reported over {live.via}")
            self._pending[token] = Pending(request, origin, version)
            sent = live.connection.publish(ref.topic("update"), json.dumps(request_body), qos=1)
            if not sent.ok:
                self._pending.pop(token, None)
                raise RuntimeError(f"MQTT publish to {sent.topic} refused: {sent.reason}")
            return
        request = f"UpdateThingShadow {section}" + (" as device (HTTP)" if section == "reported" else "")
        try:
            answer = shadows.update_state(self.clients.iot_data, ref, section, state, version)
        except ClientError as error:
            conflict = error.response["Error"]["Code"] == "ConflictException"
            current = shadows.get_shadow(self.clients.iot_data, ref) if conflict else None
            self.post_message(self.UpdateRejected(ref, request, error, current, origin, version))
            return
        document = shadows.get_shadow(self.clients.iot_data, ref)
        self.post_message(self.ShadowLoaded(ref, document, f"update {section}",
                                            f"{request}: accepted, version {answer.get('version')}", origin))

    @on(UpdateRejected)
    def _rejected(self, message: UpdateRejected) -> None:
        if message.ref != self.ref:
            return
        code, text, meaning, _fix = explain_error(message.error)
        status = message.error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        self.last_result = f"{message.request}: {status} {code}"
        if message.origin != "editor":
            self._device_log(f"{message.request} rejected: {status} {code}: {text}", "$error")
            self._show()
            return
        parts: list[str | tuple[str, str]] = [(f"{status} {code}: ", "bold $error"), text, (f"\n{meaning}", "dim")]
        if message.current is not None and self.history is not None:
            self.history.add(message.current, "get (after 409)")
            self.document = message.current
            now = message.current.get("version")
            columns = shadows.columns(message.current)
            parts += [("\nYou edited version ", "bold"), (str(message.version), "bold"),
                      ("; the shadow is at version ", "bold"), (str(now), "bold $warning"),
                      (". Your text is kept: Ctrl+S sends it against version " f"{now}.", "bold"),
                      f"\ncurrent desired  {json.dumps(columns.desired)}",
                      f"\ncurrent reported {json.dumps(columns.reported)}"]
            self._show_history()
        self.query_one("#edit-error", Static).update(Content.assemble(*parts))
        self._show()

    def action_delete(self) -> None:
        ref = self.ref
        if ref is None or self.document is None:
            self.notify("No shadow to delete here.", severity="warning")
            return
        body = (f"The shadow {ref.label} and its state are deleted. Its version number is kept by AWS for "
                "48 hours, so a new shadow with this name continues from it.")
        self.app.push_screen(ConfirmScreen(f"Delete shadow {ref.label}?", body, "Delete"),
                             lambda ok: ok and self.delete(ref))

    @work(thread=True, group="shadow-delete", exclusive=True, exit_on_error=False, name="delete thing shadow")
    def delete(self, ref: ShadowRef) -> None:
        answer = shadows.delete_shadow(self.clients.iot_data, ref)
        self.post_message(self.NamesLoaded(ref.thing, shadows.list_named_shadows(self.clients.iot_data, ref.thing),
                                           None))
        self.post_message(self.ShadowLoaded(ref, None, "delete",
                                            f"DeleteThingShadow: deleted at version {answer.get('version')}"))

    # -- live over MQTT --

    @work(thread=True, group="shadow-live", exclusive=True, exit_on_error=False, name="subscribe to shadow topics")
    def go_live(self, ref: ShadowRef, previous: Live | None = None) -> None:
        """Connect and subscribe: as the device with its certificate from the wizard's folder when there
        is one, else (or when that fails) over WebSocket with the target's credentials (SigV4).

        The `previous` shadow's subscription is released only afterwards, so a connection both use
        stays up instead of being closed and opened again. awscrt is imported here, not with the
        view: the app's first frame need not wait for it."""
        try:
            self._go_live(ref)
        finally:
            if previous is not None:
                self._release(previous, self.app.mqtt_pool)  # type: ignore[attr-defined]

    def _go_live(self, ref: ShadowRef) -> None:
        from iot_tui.aws.mqtt import MqttSettings, new_client_id

        target = self.clients.target
        try:
            host = self._endpoint()
        except (ClientError, BotoCoreError) as error:
            self.post_message(self.LiveChanged(ref, None, "no MQTT endpoint", f"DescribeEndpoint failed: {error}"))
            return
        root = self.app.cert_root  # type: ignore[attr-defined]
        files = [f for f in list_device_folders(root, ca_name(target)) if f.thing == ref.thing] if root else []
        ways: list[tuple[str, Callable[[], MqttSettings]]] = []
        if files:
            device = files[0]
            # Devices connect with their thing name as client id: the pool shares it with other screens.
            ways.append((VIA_CERTIFICATE, lambda: MqttSettings.mtls(
                target, device.cert_path, device.key_path, ref.thing, ca_file=device.ca_path, host=host,
                connect_timeout=5.0, operation_timeout=5.0)))
        if self._ws_client_id is None:
            self._ws_client_id = new_client_id("iot-tui-shadows")
        client_id = self._ws_client_id
        ways.append((VIA_WEBSOCKET, lambda: MqttSettings.websocket(
            target, client_id, host=host, connect_timeout=5.0, operation_timeout=5.0)))
        failures: list[str] = []
        for via, settings in ways:
            try:
                live = self._subscribe(ref, settings(), via)
            # Whatever stops a way (MqttError, settings' ValueError, awscrt's credential errors) is a
            # reason to try the next one, and to say why when polling is all that is left.
            except Exception as error:
                failures.append(failure_text(via, error))
                continue
            if get_current_worker().is_cancelled:  # another shadow was opened meanwhile
                self._release(live, self.app.mqtt_pool)  # type: ignore[attr-defined]
                return
            self.post_message(self.LiveChanged(ref, live, "live", "; ".join(failures)))
            return
        reason = f"{VIA_WEBSOCKET} failed" if len(ways) == 1 else "certificate and WebSocket failed"
        self.post_message(self.LiveChanged(ref, None, reason, "; ".join(failures)))

    def _endpoint(self) -> str:
        """Blocking on AWS: the data endpoint from DescribeEndpoint (iot:Data-ATS), asked once."""
        if self._mqtt_host is None:
            self._mqtt_host = self.clients.target.mqtt_host or self.clients.iot.describe_endpoint(
                endpointType="iot:Data-ATS")["endpointAddress"]
        return self._mqtt_host

    def _subscribe(self, ref: ShadowRef, settings: MqttSettings, via: str) -> Live:
        """Blocking: take the pool's connection for these settings, connect it, subscribe to the topics.

        Raises (MqttError, mostly) with nothing held when any step fails."""
        from iot_tui.aws.mqtt import MessageReceived, MqttError

        pool = self.app.mqtt_pool  # type: ignore[attr-defined]
        connection = pool.acquire(settings)
        topics = [ref.topic(suffix) for suffix in LIVE_TOPICS]

        def listener(event: MqttEvent) -> None:
            if isinstance(event, MessageReceived) and event.topic in topics:
                self.post_message(self.ShadowMessage(ref, event.topic, event.payload))

        live = Live(connection, connection.add_listener(listener), [], via)
        try:
            connection.connect()
            for topic in topics:
                result = connection.subscribe(topic)
                if not result.ok:
                    raise MqttError(f"subscribe {topic}: {result.reason}")
                live.topics.append(topic)
        except BaseException:
            self._release(live, pool)
            raise
        return live

    @staticmethod
    def _release(live: Live, pool: Any) -> None:
        """Blocking: unsubscribe what we hold and hand the connection back to the pool."""
        live.remove_listener()
        for topic in live.topics:
            if live.connection.connected:
                live.connection.unsubscribe(topic)
        pool.release(live.connection)

    @on(LiveChanged)
    def _live_changed(self, message: LiveChanged) -> None:
        if message.ref != self.ref:
            if message.live is not None:
                self.release_live(message.live)
            return
        if self.live is not None and self.live is not message.live:
            self.stop_live()  # the same shadow opened twice: keep the newer subscription only
        self.live = message.live
        self.mode = message.reason
        header = self.query_one("#shadow-header", Static)
        header.tooltip = message.detail or None
        why = (message.detail or message.reason).rstrip(".")
        if message.live is None:
            self._device_log(f"{why}. Polling every {self.poll_seconds:g} s instead.", "$error")
        elif message.detail:
            self._device_log(f"{why}. Live over {message.live.via} instead.", "$warning")
        if self._poll is not None:
            if message.live:
                self._poll.pause()
            else:
                self._poll.resume()
        self._show()

    def stop_live(self) -> None:
        if self.live is not None:
            live, self.live = self.live, None
            live.remove_listener()
            self.release_live(live)

    @work(thread=True, group="shadow-live-release", exit_on_error=False, name="unsubscribe from shadow topics")
    def release_live(self, live: Live) -> None:
        self._release(live, self.app.mqtt_pool)  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        """Threads we start we stop: the subscription goes and the pool may disconnect."""
        if self.live is not None:
            self._release(self.live, self.app.mqtt_pool)  # type: ignore[attr-defined]
            self.live = None

    @on(ShadowMessage)
    def _shadow_message(self, message: ShadowMessage) -> None:
        """documents go into the history; every message refreshes the view with a get (for the delta)."""
        if message.ref != self.ref or self.history is None:
            return
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        suffix = message.topic.removeprefix(message.ref.topic(""))
        if suffix == "update/documents":
            self.history.add_documents_message(body)
            self._show_history()
        replies = ("update/accepted", "update/rejected")
        pending = self._pending.pop(str(body.get("clientToken")), None) if suffix in replies else None
        if pending is not None and suffix == "update/rejected":
            self.post_message(self.MqttRejected(message.ref, pending, int(body.get("code", 0)),
                                                str(body.get("message", ""))))
            return
        if pending is not None:
            self._result(f"{pending.request}: accepted, version {body.get('version')}", pending.origin)
        self.fetch(message.ref, "mqtt")

    @on(MqttRejected)
    def _mqtt_rejected(self, message: MqttRejected) -> None:
        """Shown like an HTTP refusal: the same code names, the same place, the text kept."""
        name = REJECTED_CODES.get(message.code, str(message.code))
        error = ClientError({"Error": {"Code": name, "Message": message.text},
                             "ResponseMetadata": {"HTTPStatusCode": message.code}}, "UpdateThingShadow")
        self.rejected(message.ref, message.pending, error)

    @work(thread=True, group="shadow-rejected", exit_on_error=False, name="get thing shadow after a conflict")
    def rejected(self, ref: ShadowRef, pending: Pending, error: ClientError) -> None:
        conflict = error.response["Error"]["Code"] == "ConflictException"
        current = shadows.get_shadow(self.clients.iot_data, ref) if conflict else None
        self.post_message(self.UpdateRejected(ref, pending.request, error, current, pending.origin, pending.version))

    # -- the device simulator --

    def action_toggle_simulator(self) -> None:
        self.query_one("#simulator", Switch).toggle()

    @on(Switch.Changed, "#simulator")
    def _simulator_switched(self, event: Switch.Changed) -> None:
        self.simulating = event.value
        self._device_log("simulator on: answering each delta" if event.value else "simulator off")
        self._simulate()

    @on(Input.Changed, "#simulator-delay")
    def _delay_changed(self, event: Input.Changed) -> None:
        try:
            self.simulator_delay = max(0.0, float(event.value))
        except ValueError:
            return

    def watch_simulating(self, simulating: bool) -> None:
        self.set_class(simulating, "-simulating")
        self._show()

    def _simulate(self) -> None:
        """Answer a delta once per version: the device applies the desired values, then reports them."""
        columns = shadows.columns(self.document)
        if not self.simulating or self.ref is None or not columns.delta or columns.version == self._answered_delta:
            return
        self._answered_delta = columns.version
        ref, delta = self.ref, columns.delta
        self._device_log(f"delta at version {columns.version}: {json.dumps(delta)}; "
                         f"reporting in {self.simulator_delay:g} s")
        self.set_timer(self.simulator_delay, lambda: self._answer(ref, delta))

    def _answer(self, ref: ShadowRef, delta: dict[str, Any]) -> None:
        if not self.simulating or ref != self.ref:
            return
        local = self.query_one("#device-local", TextArea)
        try:
            state = parse_object(local.text) if local.text.strip() else {}
        except PayloadError:
            state = {}
        local.text = pretty(merge_state(state, delta))
        self.update(ref, "reported", delta, None, "simulator")

    def _device_log(self, line: str, style: str = "") -> None:
        self._device_lines = [*self._device_lines, (line + "\n", style)][-50:]
        self.query_one("#device-log", Static).update(Content.assemble(*self._device_lines).rstrip())
        self.query_one("#device-log-scroll", VerticalScroll).scroll_end(animate=False)

    # -- showing --

    def _show(self) -> None:
        columns = shadows.columns(self.document)
        self.query_one(ShadowColumns).show(columns)
        header = self.query_one("#shadow-header", Static)
        mode = (f"live · {self.live.via}" if self.live
                else "connecting MQTT..." if self.mode == "connecting"
                else f"polling: {self.mode}")
        if self.ref is None:
            header.update("Pick a thing, then a shadow (Enter).")
        elif self.document is None:
            header.update(Content.assemble((self.ref.label, "bold"), " · no shadow yet (Ctrl+S creates it) · ",
                                           (mode, "dim")))
        else:
            updated = latest_timestamp(columns.metadata)
            header.update(Content.assemble((self.ref.label, "bold"), " · version ", (str(columns.version), "bold"),
                                           f" · updated {clock_time(updated)} UTC · ", (mode, "dim")))
        version = "-" if columns.version is None else str(columns.version)
        self.query_one("#edit-hint", Static).update(
            f"Ctrl+S sends against v{version} · JSON or key=value · null removes a key")
        thing = self.ref.thing if self.ref else "-"
        name = (self.ref.name or "classic") if self.ref else "-"
        simulator = " · simulator on" if self.simulating else ""
        self.query_one("#shadow-status", Static).update(Content.assemble(
            ("● live" if self.live else f"● polling every {self.poll_seconds:g} s" if self.ref else "● polling",
             "$success" if self.live else "$warning"),
            f" · {thing} · shadow {name} · v{version}{simulator} · ",
            ("last: ", "dim"), self.last_result))

    def _show_history(self) -> None:
        """The timeline gains each new version; the diff follows the newest two until a pair is chosen."""
        if self.history is None:
            return
        versions = self.history.versions()
        table = self.query_one("#history-table", DataTable)
        if [int(str(key.value)) for key in table.rows] == versions:
            return
        table.clear()
        for version in versions:
            snapshot = self.history.snapshots[version]
            table.add_row(str(version), clock_time(snapshot.timestamp), snapshot.source, key=str(version))
        options = [(f"v{v}", v) for v in versions]
        for select_id in ("#diff-from", "#diff-to"):
            self.query_one(select_id, Select).set_options(options)
        if len(versions) >= 2:
            table.move_cursor(row=len(versions) - 1)
            self.compare(versions[-2], versions[-1])
        else:
            self._show_diff()

    def compare(self, old: int, new: int) -> None:
        self.query_one("#diff-from", Select).value = old
        self.query_one("#diff-to", Select).value = new
        self._show_diff()

    @on(DataTable.RowHighlighted, "#history-table")
    def _version_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Highlighting a version diffs it against the one before it; the selects choose any pair."""
        if self.history is None or event.row_key.value is None:
            return
        version = int(event.row_key.value)
        earlier = [v for v in self.history.versions() if v < version]
        if earlier:
            self.compare(earlier[-1], version)

    @on(Select.Changed, "#diff-from")
    @on(Select.Changed, "#diff-to")
    def _show_diff(self) -> None:
        old = self.query_one("#diff-from", Select).value
        new = self.query_one("#diff-to", Select).value
        body = self.query_one("#history-diff", Static)
        if self.history is None or not isinstance(old, int) or not isinstance(new, int):
            body.update(Content.styled("Two versions are needed for a diff: every version seen here is kept.",
                                       "dim"))
            return
        if old not in self.history.snapshots or new not in self.history.snapshots:
            return
        body.update(render_changes(self.history.diff(old, new), f"version {old} -> {new}"))
