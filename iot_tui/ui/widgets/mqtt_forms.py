"""The MQTT pane's forms: connection, subscriptions, publish, and the export dialog.

Each form validates what is typed as it is typed and keeps the user's input; it posts a typed
message up when the user acts, and the MQTT view (which owns the connection) does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, DataTable, Input, Label, OptionList, Select, Static, TextArea

from iot_tui.aws.device_files import DeviceFiles
from iot_tui.aws.mqtt import DEFAULT_KEEP_ALIVE, KEEP_ALIVE_MAX, KEEP_ALIVE_MIN, AuthKind, Protocol
from iot_tui.aws.mqtt_payload import PAYLOAD_KINDS, PayloadKind, parse_payload
from iot_tui.iotcore.topics import (
    TopicError,
    reserved_publish_allowed,
    reserved_subscribe_allowed,
    validate_topic_filter,
    validate_topic_name,
)

QOS_OPTIONS = [("QoS 0", 0), ("QoS 1", 1)]
HISTORY_SIZE = 20


@dataclass(frozen=True)
class ConnectRequest:
    """What the connection form asks for; the view turns it into `MqttSettings` in a worker."""

    auth: AuthKind
    device: DeviceFiles | None
    protocol: Protocol
    client_id: str
    keep_alive: int
    clean_session: bool


@dataclass(frozen=True)
class PublishRequest:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    user_properties: tuple[tuple[str, str], ...]
    kind: PayloadKind
    text: str


class ConnectionForm(Widget):
    """mTLS with a device folder from the certificate wizard, or WebSocket signed with the target's keys."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.devices: list[DeviceFiles] = []
        self.generated_client_id = ""
        self._auto_client_id = ""

    def compose(self) -> ComposeResult:
        with Horizontal(classes="mqtt-row"):
            yield Select([("mTLS device", "mtls"), ("WebSocket SigV4", "websocket")], value="mtls",
                         allow_blank=False, id="mqtt-auth")
            yield Select([("MQTT 5", "5"), ("MQTT 3.1.1", "3.1.1")], value="5", allow_blank=False,
                         id="mqtt-protocol")
        yield Select([], prompt="device certificate (wizard folder)", id="mqtt-device")
        with Horizontal(classes="mqtt-row"):
            yield Input(placeholder="client id", id="mqtt-client-id")
            yield Input(str(DEFAULT_KEEP_ALIVE), type="integer", tooltip="keep-alive, seconds", id="mqtt-keep-alive")
        yield Checkbox("Clean session", value=True, id="mqtt-clean")

    def set_devices(self, devices: list[DeviceFiles]) -> None:
        self.devices = devices
        select = self.query_one("#mqtt-device", Select)
        select.set_options([(f"{d.thing}  {d.certificate_id[:12]}", index) for index, d in enumerate(devices)])
        if devices:
            select.value = 0
        self._default_client_id()

    @property
    def auth(self) -> AuthKind:
        return self.query_one("#mqtt-auth", Select).value  # type: ignore[return-value]

    def selected_device(self) -> DeviceFiles | None:
        value = self.query_one("#mqtt-device", Select).value
        return self.devices[value] if isinstance(value, int) and value < len(self.devices) else None

    @on(Select.Changed, "#mqtt-auth, #mqtt-device")
    def _default_client_id(self) -> None:
        """Devices conventionally connect with their thing name; WebSocket gets a generated id.

        Only an id the form filled in itself is replaced, never one the user typed.
        """
        self.query_one("#mqtt-device", Select).display = self.auth == "mtls"
        field = self.query_one("#mqtt-client-id", Input)
        if field.value and field.value != self._auto_client_id:
            return
        device = self.selected_device()
        self._auto_client_id = device.thing if self.auth == "mtls" and device else self.generated_client_id
        field.value = self._auto_client_id

    def request(self) -> ConnectRequest:
        """The form's values; ValueError names the field that is wrong."""
        device = self.selected_device() if self.auth == "mtls" else None
        if self.auth == "mtls" and device is None:
            raise ValueError("pick a device certificate (make one with the Certificates tab's wizard)")
        client_id = self.query_one("#mqtt-client-id", Input).value.strip()
        if not client_id:
            raise ValueError("client id must not be empty")
        try:
            keep_alive = int(self.query_one("#mqtt-keep-alive", Input).value)
        except ValueError:
            raise ValueError("keep-alive must be a number of seconds") from None
        if not KEEP_ALIVE_MIN <= keep_alive <= KEEP_ALIVE_MAX:
            raise ValueError(f"keep-alive must be {KEEP_ALIVE_MIN}..{KEEP_ALIVE_MAX} s on AWS IoT Core")
        protocol = self.query_one("#mqtt-protocol", Select).value
        return ConnectRequest(self.auth, device, protocol, client_id, keep_alive,  # type: ignore[arg-type]
                              self.query_one("#mqtt-clean", Checkbox).value)


def filter_problem(topic_filter: str) -> str:
    """Why AWS IoT Core would refuse this filter, or "" when it is fine."""
    try:
        validate_topic_filter(topic_filter)
    except TopicError as error:
        return str(error)
    if not reserved_subscribe_allowed(topic_filter):
        return "AWS IoT Core does not allow subscribing to this reserved topic filter"
    return ""


class SubscriptionsPanel(Widget):
    """Filters with their QoS and what the broker said (SUBACK granted QoS, or the refusal and why)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("delete", "remove", "Unsubscribe", id="mqtt-unsubscribe"),
    ]

    class Added(Message):
        def __init__(self, topic_filter: str, qos: int) -> None:
            super().__init__()
            self.topic_filter = topic_filter
            self.qos = qos

    class Removed(Message):
        def __init__(self, topic_filter: str) -> None:
            super().__init__()
            self.topic_filter = topic_filter

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(classes="mqtt-row"):
            yield Input(placeholder="topic filter, e.g. sensors/+/temperature (Enter adds)", id="sub-filter")
            yield Select(QOS_OPTIONS, value=1, allow_blank=False, id="sub-qos")
        yield Static("", id="sub-problem")
        yield DataTable(id="sub-table", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#sub-table", DataTable)
        table.add_column("Filter", key="filter", width=20)
        table.add_column("QoS", key="qos", width=3)
        table.add_column("SUBACK", key="status")

    @on(Input.Changed, "#sub-filter")
    def _check(self, event: Input.Changed) -> None:
        self.query_one("#sub-problem", Static).update(Content(filter_problem(event.value) if event.value else ""))

    @on(Input.Submitted, "#sub-filter")
    def _submit(self, event: Input.Submitted) -> None:
        topic_filter = event.value.strip()
        problem = filter_problem(topic_filter)
        if problem:
            self.query_one("#sub-problem", Static).update(Content(problem))
            return
        qos = int(self.query_one("#sub-qos", Select).value)  # type: ignore[arg-type]
        if topic_filter not in self.rows:
            self.query_one("#sub-table", DataTable).add_row(Text(topic_filter), str(qos), "pending", key=topic_filter)
        self.rows[topic_filter] = qos
        event.input.value = ""
        self.post_message(self.Added(topic_filter, qos))

    def set_status(self, topic_filter: str, status: str) -> None:
        if topic_filter in self.rows:
            self.query_one("#sub-table", DataTable).update_cell(topic_filter, "status", Text(status), update_width=True)

    def action_remove(self) -> None:
        table = self.query_one("#sub-table", DataTable)
        if not self.rows or not table.is_valid_row_index(table.cursor_row):
            return
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        topic_filter = str(key.value)
        table.remove_row(key)
        del self.rows[topic_filter]
        self.post_message(self.Removed(topic_filter))


def parse_user_properties(text: str) -> tuple[tuple[str, str], ...]:
    """`key=value key2=value2` into MQTT 5 user property pairs (names may repeat, as MQTT allows)."""
    pairs = []
    for item in text.split():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"user property {item!r} is not key=value")
        pairs.append((name, value))
    return tuple(pairs)


class PublishForm(Widget):
    """Topic, QoS, retain, payload kind and text, MQTT 5 user properties; keeps what was sent to resend."""

    class Publish(Message):
        def __init__(self, request: PublishRequest) -> None:
            super().__init__()
            self.request = request

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history: list[PublishRequest] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder="topic, e.g. sensors/device1/temperature", id="pub-topic")
        with Horizontal(classes="mqtt-row"):
            yield Select(QOS_OPTIONS, value=1, allow_blank=False, id="pub-qos")
            yield Select([(kind, kind) for kind in PAYLOAD_KINDS], value="json", allow_blank=False, id="pub-kind")
            yield Checkbox("Retain", id="pub-retain")
        yield TextArea("", id="pub-payload", soft_wrap=True)
        yield Input(placeholder="user properties: key=value key2=value2 (MQTT 5)", id="pub-props")
        yield Static("", id="pub-problem")
        yield Static("", id="pub-result")
        yield Label("Sent (Enter loads it back to resend)", classes="mqtt-hint")
        yield OptionList(id="pub-history")

    def request(self) -> PublishRequest:
        """The message to send; TopicError or ValueError says what is wrong, before anything is sent."""
        topic = self.query_one("#pub-topic", Input).value.strip()
        validate_topic_name(topic)
        if not reserved_publish_allowed(topic):
            raise TopicError("AWS IoT Core does not allow publishing to this reserved topic", topic)
        kind: PayloadKind = self.query_one("#pub-kind", Select).value  # type: ignore[assignment]
        text = self.query_one("#pub-payload", TextArea).text
        payload = parse_payload(text, kind)
        return PublishRequest(topic, payload, int(self.query_one("#pub-qos", Select).value),  # type: ignore[arg-type]
                              self.query_one("#pub-retain", Checkbox).value,
                              parse_user_properties(self.query_one("#pub-props", Input).value), kind, text)

    @on(Input.Changed, "#pub-topic, #pub-props")
    @on(TextArea.Changed, "#pub-payload")
    @on(Select.Changed, "#pub-kind")
    def _check(self) -> None:
        self.query_one("#pub-problem", Static).update(Content(self.problem()))

    def problem(self) -> str:
        if not self.query_one("#pub-topic", Input).value.strip():
            return ""
        try:
            self.request()
        except (TopicError, ValueError) as error:
            return str(error)
        return ""

    def submit(self) -> None:
        try:
            request = self.request()
        except (TopicError, ValueError) as error:
            self.query_one("#pub-problem", Static).update(Content(str(error)))
            return
        self.post_message(self.Publish(request))

    def show_result(self, text: str, ok: bool) -> None:
        result = self.query_one("#pub-result", Static)
        result.update(Content(text))
        result.set_class(not ok, "-refused")

    def remember(self, request: PublishRequest) -> None:
        """Newest first, without repeating the same message."""
        self.history = [request, *(r for r in self.history if r != request)][:HISTORY_SIZE]
        history = self.query_one("#pub-history", OptionList)
        history.clear_options()
        history.add_options([Content(f"{r.topic}  {r.payload.decode(errors='replace')[:40]}") for r in self.history])

    def load(self, request: PublishRequest) -> None:
        self.query_one("#pub-topic", Input).value = request.topic
        self.query_one("#pub-qos", Select).value = request.qos
        self.query_one("#pub-kind", Select).value = request.kind
        self.query_one("#pub-retain", Checkbox).value = request.retain
        self.query_one("#pub-payload", TextArea).text = request.text
        self.query_one("#pub-props", Input).value = " ".join(f"{k}={v}" for k, v in request.user_properties)

    @on(OptionList.OptionSelected, "#pub-history")
    def _resend(self, event: OptionList.OptionSelected) -> None:
        self.load(self.history[event.option_index])
        self.query_one("#pub-payload", TextArea).focus()


@dataclass(frozen=True)
class ExportChoice:
    path: Path
    format: Literal["ndjson", "csv"]
    filtered: bool


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Where to write the buffer, in which format, and whether only the filtered view."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="mqtt-export-cancel")]

    def __init__(self, default_path: Path) -> None:
        super().__init__()
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog"):
            yield Label("Export messages", classes="section-title")
            yield Input(str(self.default_path), id="export-path")
            with Horizontal(classes="mqtt-row"):
                yield Select([("NDJSON", "ndjson"), ("CSV", "csv")], value="ndjson", allow_blank=False,
                             id="export-format")
                yield Checkbox("Filtered view only", value=True, id="export-filtered")
            with Horizontal(classes="mqtt-row"):
                yield Button("Export", variant="primary", id="export-ok")
                yield Button("Cancel", id="export-cancel")

    @on(Select.Changed, "#export-format")
    def _suffix(self, event: Select.Changed) -> None:
        path = self.query_one("#export-path", Input)
        path.value = str(Path(path.value).with_suffix(f".{event.value}"))

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-ok")
    def _ok(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        if path:
            self.dismiss(ExportChoice(Path(path).expanduser(), self.query_one("#export-format", Select).value,  # type: ignore[arg-type]
                                      self.query_one("#export-filtered", Checkbox).value))

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
