"""The iot-data plane: device shadows over REST, Publish, and retained messages.

Shadow requests go through `ShadowService`, which the MQTT broker shares, so a change made here
reaches MQTT subscribers; Publish goes through `CoreState.publish`, the broker's message path.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from iot_tui.iotcore.shadow import ShadowError, list_shadows_response
from iot_tui.iotcore.topics import (
    MAX_PAYLOAD_BYTES,
    TopicError,
    is_reserved,
    reserved_publish_allowed,
    validate_topic_name,
)
from iot_tui.local.core import make_message
from iot_tui.local.http.errors import ApiError, invalid_request, not_found
from iot_tui.local.http.ops import Params, RequestContext, operation
from iot_tui.local.mqtt5_headers import HEADER_NAMES, header_properties
from iot_tui.local.shadows import ShadowService, encode_document

# AWS documents the maxima only; a caller that gives no page size gets a full page.
NAMED_SHADOWS_PAGE = 100
RETAINED_PAGE = 200


@contextmanager
def _shadow_errors() -> Iterator[None]:
    """A refused shadow request answers with the iot-data exception for its status."""
    try:
        yield
    except ShadowError as error:
        raise ApiError(error.error_type, error.message, error.code) from None


def _encode_token(last: str) -> str:
    """Opaque to callers: the key the next page starts after."""
    return base64.urlsafe_b64encode(last.encode()).decode()


def _decode_token(token: str | None) -> str:
    if not token:
        return ""
    try:
        return base64.b64decode(token, altchars=b"-_", validate=True).decode()
    except ValueError:  # bad base64 or bad UTF-8
        raise invalid_request("The nextToken is not valid") from None


# -- shadows --


@operation("iot-data", "GetThingShadow")
def get_thing_shadow(ctx: RequestContext, p: Params) -> dict:
    with _shadow_errors():
        document = ShadowService(ctx.core).get(ctx.region, p["thingName"], p.get("shadowName"))
    return {"payload": encode_document(document)}


@operation("iot-data", "UpdateThingShadow")
def update_thing_shadow(ctx: RequestContext, p: Params) -> dict:
    with _shadow_errors():
        accepted = ShadowService(ctx.core).update(
            ctx.region, p["thingName"], p.get("shadowName"), p["payload"]
        )
    return {"payload": encode_document(accepted)}


@operation("iot-data", "DeleteThingShadow")
def delete_thing_shadow(ctx: RequestContext, p: Params) -> dict:
    with _shadow_errors():
        response = ShadowService(ctx.core).delete(ctx.region, p["thingName"], p.get("shadowName"))
    return {"payload": encode_document(response)}


@operation("iot-data", "ListNamedShadowsForThing")
def list_named_shadows_for_thing(ctx: RequestContext, p: Params) -> dict:
    """An unknown thing, or one with only a classic shadow, lists nothing (no 404)."""
    limit = p.get("pageSize", NAMED_SHADOWS_PAGE)
    names = ctx.store.list_named_shadows(
        ctx.region, p["thingName"], _decode_token(p.get("nextToken")), limit + 1
    )
    token = _encode_token(names[limit - 1]) if len(names) > limit else None
    return list_shadows_response(names[:limit], int(ctx.now()), token)


# -- messages --


def _topic(topic: str, member: str = "topic") -> str:
    try:
        validate_topic_name(topic)
    except TopicError as error:
        raise invalid_request(f"Invalid {member}: {error}") from None
    return topic


def _user_properties(value: Any) -> tuple[tuple[str, str], ...]:
    """AWS's form: a JSON array of objects of string values, `[{"a": "1"}, {"b": "2"}]`.

    SDKs send the array as a JSON value; a JSON string holding the array is accepted too, as
    callers that do not use an SDK pass the text itself.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and all(isinstance(v, str) for v in item.values()) for item in value
    ):
        raise invalid_request("userProperties must be a JSON array of objects with string values")
    return tuple((key, item[key]) for item in value for key in item)


@operation("iot-data", "Publish")
def publish(ctx: RequestContext, p: Params) -> None:
    topic = _topic(p["topic"])
    retain = p.get("retain", False)
    # AWS: clients may publish to a few reserved topics (shadow, jobs, rules...), never retained.
    if not reserved_publish_allowed(topic) or (retain and is_reserved(topic)):
        raise ApiError("ForbiddenException", "Forbidden", 403)
    if "responseTopic" in p:
        _topic(p["responseTopic"], "responseTopic")
    payload = p.get("payload", b"")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ApiError(
            "RequestEntityTooLargeException",
            f"The payload exceeds the maximum size allowed ({MAX_PAYLOAD_BYTES} bytes)",
            413,
        )
    user_properties = _user_properties(p["userProperties"]) if "userProperties" in p else ()
    if p.get("payloadFormatIndicator") == "UTF8_DATA":
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_request("The payload is not UTF-8, but payloadFormatIndicator is UTF8_DATA") from None
    # Empty headers are absent; an expiry of 0 is a value.
    headers = {name: p[name] for name in HEADER_NAMES if p.get(name) or (name == "messageExpiry" and name in p)}
    try:
        forwarded = header_properties(headers)
    except ValueError as error:
        raise invalid_request(str(error)) from None
    ctx.core.publish(make_message(ctx.region, topic, payload, p.get("qos", 0), retain,
                                  user_properties=user_properties, properties=forwarded))


@operation("iot-data", "GetRetainedMessage")
def get_retained_message(ctx: RequestContext, p: Params) -> dict:
    topic = _topic(p["topic"])
    message = ctx.store.get_retained(ctx.region, topic)
    if message is None:
        raise not_found(f"No retained message exists for topic: '{topic}'")
    result: dict[str, Any] = {
        "topic": message.topic,
        "payload": message.payload,
        "qos": message.qos,
        "lastModifiedTime": int(message.last_modified * 1000),  # AWS: epoch milliseconds
    }
    if message.user_properties:
        pairs = [{key: value} for key, value in message.user_properties]
        result["userProperties"] = json.dumps(pairs, separators=(",", ":")).encode()
    return result


@operation("iot-data", "ListRetainedMessages")
def list_retained_messages(ctx: RequestContext, p: Params) -> dict:
    limit = p.get("maxResults", RETAINED_PAGE)
    rows = ctx.store.list_retained(ctx.region, _decode_token(p.get("nextToken")), limit + 1)
    result: dict[str, Any] = {
        "retainedTopics": [
            {
                "topic": row.topic,
                "payloadSize": row.payload_size,
                "qos": row.qos,
                "lastModifiedTime": int(row.last_modified * 1000),
            }
            for row in rows[:limit]
        ]
    }
    if len(rows) > limit:
        result["nextToken"] = _encode_token(rows[limit - 1].topic)
    return result
