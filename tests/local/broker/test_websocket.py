"""MQTT over WebSocket with a SigV4-presigned URL, as awscrt's default AWS signing makes it."""

from __future__ import annotations

import queue

import pytest
from awscrt import auth, mqtt
from awsiot import mqtt_connection_builder

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.local.broker.websocket import SignatureError, presigned_principal
from tests.conftest import start_core

TIMEOUT = 5.0


def ws_connection(server, region, client_id, access_key=LOCAL_ACCESS_KEY_ID, secret=LOCAL_SECRET_ACCESS_KEY):
    credentials = auth.AwsCredentialsProvider.new_static(access_key, secret)
    return mqtt_connection_builder.websockets_with_default_aws_signing(
        region=region, credentials_provider=credentials, endpoint="localhost", port=server.ports["ws"],
        ca_filepath=str(server.core.ca.ca_cert_path), client_id=client_id, clean_session=True,
    )


def test_websocket_sigv4_publish_subscribe(core, region, iot_data):
    connection = ws_connection(core, region, "ws-client")
    connection.connect().result(TIMEOUT)
    try:
        received: queue.Queue = queue.Queue()
        subscribed, _ = connection.subscribe("ws/#", mqtt.QoS.AT_LEAST_ONCE,
                                             lambda topic, payload, **kw: received.put((topic, payload)))
        subscribed.result(TIMEOUT)
        connection.publish("ws/a", b"over websocket", mqtt.QoS.AT_LEAST_ONCE)[0].result(TIMEOUT)
        assert received.get(timeout=TIMEOUT) == ("ws/a", b"over websocket")
        iot_data.publish(topic="ws/http", payload=b"from http")  # the test's region is the scope's
        assert received.get(timeout=TIMEOUT) == ("ws/http", b"from http")
    finally:
        connection.disconnect().result(TIMEOUT)


def test_strict_auth_verifies_the_signature(tmp_path):
    server = start_core(tmp_path, strict_auth=True)
    try:
        good = ws_connection(server, "us-east-1", "strict-good")
        good.connect().result(TIMEOUT)
        good.disconnect().result(TIMEOUT)
        bad = ws_connection(server, "us-east-1", "strict-bad", secret="wrong-secret")
        with pytest.raises(Exception, match="UPGRADE|403|WEBSOCKET"):
            bad.connect().result(TIMEOUT)
    finally:
        server.stop_thread()


def test_unsigned_requests_are_refused():
    with pytest.raises(SignatureError):
        presigned_principal("", {"host": "localhost"}, "GET", "/mqtt", account_id="000000000000")
    with pytest.raises(SignatureError):
        presigned_principal("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA/bad",
                            {"host": "localhost"}, "GET", "/mqtt", account_id="000000000000")
