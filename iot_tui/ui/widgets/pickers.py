"""Modal pickers for the certificate screen: choose one of a list, or type an id back to confirm."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class ChoiceScreen(ModalScreen[str | None]):
    """One value from a list (a policy to attach or detach); None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel", id="dialog-cancel")]

    def __init__(self, title: str, body: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.body, classes="dialog-body")
            yield OptionList(*[Option(label, id=value) for label, value in self.choices], id="choice-list")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#choice-list", OptionList).focus()

    @on(OptionList.OptionSelected, "#choice-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    @on(Button.Pressed, "#no")
    def _cancel(self) -> None:
        self.dismiss(None)


class TypeIdScreen(ModalScreen[str | None]):
    """Deleting something others use: the user types its id; a wrong id is refused in place."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel", id="dialog-cancel")]

    def __init__(self, title: str, body: str, expected: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.expected = expected

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.body, classes="dialog-body")
            yield Input(placeholder="type the full certificate id", id="type-id")
            yield Static("", id="type-id-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Delete", variant="error", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#type-id", Input).focus()

    @on(Input.Submitted, "#type-id")
    @on(Button.Pressed, "#yes")
    def _confirm(self) -> None:
        typed = self.query_one("#type-id", Input).value.strip()
        if typed == self.expected:
            self.dismiss(typed)
        else:
            self.query_one("#type-id-problem", Static).update("That is not the certificate id; nothing was deleted.")

    @on(Button.Pressed, "#no")
    def _cancel(self) -> None:
        self.dismiss(None)
