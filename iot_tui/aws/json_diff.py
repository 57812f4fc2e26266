"""Structural differences between two JSON documents: which keys were added, removed or changed.

Used by the shadow viewer (version against version) and the MQTT pane (a message against the
previous one on its topic). Objects are compared key by key; arrays and scalars as whole values,
the way the Device Shadow service replaces arrays whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ChangeKind = Literal["added", "removed", "changed"]
MISSING: Any = object()


@dataclass(frozen=True)
class Change:
    path: tuple[str, ...]
    kind: ChangeKind
    old: Any = None
    new: Any = None

    @property
    def dotted(self) -> str:
        return ".".join(self.path) or "(document)"


def diff(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[Change]:
    """Every leaf-level change from `old` to `new`, in key order."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in sorted(old.keys() | new.keys()):
            before, after = old.get(key, MISSING), new.get(key, MISSING)
            if before is MISSING:
                changes.append(Change((*path, key), "added", new=after))
            elif after is MISSING:
                changes.append(Change((*path, key), "removed", old=before))
            else:
                changes.extend(diff(before, after, (*path, key)))
        return changes
    if _same(old, new):
        return []
    return [Change(path, "changed", old, new)]


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def changed_paths(old: Any, new: Any) -> set[tuple[str, ...]]:
    """The paths a viewer highlights: every changed leaf and each of its parent objects."""
    paths: set[tuple[str, ...]] = set()
    for change in diff(old, new):
        for depth in range(1, len(change.path) + 1):
            paths.add(change.path[:depth])
    return paths
