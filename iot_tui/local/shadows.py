"""The local core's Device Shadow service: shadow requests against the store, and their messages.

The iot-data HTTP API uses it now and the MQTT broker will use it for `$aws/things/.../shadow`
requests, so both answer with the same documents and errors (`iotcore.shadow` builds them).
Accepted changes are published through `CoreState.publish`, as AWS does for REST requests too,
so MQTT subscribers see changes made over HTTP. Errors raise `ShadowError`: the HTTP API turns
it into an AWS error response, the broker into a `/rejected` message (AWS publishes no
`/rejected` message for a REST request).
"""

from __future__ import annotations

import json
from typing import Any

from iot_tui.iotcore import shadow
from iot_tui.iotcore.shadow import ShadowError
from iot_tui.iotcore.topics import MAX_PAYLOAD_BYTES
from iot_tui.local.core import CoreState, Message

# Shadow messages go out at QoS 1: AWS delivers /delta messages missed while offline to
# persistent sessions ("AWS IoT Device Shadow service"), which keep only QoS 1 messages.
SHADOW_MESSAGE_QOS = 1


def encode_document(document: dict[str, Any]) -> bytes:
    """A shadow document as AWS sends it: compact UTF-8 JSON, the same bytes over HTTP and MQTT."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ShadowService:
    """Get, update and delete classic (`shadow_name=None`) and named shadows in a region."""

    def __init__(self, core: CoreState) -> None:
        self.core = core

    def _now(self) -> int:
        """Shadow documents carry whole epoch seconds."""
        return int(self.core.config.clock())

    def get(
        self,
        region: str,
        thing: str,
        shadow_name: str | None = None,
        client_token: str | None = None,
    ) -> dict[str, Any]:
        """The GetThingShadow body and /get/accepted payload; 404 ShadowError when absent."""
        stored = self.core.store.get_shadow(region, thing, shadow_name or shadow.CLASSIC_SHADOW)
        return shadow.get_document(
            stored, self._now(), client_token, thing_name=thing, shadow_name=shadow_name
        )

    def update(
        self, region: str, thing: str, shadow_name: str | None, payload: bytes
    ) -> dict[str, Any]:
        """Apply an update request body; returns the /update/accepted document.

        Creates the shadow when absent: AWS keeps shadows for any valid thing name, registered
        in the registry or not. Publishes /update/accepted, /update/delta (when desired and
        reported differ) and /update/documents once the change is committed.
        """
        if len(payload) > MAX_PAYLOAD_BYTES:  # the message broker's limit on any request
            raise ShadowError(413, shadow.MSG_TOO_LARGE)
        request = shadow.parse_update(payload)
        name = shadow_name or shadow.CLASSIC_SHADOW
        store = self.core.store
        with store.transaction():
            result = shadow.apply_update(
                store.get_shadow(region, thing, name), request, self._now()
            )
            store.put_shadow(region, thing, name, result.stored)
        self._publish(region, thing, shadow_name, "update/accepted", result.accepted)
        if result.delta is not None:
            self._publish(region, thing, shadow_name, "update/delta", result.delta)
        self._publish(region, thing, shadow_name, "update/documents", result.documents)
        return result.accepted

    def delete(
        self,
        region: str,
        thing: str,
        shadow_name: str | None = None,
        client_token: str | None = None,
    ) -> dict[str, Any]:
        """Delete a shadow, keeping its version for a re-creation; publishes /delete/accepted."""
        name = shadow_name or shadow.CLASSIC_SHADOW
        store = self.core.store
        now = self._now()
        with store.transaction():
            stored = store.get_shadow(region, thing, name)
            response = shadow.delete_response(
                stored, now, client_token, thing_name=thing, shadow_name=shadow_name
            )
            store.put_shadow(region, thing, name, shadow.tombstone(stored, now))
        self._publish(region, thing, shadow_name, "delete/accepted", response)
        return response

    def _publish(
        self,
        region: str,
        thing: str,
        shadow_name: str | None,
        suffix: str,
        document: dict[str, Any],
    ) -> None:
        topic = shadow.shadow_topic(thing, shadow_name, suffix)
        self.core.publish(Message(region, topic, encode_document(document), qos=SHADOW_MESSAGE_QOS))
