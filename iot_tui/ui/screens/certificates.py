"""The Certificates view: the certificate list and its actions, the certificate wizard, policies
(templates, a live-validated editor, versions and diffs, targets) and the policy simulator.

Every change goes through `iot_tui.aws.certs` and `iot_tui.aws.policies`; each call they make shows
in the API inspector, and the wizard's step indicator follows their step listener live.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    DataTable,
    Input,
    Label,
    OptionList,
    Select,
    Static,
    TabbedContent,
    TabPane,
    Tabs,
    TextArea,
)
from textual.widgets.option_list import Option

from iot_tui.aws import certs, fleet, policies, registry
from iot_tui.ui.base import AwsWidget, Loaded
from iot_tui.ui.widgets.dialogs import ConfirmScreen
from iot_tui.ui.widgets.pickers import ChoiceScreen, TypeIdScreen

STEPS = ("Thing", "Certificate", "Files", "Attach", "Policy")
# Which wizard step each reported operation completes.
STEP_OF = {"CreatePolicy": 4, "GenerateCertificate": 1, "CreateKeysAndCertificate": 1,
           "RegisterCertificateWithoutCA": 1, "SaveFiles": 2, "AttachThingPrincipal": 3, "AttachPolicy": 4}
MODES = [("AWS creates the keys and certificate", "create"),
         ("Register my own: generate it here", "generate"),
         ("Register my own: my PEM files", "files")]
SIMULATED_ACTIONS = ("Connect", "Publish", "Subscribe", "Receive", "RetainPublish", "GetThingShadow",
                     "UpdateThingShadow")
STATUS_STYLE = {"ACTIVE": "green", "INACTIVE": "yellow", "REVOKED": "red"}



DATE_WIDTH = len("2026-01-31 23:59")


def _date(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else ""


def _problems_text(problems: list[policies.Problem]) -> Text:
    if not problems:
        return Text("Document is valid", style="green")
    return Text("\n").join(Text(p.text, style="bold red" if p.severity == "error" else "yellow") for p in problems)


def _account(pane: AwsWidget) -> str:
    """Templates need the account: the target knows it locally; on AWS ask STS (call it in a worker)."""
    return pane.clients.target.account_id or pane.clients.sts.get_caller_identity()["Account"]


def _template_warnings(name: str) -> list[str]:
    """The warnings (the production one) of a template, shown and confirmed before it is created."""
    return [p.message for p in policies.validate_document(policies.template(name).text) if p.severity == "warning"]


def _confirm_billable(pane: AwsWidget, what: str, then: Any) -> None:
    """On AWS, ask before anything billable is created; elsewhere go straight on."""
    target = pane.clients.target
    if not target.billable:
        then()
        return
    body = f"{what} will be created in {target.label}. {fleet.AWS_COST_NOTE}"
    pane.app.push_screen(ConfirmScreen("Create on AWS?", body, "Create"), lambda ok: ok and then())


# -- the certificate list --


class CertListPane(AwsWidget):
    FOCUS_FIRST = "#certs-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "set_status('ACTIVE')", "Activate", id="certs-activate"),
        Binding("d", "set_status('INACTIVE')", "Deactivate", id="certs-deactivate"),
        Binding("v", "revoke", "Revoke", id="certs-revoke"),
        Binding("p", "attach_policy", "Attach policy", id="certs-attach-policy"),
        Binding("u", "detach_policy", "Detach policy", id="certs-detach-policy"),
        Binding("delete", "delete", "Delete safely", id="certs-delete"),
        Binding("r", "refresh", "Refresh", id="certs-refresh"),
    ]

    class CertsLoaded(Loaded):
        pass

    class PoliciesListed(Loaded):
        """Names of every policy, for the attach picker."""

    class NeedsTypedId(Loaded):
        """safe_delete refused: the certificate serves things outside the sample fleet."""

    class Deleted(Loaded):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.certificates: dict[str, registry.CertificateInfo] = {}

    def compose(self) -> ComposeResult:
        yield DataTable(id="certs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="cert-detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Certificate id", "Status", "Created", "Things", "Policies")

    def action_refresh(self) -> None:
        self.busy(self.query_one(DataTable))
        self.load()

    def _reload(self) -> None:
        self.post_message(self.CertsLoaded(registry.list_certificates(self.clients.iot)))

    @work(thread=True, group="cert-list", exclusive=True, exit_on_error=False, name="list certificates")
    def load(self) -> None:
        self._reload()

    @on(CertsLoaded)
    def _loaded(self, message: CertsLoaded) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        self.certificates = {c.certificate_id: c for c in message.data}
        for cert in message.data:
            policies_text = "n/a" if cert.policies is None else (", ".join(cert.policies) or "none")
            table.add_row(cert.certificate_id[:16] + "…", Text(cert.status, style=STATUS_STYLE.get(cert.status, "")),
                          _date(cert.created), ", ".join(cert.things) or "none", policies_text,
                          key=cert.certificate_id)
        self.refresh_bindings()
        if message.data:
            table.move_cursor(row=min(row, table.row_count - 1))
        else:
            self.query_one("#cert-detail", Static).update(
                "No certificates yet. Make one in the New certificate tab (Ctrl+PageDown).")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim what does not apply to the selected certificate (a revoked one takes no status)."""
        if action not in {"set_status", "revoke", "attach_policy", "detach_policy", "delete"} or not self.is_mounted:
            return True
        cert = self.selected()
        if cert is None:
            return None
        if action == "set_status":
            return cert.status not in (parameters[0], "REVOKED") or None
        if action == "revoke":
            return cert.status != "REVOKED" or None
        if action == "detach_policy":
            return bool(cert.policies) or None
        return True

    def selected(self) -> registry.CertificateInfo | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return self.certificates.get(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or "")

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self.refresh_bindings()
        cert = self.selected()
        if cert is None:
            return
        self.query_one("#cert-detail", Static).update(Text.assemble(
            (cert.certificate_id, "bold"), "\n", cert.arn, "\nstatus ", (cert.status, STATUS_STYLE.get(cert.status, "")),
            " · things ", ", ".join(cert.things) or "none",
            " · policies ", ", ".join(cert.policies or []) or "none"))

    # -- status --

    def action_set_status(self, status: str) -> None:
        cert = self.selected()
        if cert is not None:
            self.set_status(cert.certificate_id, status)

    @work(thread=True, group="cert-status", exclusive=True, exit_on_error=False, name="update certificate")
    def set_status(self, certificate_id: str, status: str) -> None:
        certs.set_status(self.clients.iot, certificate_id, status)
        self._reload()

    def action_revoke(self) -> None:
        cert = self.selected()
        if cert is not None:
            self.app.push_screen(ConfirmScreen(f"Revoke certificate {cert.certificate_id[:12]}…?",
                                               certs.REVOKE_WARNING, "Revoke"),
                                 lambda ok: ok and self.set_status(cert.certificate_id, "REVOKED"))

    # -- policies --

    def action_attach_policy(self) -> None:
        if self.selected() is not None:
            self.list_policies()

    @work(thread=True, group="cert-policies", exclusive=True, exit_on_error=False, name="list policies")
    def list_policies(self) -> None:
        names = [p["policyName"] for p in registry.pages(self.clients.iot.list_policies, "policies",
                                                          token_name="marker")]
        self.post_message(self.PoliciesListed(names))

    @on(PoliciesListed)
    def _pick_policy(self, message: PoliciesListed) -> None:
        cert = self.selected()
        if cert is None:
            return
        choices = [(name, name) for name in message.data if name not in (cert.policies or [])]
        if not choices:
            self.notify("No policy left to attach: create one in the Policies tab.", severity="warning")
            return
        self.app.push_screen(ChoiceScreen("Attach a policy", "The policy decides what this certificate may do.",
                                          choices),
                             lambda name: name and self.attach(cert.arn, name))

    @work(thread=True, group="cert-attach", exclusive=True, exit_on_error=False, name="attach policy")
    def attach(self, arn: str, policy: str) -> None:
        certs.attach_policy(self.clients.iot, arn, policy)
        self._reload()

    def action_detach_policy(self) -> None:
        cert = self.selected()
        if cert is None or not cert.policies:
            return
        self.app.push_screen(ChoiceScreen("Detach a policy", "Without a policy the certificate may do nothing.",
                                          [(name, name) for name in cert.policies]),
                             lambda name: name and self.detach(cert.arn, name))

    @work(thread=True, group="cert-detach", exclusive=True, exit_on_error=False, name="detach policy")
    def detach(self, arn: str, policy: str) -> None:
        certs.detach_policy(self.clients.iot, arn, policy)
        self._reload()

    # -- safe delete --

    def action_delete(self) -> None:
        cert = self.selected()
        if cert is None:
            return
        body = ("It is detached from its things and policies, deactivated, then deleted; its device files "
                "are removed too. Devices using it are refused from now on.")
        self.app.push_screen(ConfirmScreen(f"Delete certificate {cert.certificate_id[:12]}…?", body, "Delete"),
                             lambda ok: ok and self.delete(cert.certificate_id, None))

    @work(thread=True, group="cert-delete", exclusive=True, exit_on_error=False, name="delete certificate")
    def delete(self, certificate_id: str, confirm_id: str | None) -> None:
        try:
            result = certs.safe_delete(self.clients.iot, certificate_id, fleet.SAMPLE_THING_NAMES, confirm_id,
                                       self.app.cert_root)  # type: ignore[attr-defined]
        except certs.ConfirmationRequired as refused:
            self.post_message(self.NeedsTypedId(refused))
            return
        self.post_message(self.Deleted(result))
        self._reload()

    @on(NeedsTypedId)
    def _type_id(self, message: NeedsTypedId) -> None:
        refused: certs.ConfirmationRequired = message.data
        body = (f"It is attached to things outside the sample fleet: {', '.join(refused.things)}. "
                f"Type its id to delete it anyway:\n{refused.certificate_id}")
        self.app.push_screen(TypeIdScreen("This certificate is in use", body, refused.certificate_id),
                             lambda typed: typed and self.delete(refused.certificate_id, typed))

    @on(Deleted)
    def _deleted(self, message: Deleted) -> None:
        result: certs.DeleteResult = message.data
        self.notify(f"Certificate {result.certificate_id[:12]}… deleted in {len(result.steps)} steps.")


# -- the wizard --


@dataclass(frozen=True)
class WizardPlan:
    """What the user asked for, checked for local mistakes before any call."""

    thing: str
    mode: str
    cert_path: str
    key_path: str
    policy: str | None
    template: str | None


class WizardPane(AwsWidget):
    FOCUS_FIRST = "#wizard-search"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "run", "Create certificate", id="wizard-run"),
        Binding("r", "refresh", "Refresh", id="wizard-refresh"),
    ]

    class ChoicesLoaded(Loaded):
        """(thing names, policy names)."""

    class Progress(Loaded):
        """One step done, reported live from the worker."""

    class Problem(Loaded):
        """A local input problem: shown in place, nothing typed is lost."""

    class Stopped(Loaded):
        """An AWS error code ended the run; the app shows the details."""

    class Done(Loaded):
        """(CertificateResult, {path: mode})."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.things: list[str] = []
        self.done_steps: set[int] = set()
        self.log_lines: list[Text] = []
        self.chosen: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="wizard-steps")
        with Horizontal(id="wizard-body"):
            with Vertical(id="wizard-left"):
                yield Label("1 · Thing", classes="section-title")
                yield Input(placeholder="search things", id="wizard-search")
                yield OptionList(id="wizard-things")
            with VerticalScroll(id="wizard-right", can_focus=False):
                yield Label("2 · Certificate", classes="section-title")
                yield Select(MODES, value="create", allow_blank=False, id="wizard-mode")
                with Horizontal(id="wizard-pem"):
                    yield Input(placeholder="certificate PEM path", id="wizard-cert-path")
                    yield Input(placeholder="private key PEM path", id="wizard-key-path")
                yield Label("5 · Policy (optional)", classes="section-title")
                with Horizontal(id="wizard-policy-row"):
                    yield Select([], prompt="no policy", id="wizard-policy")
                    yield Input(placeholder="name for a new policy", id="wizard-policy-name")
                yield Static("", id="wizard-policy-note")
                yield Static("", id="wizard-problem")
                yield Static("Pick a thing, then press Ctrl+S: each step's call shows in the inspector (F2).",
                             id="wizard-log")

    def on_mount(self) -> None:
        self._show_steps()

    def action_refresh(self) -> None:
        self.busy(self.query_one("#wizard-things"))
        self.load()

    @work(thread=True, group="wizard-choices", exclusive=True, exit_on_error=False, name="list things and policies")
    def load(self) -> None:
        iot = self.clients.iot
        things = [t["thingName"] for t in registry.pages(iot.list_things, "things")]
        names = [p["policyName"] for p in registry.pages(iot.list_policies, "policies", token_name="marker")]
        self.post_message(self.ChoicesLoaded((sorted(things), names)))

    @on(ChoicesLoaded)
    def _choices(self, message: ChoicesLoaded) -> None:
        self.things, names = message.data
        self._fill_things()
        select = self.query_one("#wizard-policy", Select)
        chosen = select.value
        options = [(f"attach {name}", f"policy:{name}") for name in names]
        options += [(f"new from template {t.name}", f"template:{t.name}") for t in policies.templates()]
        select.set_options(options)
        if any(value == chosen for _label, value in options):
            select.value = chosen

    @on(Input.Changed, "#wizard-search")
    def _fill_things(self) -> None:
        search = self.query_one("#wizard-search", Input).value.strip().lower()
        things = self.query_one("#wizard-things", OptionList)
        highlighted = self.thing()
        things.clear_options()
        shown = [name for name in self.things if search in name.lower()]
        things.add_options([Option(name, id=name) for name in shown])
        if highlighted in shown:
            things.highlighted = shown.index(highlighted)
        elif not self.things:
            things.add_option(Option("no things yet: create one in the Fleet or Registry tab", disabled=True))

    @on(Input.Submitted, "#wizard-search")
    def _search_done(self) -> None:
        self.query_one("#wizard-things", OptionList).focus()

    def thing(self) -> str | None:
        things = self.query_one("#wizard-things", OptionList)
        if things.highlighted is None or things.option_count == 0:
            return None
        return things.get_option_at_index(things.highlighted).id

    @on(OptionList.OptionHighlighted, "#wizard-things")
    @on(OptionList.OptionSelected, "#wizard-things")
    def _thing_chosen(self) -> None:
        """A different thing starts the steps over; the list reloading after a run does not."""
        if self.thing() != self.chosen:
            self.chosen = self.thing()
            self.done_steps = {0} if self.chosen else set()
            self._show_steps()

    @on(Select.Changed, "#wizard-mode")
    def _mode_changed(self, event: Select.Changed) -> None:
        self.set_class(event.value == "files", "-pem")

    @on(Select.Changed, "#wizard-policy")
    def _policy_changed(self, event: Select.Changed) -> None:
        value = str(event.value) if event.value is not Select.NULL else ""
        kind, _, name = value.partition(":")
        self.set_class(kind == "template", "-new-policy")
        note = ""
        if kind == "template":
            note = "\n".join([policies.template(name).description, *_template_warnings(name)])
        elif kind == "policy":
            note = f"{name} will be attached to the new certificate."
        self.query_one("#wizard-policy-note", Static).update(note)

    def _show_steps(self, failed: bool = False) -> None:
        parts = []
        current = min((i for i in range(len(STEPS)) if i not in self.done_steps), default=None)
        for index, name in enumerate(STEPS):
            if index in self.done_steps:
                parts.append(Text(f"✔ {index + 1} {name}", style="green"))
            elif index == current:
                parts.append(Text(f"▶ {index + 1} {name}", style="bold red" if failed else "bold reverse"))
            else:
                parts.append(Text(f"○ {index + 1} {name}", style="dim"))
        self.query_one("#wizard-steps", Static).update(Text("  ─  ").join(parts))

    def plan(self) -> WizardPlan | str:
        """The plan, or what to fix first."""
        thing = self.thing()
        if thing is None:
            return "Pick a thing first: type to search, then choose it in the list."
        mode = str(self.query_one("#wizard-mode", Select).value)
        cert_path = self.query_one("#wizard-cert-path", Input).value.strip()
        key_path = self.query_one("#wizard-key-path", Input).value.strip()
        if mode == "files" and not (cert_path and key_path):
            return "Type the paths of the certificate and of its private key (PEM files)."
        value = self.query_one("#wizard-policy", Select).value
        kind, _, name = ("" if value is Select.NULL else str(value)).partition(":")
        new_name = self.query_one("#wizard-policy-name", Input).value.strip()
        if kind == "template" and not new_name:
            return "Name the new policy (letters, digits and _+=,.@-)."
        return WizardPlan(thing, mode, cert_path, key_path, new_name if kind == "template" else name or None,
                          name if kind == "template" else None)

    def action_run(self) -> None:
        plan = self.plan()
        problem = self.query_one("#wizard-problem", Static)
        if isinstance(plan, str):
            problem.update(Text(plan, style="bold red"))
            return
        problem.update("")
        what = f"A certificate for {plan.thing}" + (f" and the policy {plan.policy}" if plan.template else "")
        warnings = _template_warnings(plan.template) if plan.template else []
        if not warnings:
            _confirm_billable(self, what, lambda: self.run(plan))
            return
        self.app.push_screen(ConfirmScreen("Create the policy with a warning?", "\n".join(warnings), "Create"),
                             lambda ok: ok and _confirm_billable(self, what, lambda: self.run(plan)))

    @work(thread=True, group="wizard-run", exclusive=True, exit_on_error=False, name="certificate wizard")
    def run(self, plan: WizardPlan) -> None:
        iot, target = self.clients.iot, self.clients.target
        root: Path = self.app.cert_root  # type: ignore[attr-defined]
        self.post_message(self.Progress(None))

        def report(step: certs.Step) -> None:
            self.post_message(self.Progress(step))

        try:
            pem = certs.load_certificate_files(Path(plan.cert_path), Path(plan.key_path)) \
                if plan.mode == "files" else None
            if plan.template:
                iot.describe_thing(thingName=plan.thing)  # a missing thing must not leave a new policy behind
                document = policies.template(plan.template).render(target.region, _account(self))
                if plan.policy in {p["policyName"] for p in registry.pages(iot.list_policies, "policies",
                                                                             token_name="marker")}:
                    raise ValueError(f"a policy named {plan.policy} exists: pick it from the list or choose "
                                     "another name")
                policies.create_policy(iot, plan.policy or "", document)
                report(certs.Step("CreatePolicy", f"{plan.policy} created from template {plan.template}"))
            if plan.mode == "create":
                result = certs.create_and_attach(iot, plan.thing, target, root, plan.policy, report)
            else:
                result = certs.register_own(iot, plan.thing, target, root, pem=pem, generate=pem is None,
                                            policy_name=plan.policy, on_step=report)
        except ValueError as error:  # unreadable or non-PEM files, bad names: the user fixes them in place
            self.post_message(self.Problem(str(error)))
            return
        except ClientError as error:
            self.post_message(self.Stopped(error.response["Error"]["Code"]))
            raise  # the app's one handler shows the code, the message and what it means
        files = [result.files.cert_path, result.files.key_path, result.files.public_key_path]
        files += [result.files.ca_path] if result.files.ca_path else []
        modes = {path: stat.S_IMODE(os.stat(path).st_mode) for path in files}
        self.post_message(self.Done((result, modes)))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        log = self.query_one("#wizard-log", Static)
        if message.data is None:
            self.done_steps = {0}
            self.log_lines = []
            log.update(Text("Working…", style="dim"))
        else:
            step: certs.Step = message.data
            self.done_steps.add(STEP_OF.get(step.operation, 0))
            self.log_lines.append(Text.assemble((step.operation, "bold"), "  ", step.detail))
            log.update(Text("\n").join(self.log_lines))
        self._show_steps()

    @on(Problem)
    def _problem(self, message: Problem) -> None:
        self.query_one("#wizard-problem", Static).update(Text(message.data, style="bold red"))
        self.query_one("#wizard-log", Static).update("Nothing was created. Fix the problem above and press Ctrl+S.")
        self._show_steps(failed=True)

    @on(Stopped)
    def _stopped(self, message: Stopped) -> None:
        self.log_lines.append(Text(f"Stopped by {message.data}: the notification says why. Your choices are kept; "
                                   "fix the cause and press Ctrl+S.", style="bold red"))
        self.query_one("#wizard-log", Static).update(Text("\n").join(self.log_lines))
        self._show_steps(failed=True)

    @on(Done)
    def _done_wizard(self, message: Done) -> None:
        result: certs.CertificateResult = message.data[0]
        modes: dict[Path, int] = message.data[1]
        self.done_steps = set(range(len(STEPS)))
        self._show_steps()
        lines = list(self.log_lines)
        lines.append(Text(f"\nCertificate {result.certificate_id} is ACTIVE and attached to {result.thing}.",
                          style="bold green"))
        lines.append(Text(f"Files in {result.files.folder}:"))
        lines += [Text(f"  {mode:04o}  {path.name}") for path, mode in modes.items()]
        self.query_one("#wizard-log", Static).update(Text("\n").join(lines))
        self.load()


# -- policies --


class PoliciesPane(AwsWidget):
    FOCUS_FIRST = "#policies-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "create", "Create policy", id="policies-create"),
        Binding("ctrl+n", "new_version", "New version", id="policies-new-version"),
        Binding("ctrl+t", "set_default", "Set default version", id="policies-set-default"),
        Binding("r", "refresh", "Refresh", id="policies-refresh"),
    ]

    class PoliciesLoaded(Loaded):
        pass

    class Details(Loaded):
        """(policy name, versions, targets) of the highlighted policy."""

    class DocumentLoaded(Loaded):
        """(policy name, default document), to start a new version from."""

    class DiffReady(Loaded):
        pass

    class Created(Loaded):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.policy: str | None = None
        self.versions: list[policies.PolicyVersion] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="policies-body"):
            with Vertical(id="policies-left"):
                yield DataTable(id="policies-table", cursor_type="row", zebra_stripes=True)
                yield Label("Versions (Ctrl+T: make default)", classes="section-title")
                yield DataTable(id="versions-table", cursor_type="row")
                yield Static("", id="policy-targets")
            with VerticalScroll(id="policies-right", can_focus=False):
                with Horizontal(classes="cert-row"):
                    yield Select([(t.name, t.name) for t in policies.templates()], prompt="start from a template",
                                 id="policy-template")
                    yield Input(placeholder="policy name", id="policy-name")
                yield Static("", id="template-description")
                yield TextArea("", language="json", id="policy-editor")
                yield Static("", id="policy-problems")
                yield Label("Diff between versions", classes="section-title")
                with Horizontal(classes="cert-row"):
                    yield Select([], prompt="version", id="diff-a")
                    yield Select([], prompt="version", id="diff-b")
                yield Static("", id="policy-diff")

    def on_mount(self) -> None:
        self.query_one("#policies-table", DataTable).add_columns("Policy", "Default version")
        versions = self.query_one("#versions-table", DataTable)
        versions.add_columns("Version", "Default")
        # Fixed-format dates get a fixed width: the table need not re-measure before it shows them.
        versions.add_column("Created", width=DATE_WIDTH)
        self._validate()

    def action_refresh(self) -> None:
        self.busy(self.query_one("#policies-table"))
        self.load()

    @work(thread=True, group="policies-list", exclusive=True, exit_on_error=False, name="list policies")
    def load(self) -> None:
        names = [p["policyName"] for p in registry.pages(self.clients.iot.list_policies, "policies",
                                                          token_name="marker")]
        found = [(name, self.clients.iot.get_policy(policyName=name).get("defaultVersionId", "")) for name in names]
        self.post_message(self.PoliciesLoaded(found))

    @on(PoliciesLoaded)
    def _loaded(self, message: PoliciesLoaded) -> None:
        table = self.query_one("#policies-table", DataTable)
        table.clear()
        for name, default in message.data:
            table.add_row(name, default, key=name)
        if not message.data:
            self.query_one("#policy-targets", Static).update(
                "No policies yet: pick a template, name it, and press Ctrl+S.")
        elif self.policy in dict(message.data):
            table.move_cursor(row=table.get_row_index(self.policy))

    @on(DataTable.RowHighlighted, "#policies-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self.policy = event.row_key.value
            self.details(self.policy)

    @work(thread=True, group="policy-details", exclusive=True, exit_on_error=False, name="policy versions")
    def details(self, name: str) -> None:
        iot = self.clients.iot
        self.post_message(self.Details((name, policies.list_versions(iot, name), policies.list_targets(iot, name))))

    @on(Details)
    def _details(self, message: Details) -> None:
        name, versions, targets = message.data
        if name != self.policy:
            return
        self.versions = versions
        table = self.query_one("#versions-table", DataTable)
        table.clear()
        for version in versions:
            table.add_row(f"v{version.version_id}", "default" if version.is_default else "", _date(version.created),
                          key=version.version_id)
        lines = [Text(f"Targets of {name}", style="bold")]
        lines += [Text(f"  {t.rsplit('/', 1)[-1][:16]}… ({t.split(':')[5].split('/')[0]})") for t in targets]
        self.query_one("#policy-targets", Static).update(Text("\n").join(lines if targets else
                                                                          [*lines, Text("  none")]))
        options = [(f"v{v.version_id}", v.version_id) for v in versions]
        for select_id, version in (("#diff-a", versions[-2:][0]), ("#diff-b", versions[-1])):
            select = self.query_one(select_id, Select)
            with select.prevent(Select.Changed):
                select.set_options(options)
                select.value = version.version_id
        self._diff()

    @on(DataTable.RowSelected, "#policies-table")
    def _edit(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.document(event.row_key.value)

    @work(thread=True, group="policy-document", exclusive=True, exit_on_error=False, name="get policy")
    def document(self, name: str) -> None:
        self.post_message(self.DocumentLoaded((name, self.clients.iot.get_policy(policyName=name)["policyDocument"])))

    @on(DocumentLoaded)
    def _document(self, message: DocumentLoaded) -> None:
        name, document = message.data
        self.query_one("#policy-name", Input).value = name
        self.query_one("#policy-editor", TextArea).text = policies.pretty(document)
        self.query_one("#template-description", Static).update(
            f"The default version of {name}: edit it and press Ctrl+N to make a new version.")

    # -- editing --

    @on(Select.Changed, "#policy-template")
    def _template(self, event: Select.Changed) -> None:
        if event.value is Select.NULL:
            return
        chosen = policies.template(str(event.value))
        target = self.app.target  # type: ignore[attr-defined]
        self.query_one("#template-description", Static).update(chosen.description)
        self.query_one("#policy-editor", TextArea).text = chosen.render(target.region,
                                                                         target.account_id or "{{account}}")

    @on(TextArea.Changed, "#policy-editor")
    def _validate(self) -> list[policies.Problem]:
        text = self.query_one("#policy-editor", TextArea).text
        problems = policies.validate_document(text)
        shown = _problems_text(problems) if text.strip() else Text(
            "Pick a template, or press Enter on a policy to edit its default version.", style="dim")
        self.query_one("#policy-problems", Static).update(shown)
        return problems

    def _checked(self, verb: str, then: Any) -> None:
        """Errors stop here, in place; the production warning asks first; AWS asks before billing."""
        problems = self._validate()
        if any(p.severity == "error" for p in problems):
            self.notify("Fix the document first: the problems are listed under the editor.", severity="error")
            return
        warnings = [p for p in problems if p.severity == "warning"]
        if warnings:
            self.app.push_screen(ConfirmScreen(f"{verb} with a warning?", "\n".join(p.text for p in warnings), verb),
                                 lambda ok: ok and then())
            return
        then()

    def action_create(self) -> None:
        name = self.query_one("#policy-name", Input).value.strip()
        if not name:
            self.query_one("#policy-problems", Static).update(Text("Name the policy first.", style="bold red"))
            return
        document = self.query_one("#policy-editor", TextArea).text
        self._checked("Create", lambda: _confirm_billable(self, f"The policy {name}",
                                                           lambda: self.create(name, document)))

    @work(thread=True, group="policy-create", exclusive=True, exit_on_error=False, name="create policy")
    def create(self, name: str, document: str) -> None:
        policies.create_policy(self.clients.iot, name, document)
        self.post_message(self.Created(f"Policy {name} created (version 1)."))

    def action_new_version(self) -> None:
        if self.policy is None:
            self.notify("Select a policy first: the new version is added to it.", severity="warning")
            return
        name, document = self.policy, self.query_one("#policy-editor", TextArea).text
        self._checked("Create version", lambda: self.new_version(name, document))

    @work(thread=True, group="policy-version", exclusive=True, exit_on_error=False, name="create policy version")
    def new_version(self, name: str, document: str) -> None:
        made = policies.create_version(self.clients.iot, name, document)
        self.post_message(self.Created(f"{name} v{made['policyVersionId']} is now the default version."))

    def action_set_default(self) -> None:
        table = self.query_one("#versions-table", DataTable)
        if self.policy is None or table.row_count == 0:
            return
        version = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        self.set_default(self.policy, version)

    @work(thread=True, group="policy-default", exclusive=True, exit_on_error=False, name="set default version")
    def set_default(self, name: str, version: str) -> None:
        policies.set_default_version(self.clients.iot, name, version)
        self.post_message(self.Created(f"{name} v{version} is now the default version."))

    @on(Created)
    def _created(self, message: Created) -> None:
        self.notify(message.data)
        self.action_refresh()
        if self.policy is not None:
            self.details(self.policy)

    # -- diff --

    @on(Select.Changed, "#diff-a")
    @on(Select.Changed, "#diff-b")
    def _diff(self) -> None:
        a, b = self.query_one("#diff-a", Select).value, self.query_one("#diff-b", Select).value
        if self.policy is None or a is Select.NULL or b is Select.NULL:
            return
        self.diff(self.policy, str(a), str(b))

    @work(thread=True, group="policy-diff", exclusive=True, exit_on_error=False, name="diff policy versions")
    def diff(self, name: str, a: str, b: str) -> None:
        self.post_message(self.DiffReady(policies.diff_versions(self.clients.iot, name, a, b)))

    @on(DiffReady)
    def _diff_ready(self, message: DiffReady) -> None:
        if not message.data:
            self.query_one("#policy-diff", Static).update(Text("The two versions say the same.", style="dim"))
            return
        styles = {"+": "green", "-": "red", "@": "cyan"}
        self.query_one("#policy-diff", Static).update(Text("\n").join(
            Text(line, style=styles.get(line[:1], "")) for line in message.data.splitlines()))


# -- the simulator --


class SimulatorPane(AwsWidget):
    FOCUS_FIRST = "#sim-certificate"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "simulate", "Simulate", id="simulator-run"),
        Binding("r", "refresh", "Refresh", id="simulator-refresh"),
    ]

    class ChoicesLoaded(Loaded):
        """(certificates, policy names)."""

    class Simulated(Loaded):
        pass

    def compose(self) -> ComposeResult:
        yield Label("May this certificate do that? (TestAuthorization, or the policy evaluator for the rest)",
                    classes="section-title")
        with Horizontal(classes="cert-row"):
            yield Select([], prompt="certificate", id="sim-certificate")
            yield Select([], prompt="attached policies only", id="sim-policy")
        with Horizontal(classes="cert-row"):
            yield Select([(a, a) for a in SIMULATED_ACTIONS], value="Connect", allow_blank=False, id="sim-action")
            yield Input(placeholder="client id (empty: the client id below)", id="sim-resource")
            yield Input(placeholder="client id of the connection", id="sim-client-id")
        yield Static("Press F5 (or Enter in a field) to simulate.", id="sim-result")

    def action_refresh(self) -> None:
        self.busy(self.query_one("#sim-certificate"))
        self.load()

    @work(thread=True, group="simulator-choices", exclusive=True, exit_on_error=False, name="list certificates")
    def load(self) -> None:
        iot = self.clients.iot
        names = [p["policyName"] for p in registry.pages(iot.list_policies, "policies", token_name="marker")]
        self.post_message(self.ChoicesLoaded((registry.list_certificates(iot), names)))

    @on(ChoicesLoaded)
    def _choices(self, message: ChoicesLoaded) -> None:
        found, names = message.data
        certificates = self.query_one("#sim-certificate", Select)
        chosen = certificates.value
        options = [(f"{c.certificate_id[:12]}… {c.status} {', '.join(c.things)}", c.arn) for c in found]
        certificates.set_options(options)
        if any(value == chosen for _label, value in options):
            certificates.value = chosen
        elif options:
            certificates.value = options[0][1]
        self.query_one("#sim-policy", Select).set_options([(f"also {n}, as if attached", n) for n in names])

    @on(Select.Changed, "#sim-action")
    def _action(self, event: Select.Changed) -> None:
        kind = policies.ACTIONS[str(event.value)][1]
        hint = "client id (empty: the client id below)" if kind == "client id" else kind
        self.query_one("#sim-resource", Input).placeholder = hint

    @on(Input.Submitted, "#sim-resource")
    @on(Input.Submitted, "#sim-client-id")
    def action_simulate(self) -> None:
        arn = self.query_one("#sim-certificate", Select).value
        if arn is Select.NULL:
            self.query_one("#sim-result", Static).update(Text("Pick a certificate first.", style="bold red"))
            return
        policy = self.query_one("#sim-policy", Select).value
        self.simulate(str(arn), str(self.query_one("#sim-action", Select).value),
                      self.query_one("#sim-resource", Input).value.strip(),
                      self.query_one("#sim-client-id", Input).value.strip() or None,
                      [] if policy is Select.NULL else [str(policy)])

    @work(thread=True, group="simulate", exclusive=True, exit_on_error=False, name="simulate policy")
    def simulate(self, arn: str, action: str, resource: str, client_id: str | None, extra: list[str]) -> None:
        try:
            result = policies.simulate(self.clients.iot, arn, action, resource, client_id, extra)
        except ValueError as error:  # a missing resource: said in place
            self.post_message(self.Simulated(str(error)))
            return
        self.post_message(self.Simulated(result))

    @on(Simulated)
    def _simulated(self, message: Simulated) -> None:
        result = self.query_one("#sim-result", Static)
        if isinstance(message.data, str):
            result.update(Text(message.data, style="bold red"))
            return
        sim: policies.Simulation = message.data
        verdict = Text(sim.verdict, style="bold green" if sim.allowed else "bold red")
        lines = [Text.assemble(verdict, f"  {sim.action} on {sim.resource}"),
                 Text(f"decision {sim.decision} · by {sim.source}")]
        if sim.statement is not None:
            ref = sim.statement
            sid = f" ({ref.sid})" if ref.sid else ""
            lines.append(Text(f"deciding: policy {ref.policy_name}, statement {ref.statement_index + 1}{sid}, "
                              f"{ref.effect}"))
        elif sim.deciding_policy:
            lines.append(Text(f"deciding: policy {sim.deciding_policy}"))
        else:
            lines.append(Text("no statement allows it: denied by default"))
        result.update(Text("\n").join(lines))


# -- the view --

PANES: list[tuple[str, str, type[AwsWidget]]] = [
    ("Certificates", "list", CertListPane),
    ("New certificate", "wizard", WizardPane),
    ("Policies", "policies", PoliciesPane),
    ("Simulator", "simulator", SimulatorPane),
]


class CertificatesView(AwsWidget):
    """Sub-tabs load when first shown, and refresh when shown again (other tabs change things)."""

    TITLE = "Certificates"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", id="certificates-view-refresh"),
        # Priority: a DataTable pages sideways with these keys; here they switch sub-tabs from anywhere.
        Binding("ctrl+pagedown", "next_tab(1)", "Next sub-tab", id="certificates-next-tab", show=False,
                priority=True),
        Binding("ctrl+pageup", "next_tab(-1)", "Previous sub-tab", id="certificates-previous-tab",
                show=False, priority=True),
    ]

    def compose(self) -> ComposeResult:
        with TabbedContent(id="certificates-tabs"):
            for title, key, pane in PANES:
                with TabPane(title, id=f"certificates-{key}"):
                    yield pane(id=f"certs-{key}-pane")

    def activated(self) -> None:
        """Refresh the visible sub-tab; when just mounted, once the sub-tabs themselves are there."""
        if self.query("#certificates-tabs"):
            self.action_refresh()
            self.focus_first()
        else:
            self.call_after_refresh(self.activated)

    @on(TabbedContent.TabActivated, "#certificates-tabs")
    def _activated(self) -> None:
        if self.app.active_view() is self:  # type: ignore[attr-defined]
            self.action_refresh()
            self.call_after_refresh(self.focus_first)

    def focus_first(self) -> None:
        pane = self.current_pane()
        if pane is not None:
            pane.focus_first()

    def current_pane(self) -> AwsWidget | None:
        """The visible sub-tab's pane; None before the sub-tabs are mounted."""
        tabs = self.query("#certificates-tabs")
        active = tabs.first(TabbedContent).active if tabs else ""
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
        tabs = [(f"Show {title}", f"Open the {title} tab", f"show_tab('certificates-{key}')")
                for title, key, _ in PANES]
        return super().commands() + inner + tabs

    async def action_pane_action(self, action: str) -> None:
        pane = self.current_pane()
        if pane is not None:
            await pane.run_action(action)

    def action_show_tab(self, pane_id: str) -> None:
        tabbed = self.query_one("#certificates-tabs", TabbedContent)
        if tabbed.active == pane_id:
            self.focus_first()
            return
        # Off the old pane first: focus left inside a hidden pane would switch the tabs back to it.
        tabbed.query_one(Tabs).focus()
        tabbed.active = pane_id

    def action_next_tab(self, step: int) -> None:
        keys = [f"certificates-{key}" for _title, key, _pane in PANES]
        active = self.query_one("#certificates-tabs", TabbedContent).active
        self.action_show_tab(keys[(keys.index(active) + step) % len(keys)])
