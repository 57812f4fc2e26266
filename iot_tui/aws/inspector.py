"""The API inspector's data: one botocore event hook on the session records every call of every client.

Hooking the session (not each call) means screens, scripts and the fleet helpers are all seen
without any of them knowing the inspector exists.
"""

from __future__ import annotations

import base64
import itertools
import json
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

# The events the one handler listens to; they share botocore's per-call `context` dict.
EVENTS = ("before-parameter-build", "before-call", "after-call", "after-call-error")
_CONTEXT_KEY = "iot_tui_call"


@dataclass
class ApiCall:
    """One AWS call as the inspector shows it."""

    id: int
    service: str
    operation: str
    region: str
    params: dict[str, Any]
    started_at: float
    method: str = ""
    url: str = ""
    status: int | None = None
    response: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    duration_ms: float | None = None
    request_id: str | None = None
    _started: float = field(default=0.0, repr=False)

    @property
    def done(self) -> bool:
        return self.duration_ms is not None

    @property
    def ok(self) -> bool:
        return self.done and self.error_code is None

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("_started")
        return record


Listener = Callable[[ApiCall], None]


class Inspector:
    """Keeps the last `keep` calls and tells listeners when one starts and when it ends."""

    def __init__(self, timer: Callable[[], float] = time.perf_counter,
                 clock: Callable[[], float] = time.time, keep: int = 500):
        self.timer = timer
        self.clock = clock
        self.keep = keep
        self.calls: list[ApiCall] = []
        self._listeners: list[Listener] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def attach(self, session: Any) -> None:
        """Register on a botocore session; clients created from it afterwards are all seen."""
        for event in EVENTS:
            session.register(event, self._hook, unique_id=f"iot-tui-inspector-{event}")

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def _hook(self, event_name: str, **kwargs: Any) -> None:
        context = kwargs.get("context")
        if context is None:
            return
        kind = event_name.split(".", 1)[0]
        if kind == "before-parameter-build":
            model = kwargs["model"]
            call = ApiCall(
                id=next(self._ids),
                service=model.service_model.service_name,
                operation=model.name,
                region=(context.get("client_region") or ""),
                params=_displayable(kwargs.get("params") or {}),
                started_at=self.clock(),
                _started=self.timer(),
            )
            context[_CONTEXT_KEY] = call
            return
        call = context.get(_CONTEXT_KEY)
        if call is None:
            return
        if kind == "before-call":
            request = kwargs.get("params") or {}
            call.method = request.get("method", "")
            call.url = request.get("url", "")
            region = (context.get("signing") or {}).get("region")
            call.region = region or call.region
            self._publish(call)
        elif kind == "after-call":
            response = dict(kwargs.get("parsed") or {})
            metadata = response.pop("ResponseMetadata", {})
            error = response.pop("Error", None)
            call.status = getattr(kwargs.get("http_response"), "status_code", None)
            call.request_id = metadata.get("RequestId")
            if error:
                call.error_code = error.get("Code")
                call.error_message = error.get("Message")
                response.pop("message", None)
            call.response = _displayable(response)
            self._finish(call)
        elif kind == "after-call-error":
            error = kwargs.get("exception")
            call.error_code = type(error).__name__
            call.error_message = str(error)
            self._finish(call)

    def _finish(self, call: ApiCall) -> None:
        call.duration_ms = round((self.timer() - call._started) * 1000, 1)
        self._publish(call)

    def _publish(self, call: ApiCall) -> None:
        with self._lock:
            if call not in self.calls:
                self.calls.append(call)
                del self.calls[: -self.keep]
            listeners = list(self._listeners)
        for listener in listeners:
            listener(call)


def _displayable(value: Any) -> Any:
    """Copy a request or response into plain JSON types: bytes as text, streams as a marker."""
    if isinstance(value, dict):
        return {k: _displayable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_displayable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(bytes(value)).decode()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "read"):
        return "<streaming body>"
    return value


def as_json(call: ApiCall) -> str:
    return json.dumps(call.to_dict(), indent=2, default=str)


def as_cli_command(call: ApiCall) -> str:
    """The same call as an `aws` CLI command line, to learn the CLI or replay it outside the app."""
    from botocore import xform_name

    words = ["aws", call.service, xform_name(call.operation, "-")]
    for name, value in call.params.items():
        option = "--" + xform_name(name, "-")
        if isinstance(value, bool):
            words.append(option if value else "--no-" + option[2:])
        elif isinstance(value, (dict, list)):
            words += [option, json.dumps(value, separators=(",", ":"))]
        else:
            words += [option, str(value)]
    if call.service == "iot-data" and call.operation == "GetThingShadow":
        words.append("/dev/stdout")
    parts = urlsplit(call.url)
    if parts.hostname and not parts.hostname.endswith(".amazonaws.com"):
        words += ["--endpoint-url", f"{parts.scheme}://{parts.netloc}"]
    if call.region:
        words += ["--region", call.region]
    return shlex.join(words)


def as_text(call: ApiCall) -> str:
    """The call as the inspector shows it, for `--debug` output and plain-text copies."""
    from iot_tui.aws.explain import explain

    status = call.status if call.status is not None else "-"
    lines = [f"{call.service} {call.operation}  {call.method} {call.url}",
             f"  status {status}  {call.duration_ms} ms"]
    if call.params:
        lines.append("  params " + json.dumps(call.params, default=str))
    if call.error_code:
        lines.append(f"  error {call.error_code}: {call.error_message}")
    elif call.response:
        lines.append("  response " + json.dumps(call.response, default=str)[:400])
    lines += ["  " + s for s in explain(call.service, call.operation, call.error_code, call.status).sentences()]
    return "\n".join(lines)
