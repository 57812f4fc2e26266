"""The local core's MQTT message broker, following AWS IoT Core rather than generic brokers.

Every message that enters the core (MQTT PUBLISH, the iot-data Publish API, the shadow
service, lifecycle events) goes through `CoreState.publish`; the broker is one of its
listeners and delivers to matching subscribers, checking `iot:Receive` per delivery. Each
connection is a plain asyncio protocol: packets are handled synchronously as they arrive; what a
connection is sent is gathered per loop iteration into one write (one TLS record, one send), and
while its transport's buffer is high it gets no QoS 0 messages and its QoS 1 messages wait in the
session's bounded queue, so a slow subscriber costs at most its buffer plus that queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import ssl
import threading
import uuid

from iot_tui.iotcore import shadow
from iot_tui.iotcore.shadow import ShadowError
from iot_tui.iotcore.topics import (
    MAX_CLIENT_ID_BYTES,
    MAX_FILTERS_PER_SUBSCRIBE,
    MAX_INFLIGHT_QOS1,
    MAX_PAYLOAD_BYTES,
    MAX_SUBSCRIPTIONS_PER_CONNECTION,
    TopicError,
    TopicTrie,
    is_reserved,
    matches,
    presence_topic,
    reserved_publish_allowed,
    reserved_subscribe_allowed,
    split_shared,
    subscription_event_topic,
    validate_topic_filter,
    validate_topic_name,
)
from iot_tui.local.broker import codec
from iot_tui.local.broker.auth import (
    CONNECT,
    PUBLISH,
    RECEIVE,
    RETAIN_PUBLISH,
    SUBSCRIBE,
    Authorizer,
    Principal,
    active_certificates,
)
from iot_tui.local.broker.codec import MQTT_5, ProtocolError
from iot_tui.local.broker.journal import Journal
from iot_tui.local.broker.persist import SessionStore
from iot_tui.local.broker.sessions import MAX_QUEUED, Outgoing, Session
from iot_tui.local.broker.tls import TrustLoader, certificate_id, server_context, start_tls_compact
from iot_tui.local.core import CoreState, Message, MqttMessage, make_message
from iot_tui.local.shadows import SHADOW_MESSAGE_QOS, ShadowService, encode_document

log = logging.getLogger("iot_tui.local.broker")

# AWS's CONNACK says 149504: the 128 KB payload plus room for the topic and properties.
MAX_PACKET_SIZE = 149_504
TOPIC_ALIAS_MAXIMUM = 8
# Above this many unsent bytes a connection gets no more QoS 0 messages and its QoS 1
# messages wait in the session's bounded queue.
WRITE_BUFFER_HIGH = 256 * 1024
WRITE_BUFFER_LOW = 64 * 1024
CONNECT_TIMEOUT = 10.0
# How often live connections are checked against their certificate's status: a certificate
# made INACTIVE or REVOKED (or deleted) loses its connections, as on AWS.
CERTIFICATE_AUDIT_SECONDS = 5.0
# Message properties passed from publisher to subscribers (MQTT 5).
_FORWARDED = (
    codec.PAYLOAD_FORMAT_INDICATOR, codec.MESSAGE_EXPIRY_INTERVAL, codec.CONTENT_TYPE,
    codec.RESPONSE_TOPIC, codec.CORRELATION_DATA,
)


class Disconnect(Exception):
    """Close the connection; `reason` goes to MQTT 5 clients and the lifecycle event."""

    def __init__(self, reason_code: int, message: str, event_reason: str = "CLIENT_ERROR") -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.event_reason = event_reason


class Connection(asyncio.Protocol):
    """One client connection, over TLS or WebSocket (any transport with write/close)."""

    def __init__(self, broker: Broker, principal: Principal | None = None, peer: str = "") -> None:
        self.broker = broker
        self.principal = principal
        self.peer = peer
        self.transport: asyncio.BaseTransport | None = None
        self.reader = codec.PacketReader(MAX_PACKET_SIZE)
        self.version = MQTT_5
        self.auth: Authorizer | None = None
        self.session: Session | None = None
        self.client_id = ""
        self.session_id = ""
        self.keep_alive = 0
        self.will: codec.Will | None = None
        self.send_quota = MAX_INFLIGHT_QOS1
        self.client_max_packet = MAX_PACKET_SIZE
        self.topic_aliases: dict[int, str] = {}
        self.closed = False
        self.paused = False
        self.disconnect_reason = "CONNECTION_LOST"
        self.client_initiated = False
        self._early = bytearray()
        self._out: list[bytes] = []
        self._last_seen = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def note(self, level: int, event_type: str, message: str, status: str | None = None) -> None:
        """Journal an event of this connection (and log it)."""
        principal = self.principal.principal_id if self.principal is not None else ""
        self.broker.journal.record(level, event_type, message, peer=self.peer, client_id=self.client_id,
                                   principal=principal, status=status)

    # -- transport callbacks --

    def attach(self, transport: asyncio.BaseTransport, principal: Principal) -> None:
        """Start speaking MQTT on an authenticated transport."""
        self.transport = transport
        self.principal = principal
        self.auth = Authorizer(self.broker.core.store, principal, allow_all=principal.arn is None)
        transport.set_write_buffer_limits(WRITE_BUFFER_HIGH, WRITE_BUFFER_LOW)  # type: ignore[attr-defined]
        self._last_seen = self.broker.loop.time()
        self._timer = self.broker.loop.call_later(CONNECT_TIMEOUT, self._check_connect)
        self.broker.connections.add(self)
        if self._early:
            data, self._early = bytes(self._early), bytearray()
            self.data_received(data)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.transport is None:
            self._early += data
            return
        self._last_seen = self.broker.loop.time()
        try:
            for packet in self.reader.feed(data):
                self.handle(packet)
                if self.closed:
                    return
        except ProtocolError as error:
            self.note(logging.WARNING, "Disconnect", f"malformed or out-of-order packet: {error}")
            self.close(error.reason_code, "CLIENT_ERROR")
        except Disconnect as error:
            self.note(logging.WARNING, "Disconnect", f"disconnected by the broker: {error}")
            self.close(error.reason_code, error.event_reason)
        except Exception:  # a bug here ends this connection, never the broker
            log.exception("client %r (%s): internal error", self.client_id, self.peer)
            self.note(logging.ERROR, "Disconnect", "internal error in the local core (see its log)")
            self.close(codec.IMPLEMENTATION_SPECIFIC, "SERVER_INITIATED_DISCONNECT")

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.session is not None and not self.closed:
            self._flush()

    # -- closing --

    def close(self, reason_code: int = codec.SUCCESS, event_reason: str = "SERVER_INITIATED_DISCONNECT") -> None:
        """Close from the broker's side; MQTT 5 clients get a DISCONNECT with the reason."""
        if self.closed:
            return
        if self.session is not None and self.version == MQTT_5 and reason_code != codec.SUCCESS:
            self._write(codec.encode(codec.Disconnect(reason_code), MQTT_5))
        self.disconnect_reason = event_reason
        self._finish()
        if self.transport is not None:
            if self._out:
                self._send_out()
            self.transport.close()

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.broker.connections.discard(self)
        if self.session is not None:
            self.broker.connection_ended(self)

    # -- keep-alive --

    def _check_connect(self) -> None:
        if self.session is None and not self.closed:
            self.note(logging.WARNING, "Connect", f"no CONNECT packet within {CONNECT_TIMEOUT:g} s")
            self.close(codec.MALFORMED_PACKET)

    def _check_keep_alive(self) -> None:
        if self.closed:
            return
        limit = self.keep_alive * 1.5
        idle = self.broker.loop.time() - self._last_seen
        if idle >= limit:
            self.note(logging.WARNING, "Disconnect",
                      f"keep-alive expired: nothing received for {idle:.1f} s (keep-alive {self.keep_alive} s)")
            self.close(codec.KEEP_ALIVE_TIMEOUT, "MQTT_KEEP_ALIVE_TIMEOUT")
            return
        self._timer = self.broker.loop.call_later(limit - idle, self._check_keep_alive)

    # -- packets in --

    def handle(self, packet: codec.Packet) -> None:
        if self.session is None:
            if not isinstance(packet, codec.Connect):
                raise ProtocolError("the first packet must be CONNECT", codec.PROTOCOL_ERROR)
            self.broker.connect(self, packet)
        elif isinstance(packet, codec.Publish):
            self.broker.client_publish(self, packet)
        elif isinstance(packet, codec.Puback):
            assert self.session is not None
            if self.session.inflight.pop(packet.packet_id, None) is not None:
                self._flush()
        elif isinstance(packet, codec.Subscribe):
            self.broker.subscribe(self, packet)
        elif isinstance(packet, codec.Unsubscribe):
            self.broker.unsubscribe(self, packet)
        elif isinstance(packet, codec.Pingreq):
            self._write(codec.encode(codec.Pingresp(), self.version))
        elif isinstance(packet, codec.Disconnect):
            self.broker.client_disconnect(self, packet)
        elif isinstance(packet, codec.Auth):
            raise Disconnect(codec.BAD_AUTHENTICATION_METHOD, "enhanced authentication is not supported")
        else:
            raise ProtocolError(f"unexpected {type(packet).__name__}", codec.PROTOCOL_ERROR)

    # -- packets out --

    def _write(self, data: bytes) -> None:
        """Queue bytes for the end of this loop iteration: one TLS record and one send
        for everything a batch of incoming packets produced, instead of one per packet."""
        self._out.append(data)
        if len(self._out) == 1:
            self.broker.loop.call_soon(self._send_out)

    def _send_out(self) -> None:
        data = b"".join(self._out)
        self._out.clear()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)  # type: ignore[attr-defined]

    def send(self, data: bytes) -> None:
        self._write(data)

    def deliver(self, item: Outgoing, encoded: dict[tuple[int, int, bool], tuple[bytes, bytes]]) -> None:
        """Send a message now, or (QoS 1, window full or buffer high) queue it on the session."""
        session = self.session
        assert session is not None
        if item.qos == 0:
            if self.paused:
                session.dropped += 1
                return
            head, tail = self._encoded(item, encoded)
            if len(head) + len(tail) <= self.client_max_packet:
                self._write(head + tail)
            return
        if self.paused or len(session.inflight) >= self.send_quota or session.queue:
            session.enqueue(item)
            return
        self._send_qos1(item, encoded)

    def _encoded(
        self, item: Outgoing, encoded: dict[tuple[int, int, bool], tuple[bytes, bytes]]
    ) -> tuple[bytes, bytes]:
        """The PUBLISH as it enters the core, shared by this message's immediate deliveries."""
        key = (self.version, item.qos, item.retain)
        parts = encoded.get(key)
        if parts is None:
            message = item.message
            properties: codec.Properties = {}
            if self.version == MQTT_5:
                if isinstance(message, MqttMessage):
                    properties.update(message.properties)
                if message.user_properties:
                    properties[codec.USER_PROPERTY] = list(message.user_properties)
            parts = codec.encode_publish_parts(
                message.topic, message.payload, item.qos, item.retain, self.version, properties
            )
            encoded[key] = parts
        return parts

    def _encoded_late(self, item: Outgoing) -> tuple[bytes, bytes]:
        """The PUBLISH for a delivery that waited (queue, reconnect): an expiring message carries
        the Message Expiry Interval less the time it waited (MQTT 5 3.3.2.3.3), never the
        interval shared by its immediate deliveries."""
        message = item.message
        if not item.expires or self.version != MQTT_5 or not isinstance(message, MqttMessage):
            return self._encoded(item, {})
        left = max(math.ceil(item.expires - self.broker.config.clock()), 0)
        properties: codec.Properties = dict(message.properties)
        properties[codec.MESSAGE_EXPIRY_INTERVAL] = left
        if message.user_properties:
            properties[codec.USER_PROPERTY] = list(message.user_properties)
        return codec.encode_publish_parts(
            message.topic, message.payload, item.qos, item.retain, self.version, properties
        )

    def _send_qos1(self, item: Outgoing, encoded: dict | None = None, dup: bool = False,
                   packet_id: int | None = None) -> None:
        session = self.session
        assert session is not None
        head, tail = self._encoded_late(item) if encoded is None else self._encoded(item, encoded)
        if len(head) + len(tail) + 2 > self.client_max_packet:
            return
        if packet_id is None:
            packet_id = session.next_packet_id()
            session.inflight[packet_id] = item
        if dup:
            head = bytes((head[0] | 0x08,)) + head[1:]
        self._write(head + packet_id.to_bytes(2, "big") + tail)

    def _flush(self) -> None:
        """Send queued QoS 1 messages while the window and the buffer allow; one whose Message
        Expiry Interval ran out while it waited is not delivered."""
        session = self.session
        assert session is not None
        while session.queue and not self.paused and len(session.inflight) < self.send_quota:
            item = session.dequeue()
            if item.expires and item.expires <= self.broker.config.clock():
                session.expired += 1
                continue
            self._send_qos1(item)

    def resume_session(self) -> None:
        """Re-send unacknowledged messages (DUP) and then the queue, after a reconnect.

        An unacknowledged message's delivery has started: it is re-sent even if its Message
        Expiry Interval has run out since (then with an interval of 0)."""
        session = self.session
        assert session is not None
        for packet_id, item in list(session.inflight.items()):
            self._send_qos1(item, dup=True, packet_id=packet_id)
        self._flush()

    def start_keep_alive(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.keep_alive:
            self._timer = self.broker.loop.call_later(self.keep_alive * 1.5, self._check_keep_alive)


class _Acceptor(asyncio.Protocol):
    """A fresh TCP connection: hold its bytes until the TLS upgrade takes the transport over."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.pause_reading()  # type: ignore[attr-defined]
        task = self.broker.loop.create_task(self.broker.upgrade(transport))  # type: ignore[arg-type]
        self.broker.tasks.add(task)
        task.add_done_callback(self.broker.tasks.discard)


class Broker:
    """Sessions, subscriptions and the MQTT rules of AWS IoT Core, for every region."""

    def __init__(self, core: CoreState) -> None:
        self.core = core
        self.config = core.config
        self.loop = asyncio.get_running_loop()
        self.shadows = ShadowService(core)
        self.sessions: dict[tuple[str, str], Session] = {}
        self.tries: dict[str, TopicTrie[Session]] = {}
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task] = set()
        self.versions: dict[tuple[str, str], int] = {}
        self._share_turn: dict[str, int] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self.stopping = False
        self._thread = threading.get_ident()
        self.tls = server_context(core.ca)
        self.trust = TrustLoader(self.tls, core.store)
        self.persisted = SessionStore(core.store)
        self.journal = Journal(self.config.clock)
        for session, left in self.persisted.load(self.config.clock()):
            self.sessions[(session.region, session.client_id)] = session
            trie = self.tries.setdefault(session.region, TopicTrie())
            for topic_filter in session.subscriptions:
                trie.add(topic_filter, session)
            session.expiry_timer = self.loop.call_later(max(left, 0), self._end_session, session)
        core.listeners.append(self.on_message)
        self._audit = self.loop.call_later(CERTIFICATE_AUDIT_SECONDS, self.audit_certificates)

    # -- listening --

    async def listen_tls(self, host: str, port: int) -> int:
        """Accept MQTT over mutual TLS; returns the port (0 picks a free one)."""
        server = await self.loop.create_server(
            lambda: _Acceptor(self), host, port, reuse_address=True, backlog=1024
        )
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def upgrade(self, transport: asyncio.Transport) -> None:
        """TLS handshake and certificate checks; every refusal is logged with its reason."""
        peername = transport.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        connection = Connection(self, peer=peer)
        self.trust.refresh()
        try:
            tls_transport = await start_tls_compact(transport, connection, self.tls)
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as error:
            # A peer that just closes is usually a port check: worth a line, not a warning.
            level = logging.INFO if isinstance(error, ConnectionError | asyncio.IncompleteReadError) else logging.WARNING
            self.journal.record(level, "TLS", f"TLS handshake failed: {_reason(error)}", peer=peer, status="Failure")
            transport.abort()
            return
        ssl_object = tls_transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        principal = self._certificate_principal(der, peer)
        if principal is None:
            tls_transport.abort()
            return
        connection.attach(tls_transport, principal)

    def _certificate_principal(self, der: bytes | None, peer: str) -> Principal | None:
        if der is None:
            self.journal.record(logging.WARNING, "TLS", "refused: the client sent no certificate", peer=peer)
            return None
        cert_id = certificate_id(der)
        store = self.core.store
        record = store.certificate_by_id(cert_id)
        why = None
        if record is None:
            why = f"certificate {cert_id} is not registered in this core (any region)"
        elif record.status != "ACTIVE":
            why = f"certificate {cert_id} is {record.status}, not ACTIVE"
        elif record.ca_certificate_id:
            ca = store.ca_certificate(record.region, record.ca_certificate_id)
            if ca is not None and ca.status != "ACTIVE":
                why = f"the CA {record.ca_certificate_id} of certificate {cert_id} is {ca.status}"
        if why is not None or record is None:  # (record is None implies why; this tells the type checker)
            self.journal.record(logging.WARNING, "TLS", f"refused: {why}", peer=peer, principal=cert_id)
            return None
        return Principal(record.region, self.config.account_id, cert_id, record.arn, der)

    def audit_certificates(self) -> None:
        """Disconnect clients whose certificate is no longer ACTIVE."""
        certified = [c for c in self.connections if c.principal is not None and c.principal.arn is not None]
        ids = {(c.principal.region, c.principal.principal_id) for c in certified}  # type: ignore[union-attr]
        active = active_certificates(self.core.store, ids) if ids else set()
        for conn in certified:
            principal = conn.principal
            assert principal is not None
            if (principal.region, principal.principal_id) not in active:
                conn.note(logging.WARNING, "Disconnect",
                          f"certificate {principal.principal_id} is no longer ACTIVE: connection closed")
                conn.close(codec.NOT_AUTHORIZED, "AUTHORIZATION_ERROR")
        if not self.stopping:
            self._audit = self.loop.call_later(CERTIFICATE_AUDIT_SECONDS, self.audit_certificates)

    async def stop(self) -> None:
        self.stopping = True
        self._audit.cancel()
        if self.on_message in self.core.listeners:
            self.core.listeners.remove(self.on_message)
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.close(codec.SERVER_UNAVAILABLE)
        for task in list(self.tasks):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()
        for session in self.sessions.values():
            if session.expiry_timer is not None:
                session.expiry_timer.cancel()
            if session.will is not None:
                session.will[0].cancel()
        self._servers.clear()

    # -- CONNECT --

    def connect(self, conn: Connection, packet: codec.Connect) -> None:
        conn.version = conn.reader.version = packet.protocol_level
        v5 = packet.protocol_level == MQTT_5
        config = self.config
        client_id = packet.client_id
        assigned = None
        if not client_id:
            if not packet.clean_start and not v5:
                self._refuse(conn, codec.CLIENT_ID_NOT_VALID, "empty client id with a persistent session")
                return
            client_id = assigned = f"auto-{uuid.uuid4()}"
        conn.client_id = client_id  # the journal names the client from here on, refused or not
        if len(client_id.encode()) > MAX_CLIENT_ID_BYTES:
            self._refuse(conn, codec.CLIENT_ID_NOT_VALID, f"client id longer than {MAX_CLIENT_ID_BYTES} bytes")
            return
        if codec.AUTHENTICATION_METHOD in packet.properties:
            self._refuse(conn, codec.BAD_AUTHENTICATION_METHOD, "enhanced authentication is not supported")
            return
        auth = conn.auth
        assert auth is not None and conn.principal is not None
        auth.bind(client_id)
        if not auth.allowed(CONNECT, client_id):
            self._refuse(conn, codec.NOT_AUTHORIZED, f"iot:Connect is not allowed for client {client_id!r}")
            return
        if packet.will is not None:
            try:
                validate_topic_name(packet.will.topic)
                if not reserved_publish_allowed(packet.will.topic):
                    raise TopicError("reserved topic", packet.will.topic)
            except TopicError as error:
                self._refuse(conn, codec.TOPIC_NAME_INVALID, f"bad will topic: {error}")
                return
            if packet.will.qos == 2:
                self._refuse(conn, codec.QOS_NOT_SUPPORTED, "will QoS 2 is not supported")
                return
        conn.client_id = client_id
        conn.will = packet.will
        conn.session_id = str(uuid.uuid4())
        region = conn.principal.region
        keep_alive = packet.keep_alive or config.keep_alive_max
        keep_alive = min(max(keep_alive, config.keep_alive_min), config.keep_alive_max)
        conn.keep_alive = keep_alive
        if v5:
            requested = packet.properties.get(codec.SESSION_EXPIRY_INTERVAL, 0)
            conn.send_quota = min(MAX_INFLIGHT_QOS1, packet.properties.get(codec.RECEIVE_MAXIMUM, 65535))
            conn.client_max_packet = packet.properties.get(codec.MAXIMUM_PACKET_SIZE, MAX_PACKET_SIZE)
        else:
            requested = 0 if packet.clean_start else config.session_expiry
        expiry = min(requested, config.session_expiry)

        key = (region, client_id)
        session = self.sessions.get(key)
        if session is not None and session.connection is not None:
            old = session.connection
            old.note(logging.WARNING, "Disconnect",
                     f"the same client id connected again from {conn.peer}: this connection is taken over "
                     "(DUPLICATE_CLIENTID)")
            old.close(codec.SESSION_TAKEN_OVER, "DUPLICATE_CLIENTID")
            session = self.sessions.get(key)
        if session is not None and packet.clean_start:
            self._end_session(session)
            session = None
        present = session is not None
        if session is None:
            session = Session(region, client_id)
            self.sessions[key] = session
        if session.expiry_timer is not None:
            session.expiry_timer.cancel()
            session.expiry_timer = None
        if session.will is not None:  # back before its will's delay ran out
            session.will[0].cancel()
            session.will = None
        session.expiry = expiry
        session.connection = conn
        conn.session = session
        if expiry > 0:
            self.persisted.save(session, None)
            if present:
                self.persisted.clear_queue(session)
        conn.start_keep_alive()

        properties: codec.Properties = {}
        if v5:
            properties = {
                codec.RECEIVE_MAXIMUM: MAX_INFLIGHT_QOS1, codec.MAXIMUM_QOS: 1, codec.RETAIN_AVAILABLE: 1,
                codec.MAXIMUM_PACKET_SIZE: MAX_PACKET_SIZE, codec.TOPIC_ALIAS_MAXIMUM: TOPIC_ALIAS_MAXIMUM,
                codec.WILDCARD_SUBSCRIPTION_AVAILABLE: 1, codec.SUBSCRIPTION_IDENTIFIER_AVAILABLE: 0,
                codec.SHARED_SUBSCRIPTION_AVAILABLE: 1,
            }
            if assigned:
                properties[codec.ASSIGNED_CLIENT_IDENTIFIER] = assigned
            if keep_alive != packet.keep_alive:
                properties[codec.SERVER_KEEP_ALIVE] = keep_alive
            if expiry != requested:
                properties[codec.SESSION_EXPIRY_INTERVAL] = int(expiry)
        conn.send(codec.encode(codec.Connack(present, codec.SUCCESS, properties), conn.version))
        conn.note(logging.INFO, "Connect",
                  f"CONNECT accepted: MQTT {'5' if v5 else '3.1.1'}, principal {conn.principal.principal_id}, "
                  f"keep-alive {keep_alive} s, {'session present' if present else 'new session'}")
        version = self.versions.get(key, 0) + 1
        self.versions[key] = version
        self._event(conn, presence_topic("connected", client_id), {
            "ipAddress": conn.peer.rsplit(":", 1)[0], "versionNumber": version,
        }, "connected")
        if present:
            conn.resume_session()

    def _refuse(self, conn: Connection, reason: int, why: str) -> None:
        conn.note(logging.WARNING, "Connect", f"CONNECT refused: {why}")
        code = reason if conn.version == MQTT_5 else codec.v3_connack_code(reason)
        conn.send(codec.encode(codec.Connack(False, code), conn.version))
        conn.close(event_reason="AUTHORIZATION_ERROR")

    # -- lifecycle --

    def _event(self, conn: Connection, topic: str, extra: dict, event_type: str) -> None:
        assert conn.principal is not None
        payload = {
            "clientId": conn.client_id,
            "timestamp": int(self.config.clock() * 1000),
            "eventType": event_type,
            "sessionIdentifier": conn.session_id,
            "principalIdentifier": conn.principal.principal_id,
            **extra,
        }
        self.core.publish(Message(conn.principal.region, topic, json.dumps(payload).encode(), qos=1))

    def client_disconnect(self, conn: Connection, packet: codec.Disconnect) -> None:
        session = conn.session
        assert session is not None
        requested = packet.properties.get(codec.SESSION_EXPIRY_INTERVAL)
        if requested is not None:
            if session.expiry == 0 and requested > 0:
                raise ProtocolError("session expiry set on DISCONNECT after 0 on CONNECT", codec.PROTOCOL_ERROR)
            session.expiry = min(requested, self.config.session_expiry)
        if packet.reason_code != codec.DISCONNECT_WITH_WILL:
            conn.will = None
        conn.client_initiated = True
        conn.disconnect_reason = "CLIENT_INITIATED_DISCONNECT"
        conn.close(event_reason="CLIENT_INITIATED_DISCONNECT")

    def connection_ended(self, conn: Connection) -> None:
        """The connection is gone: will, presence event, and the session's fate."""
        session = conn.session
        assert session is not None and conn.auth is not None
        if session.connection is conn:
            session.connection = None
        session.auth = conn.auth  # a persistent session's deliveries are checked while offline
        if session.dropped:
            conn.note(logging.WARNING, "Publish-Out",
                      f"{session.dropped} messages were dropped (slow reader or full queue)")
            session.dropped = 0
        conn.note(logging.INFO, "Disconnect", f"disconnected ({conn.disconnect_reason})",
                  status="Success" if conn.client_initiated else "Failure")
        will = conn.will
        if will is not None and not self.stopping and conn.auth.allowed(PUBLISH, will.topic):
            retain = will.retain and conn.auth.allowed(RETAIN_PUBLISH, will.topic)
            properties = {k: v for k, v in will.properties.items() if k != codec.WILL_DELAY_INTERVAL}
            message = self._message(conn, will.topic, will.payload, min(will.qos, 1), retain, properties)
            # MQTT 5 Will Delay: sent when the delay or the session ends, unless the client is back.
            delay = min(will.properties.get(codec.WILL_DELAY_INTERVAL, 0), session.expiry)
            if delay > 0:
                session.will = (self.loop.call_later(delay, self._send_will, session), message)
            else:
                self.core.publish(message)
        if not self.stopping:
            self._event(conn, presence_topic("disconnected", conn.client_id), {
                "clientInitiatedDisconnect": conn.client_initiated,
                "disconnectReason": conn.disconnect_reason,
                "versionNumber": self.versions.get((session.region, conn.client_id), 0),
            }, "disconnected")
        if session.expiry <= 0:
            self._end_session(session)
            return
        self.persisted.save(session, self.config.clock() + session.expiry)
        for item in [*session.inflight.values(), *session.queue][:MAX_QUEUED]:
            self.persisted.queue(session, item)
        if not self.stopping:
            session.expiry_timer = self.loop.call_later(session.expiry, self._end_session, session)

    def _send_will(self, session: Session) -> None:
        if session.will is not None:
            timer, message = session.will
            timer.cancel()
            session.will = None
            self.core.publish(message)

    def _end_session(self, session: Session) -> None:
        self._send_will(session)
        if self.sessions.get((session.region, session.client_id)) is session:
            del self.sessions[(session.region, session.client_id)]
        trie = self.tries.get(session.region)
        if trie is not None:
            for topic_filter in session.subscriptions:
                trie.remove(topic_filter, session)
        self.persisted.forget(session)
        session.subscriptions.clear()
        session.clear_queue()
        session.inflight.clear()
        if session.expiry_timer is not None:
            session.expiry_timer.cancel()
            session.expiry_timer = None

    # -- PUBLISH from a client --

    def _message(self, conn: Connection, topic: str, payload: bytes, qos: int, retain: bool,
                 properties: codec.Properties) -> Message:
        principal = conn.principal
        assert principal is not None
        region = principal.region
        if not properties:  # MQTT 3.1.1, and most MQTT 5 messages
            return Message(region, topic, payload, qos, retain, client_id=conn.client_id,
                           principal=principal.principal_id)
        user = tuple(properties.get(codec.USER_PROPERTY, ()))
        forwarded = tuple((key, properties[key]) for key in _FORWARDED if key in properties)
        common = {"client_id": conn.client_id, "user_properties": user, "principal": principal.principal_id}
        return make_message(region, topic, payload, qos, retain, properties=forwarded, **common)

    def client_publish(self, conn: Connection, packet: codec.Publish) -> None:
        v5 = conn.version == MQTT_5
        topic = packet.topic
        alias = packet.properties.get(codec.TOPIC_ALIAS)
        if alias is not None:
            if not 0 < alias <= TOPIC_ALIAS_MAXIMUM:
                raise Disconnect(codec.TOPIC_ALIAS_INVALID, f"topic alias {alias} out of range")
            if topic:
                conn.topic_aliases[alias] = topic
            elif alias in conn.topic_aliases:
                topic = conn.topic_aliases[alias]
            else:
                raise Disconnect(codec.PROTOCOL_ERROR, f"unknown topic alias {alias}")
        if packet.qos == 2:
            raise Disconnect(codec.QOS_NOT_SUPPORTED, "QoS 2 is not supported")
        try:
            validate_topic_name(topic)
        except TopicError as error:
            raise Disconnect(codec.TOPIC_NAME_INVALID, str(error)) from None
        if len(packet.payload) > MAX_PAYLOAD_BYTES:
            raise Disconnect(codec.PACKET_TOO_LARGE, f"payload of {len(packet.payload)} bytes exceeds 128 KB")
        if not reserved_publish_allowed(topic) or (packet.retain and is_reserved(topic)):
            raise Disconnect(codec.NOT_AUTHORIZED, f"publishing to reserved topic {topic!r} is not allowed",
                             "AUTHORIZATION_ERROR")
        auth = conn.auth
        assert auth is not None
        denied = None
        if not auth.allowed(PUBLISH, topic):
            denied = f"iot:Publish is not allowed on {topic!r}"
        elif packet.retain and not auth.allowed(RETAIN_PUBLISH, topic):
            denied = f"iot:RetainPublish is not allowed on {topic!r}"
        if denied is not None:
            if not v5:  # AWS ends an MQTT 3.1.1 connection that publishes without permission
                raise Disconnect(codec.NOT_AUTHORIZED, denied, "AUTHORIZATION_ERROR")
            conn.note(logging.WARNING, "Publish-In", f"{denied}: PUBACK 0x87 Not authorized")
            if packet.qos:
                conn.send(codec.encode(codec.Puback(packet.packet_id or 0, codec.NOT_AUTHORIZED), MQTT_5))
            return
        self.core.publish(self._message(conn, topic, packet.payload, packet.qos, packet.retain, packet.properties))
        if packet.qos:
            conn.send(codec.encode(codec.Puback(packet.packet_id or 0), conn.version))
        request = shadow.parse_shadow_topic(topic)
        if request is not None and request.suffix is None:
            self._shadow_request(conn.principal.region, request, packet.payload)  # type: ignore[union-attr]

    # -- shadows over MQTT --

    def _shadow_request(self, region: str, request: shadow.ShadowTopic, payload: bytes) -> None:
        """Answer a shadow request; the service publishes accepted/delta/documents itself."""
        thing, name, operation = request.thing, request.shadow_name, request.operation
        token = None
        try:
            if operation == "update":
                self.shadows.update(region, thing, name, payload)
                return
            token = shadow.parse_client_token(payload)
            if operation == "get":
                document = self.shadows.get(region, thing, name, token)
                self.core.publish(Message(
                    region, shadow.shadow_topic(thing, name, "get/accepted"), encode_document(document),
                    qos=SHADOW_MESSAGE_QOS,
                ))
            else:
                self.shadows.delete(region, thing, name, token)
        except ShadowError as error:
            rejected = error.to_rejected(token, int(self.config.clock()))
            self.core.publish(Message(
                region, shadow.shadow_topic(thing, name, f"{operation}/rejected"), encode_document(rejected),
                qos=SHADOW_MESSAGE_QOS,
            ))

    # -- SUBSCRIBE / UNSUBSCRIBE --

    def subscribe(self, conn: Connection, packet: codec.Subscribe) -> None:
        session, auth = conn.session, conn.auth
        assert session is not None and auth is not None
        v5 = conn.version == MQTT_5
        if len(packet.subscriptions) > MAX_FILTERS_PER_SUBSCRIBE:
            raise Disconnect(codec.QUOTA_EXCEEDED,
                             f"{len(packet.subscriptions)} filters in one SUBSCRIBE (at most 8)")
        codes: list[int] = []
        granted: list[tuple[str, int, bool]] = []
        trie = self.tries.setdefault(session.region, TopicTrie())
        for topic_filter, options in packet.subscriptions:
            qos = min(options & 0x03, 1)
            code = qos
            try:
                validate_topic_filter(topic_filter)
                if not reserved_subscribe_allowed(topic_filter):
                    raise TopicError("reserved topic filter", topic_filter)
            except TopicError as error:
                conn.note(logging.WARNING, "Subscribe", f"bad topic filter: {error}")
                code = codec.TOPIC_FILTER_INVALID
            else:
                if not auth.allowed(SUBSCRIBE, topic_filter):
                    conn.note(logging.WARNING, "Subscribe", f"iot:Subscribe is not allowed on {topic_filter!r}")
                    code = codec.NOT_AUTHORIZED
                elif (topic_filter not in session.subscriptions
                      and len(session.subscriptions) >= MAX_SUBSCRIPTIONS_PER_CONNECTION):
                    code = codec.QUOTA_EXCEEDED
            if code <= 1:
                new = topic_filter not in session.subscriptions
                session.subscriptions[topic_filter] = (options & ~0x03) | qos
                trie.add(topic_filter, session)
                granted.append((topic_filter, (options >> 4) & 0x03, new))
            codes.append(code if v5 or code <= 1 else codec.SUBACK_FAILURE)
        conn.send(codec.encode(codec.Suback(packet.packet_id, codes), conn.version))
        if granted and session.expiry > 0:
            self.persisted.save(session, None)
        if granted:
            self._event(conn, subscription_event_topic("subscribed", conn.client_id),
                        {"topics": [f for f, _, _ in granted]}, "subscribed")
        for topic_filter, handling, new in granted:
            if handling == 0 or (handling == 1 and new):
                self._send_retained(conn, topic_filter)

    def _send_retained(self, conn: Connection, topic_filter: str) -> None:
        """Retained messages matching a new subscription, with RETAIN set."""
        session, auth = conn.session, conn.auth
        assert session is not None and auth is not None
        if split_shared(topic_filter)[0] is not None:
            return  # MQTT 5: shared subscriptions get no retained messages
        qos = session.subscriptions[topic_filter] & 0x03
        store = self.core.store
        after = ""
        while True:
            page = store.list_retained(session.region, after, 200)
            for summary in page:
                if matches(topic_filter, summary.topic) and auth.allowed(RECEIVE, summary.topic):
                    stored = store.get_retained(session.region, summary.topic)
                    if stored is not None:
                        message = Message(session.region, stored.topic, stored.payload, stored.qos, True,
                                          user_properties=stored.user_properties)
                        conn.deliver(Outgoing(message, min(qos, stored.qos), True), {})
            if len(page) < 200:
                return
            after = page[-1].topic

    def unsubscribe(self, conn: Connection, packet: codec.Unsubscribe) -> None:
        session = conn.session
        assert session is not None
        trie = self.tries.get(session.region)
        codes = []
        removed = []
        for topic_filter in packet.filters:
            if session.subscriptions.pop(topic_filter, None) is not None:
                if trie is not None:
                    trie.remove(topic_filter, session)
                codes.append(codec.SUCCESS)
                removed.append(topic_filter)
            else:
                codes.append(codec.NO_SUBSCRIPTION_EXISTED)
        conn.send(codec.encode(codec.Unsuback(packet.packet_id, codes), conn.version))
        if removed and session.expiry > 0:
            self.persisted.save(session, None)
        if removed:
            self._event(conn, subscription_event_topic("unsubscribed", conn.client_id),
                        {"topics": removed}, "unsubscribed")

    # -- delivery --

    def on_message(self, message: Message) -> None:
        """The core's listener: deliver to every matching subscription (any thread may call)."""
        if threading.get_ident() != self._thread:
            self.loop.call_soon_threadsafe(self.on_message, message)
            return
        trie = self.tries.get(message.region)
        if trie is None:
            return
        targets: dict[Session, int] = {}
        shared: dict[str, list[Session]] = {}
        for topic_filter, session in trie.match_items(message.topic):
            options = session.subscriptions.get(topic_filter)
            if options is None:
                continue
            if topic_filter.startswith("$share/"):
                shared.setdefault(topic_filter, []).append(session)
                continue
            if options & 0x04 and message.client_id == session.client_id:
                continue  # MQTT 5 No Local
            if targets.get(session, -1) < options:
                targets[session] = options
        for topic_filter, members in shared.items():
            online = [s for s in members if s.connection is not None] or members
            turn = self._share_turn.get(topic_filter, 0)
            self._share_turn[topic_filter] = turn + 1
            chosen = online[turn % len(online)]
            targets[chosen] = max(targets.get(chosen, 0), chosen.subscriptions[topic_filter])
        if not targets:
            return
        encoded: dict[tuple[int, int, bool], tuple[bytes, bytes]] = {}
        # MQTT 5 Message Expiry Interval: when it runs out, for deliveries that have to wait.
        expires = self._expires_at(message) if isinstance(message, MqttMessage) else 0.0
        topic = message.topic
        for session, options in targets.items():
            conn = session.connection
            auth = conn.auth if conn is not None else session.auth
            if auth is not None and not auth.allowed(RECEIVE, topic):
                continue
            qos = min(options & 0x03, message.qos)
            retain = bool(options & 0x08) and message.retain
            item = Outgoing(message, qos, retain, expires)
            if conn is None:
                if qos:
                    if len(session.queue) < MAX_QUEUED:  # the stored queue keeps the oldest
                        self.persisted.queue(session, item)
                    session.enqueue(item)
                continue
            conn.deliver(item, encoded)

    def _expires_at(self, message: MqttMessage) -> float:
        """When the message's Message Expiry Interval runs out (core clock); 0.0 if it has none."""
        for key, value in message.properties:
            if key == codec.MESSAGE_EXPIRY_INTERVAL:
                return self.config.clock() + value
        return 0.0


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason or str(error)
    if isinstance(error, TimeoutError):
        return "handshake timed out"
    if isinstance(error, ConnectionError | asyncio.IncompleteReadError):
        return "the client closed the connection before the handshake ended (a port check, or it gave up)"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__

