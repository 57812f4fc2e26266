"""The broker's TLS: mutual authentication against the local CA and registered certificates.

Python's `ssl` has no verify callback, so trust is the local CA, every registered CA
certificate and (partial-chain verification) every device certificate registered without a CA,
loaded into the live context as they appear; whether the certificate is ACTIVE is checked after the
handshake, by certificate id. Handshakes run through `start_tls_compact`, asyncio's own
`start_tls` with a 16 KiB record buffer instead of 256 KiB, so idle connections stay small.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import ssl
from asyncio import sslproto

from iot_tui.local.ca import LocalCA
from iot_tui.local.store import Store

log = logging.getLogger("iot_tui.local.broker")

ALPN_PROTOCOLS = ["x-amzn-mqtt-ca", "mqtt"]
HANDSHAKE_TIMEOUT = 10.0
# One TLS record is at most 16 KiB; asyncio's default read buffer is 256 KiB per connection.
TLS_READ_BUFFER = 16 * 1024


def certificate_id(der: bytes) -> str:
    """AWS's certificate id: the SHA-256 of the DER, in hex."""
    return hashlib.sha256(der).hexdigest()


def server_context(ca: LocalCA) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(ca.server_cert_path, ca.server_key_path)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.load_verify_locations(cafile=str(ca.ca_cert_path))
    ctx.set_alpn_protocols(ALPN_PROTOCOLS)
    return ctx


class TrustLoader:
    """Adds registered CA certificates and CA-less device certificates to a live context.

    Device certificates from a registered CA or from the local CA verify through their CA, so
    only those registered without one (SNI_ONLY, no CA) are loaded as trust anchors themselves.
    """

    _QUERIES = {
        "certificates": "SELECT seq, pem, mode = 'SNI_ONLY' AND ca_certificate_id IS NULL "
                        "FROM certificates WHERE seq > ? ORDER BY seq",
        "ca_certificates": "SELECT seq, pem, 1 FROM ca_certificates WHERE seq > ? ORDER BY seq",
    }

    def __init__(self, ctx: ssl.SSLContext, store: Store) -> None:
        self.ctx = ctx
        self.store = store
        self._seen = dict.fromkeys(self._QUERIES, 0)

    def refresh(self) -> None:
        """Load certificates registered since the last call (one indexed range query each)."""
        for table, query in self._QUERIES.items():
            try:
                rows = self.store.db.execute(query, (self._seen[table],)).fetchall()
            except sqlite3.OperationalError as error:  # the family's table may not exist yet
                log.debug("no %s to trust yet: %s", table, error)
                continue
            for seq, pem, anchor in rows:
                self._seen[table] = seq
                if not anchor:
                    continue
                try:
                    self.ctx.load_verify_locations(cadata=pem)
                except ssl.SSLError:
                    pass  # a certificate OpenSSL cannot use cannot authenticate anyone either


class _CompactSSLProtocol(sslproto.SSLProtocol):
    max_size = TLS_READ_BUFFER


async def start_tls_compact(
    transport: asyncio.Transport, protocol: asyncio.BaseProtocol, ctx: ssl.SSLContext,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> asyncio.Transport:
    """`loop.start_tls(server_side=True)` with a small read buffer (see the module docstring)."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    ssl_protocol = _CompactSSLProtocol(
        loop, protocol, ctx, waiter, server_side=True, ssl_handshake_timeout=handshake_timeout,
        call_connection_made=False,
    )
    transport.pause_reading()
    transport.set_protocol(ssl_protocol)
    made = loop.call_soon(ssl_protocol.connection_made, transport)
    resume = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resume.cancel()
        raise
    return ssl_protocol._app_transport
