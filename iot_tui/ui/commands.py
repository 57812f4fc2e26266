"""The command palette lists the current view's actions and the app's own."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ScreenCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        found = []
        view = app.active_view()  # type: ignore[attr-defined]
        if view is not None:
            for title, help_text, action in view.commands():
                found.append((f"{view.TITLE}: {title}", help_text, partial(view.run_action, action)))
        for title, help_text, action in app.app_commands():  # type: ignore[attr-defined]
            found.append((title, help_text, partial(app.run_action, action)))
        return found

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
