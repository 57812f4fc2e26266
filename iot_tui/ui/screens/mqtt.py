"""The live MQTT pane: connect as a device (mTLS) or with the target's keys (WebSocket), subscribe,
publish, and watch messages without the screen falling behind a flood.

awscrt calls our listener on its own threads; the listener only puts events on a thread-safe queue.
A timer drains the queue every DRAIN_SECONDS into the bounded `MessageLog` and redraws what changed
once per tick, never once per message (Toolong's pattern). Connecting, subscribing, publishing and
diagnosing are blocking calls, so each runs in a thread worker and reports back as a typed message.
The connection comes from the app's `ConnectionPool`, so the Shadows and Rules screens share it.
"""

from __future__ import annotations

import queue
import random
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Label, Sparkline, Static, TabbedContent, TabPane

from iot_tui.aws.core_log import CoreLogEntry, client_log
from iot_tui.aws.device_files import ca_name, list_device_folders
from iot_tui.aws.mqtt import Connected as MqttConnected  # the view has a Connected message of its own
from iot_tui.aws.mqtt import (
    ConnectionFailed,
    Disconnected,
    MessageReceived,
    MqttConnection,
    MqttError,
    MqttEvent,
    MqttSettings,
    PublishResult,
    SubscriptionResult,
    new_client_id,
)
from iot_tui.aws.mqtt_diagnose import Step, diagnose
from iot_tui.aws.mqtt_log import MessageLog
from iot_tui.aws.mqtt_payload import test_message
from iot_tui.iotcore.topics import TopicError, matches
from iot_tui.ui.base import AwsWidget
from iot_tui.ui.widgets.mqtt_forms import (
    ConnectionForm,
    ConnectRequest,
    ExportChoice,
    ExportScreen,
    PublishForm,
    PublishRequest,
    SubscriptionsPanel,
    filter_problem,
)
from iot_tui.ui.widgets.mqtt_messages import (
    LiveLine,
    TopicTreeView,
    clock_time,
    render_detail,
    render_diagnosis,
    render_status,
    short_payload,
)

DRAIN_SECONDS = 0.1
# During a flood the table is redrawn at most this often, so key presses find the loop free.
REDRAW_SECONDS = 0.25
# Rows the log table holds: a page of the buffer, so redraws cost the same at 10 or 10,000 messages.
PAGE_ROWS = 50
PAYLOAD_WIDTH = 80
PLOT_POINTS = 120
TREE_SECONDS = 1.0


class MqttView(AwsWidget):
    TITLE = "MQTT"
    FOCUS_FIRST = "#mqtt-log"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "connect", "Connect", id="mqtt-connect"),
        Binding("f6", "disconnect", "Disconnect", id="mqtt-disconnect"),
        Binding("f7", "diagnose", "Diagnose", id="mqtt-diagnose"),
        Binding("f8", "pause", "Pause/resume", id="mqtt-pause"),
        Binding("f9", "publish", "Publish", id="mqtt-publish"),
        Binding("f10", "test_message", "Test message", id="mqtt-test-message"),
        Binding("f4", "follow", "Follow/newest first", id="mqtt-follow"),
        Binding("ctrl+l", "clear", "Clear log", id="mqtt-clear"),
        Binding("ctrl+o", "export", "Export", id="mqtt-export"),
    ]

    class Connected(Message):
        def __init__(self, connection: MqttConnection) -> None:
            super().__init__()
            self.connection = connection

    class ConnectFailed(Message):
        def __init__(self, error: str, settings: MqttSettings | None) -> None:
            super().__init__()
            self.error = error
            self.settings = settings

    class Released(Message):
        """The view let go of its connection (the pool disconnects it when no screen holds it)."""

    class Subscribed(Message):
        def __init__(self, result: SubscriptionResult) -> None:
            super().__init__()
            self.result = result

    class Published(Message):
        def __init__(self, request: PublishRequest, result: PublishResult) -> None:
            super().__init__()
            self.request = request
            self.result = result

    class Diagnosed(Message):
        """The steps' results, and on a local core its journal for this client (None elsewhere)."""

        def __init__(self, steps: list[Step], core_log: list[CoreLogEntry] | None = None) -> None:
            super().__init__()
            self.steps = steps
            self.core_log = core_log

    class Exported(Message):
        def __init__(self, path: Path, count: int) -> None:
            super().__init__()
            self.path = path
            self.count = count

    def __init__(self, *, id: str | None = None, capacity: int | None = None) -> None:
        super().__init__(id=id)
        self.log_buffer = MessageLog(capacity) if capacity else MessageLog()
        self.events: queue.SimpleQueue[MqttEvent] = queue.SimpleQueue()
        self.connection: MqttConnection | None = None
        self.subscribed: dict[str, int] = {}
        self.newest_first = True
        self.note = ""
        self.steps: list[Step] = []
        self.core_log: list[CoreLogEntry] | None = None
        self.selected_seq: int | None = None
        self._remove_listener: Any = None
        self._dirty = False
        self._tree_due = 0.0
        self._redraw_due = 0.0
        self._drain: Timer | None = None
        self._sequence = 0
        self._page: list[int] = []

    def compose(self) -> ComposeResult:
        yield LiveLine(id="mqtt-status")
        with Horizontal(id="mqtt-body"):
            with VerticalScroll(id="mqtt-side"):
                yield Label("Connection  F5 on · F6 off · F7 diagnose", classes="section-title")
                yield ConnectionForm(id="mqtt-connection")
                yield Label("Subscriptions  Del removes", classes="section-title")
                yield SubscriptionsPanel(id="mqtt-subscriptions")
                yield Label("Publish  F9 send · F10 test message", classes="section-title")
                yield PublishForm(id="mqtt-publish-form")
            with Vertical(id="mqtt-main"):
                with Horizontal(id="mqtt-filters"):
                    yield Input(placeholder="show topic filter, e.g. sensors/#", id="mqtt-topic-filter")
                    yield Input(placeholder="text in topic or payload", id="mqtt-text-filter")
                    yield LiveLine(id="mqtt-log-state")
                yield DataTable(id="mqtt-log", cursor_type="row", zebra_stripes=True)
                with TabbedContent(id="mqtt-lower"):
                    with TabPane("Detail", id="mqtt-tab-detail"), VerticalScroll(id="mqtt-detail-scroll"):
                        yield Static("Select a message to see it in full.", id="mqtt-detail")
                    with TabPane("Topics", id="mqtt-tab-topics"):
                        yield TopicTreeView(id="mqtt-topics")
                    with TabPane("Plot", id="mqtt-tab-plot"):
                        yield Input(placeholder="numeric JSON field, e.g. temperature or data.values[0]",
                                    id="mqtt-plot-field")
                        yield Sparkline([], id="mqtt-sparkline")
                        yield LiveLine(id="mqtt-plot-summary")
                    with TabPane("Diagnostics", id="mqtt-tab-diagnostics"), VerticalScroll():
                        yield Static("F7 checks each step from DNS to CONNACK.", id="mqtt-diagnostics")

    def on_mount(self) -> None:
        table = self.query_one("#mqtt-log", DataTable)
        table.add_column("#", key="seq", width=5)
        table.add_column("Time", key="time", width=12)
        table.add_column("Topic", key="topic", width=24)
        table.add_column("QoS", key="qos", width=3)
        # Fixed widths: an auto-width column would measure every cell on every redraw.
        table.add_column("Payload", key="payload", width=PAYLOAD_WIDTH)
        form = self.query_one(ConnectionForm)
        form.generated_client_id = new_client_id(token=lambda: f"{random.Random(self._seed()).getrandbits(32):08x}")
        self._drain = self.set_interval(DRAIN_SECONDS, self.drain)
        self._show_status()
        self._show_log_state()

    def _seed(self) -> int | None:
        return self.app.seed  # type: ignore[attr-defined]

    def activated(self) -> None:
        """Device folders may have been made in the Certificates tab meanwhile."""
        self.load_devices()

    @work(thread=True, group="mqtt-devices", exclusive=True, exit_on_error=False, name="list device certificates")
    def load_devices(self) -> None:
        root = self.app.cert_root  # type: ignore[attr-defined]
        devices = list_device_folders(root, ca_name(self.clients.target)) if root else []
        self.app.call_from_thread(self.query_one(ConnectionForm).set_devices, devices)

    # -- connection --

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that need a connection are dimmed in the footer until there is one."""
        if action in ("disconnect", "publish", "test_message"):
            return True if self.connection is not None else None
        if action == "connect":
            return True if self.connection is None else None
        return True

    def action_connect(self) -> None:
        try:
            request = self.query_one(ConnectionForm).request()
        except ValueError as error:
            self.note = str(error)
            self._show_status()
            return
        self.note = "connecting…"
        self._show_status()
        self.connect(request)

    def _settings(self, request: ConnectRequest) -> MqttSettings:
        """Blocking on AWS: the data endpoint comes from DescribeEndpoint (iot:Data-ATS)."""
        target = self.clients.target
        host = target.mqtt_host or self.clients.iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
        options = {"protocol": request.protocol, "keep_alive": request.keep_alive,
                   "clean_session": request.clean_session}
        if request.auth == "websocket":
            return MqttSettings.websocket(target, request.client_id, host=host, **options)
        assert request.device is not None
        return MqttSettings.mtls(target, request.device.cert_path, request.device.key_path, request.client_id,
                                 ca_file=request.device.ca_path, host=host, **options)

    @work(thread=True, group="mqtt-connect", exclusive=True, exit_on_error=False, name="MQTT connect")
    def connect(self, request: ConnectRequest) -> None:
        settings = None
        try:
            settings = self._settings(request)
            connection = self.app.mqtt_pool.acquire(settings)  # type: ignore[attr-defined]
        except (MqttError, ValueError) as error:
            self.post_message(self.ConnectFailed(str(error), settings))
            return
        remove = connection.add_listener(self.events.put)
        try:
            connection.connect()
        except MqttError as error:
            remove()
            self.app.mqtt_pool.release(connection)  # type: ignore[attr-defined]
            self.post_message(self.ConnectFailed(str(error), settings))
            return
        self._remove_listener = remove
        self.post_message(self.Connected(connection))

    @on(Connected)
    def _connected(self, message: Connected) -> None:
        self.connection = message.connection
        self.note = ""
        self.refresh_bindings()
        self._show_status()
        for topic_filter, qos in self.query_one(SubscriptionsPanel).rows.items():
            self.subscribe(topic_filter, qos)

    @on(ConnectFailed)
    def _connect_failed(self, message: ConnectFailed) -> None:
        self.note = f"connect failed: {message.error}"
        self._show_status()
        if message.settings is not None:
            self.query_one("#mqtt-lower", TabbedContent).active = "mqtt-tab-diagnostics"
            self.run_diagnosis(message.settings)

    def action_disconnect(self) -> None:
        if self.connection is not None:
            connection, self.connection = self.connection, None
            self.refresh_bindings()
            self.release(connection, dict(self.subscribed))
            self.subscribed.clear()

    @work(thread=True, group="mqtt-release", exit_on_error=False, name="MQTT disconnect")
    def release(self, connection: MqttConnection, held: dict[str, int]) -> None:
        self._release(connection, held)
        self.post_message(self.Released())

    def _release(self, connection: MqttConnection, held: dict[str, int]) -> None:
        """Blocking: drop our listener and holds; the pool disconnects when no other screen uses it."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        for topic_filter in held:
            if connection.connected:
                connection.unsubscribe(topic_filter)
        self.app.mqtt_pool.release(connection)  # type: ignore[attr-defined]

    @on(Released)
    def _released(self) -> None:
        self.note = "disconnected"
        self._subscriptions_waiting("waiting for a connection")
        self._show_status()

    def _subscriptions_waiting(self, status: str) -> None:
        panel = self.query_one(SubscriptionsPanel)
        for topic_filter in panel.rows:
            panel.set_status(topic_filter, status)

    def on_unmount(self) -> None:
        if self.connection is not None:
            self._release(self.connection, self.subscribed)
            self.connection = None

    # -- diagnostics --

    def action_diagnose(self) -> None:
        try:
            request = self.query_one(ConnectionForm).request()
        except ValueError as error:
            self.note = str(error)
            self._show_status()
            return
        self.query_one("#mqtt-lower", TabbedContent).active = "mqtt-tab-diagnostics"
        self.query_one("#mqtt-diagnostics", Static).update("Checking…")
        self.diagnose_request(request)

    @work(thread=True, group="mqtt-diagnose", exclusive=True, exit_on_error=False, name="MQTT diagnose")
    def diagnose_request(self, request: ConnectRequest) -> None:
        try:
            settings = self._settings(request)
        except ValueError as error:
            self.post_message(self.Diagnosed([Step("Settings", False, str(error))]))
            return
        self._diagnose(settings)

    @work(thread=True, group="mqtt-diagnose", exclusive=True, exit_on_error=False, name="MQTT diagnose")
    def run_diagnosis(self, settings: MqttSettings) -> None:
        self._diagnose(settings)

    def _diagnose(self, settings: MqttSettings) -> None:
        """Blocking: the steps, then what the core itself logged about this client (after the steps,
        so their own refusals are in it)."""
        steps = diagnose(settings, pool=self.app.mqtt_pool)  # type: ignore[attr-defined]
        self.post_message(self.Diagnosed(steps, client_log(self.clients.target, settings)))

    @on(Diagnosed)
    def _diagnosed(self, message: Diagnosed) -> None:
        self.steps = message.steps
        self.core_log = message.core_log
        self.query_one("#mqtt-diagnostics", Static).update(render_diagnosis(message.steps, message.core_log))

    # -- subscriptions --

    @on(SubscriptionsPanel.Added)
    def _subscription_added(self, message: SubscriptionsPanel.Added) -> None:
        if self.connection is None:
            self.query_one(SubscriptionsPanel).set_status(message.topic_filter, "waiting for a connection")
            return
        self.subscribe(message.topic_filter, message.qos)

    @work(thread=True, group="mqtt-subscribe", exit_on_error=False, name="MQTT subscribe")
    def subscribe(self, topic_filter: str, qos: int) -> None:
        connection = self.connection
        if connection is None:
            return
        try:
            result = connection.subscribe(topic_filter, qos)
        except (MqttError, TopicError) as error:
            result = SubscriptionResult(topic_filter, qos, None, None, str(error))
        self.post_message(self.Subscribed(result))

    @on(Subscribed)
    def _subscribed(self, message: Subscribed) -> None:
        result = message.result
        panel = self.query_one(SubscriptionsPanel)
        if result.ok:
            self.subscribed[result.topic_filter] = result.qos
            restored = " (restored)" if result.restored else ""
            panel.set_status(result.topic_filter, f"granted QoS {result.granted_qos}{restored}")
        else:
            panel.set_status(result.topic_filter, f"refused: {result.reason}. {result.hint}".strip())

    @on(SubscriptionsPanel.Removed)
    def _subscription_removed(self, message: SubscriptionsPanel.Removed) -> None:
        if self.subscribed.pop(message.topic_filter, None) is not None and self.connection is not None:
            self.unsubscribe(self.connection, message.topic_filter)

    @work(thread=True, group="mqtt-subscribe", exit_on_error=False, name="MQTT unsubscribe")
    def unsubscribe(self, connection: MqttConnection, topic_filter: str) -> None:
        connection.unsubscribe(topic_filter)

    # -- publish --

    def action_publish(self) -> None:
        self.query_one(PublishForm).submit()

    def action_test_message(self) -> None:
        """The console's test message: to the form's topic, or `iot-tui/test` when it has none."""
        form = self.query_one(PublishForm)
        self._sequence += 1
        topic = self.query_one("#pub-topic", Input).value.strip() or "iot-tui/test"
        client_id = self.connection.settings.client_id if self.connection else None
        payload = test_message(self.app.clock(), self._sequence, client_id)  # type: ignore[attr-defined]
        self.query_one("#pub-topic", Input).value = topic
        form.load(PublishRequest(topic, payload, 1, False, (), "json", payload.decode()))
        form.submit()

    @on(PublishForm.Publish)
    def _publish(self, message: PublishForm.Publish) -> None:
        if self.connection is None:
            self.query_one(PublishForm).show_result("not connected: press F5 to connect first", False)
            return
        self.query_one(PublishForm).show_result("sending…", True)
        self.publish(self.connection, message.request)

    @work(thread=True, group="mqtt-publish", exit_on_error=False, name="MQTT publish")
    def publish(self, connection: MqttConnection, request: PublishRequest) -> None:
        try:
            result = connection.publish(request.topic, request.payload, request.qos, request.retain,
                                        request.user_properties)
        except (MqttError, TopicError, ValueError) as error:
            result = PublishResult(request.topic, request.qos, request.retain, len(request.payload), False, None,
                                   str(error))
        self.post_message(self.Published(request, result))

    @on(Published)
    def _published(self, message: Published) -> None:
        result = message.result
        form = self.query_one(PublishForm)
        form.remember(message.request)
        if not result.ok:
            form.show_result(f"refused: {result.reason}. {result.hint}".strip(), False)
        elif result.qos:
            rtt = f" in {result.rtt_ms:.0f} ms" if result.rtt_ms is not None else ""
            form.show_result(f"PUBACK{rtt}: {result.size} bytes to {result.topic}", True)
        else:
            form.show_result(f"sent at QoS 0 (no PUBACK): {result.size} bytes to {result.topic}", True)

    # -- the stream --

    def drain(self) -> None:
        """Move everything queued into the log, then redraw once; other events update the status.

        Messages are kept when they match a filter of this pane's panel, pending ones included: a
        retained message can arrive before the SUBACK's result reaches the panel. Other screens'
        messages on the shared connection are left out.
        """
        filters = list(self.query_one(SubscriptionsPanel).rows)
        taken = 0
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            taken += 1
            if isinstance(event, MessageReceived):
                if any(matches(f, event.topic) for f in filters):
                    self.log_buffer.append(event)
                    self._dirty = True
            elif isinstance(event, SubscriptionResult) and event.restored:
                self.post_message(self.Subscribed(event))
            elif isinstance(event, MqttConnected) and event.reconnect:
                self.note = "reconnected: restoring subscriptions"
            elif isinstance(event, ConnectionFailed | Disconnected):
                self.note = f"{event.reason}; reconnecting" if event.will_retry else event.reason
                if event.will_retry:
                    self._subscriptions_waiting("lost: restored on reconnect")
        if self._dirty:
            if self.log_buffer.paused:
                self._show_log_state()  # the count of what waits for resume
            elif time.monotonic() >= self._redraw_due:
                self._dirty = False
                self.show_log()
        if taken or self.connection is not None:
            self._show_status()

    def show_log(self) -> None:
        """Redraw the visible page of the log, keep the selected row, refresh the tree and the plot."""
        log = self.log_buffer
        entries = log.page(0, PAGE_ROWS) if self.newest_first else log.tail(PAGE_ROWS)
        table = self.query_one("#mqtt-log", DataTable)
        # A redraw moves the cursor; only the user's moves select a message (and re-render the detail).
        with table.prevent(DataTable.RowHighlighted):
            table.clear()
            table.add_rows((str(e.seq), clock_time(e.time), Text(e.topic),
                            f"{e.message.qos} R" if e.message.retain else str(e.message.qos),
                            Text(short_payload(e, PAYLOAD_WIDTH))) for e in entries)
            # The page order maps table rows back to log sequence numbers for the detail view.
            self._page = [e.seq for e in entries]
            if self.selected_seq in self._page:
                table.move_cursor(row=self._page.index(self.selected_seq), scroll=False)
            elif not self.newest_first and entries:
                table.move_cursor(row=len(entries) - 1)
        self._show_log_state()
        self._redraw_due = time.monotonic() + REDRAW_SECONDS
        # Only the lower tab on screen is kept current; the others catch up when shown.
        lower = self.query_one("#mqtt-lower", TabbedContent).active
        if lower == "mqtt-tab-plot":
            self._show_plot()
        now = time.monotonic()
        if lower == "mqtt-tab-topics" and now >= self._tree_due:
            self._tree_due = now + TREE_SECONDS
            self.query_one(TopicTreeView).show(log.topic_tree())

    @on(DataTable.RowHighlighted, "#mqtt-log")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self._page):
            self.show_detail(self._page[event.cursor_row])

    def show_detail(self, seq: int) -> None:
        entry = self.log_buffer.get(seq)
        if entry is None:
            return
        self.selected_seq = seq
        self.query_one("#mqtt-detail", Static).update(render_detail(entry, self.log_buffer.previous(entry)))
        plot_field = self.query_one("#mqtt-plot-field", Input)
        if not plot_field.value:
            fields = MessageLog.numeric_fields(entry)
            if fields:
                plot_field.value = fields[0]

    @on(Input.Changed, "#mqtt-plot-field")
    def _show_plot(self) -> None:
        path = self.query_one("#mqtt-plot-field", Input).value.strip()
        points = self.log_buffer.series(path, self.log_buffer.topic_filter, PLOT_POINTS) if path else []
        values = [value for _, value in points]
        self.query_one("#mqtt-sparkline", Sparkline).data = values
        summary = (f"{path}: {len(values)} points  last {values[-1]:g}  min {min(values):g}  max {max(values):g}"
                   if values else "no numeric values yet for this field")
        self.query_one("#mqtt-plot-summary", LiveLine).show(summary)

    @on(TabbedContent.TabActivated, "#mqtt-lower")
    def _lower_tab(self, event: TabbedContent.TabActivated) -> None:
        event.stop()  # the app's tab bar listens for its own tabs only
        if event.pane.id == "mqtt-tab-topics":
            self.query_one(TopicTreeView).show(self.log_buffer.topic_tree())
        elif event.pane.id == "mqtt-tab-plot":
            self._show_plot()

    @on(Input.Changed, "#mqtt-topic-filter, #mqtt-text-filter")
    def _filter(self) -> None:
        topic_filter = self.query_one("#mqtt-topic-filter", Input).value.strip()
        problem = filter_problem(topic_filter) if topic_filter else ""
        self.query_one("#mqtt-topic-filter", Input).set_class(bool(problem), "-invalid")
        if problem:
            return
        self.log_buffer.set_filter(topic_filter or None, self.query_one("#mqtt-text-filter", Input).value)
        self.show_log()

    def _show_log_state(self) -> None:
        log = self.log_buffer
        mode = "follow" if not self.newest_first else "newest first"
        paused = f"PAUSED +{log.pending}" if log.paused else ""
        text = f"{log.count_view()}/{len(log)} shown  {mode}  {paused}".rstrip()
        self.query_one("#mqtt-log-state", LiveLine).show(text)
        self.set_class(log.paused, "-paused")

    def _show_status(self) -> None:
        stats = self.connection.stats() if self.connection is not None else None
        self.query_one("#mqtt-status", LiveLine).show(render_status(stats, self.note))

    def action_pause(self) -> None:
        if self.log_buffer.paused:
            self.log_buffer.resume()
        else:
            self.log_buffer.pause()
        self.show_log()

    def action_follow(self) -> None:
        self.newest_first = not self.newest_first
        self.show_log()

    def action_clear(self) -> None:
        self.log_buffer.clear()
        self.selected_seq = None
        self.query_one("#mqtt-detail", Static).update("Select a message to see it in full.")
        self.show_log()
        self.query_one(TopicTreeView).show(self.log_buffer.topic_tree())

    # -- export --

    def action_export(self) -> None:
        default = Path.cwd() / "mqtt-messages.ndjson"
        self.app.push_screen(ExportScreen(default), lambda choice: choice and self.export(choice))

    @work(thread=True, group="mqtt-export", exclusive=True, exit_on_error=False, name="MQTT export")
    def export(self, choice: ExportChoice) -> None:
        write = self.log_buffer.export_csv if choice.format == "csv" else self.log_buffer.export_ndjson
        self.post_message(self.Exported(choice.path, write(choice.path, filtered=choice.filtered)))

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        self.app.notify(f"{message.count} messages written to {message.path}", title="Export")
