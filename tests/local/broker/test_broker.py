"""The broker's AWS IoT Core rules: policies, certificate states, limits, retained messages,
wills, takeover, persistent sessions, lifecycle events and robustness, with real clients."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time

import pytest

from iot_tui.local.broker import codec
from iot_tui.local.broker.codec import MQTT_5, MQTT_311
from tests.conftest import client as boto_client
from tests.conftest import start_core
from tests.local.broker.conftest import ALLOW_ALL, PahoClient, RawClient, make_device


def connect(clients, core, device, client_id, **kwargs) -> PahoClient:
    client = PahoClient(core, device, client_id, **kwargs).connect()
    clients.append(client)
    return client


def raw_connect(core, device, client_id="raw", version=MQTT_311, **kwargs) -> tuple[RawClient, bytes]:
    raw = RawClient(core, device)
    raw.send(codec.encode(codec.Connect(version, client_id, kwargs.pop("clean", True), kwargs.pop("keep_alive", 60),
                                        **kwargs), version))
    packet = raw.read()
    assert packet is not None and packet[0] == codec.CONNACK
    return raw, packet[2]


def policy(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions, resources) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


# -- certificates --


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED"])
def test_inactive_and_revoked_certificates_are_refused(core, iot, tmp_path, caplog, status):
    device = make_device(iot, core, tmp_path)
    iot.update_certificate(certificateId=device.certificate_id, newStatus=status)
    caplog.set_level(logging.INFO, "iot_tui.local.broker")
    raw = RawClient(core, device)
    raw.send(codec.encode(codec.Connect(MQTT_311, "c", True, 60), MQTT_311))
    assert raw.closed_by_server()
    assert f"certificate {device.certificate_id} is {status}" in caplog.text


def test_unknown_certificate_and_no_certificate_are_refused(core, iot, tmp_path, caplog):
    device = make_device(iot, core, tmp_path)
    iot.update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=device.certificate_id, forceDelete=True)
    caplog.set_level(logging.INFO, "iot_tui.local.broker")
    raw = RawClient(core, device)
    raw.send(codec.encode(codec.Connect(MQTT_311, "c", True, 60), MQTT_311))
    assert raw.closed_by_server()
    assert "is not registered" in caplog.text
    try:  # TLS 1.3: the client may finish its side before the server refuses
        bare = RawClient(core, None)
        bare.send(codec.encode(codec.Connect(MQTT_311, "c", True, 60), MQTT_311))
        assert bare.read() is None
    except (ssl.SSLError, OSError):
        pass
    deadline = time.monotonic() + 5
    while "TLS handshake" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "TLS handshake failed" in caplog.text


def test_certificate_registered_without_ca(core, iot, tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed device")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    made = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    iot.create_policy(policyName="sscert", policyDocument=json.dumps(ALLOW_ALL))
    iot.attach_policy(policyName="sscert", target=made["certificateArn"])
    (tmp_path / "ss.crt").write_text(pem)
    (tmp_path / "ss.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    from tests.local.broker.conftest import Device

    device = Device(made["certificateId"], made["certificateArn"], tmp_path / "ss.crt", tmp_path / "ss.key",
                    core.core.ca.ca_cert_path, iot.meta.region_name)
    raw, connack = raw_connect(core, device, "self-signed")
    assert connack == b"\x00\x00"
    raw.close()


# -- policies --


def test_connect_policy_allows_only_named_client_ids(core, iot, tmp_path, region):
    arn = f"arn:aws:iot:{region}:000000000000:client/allowed-*"
    device = make_device(iot, core, tmp_path, policy(allow("iot:Connect", arn)))
    raw, connack = raw_connect(core, device, "allowed-1")
    assert connack == b"\x00\x00"
    raw.close()
    raw, connack = raw_connect(core, device, "other")
    assert connack == b"\x00\x05"  # 3.1.1: not authorized
    assert raw.closed_by_server()
    raw, connack = raw_connect(core, device, "other", MQTT_5)
    assert connack[:2] == b"\x00\x87"


def test_thing_policy_variables(core, iot, tmp_path, region, clients):
    prefix = f"arn:aws:iot:{region}:000000000000"
    document = policy(
        allow("iot:Connect", f"{prefix}:client/${{iot:Connection.Thing.ThingName}}"),
        allow(["iot:Publish", "iot:Receive"], f"{prefix}:topic/things/${{iot:Connection.Thing.ThingName}}/*"),
        allow("iot:Subscribe", f"{prefix}:topicfilter/things/${{iot:Connection.Thing.ThingName}}/*"),
    )
    device = make_device(iot, core, tmp_path, document, thing="thermo")
    client = connect(clients, core, device, "thermo")
    assert [c.value for c in client.subscribe("things/thermo/#")] == [1]
    assert [c.value for c in client.subscribe("things/other/#")] == [0x80]
    client.publish("things/thermo/t", b"1")
    assert client.receive().topic == "things/thermo/t"


def test_publish_denied_disconnects_311_and_pubacks_87_in_5(core, iot, tmp_path, region):
    prefix = f"arn:aws:iot:{region}:000000000000"
    document = policy(allow("iot:Connect", "*"), allow("iot:Publish", f"{prefix}:topic/ok/*"))
    device = make_device(iot, core, tmp_path, document)
    raw, _ = raw_connect(core, device, "p311")
    raw.send(codec.encode(codec.Publish("ok/1", b"x", 1, packet_id=1), MQTT_311))
    assert raw.read() == (codec.PUBACK, 0, b"\x00\x01")
    raw.send(codec.encode(codec.Publish("denied/1", b"x", 1, packet_id=2), MQTT_311))
    assert raw.closed_by_server()
    raw, _ = raw_connect(core, device, "p5", MQTT_5)
    raw.send(codec.encode(codec.Publish("denied/1", b"x", 1, packet_id=3), MQTT_5))
    assert raw.read() == (codec.PUBACK, 0, b"\x00\x03\x87\x00")
    raw.send(codec.encode(codec.Publish("ok/1", b"x", 1, packet_id=4), MQTT_5))
    assert raw.read() == (codec.PUBACK, 0, b"\x00\x04")
    raw.close()


def test_receive_is_checked_per_delivery(core, iot, tmp_path, region, clients):
    prefix = f"arn:aws:iot:{region}:000000000000"
    document = policy(
        allow(["iot:Connect", "iot:Subscribe", "iot:Publish"], "*"),
        allow("iot:Receive", f"{prefix}:topic/data/public"),
    )
    reader = connect(clients, core, make_device(iot, core, tmp_path, document), "reader")
    writer = connect(clients, core, make_device(iot, core, tmp_path), "writer")
    reader.subscribe("data/#")
    writer.publish("data/secret", b"s")
    writer.publish("data/public", b"p")
    assert reader.receive().topic == "data/public"
    assert reader.nothing_received()


# -- messages --


def test_retained_messages(core, device, clients, iot_data):
    pub = connect(clients, core, device, "ret-pub")
    pub.publish("conf/a", b"A", retain=True)
    pub.publish("conf/b", b"B", retain=True)
    got = iot_data.get_retained_message(topic="conf/a")
    assert got["payload"] == b"A"
    sub = connect(clients, core, device, "ret-sub")
    sub.subscribe("conf/+")
    received = {m.topic: (m.payload, m.retain) for m in (sub.receive(), sub.receive())}
    assert received == {"conf/a": (b"A", True), "conf/b": (b"B", True)}
    pub.publish("conf/a", b"", retain=True)  # deletes
    assert sub.receive().payload == b""
    assert [t["topic"] for t in iot_data.list_retained_messages()["retainedTopics"]] == ["conf/b"]


def test_retain_publish_needs_permission(core, iot, tmp_path, region, iot_data):
    document = policy(allow(["iot:Connect", "iot:Publish"], "*"))
    device = make_device(iot, core, tmp_path, document)
    raw, _ = raw_connect(core, device, "noretain", MQTT_5)
    raw.send(codec.encode(codec.Publish("keep/me", b"x", 1, retain=True, packet_id=1), MQTT_5))
    assert raw.read() == (codec.PUBACK, 0, b"\x00\x01\x87\x00")
    raw.close()
    assert iot_data.list_retained_messages()["retainedTopics"] == []


def test_last_will_on_abrupt_close_not_on_disconnect(core, device, clients):
    watcher = connect(clients, core, device, "watcher")
    watcher.subscribe("wills/#")
    raw, _ = raw_connect(core, device, "dying", will=codec.Will("wills/dying", b"gone", 1, False))
    raw.close()
    message = watcher.receive()
    assert (message.topic, message.payload) == ("wills/dying", b"gone")
    raw, _ = raw_connect(core, device, "polite", will=codec.Will("wills/polite", b"gone", 1, False))
    raw.send(codec.encode(codec.Disconnect(), MQTT_311))
    assert raw.closed_by_server()
    assert watcher.nothing_received()


def test_second_connection_with_same_client_id_takes_over(core, device, clients):
    watcher = connect(clients, core, device, "takeover-watch")
    watcher.subscribe("$aws/events/presence/+/twin")
    first, _ = raw_connect(core, device, "twin", MQTT_5)
    assert json.loads(watcher.receive().payload)["eventType"] == "connected"
    second, _ = raw_connect(core, device, "twin")
    assert first.read() == (codec.DISCONNECT, 0, b"\x8e\x00")
    assert first.closed_by_server()
    events = [json.loads(watcher.receive().payload) for _ in range(2)]
    assert {e["eventType"]: e.get("disconnectReason") for e in events} == {
        "disconnected": "DUPLICATE_CLIENTID", "connected": None}
    second.send(codec.encode(codec.Pingreq(), MQTT_311))
    assert second.read() == (codec.PINGRESP, 0, b"")
    second.close()


def test_lifecycle_events(core, device, clients):
    watcher = connect(clients, core, device, "events-watch")
    watcher.subscribe("$aws/events/+/+/eventful")
    other = connect(clients, core, device, "eventful")
    connected = json.loads(watcher.receive().payload)
    assert connected["eventType"] == "connected" and connected["clientId"] == "eventful"
    assert connected["principalIdentifier"] == device.certificate_id
    other.subscribe("x/y")
    subscribed = json.loads(watcher.receive().payload)
    assert (subscribed["eventType"], subscribed["topics"]) == ("subscribed", ["x/y"])
    other.client.unsubscribe("x/y")
    assert json.loads(watcher.receive().payload)["eventType"] == "unsubscribed"
    other.close()
    clients.remove(other)
    gone = json.loads(watcher.receive().payload)
    assert (gone["eventType"], gone["clientInitiatedDisconnect"]) == ("disconnected", True)


@pytest.mark.parametrize("version", [4, 5])
def test_persistent_session_queues_qos1_while_offline(core, device, clients, version):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = None
    if version == 5:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 600
    cid = f"persist-{version}"
    sub = connect(clients, core, device, cid, version=version, clean=False, properties=properties)
    sub.subscribe("queue/me", 1)
    sub.close()
    clients.remove(sub)
    pub = connect(clients, core, device, f"persist-pub-{version}")
    pub.publish("queue/me", b"q1", qos=1)
    pub.publish("queue/me", b"q0", qos=0)
    back = connect(clients, core, device, cid, version=version, clean=False, properties=properties)
    assert back.connack[-1][0].session_present
    message = back.receive()
    assert (message.payload, message.qos) == (b"q1", 1)
    assert back.nothing_received()


def test_session_expiry_and_keep_alive_flags(tmp_path_factory, tmp_path):
    server = start_core(tmp_path_factory.mktemp("short"), session_expiry=0.3, keep_alive_min=1)
    try:
        iot = boto_client("iot", server, "us-east-1")
        device = make_device(iot, server, tmp_path)
        raw, connack = raw_connect(server, device, "short", MQTT_5, clean=False, keep_alive=1,
                                   properties={codec.SESSION_EXPIRY_INTERVAL: 3600})
        assert connack[:2] == b"\x00\x00"
        started = time.monotonic()
        assert raw.read() == (codec.DISCONNECT, 0, b"\x8d\x00")  # keep-alive timeout
        assert 1.4 <= time.monotonic() - started < 3
        time.sleep(0.5)
        raw, connack = raw_connect(server, device, "short", MQTT_5, clean=False,
                                   properties={codec.SESSION_EXPIRY_INTERVAL: 3600})
        assert connack[0] == 0  # session expired: not present
        raw.close()
    finally:
        server.stop_thread()


# -- limits --


def test_limits(core, device):
    raw, _ = raw_connect(core, device, "limits", MQTT_5)
    raw.send(codec.encode(codec.Subscribe(1, [(f"f/{i}", 1) for i in range(8)]), MQTT_5))
    assert raw.read()[2][-8:] == b"\x01" * 8
    raw.send(codec.encode(codec.Subscribe(2, [(f"g/{i}", 1) for i in range(42)][:8]), MQTT_5))
    raw.read()
    for start in range(16, 50, 8):
        raw.send(codec.encode(codec.Subscribe(3, [(f"h/{i}", 1) for i in range(start, start + 8)]), MQTT_5))
        codes = raw.read()[2][3:]
    assert codes.count(0x97) == 6  # 50 subscriptions at most
    raw.send(codec.encode(codec.Subscribe(4, [("a/b/c/d/e/f/g/h/i", 1), ("+x", 0), ("ok/#", 2)]), MQTT_5))
    assert raw.read()[2][3:] == bytes([0x8F, 0x8F, 0x97])
    raw.send(codec.encode(codec.Publish("a/b/c/d/e/f/g/h/i", b"x", 0), MQTT_5))
    assert raw.read() == (codec.DISCONNECT, 0, b"\x90\x00")

    raw, _ = raw_connect(core, device, "limits", MQTT_5)
    raw.send(codec.encode(codec.Subscribe(1, [(f"f/{i}", 1) for i in range(9)]), MQTT_5))
    assert raw.read() == (codec.DISCONNECT, 0, b"\x97\x00")
    raw, _ = raw_connect(core, device, "limits", MQTT_5)
    raw.send(codec.encode(codec.Publish("big", b"x" * (128 * 1024 + 1), 0), MQTT_5))
    assert raw.read() == (codec.DISCONNECT, 0, b"\x95\x00")
    raw, _ = raw_connect(core, device, "limits", MQTT_311)
    raw.send(codec.encode(codec.Publish("q2", b"x", 2, packet_id=1), MQTT_311))
    assert raw.closed_by_server()
    raw, connack = raw_connect(core, device, "c" * 129, MQTT_5)
    assert connack[:2] == b"\x00\x85"
    raw, _ = raw_connect(core, device, "reserved", MQTT_311)
    raw.send(codec.encode(codec.Publish("$aws/events/presence/connected/x", b"x", 0), MQTT_311))
    assert raw.closed_by_server()


def test_sensor_hash_matches_sensor_slash_only(core, device, clients):
    sub = connect(clients, core, device, "hash-sub")
    sub.subscribe("sensor/#")
    sub.publish("sensor", b"no")
    sub.publish("sensor/", b"yes")
    assert sub.receive().topic == "sensor/"
    assert sub.nothing_received()


# -- robustness --


def test_random_bytes_at_the_listener(core, device, clients):
    healthy = connect(clients, core, device, "healthy")
    healthy.subscribe("still/here")
    rng = __import__("random").Random(4)
    for _ in range(5):  # before TLS
        with socket.create_connection(("127.0.0.1", core.ports["mqtt"]), timeout=5) as sock:
            sock.sendall(rng.randbytes(300))
            sock.settimeout(5)
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass
    for size in (1, 7, 64, 4096):  # inside TLS, as the first packet and after CONNECT
        raw = RawClient(core, device)
        raw.send(b"\x10" + codec.encode_varint(size) + rng.randbytes(size))
        assert raw.closed_by_server()
        raw, _ = raw_connect(core, device, f"garbage-{size}", MQTT_5)
        raw.send(bytes([rng.choice([0x30, 0x82, 0xA2, 0xE0, 0xF0])]) + codec.encode_varint(size) + rng.randbytes(size))
        packet = raw.read()
        assert packet is None or (packet[0] == codec.DISCONNECT and packet[2][0] >= 0x80)
        assert raw.closed_by_server()
    healthy.publish("still/here", b"ok")
    assert healthy.receive().payload == b"ok"


def test_slow_consumer_memory_is_bounded(core, device, clients):
    """A subscriber that never reads: the broker drops QoS 0 and caps the QoS 1 queue."""
    slow = RawClient(core, device)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.send(codec.encode(codec.Connect(MQTT_311, "slow", True, 60), MQTT_311))
    slow.read()
    slow.send(codec.encode(codec.Subscribe(1, [("flood/#", 1)]), MQTT_311))
    slow.read()
    pub = connect(clients, core, device, "flooder")
    payload = b"x" * 64_000
    for i in range(320):  # 20 MB, half of it QoS 1: more than a session may queue
        pub.client.publish("flood/a", payload, qos=1 if i % 2 else 0)
    pub.publish("flood/end", b"", qos=1)
    broker = core.broker
    session = broker.sessions[(device.region, "slow")]
    connection = session.connection
    assert connection.transport.get_write_buffer_size() < 2 * 256 * 1024 + 16 * 1024
    assert session.queued_bytes <= 8 * 1024 * 1024 and len(session.inflight) <= 100
    assert session.dropped > 0
    slow.close()


def test_persistent_sessions_and_retained_messages_survive_a_restart(tmp_path_factory, tmp_path):
    data_dir = tmp_path_factory.mktemp("restart")
    server = start_core(data_dir)
    try:
        iot = boto_client("iot", server, "us-east-1")
        device = make_device(iot, server, tmp_path)
        raw, _ = raw_connect(server, device, "survivor", clean=False)
        raw.send(codec.encode(codec.Subscribe(1, [("keep/#", 1)]), MQTT_311))
        assert raw.read()[0] == codec.SUBACK
        raw.send(codec.encode(codec.Disconnect(), MQTT_311))
        assert raw.closed_by_server()
        boto_client("iot-data", server, "us-east-1").publish(topic="keep/1", qos=1, payload=b"queued")
        boto_client("iot-data", server, "us-east-1").publish(topic="kept", retain=True, payload=b"r")
    finally:
        server.stop_thread()
    server = start_core(data_dir)
    try:
        raw, connack = raw_connect(server, device, "survivor", clean=False)
        assert connack == b"\x01\x00"  # session present
        kind, flags, body = raw.read()
        assert (kind, flags & 0x06) == (codec.PUBLISH, 0x02) and body.endswith(b"queued")
        boto_client("iot-data", server, "us-east-1").publish(topic="keep/2", qos=1, payload=b"live")
        assert raw.read()[2].endswith(b"live")
        retained = boto_client("iot-data", server, "us-east-1").get_retained_message(topic="kept")
        assert retained["payload"] == b"r"
        raw.close()
    finally:
        server.stop_thread()


def test_alpn_and_listener_lines(core, device):
    ctx = ssl.create_default_context(cafile=str(device.ca_path))
    ctx.load_cert_chain(device.cert_path, device.key_path)
    ctx.set_alpn_protocols(["x-amzn-mqtt-ca"])
    with socket.create_connection(("127.0.0.1", core.ports["mqtt"]), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "x-amzn-mqtt-ca"
            tls.sendall(codec.encode(codec.Connect(MQTT_311, "alpn", True, 60), MQTT_311))
            assert tls.recv(4) == b"\x20\x02\x00\x00"
    lines = core.listener_lines()
    assert f"mqtt  mqtts://127.0.0.1:{core.ports['mqtt']}" in lines
    assert f"ws    wss://127.0.0.1:{core.ports['ws']}/mqtt" in lines


def test_mqtt5_topic_alias_no_local_and_shared_subscriptions(core, device):
    first, _ = raw_connect(core, device, "alias-1", MQTT_5)
    second, _ = raw_connect(core, device, "alias-2", MQTT_5)
    for raw in (first, second):
        raw.send(codec.encode(codec.Subscribe(1, [("$share/g/jobs/#", 1), ("own/#", 1 | 0x04)]), MQTT_5))
        assert raw.read()[2][-2:] == b"\x01\x01"
    # No Local: a client does not get back what it published on its own subscription.
    first.send(codec.encode(codec.Publish("own/x", b"mine", 1, packet_id=1), MQTT_5))
    assert first.read() == (codec.PUBACK, 0, b"\x00\x01")
    assert second.read()[2].endswith(b"mine")
    # Topic alias: set with the first PUBLISH, then used with an empty topic.
    first.send(codec.encode(codec.Publish("jobs/a", b"j1", 1, packet_id=2, properties={codec.TOPIC_ALIAS: 3}), MQTT_5))
    first.send(codec.encode(codec.Publish("", b"j2", 1, packet_id=3, properties={codec.TOPIC_ALIAS: 3}), MQTT_5))
    # Shared subscription: each message goes to one member of the group, taking turns.
    got, acks = [], []
    while len(acks) < 2:
        kind, _, body = first.read()
        (acks if kind == codec.PUBACK else got).append(body)
    assert acks == [b"\x00\x02", b"\x00\x03"]
    while len(got) < 2:
        got.append(second.read()[2])
    assert sorted(body[-2:] for body in got) == [b"j1", b"j2"]
    assert all(b"jobs/a" in body for body in got)
    second.send(codec.encode(codec.Unsubscribe(2, ["never/subscribed"]), MQTT_5))
    assert second.read() == (codec.UNSUBACK, 0, b"\x00\x02\x00\x11")
    first.close()
    second.close()


def test_deactivating_a_certificate_disconnects_its_clients(core, iot, tmp_path, caplog):
    device = make_device(iot, core, tmp_path)
    raw, connack = raw_connect(core, device, "soon-inactive", MQTT_5)
    assert connack[:2] == b"\x00\x00"
    iot.update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    caplog.set_level(logging.INFO, "iot_tui.local.broker")
    core._loop.call_soon_threadsafe(core.broker.audit_certificates)  # instead of waiting up to 5 s
    assert raw.read() == (codec.DISCONNECT, 0, b"\x87\x00")
    assert raw.closed_by_server()
    assert "is no longer ACTIVE" in caplog.text


def test_mqtt5_will_delay(core, device, clients):
    watcher = connect(clients, core, device, "delay-watch")
    watcher.subscribe("late/#")
    will = codec.Will("late/will", b"late", 1, False, {codec.WILL_DELAY_INTERVAL: 1})
    expiry = {codec.SESSION_EXPIRY_INTERVAL: 60}
    raw, _ = raw_connect(core, device, "delayed", MQTT_5, clean=False, will=will, properties=expiry)
    raw.close()
    assert watcher.nothing_received(0.5)
    raw, connack = raw_connect(core, device, "delayed", MQTT_5, clean=False, will=will, properties=expiry)
    assert connack[0] == 1  # back in time: no will
    assert watcher.nothing_received(0.7)
    raw.close()
    started = time.monotonic()
    assert watcher.receive().payload == b"late"
    assert 0.7 < time.monotonic() - started < 2
