"""Devices for the broker tests: certificates made through CreateKeysAndCertificate on the core,
policies attached through AttachPolicy, and MQTT clients (paho, awscrt) with timeouts."""

from __future__ import annotations

import json
import queue
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties

from iot_tui.local.server import LocalServer

TIMEOUT = 5.0

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}


@dataclass
class Device:
    """A registered certificate with its key on disk, as a device would hold it."""

    certificate_id: str
    arn: str
    cert_path: Path
    key_path: Path
    ca_path: Path
    region: str


def make_device(iot, core: LocalServer, tmp: Path, policy: dict | None = ALLOW_ALL, thing: str | None = None) -> Device:
    made = iot.create_keys_and_certificate(setAsActive=True)
    folder = tmp / made["certificateId"][:12]
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "device.crt", folder / "device.key"
    cert_path.write_text(made["certificatePem"])
    key_path.write_text(made["keyPair"]["PrivateKey"])
    if policy is not None:
        name = f"policy-{uuid.uuid4().hex[:8]}"
        iot.create_policy(policyName=name, policyDocument=json.dumps(policy))
        iot.attach_policy(policyName=name, target=made["certificateArn"])
    if thing is not None:
        iot.create_thing(thingName=thing)
        iot.attach_thing_principal(thingName=thing, principal=made["certificateArn"])
    assert core.core is not None
    return Device(
        made["certificateId"], made["certificateArn"], cert_path, key_path, core.core.ca.ca_cert_path,
        iot.meta.region_name,
    )


@pytest.fixture
def device(iot, core, tmp_path) -> Device:
    return make_device(iot, core, tmp_path)


def tls_context(device: Device) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(device.ca_path))
    ctx.load_cert_chain(device.cert_path, device.key_path)
    return ctx


class PahoClient:
    """A paho client on its own network thread; received messages land in a queue."""

    def __init__(self, core: LocalServer, device: Device, client_id: str, version: int = 4,
                 clean: bool = True, keepalive: int = 60, will: tuple | None = None,
                 properties: Properties | None = None) -> None:
        protocol = paho.MQTTv5 if version == 5 else paho.MQTTv311
        kwargs = {} if version == 5 else {"clean_session": clean}
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kwargs)
        self.client.tls_set_context(tls_context(device))
        self.messages: queue.Queue = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack: list = []
        self.disconnect_reasons: list = []
        self.subacks: queue.Queue = queue.Queue()
        self.acks: queue.Queue = queue.Queue()
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda c, u, mid, codes, props: self.subacks.put((mid, codes))
        self.client.on_publish = lambda c, u, mid, code, props: self.acks.put((mid, code))
        if will is not None:
            self.client.will_set(*will)
        self.version = version
        self.clean = clean
        self.port = core.ports["mqtt"]
        self.keepalive = keepalive
        self.properties = properties

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        self.connack.append((flags, reason, properties))
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.disconnect_reasons.append(reason)
        self.disconnected.set()

    def connect(self, expect_success: bool = True) -> PahoClient:
        kwargs = {}
        if self.version == 5:
            kwargs = {"clean_start": self.clean, "properties": self.properties}
        self.client.connect("localhost", self.port, keepalive=self.keepalive, **kwargs)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT) or self.disconnected.wait(0), "no CONNACK"
        if expect_success:
            assert self.connack and not self.connack[-1][1].is_failure, self.connack
        return self

    def subscribe(self, topic_filter: str, qos: int = 1) -> list:
        self.client.subscribe(topic_filter, qos)
        _, codes = self.subacks.get(timeout=TIMEOUT)
        return codes

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, **kwargs):
        info = self.client.publish(topic, payload, qos=qos, retain=retain, **kwargs)
        if qos:
            info.wait_for_publish(TIMEOUT)
        return info

    def receive(self, timeout: float = TIMEOUT):
        return self.messages.get(timeout=timeout)

    def nothing_received(self, wait: float = 0.3) -> bool:
        try:
            message = self.messages.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected message on {message.topic}: {message.payload!r}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients() -> Iterator[list[PahoClient]]:
    """Clients a test makes; all are closed at the end, passed or failed."""
    made: list[PahoClient] = []
    yield made
    for client in made:
        client.close()


class RawClient:
    """MQTT over a blocking TLS socket, packet by packet, for exact wire-level assertions."""

    def __init__(self, core: LocalServer, device: Device | None, timeout: float = TIMEOUT) -> None:
        import socket

        ctx = ssl.create_default_context(cafile=str(core.core.ca.ca_cert_path))
        if device is not None:
            ctx.load_cert_chain(device.cert_path, device.key_path)
        raw = socket.create_connection(("127.0.0.1", core.ports["mqtt"]), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int) -> bool:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buffer += chunk
        return True

    def read(self) -> tuple[int, int, bytes] | None:
        """(packet type, flags, body) of the next packet; None when the server closed."""
        if not self._fill(2):
            return None
        length, shift, i = 0, 0, 1
        while True:
            if not self._fill(i + 1):
                return None
            byte = self.buffer[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
        if not self._fill(i + length):
            return None
        first = self.buffer[0]
        body = self.buffer[i:i + length]
        self.buffer = self.buffer[i + length:]
        return first >> 4, first & 0x0F, body

    def closed_by_server(self) -> bool:
        """Read until the server closes (True) or the timeout (False)."""
        try:
            while self.read() is not None:
                pass
        except (TimeoutError, OSError):
            return False
        return True

    def close(self) -> None:
        self.sock.close()
