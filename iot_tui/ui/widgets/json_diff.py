"""A structural diff as lines a reader scans: + added, - removed, ~ changed with old -> new."""

from __future__ import annotations

import json

from textual.content import Content

from iot_tui.aws.json_diff import Change

MARKS = {"added": ("+", "$success"), "removed": ("-", "$error"), "changed": ("~", "$warning")}


def render_changes(changes: list[Change], title: str) -> Content:
    parts: list[str | tuple[str, str]] = [(title, "bold"), "\n"]
    if not changes:
        parts.append(("no differences", "dim italic"))
    for change in changes:
        mark, colour = MARKS[change.kind]
        parts.append((f"{mark} {change.dotted}", f"bold {colour}"))
        if change.kind == "added":
            parts.append(f"  {json.dumps(change.new)}")
        elif change.kind == "removed":
            parts.append(f"  {json.dumps(change.old)}")
        else:
            parts += [f"  {json.dumps(change.old)}", (" -> ", "dim"), json.dumps(change.new)]
        parts.append("\n")
    return Content.assemble(*parts).rstrip()
