"""paho-mqtt 3.1.1 and 5 against the broker: connect, publish, subscribe, retained, will, sessions."""

from __future__ import annotations

import pytest

from tests.local.broker.conftest import PahoClient


def connect(clients, core, device, client_id, **kwargs) -> PahoClient:
    client = PahoClient(core, device, client_id, **kwargs).connect()
    clients.append(client)
    return client


@pytest.mark.parametrize("version", [4, 5])
def test_publish_subscribe_qos0_and_qos1(core, device, clients, version):
    sub = connect(clients, core, device, f"sub-{version}", version=version)
    pub = connect(clients, core, device, f"pub-{version}", version=version)
    assert [int(c.value) if hasattr(c, "value") else c for c in sub.subscribe("sensors/+/temp", 1)] == [1]
    pub.publish("sensors/a/temp", b"21", qos=0)
    pub.publish("sensors/b/temp", b"22", qos=1)
    first, second = sub.receive(), sub.receive()
    assert (first.topic, first.payload, first.qos) == ("sensors/a/temp", b"21", 0)
    assert (second.topic, second.payload, second.qos) == ("sensors/b/temp", b"22", 1)
    pub.publish("sensors/a/humidity", b"x", qos=1)
    assert sub.nothing_received()


def test_http_publish_reaches_mqtt_subscriber(core, device, clients, iot_data):
    sub = connect(clients, core, device, "http-sub")
    sub.subscribe("from/http")
    iot_data.publish(topic="from/http", qos=1, payload=b"hello")
    message = sub.receive()
    assert (message.topic, message.payload) == ("from/http", b"hello")
