"""MQTT 5 Message Expiry Interval (property 0x02), as AWS IoT Core supports it: a message that
waits for its subscriber (offline persistent session, full inflight window, core restart) is
not delivered once its interval has run out, and is delivered with the interval less the time
it waited. Messages without the property are not touched. Real clients at the wire; the shared
core runs on the tests' FakeClock, so "time passes" is `clock.advance`, not a sleep."""

from __future__ import annotations

from iot_tui.local.broker import codec
from iot_tui.local.broker.codec import MQTT_5, MQTT_311
from iot_tui.local.broker.persist import SessionStore
from iot_tui.local.broker.sessions import Outgoing
from iot_tui.local.core import Message, MqttMessage
from iot_tui.local.store import Store
from tests.conftest import FakeClock, start_core
from tests.conftest import client as boto_client
from tests.local.broker.conftest import PahoClient, RawClient, make_device

PERSISTENT = {codec.SESSION_EXPIRY_INTERVAL: 600}


def connect(core, device, client_id, version=MQTT_5, clean=True, properties=None) -> tuple[RawClient, bool]:
    """A raw client after a successful CONNACK; returns it and the session-present flag."""
    raw = RawClient(core, device)
    raw.send(codec.encode(codec.Connect(version, client_id, clean, 60, properties=properties or {}), version))
    packet = raw.read()
    assert packet is not None and packet[0] == codec.CONNACK and packet[2][1] == 0, packet
    return raw, bool(packet[2][0] & 1)


def subscribe(raw: RawClient, topic_filter: str, version=MQTT_5) -> None:
    raw.send(codec.encode(codec.Subscribe(1, [(topic_filter, 1)]), version))
    packet = raw.read()
    assert packet is not None and packet[0] == codec.SUBACK


def go_offline(raw: RawClient, version=MQTT_5) -> None:
    raw.send(codec.encode(codec.Disconnect(), version))
    assert raw.closed_by_server()  # the session is offline once the server has closed


def publish(raw: RawClient, topic: str, payload: bytes, packet_id: int, properties=None) -> None:
    raw.send(codec.encode(codec.Publish(topic, payload, 1, packet_id=packet_id, properties=properties or {}), MQTT_5))
    packet = raw.read()
    assert packet is not None and packet[0] == codec.PUBACK


def receive(raw: RawClient, version=MQTT_5) -> codec.Publish:
    packet = raw.read()
    assert packet is not None and packet[0] == codec.PUBLISH, packet
    decoded = codec.decode_body(packet[0], packet[1], packet[2], version)
    assert isinstance(decoded, codec.Publish)
    return decoded


def ack(raw: RawClient, publish: codec.Publish, version=MQTT_5) -> None:
    assert publish.packet_id is not None
    raw.send(codec.encode(codec.Puback(publish.packet_id), version))


def nothing_more(raw: RawClient, wait: float = 0.4) -> bool:
    raw.sock.settimeout(wait)
    try:
        packet = raw.read()
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected packet {packet}")


def test_offline_session_gets_only_unexpired_messages_with_reduced_interval(core, device, clock):
    sub, _ = connect(core, device, "expiry-sub", clean=False, properties=PERSISTENT)
    subscribe(sub, "expiry/#")
    go_offline(sub)
    pub, _ = connect(core, device, "expiry-pub")
    publish(pub, "expiry/short", b"short", 1, {codec.MESSAGE_EXPIRY_INTERVAL: 1})
    publish(pub, "expiry/long", b"long", 2, {codec.MESSAGE_EXPIRY_INTERVAL: 60,
                                              codec.CONTENT_TYPE: "text/plain"})
    clock.advance(2.5)
    sub, present = connect(core, device, "expiry-sub", clean=False, properties=PERSISTENT)
    assert present
    message = receive(sub)
    assert (message.topic, message.payload) == ("expiry/long", b"long")
    assert message.properties[codec.MESSAGE_EXPIRY_INTERVAL] == 58  # 60 less the 2.5 s it waited, rounded up
    assert message.properties[codec.CONTENT_TYPE] == "text/plain"
    ack(sub, message)
    assert nothing_more(sub)
    sub.close()
    pub.close()


def test_immediate_delivery_keeps_the_interval_and_the_backlog_expires(core, device, clock):
    """A connected client with a one-message window: the first message goes out at once with the
    publisher's interval; the two behind it wait, and only the unexpired one follows."""
    sub, _ = connect(core, device, "window-sub", properties={codec.RECEIVE_MAXIMUM: 1})
    subscribe(sub, "window/#")
    pub, _ = connect(core, device, "window-pub")
    publish(pub, "window/1", b"first", 1, {codec.MESSAGE_EXPIRY_INTERVAL: 30})
    publish(pub, "window/2", b"expires", 2, {codec.MESSAGE_EXPIRY_INTERVAL: 1})
    publish(pub, "window/3", b"lasts", 3, {codec.MESSAGE_EXPIRY_INTERVAL: 60})
    publish(pub, "window/4", b"forever", 4)
    first = receive(sub)
    assert (first.payload, first.properties[codec.MESSAGE_EXPIRY_INTERVAL]) == (b"first", 30)
    assert nothing_more(sub, 0.2)  # the window is full
    clock.advance(5)
    ack(sub, first)
    third = receive(sub)
    assert (third.payload, third.properties[codec.MESSAGE_EXPIRY_INTERVAL]) == (b"lasts", 55)
    ack(sub, third)
    fourth = receive(sub)
    assert fourth.payload == b"forever" and codec.MESSAGE_EXPIRY_INTERVAL not in fourth.properties
    ack(sub, fourth)
    assert nothing_more(sub)
    sub.close()
    pub.close()


def test_messages_without_expiry_are_unaffected(core, device, clock):
    sub, _ = connect(core, device, "plain-sub", clean=False, properties=PERSISTENT)
    subscribe(sub, "plain/#")
    go_offline(sub)
    pub, _ = connect(core, device, "plain-pub")
    publish(pub, "plain/a", b"a", 1, {codec.CONTENT_TYPE: "text/plain", codec.USER_PROPERTY: [("k", "v")]})
    publish(pub, "plain/b", b"b", 2)
    clock.advance(500)  # long past any interval, within the session's expiry
    sub, present = connect(core, device, "plain-sub", clean=False, properties=PERSISTENT)
    assert present
    a, b = receive(sub), receive(sub)
    assert (a.payload, b.payload) == (b"a", b"b")
    assert a.properties == {codec.CONTENT_TYPE: "text/plain", codec.USER_PROPERTY: [("k", "v")]}
    assert b.properties == {}
    sub.close()
    pub.close()


def test_expiry_is_enforced_for_mqtt311_subscribers_too(core, device, clock):
    sub, _ = connect(core, device, "old-sub", MQTT_311, clean=False)
    subscribe(sub, "old/#", MQTT_311)
    go_offline(sub, MQTT_311)
    pub, _ = connect(core, device, "old-pub")
    publish(pub, "old/gone", b"gone", 1, {codec.MESSAGE_EXPIRY_INTERVAL: 1})
    publish(pub, "old/kept", b"kept", 2, {codec.MESSAGE_EXPIRY_INTERVAL: 60})
    clock.advance(2)
    sub, present = connect(core, device, "old-sub", MQTT_311, clean=False)
    assert present
    assert receive(sub, MQTT_311).payload == b"kept"
    assert nothing_more(sub)
    sub.close()
    pub.close()


def test_unacknowledged_message_is_resent_even_after_its_expiry(core, device, clock):
    """Its delivery had started (MQTT 5: only messages not yet sent are dropped): re-sent with DUP
    and an interval of 0."""
    sub, _ = connect(core, device, "resend-sub", clean=False, properties=PERSISTENT)
    subscribe(sub, "resend/#")
    pub, _ = connect(core, device, "resend-pub")
    publish(pub, "resend/x", b"x", 1, {codec.MESSAGE_EXPIRY_INTERVAL: 3})
    assert receive(sub).properties[codec.MESSAGE_EXPIRY_INTERVAL] == 3
    go_offline(sub)  # without a PUBACK
    clock.advance(10)
    sub, present = connect(core, device, "resend-sub", clean=False, properties=PERSISTENT)
    again = receive(sub)
    assert present and again.dup and again.payload == b"x"
    assert again.properties[codec.MESSAGE_EXPIRY_INTERVAL] == 0
    sub.close()
    pub.close()


def test_queued_properties_and_expiry_survive_a_restart(tmp_path_factory, tmp_path):
    data_dir = tmp_path_factory.mktemp("expiry-restart")
    clock = FakeClock()
    server = start_core(data_dir, clock=clock)
    try:
        device = make_device(boto_client("iot", server, "us-east-1"), server, tmp_path)
        sub, _ = connect(server, device, "restart-sub", clean=False, properties=PERSISTENT)
        subscribe(sub, "restart/#")
        go_offline(sub)
        pub, _ = connect(server, device, "restart-pub")
        publish(pub, "restart/short", b"short", 1, {codec.MESSAGE_EXPIRY_INTERVAL: 1,
                                                       codec.CONTENT_TYPE: "text/plain"})
        publish(pub, "restart/long", b'{"a": 1}', 2, {
            codec.MESSAGE_EXPIRY_INTERVAL: 60, codec.CONTENT_TYPE: "application/json",
            codec.PAYLOAD_FORMAT_INDICATOR: 1, codec.RESPONSE_TOPIC: "restart/reply",
            codec.CORRELATION_DATA: b"\x00\xffid", codec.USER_PROPERTY: [("k", "v"), ("k", "w")],
        })
        publish(pub, "restart/plain", b"plain", 3)
        pub.close()
    finally:
        server.stop_thread()
    clock.advance(4)
    server = start_core(data_dir, clock=clock)
    try:
        sub, present = connect(server, device, "restart-sub", clean=False, properties=PERSISTENT)
        assert present
        long = receive(sub)
        assert (long.topic, long.payload) == ("restart/long", b'{"a": 1}')
        assert long.properties == {
            codec.MESSAGE_EXPIRY_INTERVAL: 56, codec.CONTENT_TYPE: "application/json",
            codec.PAYLOAD_FORMAT_INDICATOR: 1, codec.RESPONSE_TOPIC: "restart/reply",
            codec.CORRELATION_DATA: b"\x00\xffid", codec.USER_PROPERTY: [("k", "v"), ("k", "w")],
        }
        ack(sub, long)
        plain = receive(sub)
        assert (plain.payload, plain.properties) == (b"plain", {})
        ack(sub, plain)
        assert nothing_more(sub)
        sub.close()
    finally:
        server.stop_thread()


OLD_MESSAGES_TABLE = """
CREATE TABLE mqtt_session_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, region TEXT NOT NULL, client_id TEXT NOT NULL,
    topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,
    user_properties TEXT NOT NULL)
"""


def test_an_older_database_opens_and_upgrades(tmp_path):
    """A queue written before properties were kept: its messages load as they were, and the table
    gains the new columns, so new messages keep their properties and expiry."""
    store = Store.open(tmp_path / "old.db")
    store.db.execute("CREATE TABLE mqtt_sessions (region TEXT NOT NULL, client_id TEXT NOT NULL, "
                     "expiry REAL NOT NULL, expires_at REAL, subscriptions TEXT NOT NULL, "
                     "PRIMARY KEY (region, client_id)) WITHOUT ROWID")
    store.db.execute(OLD_MESSAGES_TABLE)
    store.db.execute("INSERT INTO mqtt_sessions VALUES ('r', 'c', 600, NULL, '{\"a/#\": 1}')")
    store.db.execute("INSERT INTO mqtt_session_messages (region, client_id, topic, payload, qos, retain, "
                     "user_properties) VALUES ('r', 'c', 'a/1', x'6f6c64', 1, 0, '[[\"k\", \"v\"]]')")
    persisted = SessionStore(store)
    columns = {row[1] for row in store.db.execute("PRAGMA table_info(mqtt_session_messages)")}
    assert {"properties", "expires_at"} <= columns
    [(session, _)] = persisted.load(1000.0)
    [old] = session.queue
    assert old.message == Message("r", "a/1", b"old", 1, False, user_properties=(("k", "v"),))
    assert old.expires == 0.0

    properties = ((codec.MESSAGE_EXPIRY_INTERVAL, 30), (codec.CORRELATION_DATA, b"\x01"))
    new = MqttMessage("r", "a/2", b"new", 1, properties=properties)
    persisted.queue(session, Outgoing(new, 1, False, 1030.0))
    expired = MqttMessage("r", "a/3", b"gone", 1, properties=((codec.MESSAGE_EXPIRY_INTERVAL, 5),))
    persisted.queue(session, Outgoing(expired, 1, False, 1005.0))
    store.close()

    persisted = SessionStore(Store.open(tmp_path / "old.db"))  # opening twice adds nothing twice
    [(session, _)] = persisted.load(1010.0)
    assert [item.message.payload for item in session.queue] == [b"old", b"new"]
    loaded = session.queue[1]
    assert loaded.message == new and loaded.expires == 1030.0


def test_http_publish_headers_reach_an_mqtt5_subscriber(core, iot, iot_data, tmp_path, clients):
    """The Publish API's MQTT 5 headers arrive as the properties a device would have sent."""
    device = make_device(iot, core, tmp_path)
    subscriber = PahoClient(core, device, "http-props", version=5).connect()
    clients.append(subscriber)
    subscriber.subscribe("http/props", 1)
    iot_data.publish(topic="http/props", qos=1, payload=b'{"on": true}', contentType="application/json",
                     responseTopic="http/reply", correlationData="cmVxLTE=", messageExpiry=120,
                     payloadFormatIndicator="UTF8_DATA", userProperties=[{"via": "https"}])
    got = subscriber.receive()
    props = got.properties
    assert got.payload == b'{"on": true}'
    assert props.ContentType == "application/json" and props.ResponseTopic == "http/reply"
    assert props.CorrelationData == b"req-1" and props.PayloadFormatIndicator == 1
    assert props.MessageExpiryInterval == 120 and props.UserProperty == [("via", "https")]
