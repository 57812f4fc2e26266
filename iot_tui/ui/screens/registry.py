"""The Registry view: things (paged, filtered, described), thing types, the group tree,
certificates and endpoints. Each pane loads when first shown and on `r`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Label, Select, Static, TabbedContent, TabPane, Tree

from iot_tui.aws import registry
from iot_tui.ui.base import AwsWidget, Loaded


class ThingsPane(AwsWidget):
    FOCUS_FIRST = "#things-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "next_page", "Next page", id="things-next"),
        Binding("p", "previous_page", "Previous page", id="things-previous"),
        Binding("slash", "focus_filter", "Filter", id="things-filter"),
        Binding("r", "refresh", "Refresh", id="things-refresh"),
        Binding("escape", "back", "Back to list", id="things-back"),
    ]

    class PageLoaded(Loaded):
        pass

    class ThingDescribed(Loaded):
        pass

    class TypesLoaded(Loaded):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tokens: list[str | None] = [None]
        self.page: registry.Page | None = None
        self.page_size = 25
        self.thing_type: str | None = None
        self.attribute: registry.AttributeFilter | None = None
        self._refocus = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="things-filters"):
            yield Select([], prompt="any type", id="type-filter", allow_blank=True)
            yield Input(placeholder="attribute: country=USA or country=U*", id="attribute-filter")
            yield Input(placeholder="search this page", id="things-search")
            yield Select([(f"{n} rows", n) for n in registry.PAGE_SIZES], value=25,
                         allow_blank=False, id="page-size")
        with Horizontal(id="things-body"):
            with Vertical(id="things-list"):
                yield DataTable(id="things-table", cursor_type="row", zebra_stripes=True)
                yield Label("", id="things-page")
            with VerticalScroll(id="thing-detail"):
                yield Static("Select a thing and press Enter for its details.", id="thing-detail-body")

    def on_mount(self) -> None:
        table = self.query_one("#things-table", DataTable)
        table.add_columns("Thing", "Type", "Country", "Made", "Ver")
        self.query_one("#thing-detail", VerticalScroll).border_title = "Details"
        self.action_refresh()

    # -- loading --

    def action_refresh(self) -> None:
        self.busy(self.query_one("#things-table"))
        self.load_types()
        self.load_page(self.tokens[-1])

    @work(thread=True, group="things", exclusive=True, exit_on_error=False, name="list things")
    def load_page(self, token: str | None) -> None:
        page = registry.list_things_page(self.clients.iot, self.page_size, token, self.thing_type, self.attribute)
        self.post_message(self.PageLoaded(page))

    @work(thread=True, group="thing-types-filter", exclusive=True, exit_on_error=False, name="list thing types")
    def load_types(self) -> None:
        self.post_message(self.TypesLoaded([t["thingTypeName"] for t in registry.list_thing_types(self.clients.iot)]))

    @on(TypesLoaded)
    def _types(self, message: TypesLoaded) -> None:
        self.query_one("#type-filter", Select).set_options([(name, name) for name in message.data])

    @on(PageLoaded)
    def _page(self, message: PageLoaded) -> None:
        self.page = message.data
        self._fill()
        if self._refocus:
            self._refocus = False
            table = self.query_one("#things-table", DataTable)
            table.loading = False
            table.focus()

    def _fill(self) -> None:
        table = self.query_one("#things-table", DataTable)
        table.clear()
        if self.page is None:
            return
        search = self.query_one("#things-search", Input).value.strip().lower()
        shown = [t for t in self.page.items if search in t["thingName"].lower()]
        for thing in shown:
            attributes = thing.get("attributes") or {}
            table.add_row(thing["thingName"], thing.get("thingTypeName") or "", attributes.get("country", ""),
                          attributes.get("manufacturingDate", ""), str(thing.get("version", "")),
                          key=thing["thingName"])
        more = "more: n" if self.page.next_token else "last page"
        back = " · previous: p" if len(self.tokens) > 1 else ""
        filters = [f for f in (self.thing_type and f"type {self.thing_type}",
                               self.attribute and f"{self.attribute.name}="
                               f"{self.attribute.value}{'*' if self.attribute.prefix else ''}") if f]
        self.query_one("#things-page", Label).update(
            f"Page {len(self.tokens)} · {len(shown)} of {len(self.page.items)} shown · {self.page_size} per page"
            f" · {more}{back}" + (f" · filter: {', '.join(filters)}" if filters else ""))

    # -- paging and filters --

    def action_next_page(self) -> None:
        if self.page is not None and self.page.next_token:
            self.tokens.append(self.page.next_token)
            self.action_refresh()

    def action_previous_page(self) -> None:
        if len(self.tokens) > 1:
            self.tokens.pop()
            self.action_refresh()

    def _restart(self) -> None:
        self.tokens = [None]
        self.action_refresh()

    def action_focus_filter(self) -> None:
        self.query_one("#attribute-filter", Input).focus()

    def action_back(self) -> None:
        self.query_one("#things-table", DataTable).focus()

    @on(Select.Changed, "#type-filter")
    def _type_changed(self, event: Select.Changed) -> None:
        value = None if event.value is Select.NULL else str(event.value)
        if value != self.thing_type:
            self.thing_type = value
            self._restart()

    @on(Select.Changed, "#page-size")
    def _size_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, int) and event.value != self.page_size:
            self.page_size = event.value
            self._restart()

    @on(Input.Submitted, "#attribute-filter")
    def _attribute_submitted(self, event: Input.Submitted) -> None:
        try:
            self.attribute = registry.AttributeFilter.parse(event.value)
        except ValueError as error:
            self.notify(str(error), title="Attribute filter", severity="warning")
            return
        self._refocus = True
        self._restart()

    @on(Input.Changed, "#things-search")
    def _search_changed(self) -> None:
        self._fill()

    # -- details --

    @on(DataTable.RowSelected, "#things-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        name = event.row_key.value
        if name:
            self.busy(self.query_one("#thing-detail"))
            self.describe(name)

    @work(thread=True, group="thing-detail", exclusive=True, exit_on_error=False, name="describe thing")
    def describe(self, name: str) -> None:
        self.post_message(self.ThingDescribed(registry.describe_thing(self.clients.iot, name)))

    @on(ThingDescribed)
    def _described(self, message: ThingDescribed) -> None:
        detail: registry.ThingDetail = message.data
        thing = detail.thing
        lines = [Text(thing["thingName"], style="bold"),
                 Text(f"type     {thing.get('thingTypeName') or '-'}"),
                 Text(f"version  {thing.get('version')}"),
                 Text(f"ARN      {thing.get('thingArn')}"),
                 Text("attributes", style="bold")]
        lines += [Text(f"  {k} = {v}") for k, v in sorted((thing.get("attributes") or {}).items())]
        lines.append(Text("groups", style="bold"))
        lines += [Text(f"  {g}") for g in detail.groups] or [Text("  none")]
        lines.append(Text("principals", style="bold"))
        lines += [Text(f"  {p}") for p in detail.principals] or [Text("  none")]
        self.query_one("#thing-detail-body", Static).update(Text("\n").join(lines))
        self.query_one("#thing-detail", VerticalScroll).focus()


class ThingTypesPane(AwsWidget):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "refresh", "Refresh", id="types-refresh")]

    def compose(self) -> ComposeResult:
        yield DataTable(id="types-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Thing type", "Description", "Searchable attributes", "State")
        self.action_refresh()

    def action_refresh(self) -> None:
        self.busy(self)
        self.load()

    @work(thread=True, group="thing-types", exclusive=True, exit_on_error=False, name="list thing types")
    def load(self) -> None:
        self.post_message(Loaded(registry.list_thing_types(self.clients.iot)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for t in message.data:
            properties = t.get("thingTypeProperties") or {}
            metadata = t.get("thingTypeMetadata") or {}
            state = "active"
            if metadata.get("deprecated"):
                state = "deprecated " + _date(metadata.get("deprecationDate"))
            table.add_row(t["thingTypeName"], properties.get("thingTypeDescription") or "",
                          ", ".join(properties.get("searchableAttributes") or []), state)


class ThingGroupsPane(AwsWidget):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "refresh", "Refresh", id="groups-refresh")]

    def compose(self) -> ComposeResult:
        yield Tree("Thing groups", id="groups-tree")

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.busy(self)
        self.load()

    @work(thread=True, group="thing-groups", exclusive=True, exit_on_error=False, name="list thing groups")
    def load(self) -> None:
        self.post_message(Loaded(registry.thing_group_tree(self.clients.iot)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        tree = self.query_one(Tree)
        tree.clear()
        tree.root.expand()

        def add(parent: Any, node: registry.GroupNode) -> None:
            label = f"{node.name} ({len(node.members)} things)" + (f" · {node.description}" if node.description else "")
            branch = parent.add(label, expand=True)
            for child in node.children:
                add(branch, child)
            for member in node.members:
                branch.add_leaf(member)

        for root in message.data:
            add(tree.root, root)


class CertificatesPane(AwsWidget):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "refresh", "Refresh", id="certificates-refresh")]

    def compose(self) -> ComposeResult:
        yield DataTable(id="certificates-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Certificate id", "Status", "Created", "Things", "Policies")
        self.action_refresh()

    def action_refresh(self) -> None:
        self.busy(self)
        self.load()

    @work(thread=True, group="certificates", exclusive=True, exit_on_error=False, name="list certificates")
    def load(self) -> None:
        self.post_message(Loaded(registry.list_certificates(self.clients.iot)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for cert in message.data:
            policies = "n/a" if cert.policies is None else (", ".join(cert.policies) or "none")
            table.add_row(cert.certificate_id[:16] + "…", cert.status, _date(cert.created),
                          ", ".join(cert.things) or "none", policies)
        if not message.data:
            table.add_row("no certificates yet", "", "", "", "")


class EndpointsPane(AwsWidget):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "refresh", "Refresh", id="endpoints-refresh")]

    def compose(self) -> ComposeResult:
        yield DataTable(id="endpoints-table", cursor_type="row")
        yield Static("", id="endpoints-ports")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Endpoint type", "Address", "What it is for")
        target = self.app.target  # type: ignore[attr-defined]
        self.query_one("#endpoints-ports", Static).update(
            f"Ports on this target: MQTT over TLS {target.mqtt_port}, MQTT over WebSocket {target.ws_port}. "
            "DescribeEndpoint gives only the host.")
        self.action_refresh()

    def action_refresh(self) -> None:
        self.busy(self)
        self.load()

    @work(thread=True, group="endpoints", exclusive=True, exit_on_error=False, name="describe endpoints")
    def load(self) -> None:
        self.post_message(Loaded(registry.describe_endpoints(self.clients.iot)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for endpoint in message.data:
            table.add_row(endpoint.endpoint_type, endpoint.address or Text(endpoint.error or "", style="red"),
                          endpoint.purpose)


PANES: list[tuple[str, str, type[AwsWidget]]] = [
    ("Things", "things", ThingsPane),
    ("Thing types", "types", ThingTypesPane),
    ("Thing groups", "groups", ThingGroupsPane),
    ("Certificates", "certificates", CertificatesPane),
    ("Endpoints", "endpoints", EndpointsPane),
]


class RegistryView(AwsWidget):
    """Sub-tabs load lazily: a pane's first calls happen when it is first shown."""

    TITLE = "Registry"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "refresh", "Refresh", id="registry-refresh")]

    def compose(self) -> ComposeResult:
        with TabbedContent(id="registry-tabs"):
            for title, key, _pane in PANES:
                yield TabPane(title, id=f"registry-{key}")

    def activated(self) -> None:
        """Shown again after the Fleet tab may have changed everything: refresh the visible pane."""
        pane = self.current_pane()
        if pane is None:
            self._show(self.query_one("#registry-tabs", TabbedContent).active)
        elif pane.is_mounted:
            pane.action_refresh()

    @on(TabbedContent.TabActivated, "#registry-tabs")
    def _activated(self, event: TabbedContent.TabActivated) -> None:
        if self.app.active_view() is self:  # type: ignore[attr-defined]
            self._show(event.pane.id or "")

    def _show(self, pane_id: str) -> None:
        """A pane is mounted, and makes its first calls, the first time it is shown."""
        for _title, key, pane in PANES:
            if pane_id == f"registry-{key}":
                holder = self.query_one(f"#{pane_id}", TabPane)
                if not holder.children:
                    holder.mount(pane(id=f"{key}-pane"))
                self.call_after_refresh(self.focus_first)

    def focus_first(self) -> None:
        pane = self.current_pane()
        if pane is not None:
            pane.focus_first()

    def current_pane(self) -> AwsWidget | None:
        active = self.query_one("#registry-tabs", TabbedContent).active
        panes = self.query_one(f"#{active}", TabPane).children if active else []
        return panes[0] if panes and isinstance(panes[0], AwsWidget) else None

    def action_refresh(self) -> None:
        pane = self.current_pane()
        if pane is not None:
            pane.action_refresh()

    def commands(self) -> list[tuple[str, str, Any]]:
        pane = self.current_pane()
        inner = [(title, help_text, f"pane_action('{action}')") for title, help_text, action in
                 (pane.commands() if pane else []) if action != "refresh"]
        tabs = [(f"Show {title}", f"Open the {title} tab", f"show_tab('registry-{key}')") for title, key, _ in PANES]
        return super().commands() + inner + tabs

    async def action_pane_action(self, action: str) -> None:
        pane = self.current_pane()
        if pane is not None:
            await pane.run_action(action)

    def action_show_tab(self, pane_id: str) -> None:
        self.query_one("#registry-tabs", TabbedContent).active = pane_id


def _date(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M")
    return json.dumps(value) if not isinstance(value, str) else value
