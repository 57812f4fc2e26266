"""Payloads for the publish form and the message detail: parse what people type, show what arrived.

Three input kinds, as in the MQTT pane's publish form: plain text, JSON (validated, errors with
line and column so the form can point at them) and `key=value key2=value2` shorthand turned into
JSON with numbers, booleans and null typed, because typing JSON quotes in a terminal is tedious.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from iot_tui.aws.payloads import parse_json, parse_key_values

PayloadKind = Literal["text", "json", "kv"]
PAYLOAD_KINDS: tuple[PayloadKind, ...] = ("text", "json", "kv")

# Control characters other than tab, newline and carriage return mark a payload as binary.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def parse_payload(text: str, kind: PayloadKind) -> bytes:
    """The bytes to publish for `text` typed as `kind`; JSON comes out compact."""
    if kind == "text":
        return text.encode()
    if kind == "json":
        return json.dumps(parse_json(text), separators=(",", ":")).encode()
    if kind == "kv":
        return json.dumps(parse_key_values(text), separators=(",", ":")).encode()
    raise ValueError(f"payload kind must be one of {', '.join(PAYLOAD_KINDS)}, not {kind!r}")


def test_message(now: float, sequence: int = 1, client_id: str | None = None) -> bytes:
    """The "test message" action's payload, like the AWS console's, plus what makes it traceable."""
    document: dict[str, Any] = {
        "message": "Hello from iot-tui",
        "sequence": sequence,
        "timestamp": int(now * 1000),
        "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if client_id:
        document["clientId"] = client_id
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class PayloadView:
    """How the message detail shows a payload: `kind` is json, text or binary (then `text` is a hex dump)."""

    kind: Literal["json", "text", "binary"]
    text: str
    value: Any = None


def describe_payload(payload: bytes, hex_width: int = 16) -> PayloadView:
    """JSON pretty-printed, UTF-8 text as is, anything else (or text with control bytes) as a hex dump."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        text = None
    if text is None or _CONTROL.search(text):
        return PayloadView("binary", hex_dump(payload, hex_width))
    try:
        value = json.loads(text)
    except ValueError:
        return PayloadView("text", text)
    return PayloadView("json", json.dumps(value, indent=2, ensure_ascii=False), value)


def hex_dump(data: bytes, width: int = 16) -> str:
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset:offset + width]
        printable = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<{width * 3 - 1}}  {printable}")
    return "\n".join(lines)
