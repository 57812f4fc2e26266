"""The MQTT codec: round trips, strict refusals with their MQTT 5 reason codes, and a fuzz test."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_tui.local.broker import codec
from iot_tui.local.broker.codec import MQTT_5, MQTT_311, PacketReader, ProtocolError


def decode_all(data: bytes, version: int = MQTT_5, max_packet: int = 1 << 20) -> list:
    return list(PacketReader(max_packet, version).feed(data))


CLIENT_PACKETS = [
    codec.Connect(MQTT_311, "dev-1", True, 60, "user?SDK=x", None,
                  codec.Will("will/t", b"bye", 1, True)),
    codec.Connect(MQTT_5, "dev-5", False, 1200, None, None, codec.Will(
        "will/t", b"bye", 0, False, {codec.WILL_DELAY_INTERVAL: 5, codec.USER_PROPERTY: [("a", "b")]}),
        {codec.SESSION_EXPIRY_INTERVAL: 3600, codec.RECEIVE_MAXIMUM: 10}),
    codec.Publish("a/b", b"\x00\xff", 1, True, False, 7,
                  {codec.USER_PROPERTY: [("k", "v"), ("k", "w")], codec.CONTENT_TYPE: "x"}),
    codec.Publish("a/b", b"", 0),
    codec.Puback(7),
    codec.Subscribe(3, [("a/+", 1), ("b/#", 0)]),
    codec.Unsubscribe(4, ["a/+"]),
    codec.Pingreq(),
    codec.Disconnect(codec.DISCONNECT_WITH_WILL, {codec.REASON_STRING: "bye"}),
]


@pytest.mark.parametrize("packet", CLIENT_PACKETS, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("version", [MQTT_311, MQTT_5])
def test_client_packets_round_trip(packet, version):
    if isinstance(packet, codec.Connect):
        version = packet.protocol_level
    elif version == MQTT_311:
        packet = type(packet)(**{**{s: getattr(packet, s) for s in packet.__slots__}, **(
            {"properties": {}} if "properties" in packet.__slots__ else {})})
        if isinstance(packet, codec.Disconnect):
            packet = codec.Disconnect()
    assert decode_all(codec.encode(packet, version), version) == [packet]


def test_incremental_decoding_byte_by_byte():
    stream = b"".join(codec.encode(p, MQTT_5) for p in CLIENT_PACKETS[2:])
    reader = PacketReader(1 << 20, MQTT_5)
    out = []
    for i in range(len(stream)):
        out += reader.feed(stream[i:i + 1])
    assert out == CLIENT_PACKETS[2:]
    assert not reader.buffer


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x30\xff\xff\xff\xff\x7f", codec.MALFORMED_PACKET),  # five length bytes
    (b"\x30\xff\xff\xff\x7f", codec.PACKET_TOO_LARGE),  # 256 MB
    (b"\x36\x03\x00\x01a", codec.MALFORMED_PACKET),  # QoS 3
    (b"\x38\x04\x00\x01ax", codec.MALFORMED_PACKET),  # DUP on QoS 0
    (b"\x30\x05\x00\x02\xc3\x28x", codec.MALFORMED_PACKET),  # bad UTF-8 topic
    (b"\x30\x04\x00\x02a\x00", codec.MALFORMED_PACKET),  # U+0000
    (b"\x30\x04\x00\x05ab", codec.MALFORMED_PACKET),  # string longer than the packet
    (b"\x80\x03\x00\x01\x00", codec.MALFORMED_PACKET),  # SUBSCRIBE with reserved flags 0
    (b"\x82\x03\x00\x01\x00", codec.PROTOCOL_ERROR),  # SUBSCRIBE without filters
    (b"\x82\x06\x00\x01\x00\x01a\x03", codec.MALFORMED_PACKET),  # subscription QoS 3
    (b"\x62\x02\x00\x01", codec.PROTOCOL_ERROR),  # PUBREL: no QoS 2 here
    (b"\xc0\x01\x00", codec.MALFORMED_PACKET),  # PINGREQ with a body
    (b"\x32\x05\x00\x01a\x00\x00", codec.MALFORMED_PACKET),  # packet id 0
    (b"\x30\x06\x00\x01a\x02\x23\x00", codec.MALFORMED_PACKET),  # property runs past its length
    (b"\x30\x08\x00\x01a\x04\x01\x01\x01\x01", codec.PROTOCOL_ERROR),  # duplicate property
    (b"\x30\x06\x00\x01a\x02\x11\x00", codec.MALFORMED_PACKET),  # session expiry in PUBLISH
    (b"\x30\x08\x00\x01a\x02\x01\x01\xff\xfe", codec.PAYLOAD_FORMAT_INVALID),
])
def test_malformed_packets_are_refused_with_reason_codes(data, reason):
    with pytest.raises(ProtocolError) as refused:
        decode_all(data)
    assert refused.value.reason_code == reason


def test_unsupported_protocol_version():
    connect = codec.encode(codec.Connect(MQTT_311, "x", True, 60), MQTT_311)
    mqtt31 = connect.replace(b"\x00\x04MQTT\x04", b"\x00\x04MQTT\x03")
    with pytest.raises(ProtocolError) as refused:
        decode_all(mqtt31)
    assert refused.value.reason_code == codec.UNSUPPORTED_PROTOCOL_VERSION


def test_truncated_packet_waits_for_more():
    data = codec.encode(codec.Publish("a/b", b"x" * 100, 1, packet_id=1), MQTT_5)
    reader = PacketReader(1 << 20, MQTT_5)
    assert list(reader.feed(data[:-1])) == []
    assert [p.payload for p in reader.feed(data[-1:])] == [b"x" * 100]


def test_server_packets_encode_as_mqtt_says():
    assert codec.encode(codec.Connack(False, 0), MQTT_311) == b"\x20\x02\x00\x00"
    assert codec.encode(codec.Connack(True, 0, {codec.MAXIMUM_QOS: 1}), MQTT_5) == b"\x20\x05\x01\x00\x02\x24\x01"
    assert codec.encode(codec.Suback(5, [1, 0x80]), MQTT_311) == b"\x90\x04\x00\x05\x01\x80"
    assert codec.encode(codec.Unsuback(5), MQTT_311) == b"\xb0\x02\x00\x05"
    assert codec.encode(codec.Puback(9, codec.NOT_AUTHORIZED), MQTT_5) == b"\x40\x04\x00\x09\x87\x00"
    assert codec.encode(codec.Pingresp(), MQTT_5) == b"\xd0\x00"


@given(st.binary(max_size=512), st.sampled_from([MQTT_311, MQTT_5]))
def test_fuzz_decoder_only_raises_protocol_error(data, version):
    reader = PacketReader(4096, version)
    try:
        for packet in reader.feed(data):
            assert packet is not None
    except ProtocolError as error:
        assert 0x80 <= error.reason_code <= 0xA2


@given(st.lists(st.binary(max_size=64), max_size=8), st.sampled_from([MQTT_311, MQTT_5]))
def test_fuzz_valid_prefix_then_garbage(chunks, version):
    """A valid packet followed by any bytes, fed in any chunks: the valid one always decodes."""
    valid = codec.encode(codec.Publish("t/x", b"ok", 1, packet_id=2), version)
    reader = PacketReader(4096, version)
    decoded = []
    try:
        for chunk in [valid, *chunks]:
            decoded += reader.feed(chunk)
    except ProtocolError:
        pass
    assert decoded[:1] == [codec.Publish("t/x", b"ok", 1, packet_id=2)]
