"""The Rules view: the topic rules list, a guided builder with a live SQL preview, and a dry run.

The dry run evaluates the rule with the same IoT SQL evaluator the local core's rules engine runs;
on AWS it is an offline preview and says so.
"""

from __future__ import annotations

import json
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Input, Label, Select, Static, TextArea

from iot_tui.aws import rules
from iot_tui.ui.base import AwsWidget
from iot_tui.ui.widgets.dialogs import ConfirmScreen

FIELDS = {
    "name": "#rule-name",
    "select": "#rule-select",
    "topic": "#rule-from",
    "where": "#rule-where",
    "republish_topic": "#rule-republish",
}


class RulesView(AwsWidget):
    FOCUS_FIRST = "#rules-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save rule", id="rules-save"),
        Binding("f5", "dry_run", "Dry run", id="rules-dry-run"),
        Binding("f6", "live_test", "Live test", id="rules-live-test"),
        Binding("ctrl+n", "new", "New rule", id="rules-new"),
        Binding("e", "edit", "Edit selected", id="rules-edit"),
        Binding("t", "toggle", "Enable/disable", id="rules-toggle"),
        Binding("delete", "delete", "Delete rule", id="rules-delete"),
        Binding("r", "refresh", "Refresh", id="rules-refresh"),
    ]

    class RulesLoaded(Message):
        def __init__(self, summaries: list[rules.RuleSummary]) -> None:
            super().__init__()
            self.summaries = summaries

    class LiveTested(Message):
        def __init__(self, expected_topic: str, outcome: str, arrived: bytes | None) -> None:
            super().__init__()
            self.expected_topic = expected_topic
            self.outcome = outcome
            self.arrived = arrived

    class RuleSaved(Message):
        def __init__(self, name: str, role_arn: str, replaced: bool) -> None:
            super().__init__()
            self.name = name
            self.role_arn = role_arn
            self.replaced = replaced

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.summaries: dict[str, rules.RuleSummary] = {}
        self._loaded = False
        self.listed = False  # the first ListTopicRules answer has arrived

    def compose(self) -> ComposeResult:
        with Horizontal(id="rules-body"):
            with Vertical(id="rules-left"):
                yield DataTable(id="rules-table", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="rule-detail"):
                    yield Static("Select a rule to see its SQL and actions.", id="rule-detail-body")
            with VerticalScroll(id="rule-builder"):
                yield Label("Rule builder", classes="section-title")
                with Horizontal(classes="rule-row"):
                    yield Label("Name", classes="rule-label")
                    yield Input(placeholder="letters, digits, _", id="rule-name")
                    yield Select([(t.label, t.key) for t in rules.TEMPLATES], prompt="event template",
                                 id="rule-template")
                with Horizontal(classes="rule-row"):
                    yield Label("SELECT", classes="rule-label")
                    yield Input(placeholder="* or fields, e.g. temperature, topic(2) AS device", id="rule-select")
                with Horizontal(classes="rule-row"):
                    yield Label("FROM", classes="rule-label")
                    yield Input(placeholder="topic filter, e.g. testRulesEngineTopic/+/temperature", id="rule-from")
                with Horizontal(classes="rule-row"):
                    yield Label("WHERE", classes="rule-label")
                    yield Input(placeholder="optional, e.g. temperature > 30", id="rule-where")
                with Horizontal(classes="rule-row"):
                    yield Label("Republish", classes="rule-label")
                    yield Input(placeholder="topic template, e.g. alerts/${topic(2)}", id="rule-republish")
                    yield Select([("QoS 0", 0), ("QoS 1", 1)], value=0, allow_blank=False, id="rule-qos")
                yield Static("", id="rule-preview")
                yield Static("", id="rule-problems")
                yield Label("Dry run", classes="section-title", id="dry-title")
                with Horizontal(classes="rule-row"):
                    yield Label("Topic", classes="rule-label")
                    yield Input(placeholder="topic of the sample message", id="dry-topic")
                yield TextArea("", language="json", id="dry-payload")
                yield Static("Press F5 to run the rule on this message.", id="dry-result")

    def on_mount(self) -> None:
        self.query_one("#rules-table", DataTable).add_columns("Rule", "State", "FROM")
        detail = self.query_one("#rule-detail", VerticalScroll)
        detail.border_title = "Rule"
        detail.can_focus = False  # Tab goes from the list straight to the builder
        offline = " (offline preview with iot-tui's evaluator, not AWS's)" if self.clients.target.kind == "aws" else ""
        self.query_one("#dry-title", Label).update(f"Dry run{offline}")

    def focus_first(self) -> None:
        """The list when there are rules to pick from, else the builder's first field."""
        if self.summaries:
            super().focus_first()
        else:
            self._wants_focus = False
            self.query_one("#rule-name", Input).focus()

    def activated(self) -> None:
        if not self._loaded:
            self._loaded = True
            # Filled when first shown: checking SQL builds the parser, which startup need not wait for.
            self.apply_template(rules.TEMPLATES[0])
            self.action_refresh()

    # -- the list --

    def action_refresh(self) -> None:
        self.busy(self.query_one("#rules-table"))
        self.load_rules()

    @work(thread=True, group="rules-list", exclusive=True, exit_on_error=False, name="list topic rules")
    def load_rules(self) -> None:
        self.post_message(self.RulesLoaded(rules.list_rules(self.clients.iot)))

    @on(RulesLoaded)
    def _rules_loaded(self, message: RulesLoaded) -> None:
        self.summaries = {s.name: s for s in message.summaries}
        self.listed = True
        table = self.query_one("#rules-table", DataTable)
        table.clear()
        for summary in message.summaries:
            state = Text("enabled", style="green") if summary.enabled else Text("disabled", style="dim")
            table.add_row(summary.name, state, summary.topic_pattern, key=summary.name)
        if not message.summaries:
            self.query_one("#rule-detail-body", Static).update(
                "No topic rules yet. Fill in the builder and press Ctrl+S to create one.")
        elif self.query_one("#rule-name", Input).has_focus and not self.query_one("#rule-name", Input).value:
            table.focus()  # rules arrived: the list is the place to start

    def selected(self) -> rules.RuleSummary | None:
        table = self.query_one("#rules-table", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.summaries.get(key)

    @on(DataTable.RowHighlighted, "#rules-table")
    def _highlighted(self) -> None:
        summary = self.selected()
        if summary is None:
            return
        actions = json.dumps(summary.actions, indent=2)
        state = "enabled" if summary.enabled else "disabled"
        self.query_one("#rule-detail-body", Static).update(
            Text.assemble((summary.name, "bold"), f"  ({state})\n\n", summary.sql, "\n\nActions\n", actions))

    # -- the builder --

    def apply_template(self, template: rules.EventTemplate) -> None:
        name = self.query_one("#rule-name", Input).value
        draft = rules.RuleDraft.from_template(name, template)
        self.fill(draft)
        self.query_one("#dry-topic", Input).value = template.sample_topic
        self.query_one("#dry-payload", TextArea).text = json.dumps(template.sample_payload, indent=2)

    def fill(self, draft: rules.RuleDraft) -> None:
        for attribute, selector in FIELDS.items():
            self.query_one(selector, Input).value = getattr(draft, attribute)
        self.query_one("#rule-qos", Select).value = draft.qos
        self.update_preview()

    def draft(self) -> rules.RuleDraft:
        values = {attribute: self.query_one(selector, Input).value.strip() for attribute, selector in FIELDS.items()}
        qos = self.query_one("#rule-qos", Select).value
        return rules.RuleDraft(**values, qos=qos if isinstance(qos, int) else 0)

    @on(Select.Changed, "#rule-template")
    def _template_chosen(self, event: Select.Changed) -> None:
        template = next((t for t in rules.TEMPLATES if t.key == event.value), None)
        if template is not None:
            self.apply_template(template)

    @on(Input.Changed)
    @on(Select.Changed, "#rule-qos")
    def update_preview(self) -> None:
        draft = self.draft()
        self.query_one("#rule-preview", Static).update(Text.assemble(("SQL  ", "bold"), draft.sql))
        problems = [p for p in draft.problems() if draft.name or p.field != "name"]
        lines = [f"{p.field}: {p.message}" + (f" (line {p.line}, column {p.column})" if p.line else "")
                 for p in problems]
        widget = self.query_one("#rule-problems", Static)
        widget.update(Text("\n".join(lines), style="bold red") if lines else Text("SQL is valid", style="green"))

    def action_new(self) -> None:
        self.query_one("#rule-name", Input).value = ""
        self.apply_template(rules.TEMPLATES[-1])
        self.query_one("#rule-name", Input).focus()

    def action_edit(self) -> None:
        summary = self.selected()
        if summary is None:
            return
        draft = rules.draft_from_rule(summary)
        if draft is None:
            self.notify("This rule was not made by the builder (no republish action or unusual SQL); "
                        "it can be enabled, disabled or deleted here.", severity="warning")
            return
        self.fill(draft)
        self.query_one("#rule-select", Input).focus()

    def action_save(self) -> None:
        draft = self.draft()
        problems = draft.problems()
        if problems:
            self.update_preview()
            self.notify(f"Fix the rule first: {problems[0].field}: {problems[0].message}", severity="error")
            return
        replace = draft.name in self.summaries
        target = self.clients.target
        if target.billable and not replace:
            body = (f"Rule {draft.name} and, if missing, the IAM role {rules.ROLE_NAME} will be created in "
                    f"{target.label}. Rules cost per message triggered and per action run.")
            self.app.push_screen(ConfirmScreen("Create a rule on AWS?", body, "Create"),
                                 lambda ok: ok and self.save(draft, replace))
            return
        self.save(draft, replace)

    @work(thread=True, group="rules-save", exclusive=True, exit_on_error=False, name="save topic rule")
    def save(self, draft: rules.RuleDraft, replace: bool) -> None:
        target = self.clients.target
        account = target.account_id or self.clients.sts.get_caller_identity()["Account"]
        role = rules.ensure_role(self.clients.client("iam"), target.region, account, [draft.republish_topic])
        rules.create_rule(self.clients.iot, draft, role, replace=replace)
        self.post_message(self.RuleSaved(draft.name, role, replace))

    @on(RuleSaved)
    def _saved(self, message: RuleSaved) -> None:
        verb = "replaced" if message.replaced else "created"
        self.notify(f"Rule {message.name} {verb}; it republishes with role {message.role_arn}.")
        self.action_refresh()

    def action_toggle(self) -> None:
        summary = self.selected()
        if summary is not None:
            self.toggle(summary.name, not summary.enabled)

    @work(thread=True, group="rules-toggle", exclusive=True, exit_on_error=False, name="enable or disable rule")
    def toggle(self, name: str, enabled: bool) -> None:
        rules.set_enabled(self.clients.iot, name, enabled)
        self.post_message(self.RulesLoaded(rules.list_rules(self.clients.iot)))

    def action_delete(self) -> None:
        summary = self.selected()
        if summary is None:
            return
        body = f"Rule {summary.name} stops running and is deleted. Its IAM role stays."
        self.app.push_screen(ConfirmScreen(f"Delete rule {summary.name}?", body, "Delete"),
                             lambda ok: ok and self.delete(summary.name))

    @work(thread=True, group="rules-delete", exclusive=True, exit_on_error=False, name="delete topic rule")
    def delete(self, name: str) -> None:
        rules.delete_rule(self.clients.iot, name)
        self.post_message(self.RulesLoaded(rules.list_rules(self.clients.iot)))

    # -- dry run --

    def action_dry_run(self) -> None:
        """Pure computation, no I/O: it runs right here."""
        topic = self.query_one("#dry-topic", Input).value.strip()
        payload = self.query_one("#dry-payload", TextArea).text
        result = rules.dry_run(self.draft(), topic, payload, now_ms=int(self.app.clock() * 1000))
        self.query_one("#dry-result", Static).update(render_dry_run(result))

    # -- live test --

    def action_live_test(self) -> None:
        """Publish the sample for real and watch the republish topic, over the shared MQTT connection."""
        draft = self.draft()
        summary = self.summaries.get(draft.name)
        if summary is None or not summary.enabled:
            self.notify("Save and enable the rule first: the live test runs the rule stored on the target.",
                        severity="warning")
            return
        topic = self.query_one("#dry-topic", Input).value.strip()
        payload = self.query_one("#dry-payload", TextArea).text
        preview = rules.dry_run(draft, topic, payload)
        if not preview.matched:
            self.query_one("#dry-result", Static).update(render_dry_run(preview))
            self.notify("The sample would not trigger the rule; the dry run says why.", severity="warning")
            return
        self.query_one("#dry-result", Static).update(f"Live test: publishing to {topic}...")
        self.live_test(topic, payload.encode(), preview.previews[0].topic)

    @work(thread=True, group="rules-live", exclusive=True, exit_on_error=False, name="rule live test")
    def live_test(self, topic: str, payload: bytes, expected_topic: str) -> None:
        import queue

        from iot_tui.aws.mqtt import MessageReceived, MqttSettings, new_client_id

        settings = MqttSettings.websocket(self.clients.target, new_client_id("iot-tui-rules"))
        pool = self.app.mqtt_pool  # type: ignore[attr-defined]
        connection = pool.acquire(settings)
        arrived: queue.Queue[bytes] = queue.Queue()

        def on_event(event: object) -> None:
            if isinstance(event, MessageReceived) and event.topic == expected_topic:
                arrived.put(event.payload)

        remove = connection.add_listener(on_event)
        try:
            connection.connect()
            subscribed = connection.subscribe(expected_topic, 1)
            if not subscribed.ok:
                self.post_message(self.LiveTested(expected_topic, f"cannot subscribe: {subscribed.reason}", None))
                return
            published = connection.publish(topic, payload, 1)
            if not published.ok:
                self.post_message(self.LiveTested(expected_topic, f"publish refused: {published.reason}", None))
                return
            try:
                message = arrived.get(timeout=LIVE_WAIT_SECONDS)
            except queue.Empty:
                message = None
            outcome = "arrived" if message is not None else f"nothing arrived in {LIVE_WAIT_SECONDS:g} s"
            self.post_message(self.LiveTested(expected_topic, outcome, message))
        finally:
            remove()
            pool.release(connection)

    @on(LiveTested)
    def _live_tested(self, message: LiveTested) -> None:
        text = Text.assemble(("Live test: ", "bold"), f"{message.outcome} on {message.expected_topic}")
        if message.arrived is not None:
            text.append("\n" + message.arrived.decode(errors="replace"))
        self.query_one("#dry-result", Static).update(text)


LIVE_WAIT_SECONDS = 5.0


def render_dry_run(result: rules.DryRun) -> Text:
    if not result.matched:
        return Text.assemble(("No match: ", "bold yellow"), result.reason)
    text = Text.assemble(("Matched. ", "bold green"), "Each action would send:\n")
    for preview in result.previews:
        text.append(f"\n{preview.action} to {preview.topic} (QoS {preview.qos})\n", style="bold")
        text.append(preview.payload)
    return text
