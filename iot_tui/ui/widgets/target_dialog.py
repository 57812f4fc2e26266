"""The "Switch target" dialog: the local core, an endpoint URL, or real AWS with a profile and region."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static


@dataclass(frozen=True)
class TargetChoice:
    kind: str  # "local", "endpoint" or "aws"
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None


class SwitchTargetScreen(ModalScreen[TargetChoice | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel", id="dialog-cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Switch target", classes="dialog-title")
            yield Static(f"Now: {self.current}", classes="dialog-body")
            with RadioSet(id="target-kind"):
                yield RadioButton("Local core (free; started if none is running)", value=True, id="kind-local")
                yield RadioButton("Endpoint URL (a core elsewhere, or any AWS-compatible endpoint)", id="kind-endpoint")
                yield RadioButton("Real AWS IoT Core (costs money)", id="kind-aws")
            yield Input(placeholder="endpoint URL, e.g. http://127.0.0.1:4580", id="target-url")
            with Horizontal(classes="dialog-row"):
                yield Input(placeholder="AWS profile (default chain if empty)", id="target-profile")
                yield Input(placeholder="region, e.g. us-east-1", id="target-region")
            yield Static("", id="target-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Switch", variant="primary", id="switch")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#target-kind", RadioSet).focus()

    def choice(self) -> TargetChoice | str:
        """The choice, or what is missing from it."""
        pressed = self.query_one("#target-kind", RadioSet).pressed_button
        kind = (pressed.id or "kind-local").removeprefix("kind-") if pressed else "local"
        url = self.query_one("#target-url", Input).value.strip()
        profile = self.query_one("#target-profile", Input).value.strip() or None
        region = self.query_one("#target-region", Input).value.strip() or None
        if kind == "endpoint":
            if not url.startswith(("http://", "https://")):
                return "Give an endpoint URL starting with http:// or https://"
            return TargetChoice("endpoint", endpoint_url=url, region=region)
        if kind == "aws":
            return TargetChoice("aws", profile=profile, region=region)
        return TargetChoice("local", region=region)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        choice = self.choice()
        if isinstance(choice, str):
            self.query_one("#target-problem", Static).update(choice)
            return
        self.dismiss(choice)
