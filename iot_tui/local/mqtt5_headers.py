"""MQTT 5 properties from AWS's header names, as the iot-data Publish API and the rules engine's
republish action (MqttHeaders) give them: what MQTT 5 subscribers then receive."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from iot_tui.iotcore.topics import MAX_MESSAGE_EXPIRY
from iot_tui.local.broker import codec

HEADER_NAMES = ("payloadFormatIndicator", "messageExpiry", "contentType", "responseTopic", "correlationData")


def header_properties(headers: Mapping[str, object]) -> tuple[tuple[int, object], ...]:
    """The headers given (`messageExpiry` in seconds, as a number or its text; `correlationData`
    in base64) as PUBLISH properties, in one order. Raises ValueError naming the header that makes
    no valid value."""
    properties: list[tuple[int, object]] = []
    if headers.get("payloadFormatIndicator") == "UTF8_DATA":
        properties.append((codec.PAYLOAD_FORMAT_INDICATOR, 1))
    if "messageExpiry" in headers:
        expiry = str(headers["messageExpiry"])
        if not expiry.isdigit() or int(expiry) > MAX_MESSAGE_EXPIRY:
            raise ValueError(f"messageExpiry must be 0..{MAX_MESSAGE_EXPIRY} seconds, not {expiry}")
        properties.append((codec.MESSAGE_EXPIRY_INTERVAL, int(expiry)))
    if "contentType" in headers:
        properties.append((codec.CONTENT_TYPE, headers["contentType"]))
    if "responseTopic" in headers:
        properties.append((codec.RESPONSE_TOPIC, headers["responseTopic"]))
    if "correlationData" in headers:
        try:
            properties.append((codec.CORRELATION_DATA, base64.b64decode(str(headers["correlationData"]),
                                                                        validate=True)))
        except binascii.Error:
            raise ValueError("correlationData must be base64-encoded") from None
    return tuple(properties)
