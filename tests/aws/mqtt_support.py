"""Shared pieces of the MQTT client tests: devices made through the real API, an event recorder,
and a skip (with the reason printed) when the local core has no broker listener."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from iot_tui.aws.mqtt import MqttEvent
from iot_tui.local.server import LocalServer

ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}


def require_listener(core: LocalServer, name: str) -> int:
    """The port of the core's `mqtt` or `ws` listener; skips (saying why) when it is not there."""
    port = core.ports.get(name)
    if not port:
        reason = f"the local core has no {name!r} listener (ports: {sorted(core.ports)})"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return port


@dataclass(frozen=True)
class Device:
    certificate_id: str
    certificate_arn: str
    cert_file: Path
    key_file: Path


_devices = iter(range(1, 1_000_000))


def make_device(iot: Any, folder: Path, policy: dict | None = ALLOW_ALL, active: bool = True) -> Device:
    """CreateKeysAndCertificate, files saved as the wizard does (key 0600), and a policy attached."""
    number = next(_devices)
    answer = iot.create_keys_and_certificate(setAsActive=active)
    folder.mkdir(parents=True, exist_ok=True)
    cert_file = folder / f"{answer['certificateId']}.crt"
    key_file = folder / f"{answer['certificateId']}.key"
    cert_file.write_text(answer["certificatePem"])
    key_file.write_text(answer["keyPair"]["PrivateKey"])
    key_file.chmod(0o600)
    if policy is not None:
        name = f"mqtt-test-{number}"
        iot.create_policy(policyName=name, policyDocument=json.dumps(policy))
        iot.attach_policy(policyName=name, target=answer["certificateArn"])
    return Device(answer["certificateId"], answer["certificateArn"], cert_file, key_file)


class Recorder:
    """A listener that keeps every event and lets a test wait for one (bounded by a timeout)."""

    def __init__(self) -> None:
        self.events: list[MqttEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: MqttEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of(self, kind: type) -> list[Any]:
        with self._changed:
            return [event for event in self.events if isinstance(event, kind)]

    def wait_for(self, predicate: Callable[[MqttEvent], bool], timeout: float = 10.0, count: int = 1) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [event for event in self.events if predicate(event)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"waited {timeout}s for {count} event(s); saw {self.events!r}")
                self._changed.wait(left)
