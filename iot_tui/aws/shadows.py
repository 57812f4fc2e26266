"""Device shadows through the iot-data API, and the history the shadow viewer keeps of them.

The viewer shows desired, reported and delta side by side and diffs any two versions; the history
collects every document it sees (GetThingShadow answers, update answers, and the MQTT
`update/documents` messages with their previous and current states).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from iot_tui.aws.json_diff import Change, diff

Section = Literal["desired", "reported"]
CLASSIC = ""


@dataclass(frozen=True)
class ShadowRef:
    """A thing's classic shadow (name "") or one of its named shadows."""

    thing: str
    name: str = CLASSIC

    @property
    def label(self) -> str:
        return f"{self.thing} (classic)" if not self.name else f"{self.thing} / {self.name}"

    def topic(self, suffix: str) -> str:
        base = f"$aws/things/{self.thing}/shadow"
        return f"{base}/name/{self.name}/{suffix}" if self.name else f"{base}/{suffix}"

    def _kwargs(self) -> dict[str, str]:
        return {"thingName": self.thing, **({"shadowName": self.name} if self.name else {})}


def get_shadow(iot_data: Any, ref: ShadowRef) -> dict[str, Any] | None:
    """The shadow document, or None when the shadow does not exist (404)."""
    try:
        answer = iot_data.get_thing_shadow(**ref._kwargs())
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    return json.loads(answer["payload"].read())


def list_named_shadows(iot_data: Any, thing: str) -> list[str]:
    names: list[str] = []
    token = None
    while True:
        answer = iot_data.list_named_shadows_for_thing(thingName=thing, **({"nextToken": token} if token else {}))
        names += answer.get("results", [])
        token = answer.get("nextToken")
        if not token:
            return names


def update_state(iot_data: Any, ref: ShadowRef, section: Section, state: dict[str, Any],
                 version: int | None = None, client_token: str | None = None) -> dict[str, Any]:
    """UpdateThingShadow for one section; `version` makes the update fail with 409 if it moved on."""
    request: dict[str, Any] = {"state": {section: state}}
    if version is not None:
        request["version"] = version
    if client_token:
        request["clientToken"] = client_token
    answer = iot_data.update_thing_shadow(payload=json.dumps(request).encode(), **ref._kwargs())
    return json.loads(answer["payload"].read())


def delete_shadow(iot_data: Any, ref: ShadowRef) -> dict[str, Any]:
    answer = iot_data.delete_thing_shadow(**ref._kwargs())
    return json.loads(answer["payload"].read())


@dataclass(frozen=True)
class Columns:
    """The three columns of the viewer and the metadata timestamps per key."""

    desired: dict[str, Any]
    reported: dict[str, Any]
    delta: dict[str, Any]
    metadata: dict[str, Any]
    version: int | None
    timestamp: int | None


def columns(document: dict[str, Any] | None) -> Columns:
    if not document:
        return Columns({}, {}, {}, {}, None, None)
    state = document.get("state") or {}
    return Columns(state.get("desired") or {}, state.get("reported") or {}, state.get("delta") or {},
                   document.get("metadata") or {}, document.get("version"), document.get("timestamp"))


@dataclass(frozen=True)
class Snapshot:
    version: int
    timestamp: int | None
    state: dict[str, Any]
    source: str


@dataclass
class ShadowHistory:
    """Every version of one shadow seen this session, newest last, one snapshot per version."""

    ref: ShadowRef
    snapshots: dict[int, Snapshot] = field(default_factory=dict)

    def add(self, document: dict[str, Any] | None, source: str) -> None:
        if not document or document.get("version") is None:
            return
        state = {k: v for k, v in (document.get("state") or {}).items() if k in ("desired", "reported")}
        version = int(document["version"])
        self.snapshots.setdefault(version, Snapshot(version, document.get("timestamp"), state, source))

    def add_documents_message(self, message: dict[str, Any]) -> None:
        """An `update/documents` message carries the previous and the current document."""
        self.add(message.get("previous"), "documents")
        self.add(message.get("current"), "documents")

    def versions(self) -> list[int]:
        return sorted(self.snapshots)

    def diff(self, old_version: int, new_version: int) -> list[Change]:
        return diff(self.snapshots[old_version].state, self.snapshots[new_version].state)
