"""awsiotsdk's shadow clients (v2 request-response, and v1) over the broker, and HTTP updates
reaching MQTT subscribers through the one shadow service."""

from __future__ import annotations

import json
import queue
import uuid
from concurrent.futures import Future

import pytest
from awscrt import mqtt, mqtt_request_response
from awsiot import ServiceStreamOptions, iotshadow, mqtt5_client_builder, mqtt_connection_builder

TIMEOUT = 5.0


@pytest.fixture
def mqtt311(core, device):
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost", port=core.ports["mqtt"], cert_filepath=str(device.cert_path),
        pri_key_filepath=str(device.key_path), ca_filepath=str(device.ca_path),
        client_id=f"shadow-{uuid.uuid4().hex[:8]}", clean_session=True,
    )
    connection.connect().result(TIMEOUT)
    yield connection
    connection.disconnect().result(TIMEOUT)


@pytest.fixture
def mqtt5_client(core, device):
    connected: Future = Future()
    stopped: Future = Future()
    client = mqtt5_client_builder.mtls_from_path(
        endpoint="localhost", port=core.ports["mqtt"], cert_filepath=str(device.cert_path),
        pri_key_filepath=str(device.key_path), ca_filepath=str(device.ca_path),
        client_id=f"shadow5-{uuid.uuid4().hex[:8]}",
        on_lifecycle_connection_success=lambda data: connected.set_result(True),
        on_lifecycle_stopped=lambda data: stopped.set_result(True),
    )
    client.start()
    connected.result(TIMEOUT)
    yield client
    client.stop()
    stopped.result(TIMEOUT)


def test_shadow_client_v2_update_get_delete_and_delta(mqtt5_client, iot_data):
    shadows = iotshadow.IotShadowClientV2(mqtt5_client, mqtt_request_response.ClientOptions(10, 10, 5))
    thing = f"lamp-{uuid.uuid4().hex[:6]}"
    deltas: queue.Queue = queue.Queue()
    subscribed: queue.Queue = queue.Queue()
    stream = shadows.create_shadow_delta_updated_stream(
        iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing),
        ServiceStreamOptions(deltas.put, subscribed.put),
    )
    stream.open()
    assert subscribed.get(timeout=TIMEOUT).type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED

    with pytest.raises(Exception) as missing:
        shadows.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(TIMEOUT)
    assert missing.value.modeled_error.code == 404

    accepted = shadows.update_shadow(iotshadow.UpdateShadowRequest(
        thing_name=thing, state=iotshadow.ShadowState(desired={"on": True}, reported={"on": False}),
    )).result(TIMEOUT)
    assert accepted.version == 1 and accepted.state.desired == {"on": True}
    assert deltas.get(timeout=TIMEOUT).state == {"on": True}

    # An update over HTTP produces the same delta message over MQTT.
    iot_data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"desired": {"on": 5}}}))
    delta = deltas.get(timeout=TIMEOUT)
    assert delta.state == {"on": 5} and delta.version == 2

    got = shadows.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(TIMEOUT)
    assert got.state.reported == {"on": False} and got.version == 2
    deleted = shadows.delete_shadow(iotshadow.DeleteShadowRequest(thing_name=thing)).result(TIMEOUT)
    assert deleted.version == 2


def test_shadow_client_v1_named_shadow(mqtt311):
    shadows = iotshadow.IotShadowClient(mqtt311)
    thing, name = f"pump-{uuid.uuid4().hex[:6]}", "config"
    accepted: queue.Queue = queue.Queue()
    rejected: queue.Queue = queue.Queue()
    future, _ = shadows.subscribe_to_update_named_shadow_accepted(
        iotshadow.UpdateNamedShadowSubscriptionRequest(thing_name=thing, shadow_name=name),
        mqtt.QoS.AT_LEAST_ONCE, accepted.put,
    )
    future.result(TIMEOUT)
    future, _ = shadows.subscribe_to_update_named_shadow_rejected(
        iotshadow.UpdateNamedShadowSubscriptionRequest(thing_name=thing, shadow_name=name),
        mqtt.QoS.AT_LEAST_ONCE, rejected.put,
    )
    future.result(TIMEOUT)
    shadows.publish_update_named_shadow(iotshadow.UpdateNamedShadowRequest(
        thing_name=thing, shadow_name=name, client_token="t1",
        state=iotshadow.ShadowState(reported={"rpm": 10}),
    ), mqtt.QoS.AT_LEAST_ONCE).result(TIMEOUT)
    response = accepted.get(timeout=TIMEOUT)
    assert response.client_token == "t1" and response.state.reported == {"rpm": 10}
    shadows.publish_update_named_shadow(iotshadow.UpdateNamedShadowRequest(
        thing_name=thing, shadow_name=name, client_token="t2", version=7,
        state=iotshadow.ShadowState(reported={"rpm": 11}),
    ), mqtt.QoS.AT_LEAST_ONCE).result(TIMEOUT)
    error = rejected.get(timeout=TIMEOUT)
    assert (error.code, error.client_token) == (409, "t2")
