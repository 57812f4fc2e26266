"""MQTT 3.1.1 and MQTT 5 packets: strict decoding from a byte stream, and encoding.

Decoding is incremental (`PacketReader.feed` takes whatever the socket gave and yields whole
packets) and strict: a malformed, truncated-in-place or oversize packet raises `ProtocolError`
carrying the MQTT 5 reason code the broker disconnects with. QoS 2 flows (PUBREC, PUBREL,
PUBCOMP) are refused like any unknown packet, as AWS IoT Core does not support QoS 2.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MQTT_311 = 4
MQTT_5 = 5

# Packet types.
CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
PUBREC, PUBREL, PUBCOMP = 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15

MAX_REMAINING_LENGTH = 268_435_455  # four length bytes

# MQTT 5 reason codes the broker uses.
SUCCESS = 0x00
GRANTED_QOS_1 = 0x01
DISCONNECT_WITH_WILL = 0x04
NO_SUBSCRIPTION_EXISTED = 0x11
UNSPECIFIED_ERROR = 0x80
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
IMPLEMENTATION_SPECIFIC = 0x83
UNSUPPORTED_PROTOCOL_VERSION = 0x84
CLIENT_ID_NOT_VALID = 0x85
BAD_USERNAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
SERVER_BUSY = 0x89
BAD_AUTHENTICATION_METHOD = 0x8C
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
PACKET_ID_IN_USE = 0x91
RECEIVE_MAXIMUM_EXCEEDED = 0x93
TOPIC_ALIAS_INVALID = 0x94
PACKET_TOO_LARGE = 0x95
QUOTA_EXCEEDED = 0x97
PAYLOAD_FORMAT_INVALID = 0x99
RETAIN_NOT_SUPPORTED = 0x9A
QOS_NOT_SUPPORTED = 0x9B
SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
SUBSCRIPTION_IDS_NOT_SUPPORTED = 0xA1
WILDCARDS_NOT_SUPPORTED = 0xA2

# MQTT 3.1.1 CONNACK return codes.
V3_ACCEPTED = 0
V3_UNACCEPTABLE_PROTOCOL = 1
V3_IDENTIFIER_REJECTED = 2
V3_SERVER_UNAVAILABLE = 3
V3_BAD_CREDENTIALS = 4
V3_NOT_AUTHORIZED = 5
SUBACK_FAILURE = 0x80  # 3.1.1's only SUBACK failure code


def v3_connack_code(reason: int) -> int:
    """The 3.1.1 CONNACK return code closest to an MQTT 5 reason code."""
    return {
        SUCCESS: V3_ACCEPTED,
        UNSUPPORTED_PROTOCOL_VERSION: V3_UNACCEPTABLE_PROTOCOL,
        CLIENT_ID_NOT_VALID: V3_IDENTIFIER_REJECTED,
        BAD_USERNAME_OR_PASSWORD: V3_BAD_CREDENTIALS,
        NOT_AUTHORIZED: V3_NOT_AUTHORIZED,
    }.get(reason, V3_SERVER_UNAVAILABLE)


class ProtocolError(Exception):
    """A packet the broker must not accept; `reason_code` is what MQTT 5 clients are told."""

    def __init__(self, message: str, reason_code: int = MALFORMED_PACKET) -> None:
        super().__init__(message)
        self.reason_code = reason_code


# --------------------------------------------------------------------------- properties

# Property identifiers (MQTT 5, section 2.2.2.2).
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _UTF8, _BINARY, _PAIR = range(7)
_PROPERTY_TYPES = {
    PAYLOAD_FORMAT_INDICATOR: _BYTE, MESSAGE_EXPIRY_INTERVAL: _U32, CONTENT_TYPE: _UTF8,
    RESPONSE_TOPIC: _UTF8, CORRELATION_DATA: _BINARY, SUBSCRIPTION_IDENTIFIER: _VARINT,
    SESSION_EXPIRY_INTERVAL: _U32, ASSIGNED_CLIENT_IDENTIFIER: _UTF8, SERVER_KEEP_ALIVE: _U16,
    AUTHENTICATION_METHOD: _UTF8, AUTHENTICATION_DATA: _BINARY, REQUEST_PROBLEM_INFORMATION: _BYTE,
    WILL_DELAY_INTERVAL: _U32, REQUEST_RESPONSE_INFORMATION: _BYTE, RESPONSE_INFORMATION: _UTF8,
    SERVER_REFERENCE: _UTF8, REASON_STRING: _UTF8, RECEIVE_MAXIMUM: _U16,
    TOPIC_ALIAS_MAXIMUM: _U16, TOPIC_ALIAS: _U16, MAXIMUM_QOS: _BYTE, RETAIN_AVAILABLE: _BYTE,
    USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _U32, WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE, SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}
# Which properties each packet may carry ("will" is the CONNECT will's property set).
_ALLOWED = {
    "connect": {SESSION_EXPIRY_INTERVAL, AUTHENTICATION_METHOD, AUTHENTICATION_DATA,
                REQUEST_PROBLEM_INFORMATION, REQUEST_RESPONSE_INFORMATION, RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM, USER_PROPERTY, MAXIMUM_PACKET_SIZE},
    "will": {PAYLOAD_FORMAT_INDICATOR, MESSAGE_EXPIRY_INTERVAL, CONTENT_TYPE, RESPONSE_TOPIC,
             CORRELATION_DATA, WILL_DELAY_INTERVAL, USER_PROPERTY},
    "publish": {PAYLOAD_FORMAT_INDICATOR, MESSAGE_EXPIRY_INTERVAL, CONTENT_TYPE, RESPONSE_TOPIC,
                CORRELATION_DATA, SUBSCRIPTION_IDENTIFIER, TOPIC_ALIAS, USER_PROPERTY},
    "puback": {REASON_STRING, USER_PROPERTY},
    "subscribe": {SUBSCRIPTION_IDENTIFIER, USER_PROPERTY},
    "unsubscribe": {USER_PROPERTY},
    "disconnect": {SESSION_EXPIRY_INTERVAL, SERVER_REFERENCE, REASON_STRING, USER_PROPERTY},
    "auth": {AUTHENTICATION_METHOD, AUTHENTICATION_DATA, REASON_STRING, USER_PROPERTY},
    "connack": set(_PROPERTY_TYPES), "suback": {REASON_STRING, USER_PROPERTY},
}
# Properties that may appear more than once; they decode to lists.
_REPEATABLE = {USER_PROPERTY, SUBSCRIPTION_IDENTIFIER}

Properties = dict[int, Any]


# ----------------------------------------------------------------------------- packets


@dataclass(slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Connect:
    protocol_level: int
    client_id: str
    clean_start: bool
    keep_alive: int
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Connack:
    session_present: bool
    reason_code: int
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Puback:
    packet_id: int
    reason_code: int = SUCCESS
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Subscribe:
    packet_id: int
    # (topic filter, options byte): QoS in bits 0-1, then no-local, retain-as-published,
    # retain-handling (MQTT 5 only).
    subscriptions: list[tuple[str, int]]
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Suback:
    packet_id: int
    reason_codes: list[int]
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Unsubscribe:
    packet_id: int
    filters: list[str]
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Unsuback:
    packet_id: int
    reason_codes: list[int] = field(default_factory=list)
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Pingreq:
    pass


@dataclass(slots=True)
class Pingresp:
    pass


@dataclass(slots=True)
class Disconnect:
    reason_code: int = SUCCESS
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Auth:
    reason_code: int = SUCCESS
    properties: Properties = field(default_factory=dict)


Packet = (
    Connect | Connack | Publish | Puback | Subscribe | Suback | Unsubscribe | Unsuback
    | Pingreq | Pingresp | Disconnect | Auth
)


# ----------------------------------------------------------------------------- decoding


class _Cursor:
    """Reads fields of one packet body; running past its end is a malformed packet."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise ProtocolError("packet is shorter than its fields say")
        chunk = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return chunk

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ProtocolError("packet is shorter than its fields say")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def varint(self) -> int:
        value, shift = 0, 0
        for _ in range(4):
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise ProtocolError("variable byte integer longer than four bytes")

    def binary(self) -> bytes:
        return self.take(self.u16())

    def utf8(self) -> str:
        return decode_utf8(self.binary())


def decode_utf8(raw: bytes) -> str:
    """MQTT strings: well-formed UTF-8 without U+0000 (surrogates are refused by the codec)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("string is not valid UTF-8") from None
    if "\x00" in text:
        raise ProtocolError("string contains U+0000")
    return text


def _properties(cur: _Cursor, kind: str) -> Properties:
    length = cur.varint()
    if length > cur.remaining():
        raise ProtocolError("property length runs past the packet")
    end = cur.pos + length
    inner = _Cursor(cur.data, cur.pos, end)
    cur.pos = end
    allowed = _ALLOWED[kind]
    props: Properties = {}
    while inner.remaining():
        ident = inner.varint()
        kind_of = _PROPERTY_TYPES.get(ident)
        if kind_of is None or ident not in allowed:
            raise ProtocolError(f"property 0x{ident:02x} is not allowed in {kind.upper()}")
        if kind_of == _BYTE:
            value: Any = inner.byte()
        elif kind_of == _U16:
            value = inner.u16()
        elif kind_of == _U32:
            value = inner.u32()
        elif kind_of == _VARINT:
            value = inner.varint()
        elif kind_of == _UTF8:
            value = inner.utf8()
        elif kind_of == _BINARY:
            value = inner.binary()
        else:
            value = (inner.utf8(), inner.utf8())
        if ident in _REPEATABLE:
            props.setdefault(ident, []).append(value)
        elif ident in props:
            raise ProtocolError(f"property 0x{ident:02x} appears twice", PROTOCOL_ERROR)
        else:
            props[ident] = value
    for ident in (PAYLOAD_FORMAT_INDICATOR, REQUEST_PROBLEM_INFORMATION, REQUEST_RESPONSE_INFORMATION):
        if props.get(ident, 0) > 1:
            raise ProtocolError(f"property 0x{ident:02x} must be 0 or 1", PROTOCOL_ERROR)
    if props.get(RECEIVE_MAXIMUM) == 0 or props.get(MAXIMUM_PACKET_SIZE) == 0:
        raise ProtocolError("Receive Maximum and Maximum Packet Size must not be 0", PROTOCOL_ERROR)
    if 0 in props.get(SUBSCRIPTION_IDENTIFIER, ()):
        raise ProtocolError("Subscription Identifier must not be 0", PROTOCOL_ERROR)
    return props


def _decode_connect(cur: _Cursor) -> Connect:
    name = cur.binary()
    level = cur.byte()
    if name != b"MQTT" or level not in (MQTT_311, MQTT_5):
        # MQTT 3.1 ("MQIsdp", level 3) and unknown versions get CONNACK "unacceptable protocol".
        raise ProtocolError(
            f"unsupported protocol {name!r} level {level}", UNSUPPORTED_PROTOCOL_VERSION
        )
    flags = cur.byte()
    if flags & 0x01:
        raise ProtocolError("CONNECT reserved flag is set")
    keep_alive = cur.u16()
    properties = _properties(cur, "connect") if level == MQTT_5 else {}
    client_id = cur.utf8()
    will = None
    will_qos = (flags >> 3) & 0x03
    will_retain = bool(flags & 0x20)
    if flags & 0x04:
        if will_qos == 3:
            raise ProtocolError("will QoS 3")
        will_props = _properties(cur, "will") if level == MQTT_5 else {}
        will = Will(cur.utf8(), cur.binary(), will_qos, will_retain, will_props)
    elif will_qos or will_retain:
        raise ProtocolError("will QoS or retain set without a will")
    username = cur.utf8() if flags & 0x80 else None
    if flags & 0x40:
        if level == MQTT_311 and username is None:
            raise ProtocolError("password without a username")
        password: bytes | None = cur.binary()
    else:
        password = None
    return Connect(level, client_id, bool(flags & 0x02), keep_alive, username, password, will, properties)


def _decode_publish(cur: _Cursor, flags: int, version: int) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")
    dup = bool(flags & 0x08)
    if dup and qos == 0:
        raise ProtocolError("DUP set on a QoS 0 PUBLISH")
    topic = cur.utf8()
    packet_id = None
    if qos:
        packet_id = cur.u16()
        if packet_id == 0:
            raise ProtocolError("packet identifier 0")
    properties = _properties(cur, "publish") if version == MQTT_5 else {}
    if SUBSCRIPTION_IDENTIFIER in properties:
        raise ProtocolError("a client PUBLISH must not carry a Subscription Identifier", PROTOCOL_ERROR)
    payload = cur.take(cur.remaining())
    if properties.get(PAYLOAD_FORMAT_INDICATOR) == 1:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("payload is marked UTF-8 but is not", PAYLOAD_FORMAT_INVALID) from None
    return Publish(topic, payload, qos, bool(flags & 0x01), dup, packet_id, properties)


def _packet_id(cur: _Cursor) -> int:
    packet_id = cur.u16()
    if packet_id == 0:
        raise ProtocolError("packet identifier 0")
    return packet_id


def _decode_subscribe(cur: _Cursor, version: int) -> Subscribe:
    packet_id = _packet_id(cur)
    properties = _properties(cur, "subscribe") if version == MQTT_5 else {}
    subscriptions = []
    while cur.remaining():
        topic_filter = cur.utf8()
        options = cur.byte()
        reserved = 0xC0 if version == MQTT_5 else 0xFC
        if options & reserved or options & 0x03 == 3 or (options >> 4) & 0x03 == 3:
            raise ProtocolError("bad subscription options")
        subscriptions.append((topic_filter, options))
    if not subscriptions:
        raise ProtocolError("SUBSCRIBE without a topic filter", PROTOCOL_ERROR)
    return Subscribe(packet_id, subscriptions, properties)


def _decode_unsubscribe(cur: _Cursor, version: int) -> Unsubscribe:
    packet_id = _packet_id(cur)
    properties = _properties(cur, "unsubscribe") if version == MQTT_5 else {}
    filters = []
    while cur.remaining():
        filters.append(cur.utf8())
    if not filters:
        raise ProtocolError("UNSUBSCRIBE without a topic filter", PROTOCOL_ERROR)
    return Unsubscribe(packet_id, filters, properties)


def _decode_reason_only(cur: _Cursor, version: int, kind: str) -> tuple[int, Properties]:
    if version != MQTT_5 or not cur.remaining():
        return SUCCESS, {}
    reason = cur.byte()
    properties = _properties(cur, kind) if cur.remaining() else {}
    return reason, properties


_FIXED_FLAGS = {SUBSCRIBE: 0x02, UNSUBSCRIBE: 0x02, PUBREL: 0x02}


def decode_body(ptype: int, flags: int, body: bytes | memoryview, version: int) -> Packet:
    """Decode one packet a client sent, given its fixed header; `version` is 4 or 5."""
    if ptype != PUBLISH and flags != _FIXED_FLAGS.get(ptype, 0):
        raise ProtocolError(f"reserved flags 0x{flags:x} on packet type {ptype}")
    cur = _Cursor(body)
    packet: Packet
    if ptype == CONNECT:
        packet = _decode_connect(cur)
    elif ptype == PUBLISH:
        return _decode_publish(cur, flags, version)
    elif ptype == PUBACK:
        packet_id = _packet_id(cur)
        reason, properties = _decode_reason_only(cur, version, "puback")
        packet = Puback(packet_id, reason, properties)
    elif ptype == SUBSCRIBE:
        packet = _decode_subscribe(cur, version)
    elif ptype == UNSUBSCRIBE:
        packet = _decode_unsubscribe(cur, version)
    elif ptype == PINGREQ:
        packet = Pingreq()
    elif ptype == DISCONNECT:
        reason, properties = _decode_reason_only(cur, version, "disconnect")
        packet = Disconnect(reason, properties)
    elif ptype == AUTH and version == MQTT_5:
        reason, properties = _decode_reason_only(cur, version, "auth")
        packet = Auth(reason, properties)
    else:
        raise ProtocolError(f"packet type {ptype} is not accepted from a client", PROTOCOL_ERROR)
    if cur.remaining():
        raise ProtocolError(f"{type(packet).__name__} has {cur.remaining()} trailing bytes")
    return packet


class PacketReader:
    """Splits a client's byte stream into packets.

    `version` starts unknown (the first packet must be CONNECT, which names it) and is set by
    the broker once CONNECT is decoded. `max_packet` bounds the remaining length accepted, so a
    client cannot make the broker buffer more than that.
    """

    __slots__ = ("buffer", "max_packet", "version")

    def __init__(self, max_packet: int, version: int = MQTT_5) -> None:
        self.buffer = bytearray()
        self.version = version
        self.max_packet = max_packet

    def feed(self, data: bytes) -> Iterator[Packet]:
        """Yield every whole packet now buffered; keep any partial one for the next call."""
        buf = self.buffer
        buf += data
        pos = 0
        n = len(buf)
        try:
            while n - pos >= 2:
                first = buf[pos]
                length, shift, i = 0, 0, pos + 1
                while True:
                    if i >= n:
                        return
                    byte = buf[i]
                    length |= (byte & 0x7F) << shift
                    i += 1
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise ProtocolError("remaining length longer than four bytes")
                if length > self.max_packet:
                    raise ProtocolError(
                        f"packet of {length} bytes exceeds the maximum {self.max_packet}",
                        PACKET_TOO_LARGE,
                    )
                if n - i < length:
                    return
                pos = i + length
                if first == 0x40 and length == 2 and (buf[i] or buf[i + 1]):
                    # The most frequent packet under QoS 1 load: skip the general decoder.
                    yield Puback(buf[i] << 8 | buf[i + 1])
                    continue
                yield decode_body(first >> 4, first & 0x0F, bytes(buf[i:pos]), self.version)
        finally:
            del buf[:pos]


# ----------------------------------------------------------------------------- encoding


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


def _bin(raw: bytes) -> bytes:
    return struct.pack("!H", len(raw)) + raw


def encode_properties(props: Properties) -> bytes:
    out = bytearray()
    for ident, value in props.items():
        kind = _PROPERTY_TYPES[ident]
        for item in value if ident in _REPEATABLE else (value,):
            out += encode_varint(ident)
            if kind == _BYTE:
                out.append(item)
            elif kind == _U16:
                out += struct.pack("!H", item)
            elif kind == _U32:
                out += struct.pack("!I", item)
            elif kind == _VARINT:
                out += encode_varint(item)
            elif kind == _UTF8:
                out += _str(item)
            elif kind == _BINARY:
                out += _bin(item)
            else:
                out += _str(item[0]) + _str(item[1])
    return encode_varint(len(out)) + bytes(out)


def _frame(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


def encode_publish_parts(
    topic: str, payload: bytes, qos: int, retain: bool, version: int, properties: Properties | None = None
) -> tuple[bytes, bytes]:
    """A PUBLISH as (head, tail) with the packet id to go between them (QoS 1).

    The broker encodes a message once per (version, QoS, retain) and splices in each
    subscriber's packet id, instead of encoding it per subscriber.
    """
    props = encode_properties(properties or {}) if version == MQTT_5 else b""
    topic_bytes = _str(topic)
    length = len(topic_bytes) + (2 if qos else 0) + len(props) + len(payload)
    first = (PUBLISH << 4) | (qos << 1) | int(retain)
    head = bytes((first,)) + encode_varint(length) + topic_bytes
    return head, props + payload


def encode_publish(packet: Publish, version: int) -> bytes:
    head, tail = encode_publish_parts(
        packet.topic, packet.payload, packet.qos, packet.retain, version, packet.properties
    )
    if packet.dup:
        head = bytes((head[0] | 0x08,)) + head[1:]
    if packet.qos:
        assert packet.packet_id is not None
        return head + struct.pack("!H", packet.packet_id) + tail
    return head + tail


def encode(packet: Packet, version: int) -> bytes:
    """Encode any packet; the broker sends the server-side ones, tests send the client ones."""
    v5 = version == MQTT_5
    if isinstance(packet, Publish):
        return encode_publish(packet, version)
    if isinstance(packet, Connack):
        body = bytes((int(packet.session_present), packet.reason_code))
        return _frame(CONNACK << 4, body + (encode_properties(packet.properties) if v5 else b""))
    if isinstance(packet, Puback):
        body = struct.pack("!H", packet.packet_id)
        if v5 and (packet.reason_code or packet.properties):
            body += bytes((packet.reason_code,)) + encode_properties(packet.properties)
        return _frame(PUBACK << 4, body)
    if isinstance(packet, Suback):
        body = struct.pack("!H", packet.packet_id) + (encode_properties(packet.properties) if v5 else b"")
        return _frame(SUBACK << 4, body + bytes(packet.reason_codes))
    if isinstance(packet, Unsuback):
        body = struct.pack("!H", packet.packet_id)
        if v5:
            body += encode_properties(packet.properties) + bytes(packet.reason_codes)
        return _frame(UNSUBACK << 4, body)
    if isinstance(packet, Pingreq):
        return bytes((PINGREQ << 4, 0))
    if isinstance(packet, Pingresp):
        return bytes((PINGRESP << 4, 0))
    if isinstance(packet, Disconnect | Auth):
        ptype = DISCONNECT if isinstance(packet, Disconnect) else AUTH
        body = b""
        if v5 and (packet.reason_code or packet.properties):
            body = bytes((packet.reason_code,)) + encode_properties(packet.properties)
        return _frame(ptype << 4, body)
    if isinstance(packet, Subscribe):
        body = struct.pack("!H", packet.packet_id) + (encode_properties(packet.properties) if v5 else b"")
        body += b"".join(_str(f) + bytes((options,)) for f, options in packet.subscriptions)
        return _frame((SUBSCRIBE << 4) | 0x02, body)
    if isinstance(packet, Unsubscribe):
        body = struct.pack("!H", packet.packet_id) + (encode_properties(packet.properties) if v5 else b"")
        body += b"".join(_str(f) for f in packet.filters)
        return _frame((UNSUBSCRIBE << 4) | 0x02, body)
    assert isinstance(packet, Connect)
    return _encode_connect(packet)


def _encode_connect(packet: Connect) -> bytes:
    v5 = packet.protocol_level == MQTT_5
    flags = 0x02 if packet.clean_start else 0
    will = packet.will
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if packet.username is not None:
        flags |= 0x80
    if packet.password is not None:
        flags |= 0x40
    body = _str("MQTT") + bytes((packet.protocol_level, flags)) + struct.pack("!H", packet.keep_alive)
    if v5:
        body += encode_properties(packet.properties)
    body += _str(packet.client_id)
    if will is not None:
        body += (encode_properties(will.properties) if v5 else b"") + _str(will.topic) + _bin(will.payload)
    if packet.username is not None:
        body += _str(packet.username)
    if packet.password is not None:
        body += _bin(packet.password)
    return _frame(CONNECT << 4, body)
