"""AWS IoT Device Shadow documents: validation, merge, delta, metadata, topics.

Pure logic, standard library only. The local core serves shadows twice, over
HTTP (GetThingShadow / UpdateThingShadow / DeleteThingShadow) and over the MQTT
``$aws/things/<thing>/shadow/...`` topics; both must answer with the same
documents and the same errors, so every document is built here once.

What AWS documents (developer guide: "Device Shadow service documents",
"Device Shadow MQTT topics", "Device Shadow REST API", "Shadow error messages",
"Interacting with shadows", "Diagnosing problems with shadows"):

- updates merge recursively into ``desired`` / ``reported``; ``null`` deletes a
  key; ``{"state": null}`` clears the state but the shadow (and its version)
  stays; a section that becomes null or empty is removed from the document;
- arrays are values: an update replaces the whole array, arrays may not hold
  ``null``, and metadata of an array is an array with one entry per element;
- ``delta`` holds the desired fields that differ from reported (fields only in
  reported are left out), nested objects are compared field by field and the
  path is kept to the root, arrays are compared whole; delta metadata is the
  desired metadata of those fields;
- ``version`` goes up by one per accepted update; a request ``version`` that is
  not the current one is rejected with 409 "Version conflict";
- ``clientToken`` is at most 64 bytes and is echoed in accepted and rejected
  replies;
- only desired + reported count toward the 8 KB limit (metadata does not);
- JSON outside ``state.desired`` / ``state.reported`` is ignored ("Diagnosing
  problems with shadows"), so unknown top-level keys are accepted, while an
  unknown key inside ``state`` is "State contains an invalid node";
- deleting a shadow does not reset its version: a shadow re-created within 48
  hours of its deletion continues from the deleted one's version; after 48
  hours it starts again from 0 ("Interacting with shadows", DELETE). The
  delete reply carries the deleted shadow's version. ``tombstone`` keeps what
  the store needs for that.

Choices where the guide is silent: /update/delta is published after every
accepted update that leaves desired and reported differing ("sent when a
difference is detected"), as AWS's own Greengrass shadow manager does;
/update/documents has ``"previous": null`` when the update created the shadow.

Observed on AWS rather than documented: a body that is not JSON is answered
"Payload contains invalid json" (the guide's table says "Invalid JSON"); a
JSON value that is not an object is "Missing required node: state"; a missing
shadow is "No shadow exists with name: '<name>'" with the thing name for the
classic shadow; ``{"state": null}`` is accepted as
``{"state": null, "metadata": {"timestamp": t}, ...}``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "CLASSIC_SHADOW",
    "DELETED_VERSION_RETENTION_SECONDS",
    "MAX_CLIENT_TOKEN_BYTES",
    "MAX_NESTING_DEPTH",
    "MAX_SHADOW_NAME_LENGTH",
    "MAX_STATE_BYTES",
    "MAX_THING_NAME_LENGTH",
    "MSG_DESIRED_NOT_OBJECT",
    "MSG_FORBIDDEN",
    "MSG_INTERNAL",
    "MSG_INVALID_CLIENT_TOKEN",
    "MSG_INVALID_JSON",
    "MSG_INVALID_STATE_NODE",
    "MSG_INVALID_VERSION",
    "MSG_MISSING_STATE",
    "MSG_NESTING",
    "MSG_REPORTED_NOT_OBJECT",
    "MSG_STATE_NOT_OBJECT",
    "MSG_THING_NOT_FOUND",
    "MSG_TOO_LARGE",
    "MSG_TOO_MANY_REQUESTS",
    "MSG_UNAUTHORIZED",
    "MSG_UNSUPPORTED_ENCODING",
    "MSG_VERSION_CONFLICT",
    "OPERATIONS",
    "ShadowError",
    "ShadowTopic",
    "UpdateResult",
    "apply_update",
    "compute_delta",
    "delete_response",
    "get_document",
    "is_deleted",
    "list_shadows_response",
    "not_found",
    "parse_client_token",
    "parse_shadow_topic",
    "parse_update",
    "shadow_topic",
    "state_size",
    "tombstone",
    "validate_shadow_name",
    "validate_thing_name",
]

# --- limits -----------------------------------------------------------------

MAX_STATE_BYTES = 8192
"""desired + reported, each serialized compactly as UTF-8; metadata excluded."""

MAX_NESTING_DEPTH = 6
"""Levels of objects/arrays in desired or reported; the section's own object is level 1."""

MAX_CLIENT_TOKEN_BYTES = 64
MAX_SHADOW_NAME_LENGTH = 64
MAX_THING_NAME_LENGTH = 128

DELETED_VERSION_RETENTION_SECONDS = 48 * 3600
"""How long a deleted shadow's version is remembered (AWS: 48 hours)."""

CLASSIC_SHADOW = ""
"""The classic (unnamed) shadow's name wherever a ``str`` is needed."""

# --- messages (AWS's wording; see the module docstring for their sources) ---

MSG_INVALID_JSON = "Payload contains invalid json"
MSG_MISSING_STATE = "Missing required node: state"
MSG_STATE_NOT_OBJECT = "State node must be an object"
MSG_DESIRED_NOT_OBJECT = "Desired node must be an object"
MSG_REPORTED_NOT_OBJECT = "Reported node must be an object"
MSG_INVALID_VERSION = "Invalid version"
MSG_INVALID_CLIENT_TOKEN = "Invalid clientToken"
MSG_NESTING = f"JSON contains too many levels of nesting; maximum is {MAX_NESTING_DEPTH}"
MSG_INVALID_STATE_NODE = "State contains an invalid node"
MSG_UNAUTHORIZED = "Unauthorized"
MSG_FORBIDDEN = "Forbidden"
MSG_THING_NOT_FOUND = "Thing not found"
MSG_VERSION_CONFLICT = "Version conflict"
MSG_TOO_LARGE = "The payload exceeds the maximum size allowed"
MSG_UNSUPPORTED_ENCODING = "Unsupported documented encoding; supported encoding is UTF-8"
# The guide describes 429 (more than 10 in-flight requests on one connection)
# without quoting a message; this wording is ours.
MSG_TOO_MANY_REQUESTS = "Too Many Requests"
MSG_INTERNAL = "Internal service failure"

# iot-data exception names (botocore's model) by HTTP status, for the
# x-amzn-ErrorType header of the HTTP API.
_ERROR_TYPES = {
    400: "InvalidRequestException",
    401: "UnauthorizedException",
    403: "ForbiddenException",
    404: "ResourceNotFoundException",
    405: "MethodNotAllowedException",
    409: "ConflictException",
    413: "RequestEntityTooLargeException",
    415: "UnsupportedDocumentEncodingException",
    429: "ThrottlingException",
    500: "InternalFailureException",
    503: "ServiceUnavailableException",
}

_SECTIONS = ("desired", "reported")


class ShadowError(Exception):
    """A shadow request AWS would refuse, with the code and message it would send.

    ``client_token`` is filled in when the request carried a usable one, so a
    rejected reply can echo it even when the request itself was invalid.
    """

    def __init__(self, code: int, message: str, client_token: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.client_token = client_token

    @property
    def error_type(self) -> str:
        """The iot-data exception name for this status (HTTP ``x-amzn-ErrorType``)."""
        return _ERROR_TYPES.get(self.code, "InternalFailureException")

    def to_rejected(self, client_token: str | None, now: int) -> dict[str, Any]:
        """The ``.../rejected`` payload; ``code`` stays an int as devices compare it."""
        doc: dict[str, Any] = {"code": self.code, "message": self.message, "timestamp": now}
        token = client_token if client_token is not None else self.client_token
        if token is not None:
            doc["clientToken"] = token
        return doc

    def to_http_body(self) -> dict[str, Any]:
        """The JSON error body of the HTTP API (botocore reads ``message``)."""
        return {"message": self.message}


def not_found(thing_name: str, shadow_name: str | None = None) -> ShadowError:
    """404 for a missing shadow; AWS names the thing for the classic shadow."""
    return ShadowError(404, f"No shadow exists with name: '{shadow_name or thing_name}'")


# --- names and topics --------------------------------------------------------

_THING_NAME_RE = re.compile(r"[a-zA-Z0-9:_-]+")
# botocore's iot-data model allows "$" in shadow names (AWS-managed shadows
# such as "$package" use it).
_SHADOW_NAME_RE = re.compile(r"[$a-zA-Z0-9:_-]+")

OPERATIONS = ("get", "update", "delete")
_SUFFIXES = {
    "get": ("accepted", "rejected"),
    "update": ("accepted", "rejected", "delta", "documents"),
    "delete": ("accepted", "rejected"),
}


def validate_thing_name(name: str) -> None:
    """Raise 400 unless ``name`` is 1-128 characters of ``[a-zA-Z0-9:_-]``."""
    if not (0 < len(name) <= MAX_THING_NAME_LENGTH and _THING_NAME_RE.fullmatch(name)):
        raise ShadowError(400, f"Invalid thing name: '{name}'")


def validate_shadow_name(name: str | None) -> None:
    """Raise 400 unless ``name`` is classic (None or "") or 1-64 characters of ``[$a-zA-Z0-9:_-]``."""
    if not name:
        return
    if not (len(name) <= MAX_SHADOW_NAME_LENGTH and _SHADOW_NAME_RE.fullmatch(name)):
        raise ShadowError(400, f"Invalid shadow name: '{name}'")


class ShadowTopic(NamedTuple):
    """A parsed shadow topic; unpacks as ``(thing, shadow_name, operation, suffix)``."""

    thing: str
    shadow_name: str | None  # None for the classic shadow
    operation: str  # get | update | delete
    suffix: str | None  # None for a request; accepted | rejected | delta | documents


def shadow_topic(thing: str, shadow_name: str | None, suffix: str) -> str:
    """Build ``$aws/things/<thing>/shadow[/name/<shadow>]/<suffix>``, e.g. suffix "update/delta"."""
    prefix = f"$aws/things/{thing}/shadow"
    if shadow_name:
        prefix += f"/name/{shadow_name}"
    return f"{prefix}/{suffix.lstrip('/')}"


def parse_shadow_topic(topic: str) -> ShadowTopic | None:
    """Recognise a shadow request or response topic; None for anything else."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "$aws" or parts[1] != "things" or parts[3] != "shadow":
        return None
    thing, rest = parts[2], parts[4:]
    shadow_name: str | None = None
    if rest[0] == "name":
        if len(rest) < 3 or not rest[1]:
            return None
        shadow_name, rest = rest[1], rest[2:]
    if not 1 <= len(rest) <= 2 or rest[0] not in OPERATIONS:
        return None
    operation = rest[0]
    suffix = rest[1] if len(rest) == 2 else None
    if suffix is not None and suffix not in _SUFFIXES[operation]:
        return None
    try:
        validate_thing_name(thing)
        validate_shadow_name(shadow_name)
    except ShadowError:
        return None
    return ShadowTopic(thing, shadow_name, operation, suffix)


# --- request parsing ---------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _loads(payload: bytes) -> Any:
    """Strict JSON: UTF-8 only (415 otherwise), no NaN/Infinity."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ShadowError(415, MSG_UNSUPPORTED_ENCODING) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ShadowError(400, MSG_NESTING) from None
    except ValueError:
        raise ShadowError(400, MSG_INVALID_JSON) from None


def _valid_token(token: Any) -> bool:
    return isinstance(token, str) and len(token.encode("utf-8")) <= MAX_CLIENT_TOKEN_BYTES


def _depth(value: Any) -> int:
    """Levels of containers: a scalar is 0, ``{}`` or ``[]`` is 1."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _has_null_in_array(value: Any, in_array: bool = False) -> bool:
    if value is None:
        return in_array
    if isinstance(value, dict):
        return any(_has_null_in_array(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null_in_array(v, True) for v in value)
    return False


def parse_update(payload: bytes) -> dict[str, Any]:
    """Validate an update request body and return ``{"state", "version"?, "clientToken"?}``.

    ``state`` is kept exactly as sent (nulls included) because the accepted
    reply echoes it. Other top-level keys are dropped, as AWS ignores them.
    """
    doc = _loads(payload)
    if not isinstance(doc, dict):
        raise ShadowError(400, MSG_MISSING_STATE)
    token = doc.get("clientToken")
    good_token = token if _valid_token(token) else None

    def fail(message: str) -> ShadowError:
        return ShadowError(400, message, good_token)

    if "clientToken" in doc and good_token is None:
        raise fail(MSG_INVALID_CLIENT_TOKEN)
    if "state" not in doc:
        raise fail(MSG_MISSING_STATE)
    state = doc["state"]
    if state is not None and not isinstance(state, dict):
        raise fail(MSG_STATE_NOT_OBJECT)
    if "version" in doc:
        version = doc["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise fail(MSG_INVALID_VERSION)
    if state is not None:
        for key, section in state.items():
            if key not in _SECTIONS:
                raise fail(MSG_INVALID_STATE_NODE)
            if section is not None and not isinstance(section, dict):
                raise fail(MSG_DESIRED_NOT_OBJECT if key == "desired" else MSG_REPORTED_NOT_OBJECT)
            if section is not None and _depth(section) > MAX_NESTING_DEPTH:
                raise fail(MSG_NESTING)
            if _has_null_in_array(section):
                # "Arrays can't have null values" (the guide gives no message).
                raise fail(MSG_INVALID_JSON)
    request: dict[str, Any] = {"state": state}
    if "version" in doc:
        request["version"] = doc["version"]
    if good_token is not None:
        request["clientToken"] = good_token
    return request


def parse_client_token(payload: bytes) -> str | None:
    """The clientToken of a /get or /delete request, whose body AWS otherwise ignores."""
    if not payload:
        return None
    try:
        doc = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(doc, dict) and _valid_token(doc.get("clientToken")):
        return doc["clientToken"]
    return None


# --- document logic ----------------------------------------------------------


def _meta_of(value: Any, now: int) -> Any:
    """Metadata mirroring ``value``: objects recurse, arrays get one entry per element."""
    if isinstance(value, dict):
        return {k: _meta_of(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [_meta_of(v, now) for v in value]
    return {"timestamp": now}


def _merge(state: dict[str, Any], meta: dict[str, Any], patch: dict[str, Any], now: int) -> None:
    """Merge ``patch`` into ``state`` in place, keeping ``meta`` its exact mirror."""
    for key, value in patch.items():
        if value is None:
            state.pop(key, None)
            meta.pop(key, None)
        elif isinstance(value, dict):
            old = state.get(key)
            if isinstance(old, dict):
                _merge(old, meta.setdefault(key, {}), value, now)
                continue
            fresh: dict[str, Any] = {}
            fresh_meta: dict[str, Any] = {}
            _merge(fresh, fresh_meta, value, now)
            if fresh or not value:
                state[key], meta[key] = fresh, fresh_meta
            else:  # an object of nothing but deletions adds nothing
                state.pop(key, None)
                meta.pop(key, None)
        else:
            state[key] = copy.deepcopy(value)
            meta[key] = _meta_of(value, now)


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 (Python says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


_MISSING = object()


def _delta(
    desired: dict[str, Any], reported: Any, desired_meta: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Desired fields that differ from reported, with their desired metadata."""
    state: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for key, want in desired.items():
        have = reported.get(key, _MISSING) if isinstance(reported, dict) else _MISSING
        key_meta = desired_meta.get(key, {})
        if isinstance(want, dict) and isinstance(have, dict):
            sub_state, sub_meta = _delta(want, have, key_meta)
            if sub_state:
                state[key], meta[key] = sub_state, sub_meta
        elif have is _MISSING or not _json_equal(want, have):
            state[key] = copy.deepcopy(want)
            meta[key] = copy.deepcopy(key_meta)
    return state, meta


def compute_delta(stored: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(delta state, delta metadata)`` of a stored shadow, or None when nothing differs."""
    desired = stored.get("state", {}).get("desired")
    if not desired:
        return None
    reported = stored["state"].get("reported", {})
    state, meta = _delta(desired, reported, stored.get("metadata", {}).get("desired", {}))
    return (state, meta) if state else None


def state_size(state: dict[str, Any]) -> int:
    """Bytes counted toward the 8 KB limit: desired and reported, compact UTF-8."""
    return sum(
        len(json.dumps(state[s], separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        for s in _SECTIONS
        if s in state
    )


def is_deleted(stored: dict[str, Any] | None) -> bool:
    """True for a tombstone: a deleted shadow kept only for its version."""
    return bool(stored and stored.get("deleted"))


def tombstone(stored: dict[str, Any], now: int) -> dict[str, Any]:
    """What to store after a delete: the version, so a re-created shadow continues it."""
    return {"deleted": True, "version": stored["version"], "timestamp": now}


def _snapshot(stored: dict[str, Any]) -> dict[str, Any]:
    """``{state, metadata, version}`` as in /update/documents."""
    return {
        "state": copy.deepcopy(stored["state"]),
        "metadata": copy.deepcopy(stored["metadata"]),
        "version": stored["version"],
    }


@dataclass(frozen=True)
class UpdateResult:
    """Everything one accepted update produces.

    ``stored`` replaces the stored document; ``accepted`` is the /update/accepted
    payload and the UpdateThingShadow response body; ``delta`` is the
    /update/delta payload (None when desired and reported agree: publish
    nothing); ``documents`` is the /update/documents payload.
    """

    stored: dict[str, Any]
    accepted: dict[str, Any]
    delta: dict[str, Any] | None
    documents: dict[str, Any]


def apply_update(
    current: dict[str, Any] | None,
    request: dict[str, Any],
    now: int,
    *,
    version_retention: int = DELETED_VERSION_RETENTION_SECONDS,
) -> UpdateResult:
    """Apply a ``parse_update`` request to the stored shadow (None or a tombstone if absent).

    Raises 409 on a version mismatch and 413 when desired + reported would
    exceed 8 KB; the stored document is untouched in both cases.
    ``version_retention`` is how long a tombstone's version carries over.
    """
    token = request.get("clientToken")
    live = None if current is None or is_deleted(current) else current
    if live is not None:
        base_version = live["version"]
    elif current is not None and now - current["timestamp"] <= version_retention:
        base_version = current["version"]  # re-created soon after a delete
    else:
        base_version = 0
    if "version" in request and request["version"] != base_version:
        raise ShadowError(409, MSG_VERSION_CONFLICT, token)

    state: dict[str, Any] = copy.deepcopy(live["state"]) if live is not None else {}
    metadata: dict[str, Any] = copy.deepcopy(live["metadata"]) if live is not None else {}
    patch = request["state"]
    if patch is None:
        state, metadata = {}, {}
    else:
        for section in _SECTIONS:
            if section not in patch:
                continue
            if patch[section] is None:
                state.pop(section, None)
                metadata.pop(section, None)
                continue
            sec_state = state.setdefault(section, {})
            sec_meta = metadata.setdefault(section, {})
            _merge(sec_state, sec_meta, patch[section], now)
            if not sec_state:
                del state[section]
                del metadata[section]
    # Keep AWS's order (desired, then reported) however the sections arrived.
    state = {s: state[s] for s in _SECTIONS if s in state}
    metadata = {s: metadata[s] for s in _SECTIONS if s in metadata}
    if state_size(state) > MAX_STATE_BYTES:
        raise ShadowError(413, MSG_TOO_LARGE, token)

    version = base_version + 1
    stored = {"state": state, "metadata": metadata, "version": version, "timestamp": now}

    accepted: dict[str, Any] = {
        "state": copy.deepcopy(patch),
        "metadata": _meta_of(patch, now),
        "version": version,
        "timestamp": now,
    }
    documents: dict[str, Any] = {
        "previous": _snapshot(live) if live is not None else None,
        "current": _snapshot(stored),
        "timestamp": now,
    }
    delta_doc: dict[str, Any] | None = None
    found = compute_delta(stored)
    if found is not None:
        delta_doc = {"version": version, "timestamp": now, "state": found[0], "metadata": found[1]}
    if token is not None:
        for doc in (accepted, documents, delta_doc):
            if doc is not None:
                doc["clientToken"] = token
    return UpdateResult(stored=stored, accepted=accepted, delta=delta_doc, documents=documents)


def get_document(
    stored: dict[str, Any] | None,
    now: int,
    client_token: str | None = None,
    *,
    thing_name: str = "",
    shadow_name: str | None = None,
) -> dict[str, Any]:
    """The GetThingShadow body and /get/accepted payload, delta included when non-empty.

    Raises 404 ("No shadow exists with name: '<name>'") for a missing or
    deleted shadow; pass ``thing_name`` / ``shadow_name`` for that message.
    """
    if stored is None or is_deleted(stored):
        raise ShadowError(404, not_found(thing_name, shadow_name).message, client_token)
    state = copy.deepcopy(stored["state"])
    metadata = copy.deepcopy(stored["metadata"])
    found = compute_delta(stored)
    if found is not None:
        state["delta"], metadata["delta"] = found
    doc: dict[str, Any] = {
        "state": state,
        "metadata": metadata,
        "version": stored["version"],
        "timestamp": now,
    }
    if client_token is not None:
        doc["clientToken"] = client_token
    return doc


def delete_response(
    stored: dict[str, Any] | None,
    now: int,
    client_token: str | None = None,
    *,
    thing_name: str = "",
    shadow_name: str | None = None,
) -> dict[str, Any]:
    """The /delete/accepted payload and DeleteThingShadow body: ``{version, timestamp, clientToken?}``.

    ``version`` is the deleted shadow's (not incremented). Store
    ``tombstone(stored, now)`` afterwards. Raises 404 for a missing shadow.
    """
    if stored is None or is_deleted(stored):
        raise ShadowError(404, not_found(thing_name, shadow_name).message, client_token)
    doc: dict[str, Any] = {"version": stored["version"], "timestamp": now}
    if client_token is not None:
        doc["clientToken"] = client_token
    return doc


def list_shadows_response(
    names: list[str], now: int, next_token: str | None = None
) -> dict[str, Any]:
    """The ListNamedShadowsForThing body: ``{results, nextToken?, timestamp}``."""
    doc: dict[str, Any] = {"results": list(names)}
    if next_token is not None:
        doc["nextToken"] = next_token
    doc["timestamp"] = now
    return doc
