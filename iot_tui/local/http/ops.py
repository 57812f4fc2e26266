"""The operation registry: each handler is a plain function of (context, typed parameters).

Handlers never see the HTTP request: the protocol layer binds and validates members from the
model, and serializes whatever dict the handler returns into the operation's output shape.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iot_tui.local.core import CoreState

Params = dict[str, Any]
Handler = Callable[["RequestContext", Params], Any]

HANDLERS: dict[tuple[str, str], Handler] = {}


def operation(service: str, name: str) -> Callable[[Handler], Handler]:
    """Register a handler for `service` ("iot", "iot-data", "sts", "iam") operation `name`."""

    def register(handler: Handler) -> Handler:
        HANDLERS[(service, name)] = handler
        return handler

    return register


@dataclass
class RequestContext:
    core: CoreState
    service: str
    region: str
    access_key_id: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def store(self):
        return self.core.store

    @property
    def account_id(self) -> str:
        return self.core.config.account_id

    def now(self) -> float:
        return self.core.config.clock()

    def arn(self, resource: str, service: str = "iot") -> str:
        """`arn:aws:iot:<region>:<account>:<resource>` in this request's region."""
        region = "" if service == "iam" else self.region
        return f"arn:aws:{service}:{region}:{self.account_id}:{resource}"
