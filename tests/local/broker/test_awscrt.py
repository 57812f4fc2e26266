"""The AWS IoT Device SDK v2 (awscrt) MQTT 3.1.1 and MQTT 5 clients, unchanged, on the broker."""

from __future__ import annotations

import queue
from concurrent.futures import Future

import pytest
from awscrt import auth, mqtt, mqtt5
from awsiot import mqtt5_client_builder, mqtt_connection_builder

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from tests.local.broker.conftest import make_device

TIMEOUT = 5.0


def test_mqtt311_connect_subscribe_publish(core, device):
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost", port=core.ports["mqtt"], cert_filepath=str(device.cert_path),
        pri_key_filepath=str(device.key_path), ca_filepath=str(device.ca_path),
        client_id="crt-311", clean_session=True, keep_alive_secs=30,
    )
    connection.connect().result(TIMEOUT)
    try:
        received: queue.Queue = queue.Queue()
        subscribed, _ = connection.subscribe(
            "crt/311/#", mqtt.QoS.AT_LEAST_ONCE, lambda topic, payload, **kw: received.put((topic, payload))
        )
        assert subscribed.result(TIMEOUT)["qos"] == mqtt.QoS.AT_LEAST_ONCE
        published, _ = connection.publish("crt/311/x", b"payload", mqtt.QoS.AT_LEAST_ONCE)
        published.result(TIMEOUT)
        assert received.get(timeout=TIMEOUT) == ("crt/311/x", b"payload")
    finally:
        connection.disconnect().result(TIMEOUT)


def test_mqtt5_connect_subscribe_publish(core, device):
    received: queue.Queue = queue.Queue()
    connected: Future = Future()
    stopped: Future = Future()
    client = mqtt5_client_builder.mtls_from_path(
        endpoint="localhost", port=core.ports["mqtt"], cert_filepath=str(device.cert_path),
        pri_key_filepath=str(device.key_path), ca_filepath=str(device.ca_path), client_id="crt-5",
        on_publish_received=lambda data: received.put(data.publish_packet),
        on_lifecycle_connection_success=lambda data: connected.set_result(data.connack_packet),
        on_lifecycle_stopped=lambda data: stopped.set_result(True),
    )
    client.start()
    try:
        connack = connected.result(TIMEOUT)
        assert connack.reason_code == mqtt5.ConnectReasonCode.SUCCESS
        assert connack.maximum_qos == mqtt5.QoS.AT_LEAST_ONCE
        suback = client.subscribe(mqtt5.SubscribePacket(
            [mqtt5.Subscription("crt/5/+", mqtt5.QoS.AT_LEAST_ONCE)]
        )).result(TIMEOUT)
        assert suback.reason_codes == [mqtt5.SubackReasonCode.GRANTED_QOS_1]
        puback = client.publish(mqtt5.PublishPacket(
            topic="crt/5/a", payload=b"five", qos=mqtt5.QoS.AT_LEAST_ONCE,
            user_properties=[mqtt5.UserProperty("k", "v")], content_type="text/plain",
        )).result(TIMEOUT)
        assert puback.puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        message = received.get(timeout=TIMEOUT)
        assert (message.topic, message.payload) == ("crt/5/a", b"five")
        assert [(p.name, p.value) for p in message.user_properties] == [("k", "v")]
        assert message.content_type == "text/plain"
    finally:
        client.stop()
        stopped.result(TIMEOUT)


def start_mqtt5(build, **kwargs) -> tuple[mqtt5.Client, queue.Queue, Future]:
    """Start an MQTT 5 client made by an awsiot builder; returns it, its inbox and its stop signal."""
    received: queue.Queue = queue.Queue()
    connected: Future = Future()
    stopped: Future = Future()
    client = build(
        on_publish_received=lambda data: received.put(data.publish_packet),
        on_lifecycle_connection_success=lambda data: connected.set_result(data.connack_packet),
        on_lifecycle_connection_failure=lambda data: connected.set_exception(data.exception),
        on_lifecycle_stopped=lambda data: stopped.set_result(True),
        **kwargs,
    )
    client.start()
    connected.result(TIMEOUT)
    return client, received, stopped


@pytest.mark.parametrize("transport", ["mtls", "websocket"])
def test_mqtt5_policy_denial_reason_codes(core, iot, tmp_path, region, transport):
    prefix = f"arn:aws:iot:{region}:000000000000"
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Receive"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{prefix}:topic/open/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{prefix}:topicfilter/open/*"},
    ]}
    device = make_device(iot, core, tmp_path, document)
    if transport == "mtls":
        def build(**kwargs):
            return mqtt5_client_builder.mtls_from_path(
                endpoint="localhost", port=core.ports["mqtt"], cert_filepath=str(device.cert_path),
                pri_key_filepath=str(device.key_path), ca_filepath=str(device.ca_path),
                client_id=f"deny-{transport}", **kwargs)
    else:  # the local IAM identity may do anything: only the topic rules apply
        def build(**kwargs):
            return mqtt5_client_builder.websockets_with_default_aws_signing(
                region=region, credentials_provider=auth.AwsCredentialsProvider.new_static(
                    LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY),
                endpoint="localhost", port=core.ports["ws"], ca_filepath=str(device.ca_path),
                client_id=f"deny-{transport}", **kwargs)
    client, received, stopped = start_mqtt5(build)
    try:
        suback = client.subscribe(mqtt5.SubscribePacket([
            mqtt5.Subscription("open/+", mqtt5.QoS.AT_LEAST_ONCE),
            mqtt5.Subscription("closed/+", mqtt5.QoS.AT_LEAST_ONCE),
        ])).result(TIMEOUT)
        denied = mqtt5.PublishPacket(topic="closed/a", payload=b"no", qos=mqtt5.QoS.AT_LEAST_ONCE)
        puback = client.publish(denied).result(TIMEOUT).puback
        if transport == "mtls":
            assert suback.reason_codes == [mqtt5.SubackReasonCode.GRANTED_QOS_1,
                                           mqtt5.SubackReasonCode.NOT_AUTHORIZED]
            assert puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED
        else:
            assert puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        client.publish(mqtt5.PublishPacket(topic="open/a", payload=b"yes", qos=mqtt5.QoS.AT_LEAST_ONCE)).result(TIMEOUT)
        topics = {received.get(timeout=TIMEOUT).topic for _ in range(1 if transport == "mtls" else 2)}
        assert "open/a" in topics
    finally:
        client.stop()
        stopped.result(TIMEOUT)
