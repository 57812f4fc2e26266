"""MQTT over WebSocket (TLS, path `/mqtt`), authenticated by a SigV4-presigned URL.

awscrt's `websockets_with_default_aws_signing` signs the upgrade request in its query string
(service `iotdevicegateway`, the session token added after signing). The principal is the
access key's identity, which acts with the local IAM identity's rights. By default any
well-formed signature is accepted; with `strict_auth` the signature is recomputed with the
local credentials and compared.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import ssl
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

from aiohttp import WSMsgType, web

from iot_tui.local.broker.auth import Principal
from iot_tui.local.broker.broker import Broker, Connection
from iot_tui.local.broker.tls import server_context

WS_PATH = "/mqtt"
SIGNING_SERVICE = "iotdevicegateway"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Not part of what awscrt signs.
_UNSIGNED = {"X-Amz-Signature", "X-Amz-Security-Token"}


class SignatureError(Exception):
    """The upgrade request is not a usable presigned request (answered with 403)."""


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _access_key(query: str) -> str:
    """The access key a presigned request names, when it names one (to attribute a refusal)."""
    return dict(parse_qsl(query)).get("X-Amz-Credential", "").split("/")[0]


def presigned_principal(query: str, headers: Mapping[str, str], method: str, path: str, *, account_id: str,
                        access_key_id: str | None = None, secret: str | None = None) -> Principal:
    """The caller of a presigned request; with credentials given, the signature is verified."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise SignatureError("the request is not signed with SigV4 (X-Amz-Algorithm)")
    for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"):
        if not params.get(name):
            raise SignatureError(f"the signed request has no {name}")
    scope = params["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not scope[2]:
        raise SignatureError(f"malformed credential scope {params['X-Amz-Credential']!r}")
    key, date, region, service = scope[:4]
    if secret is not None:
        if key != access_key_id:
            raise SignatureError("the access key is not known to the local core")
        signed = params["X-Amz-SignedHeaders"]
        names = signed.split(";")
        if "host" not in names:
            raise SignatureError("the signature does not cover the host header")
        canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names)
        canonical_query = "&".join(sorted(
            f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in params.items() if k not in _UNSIGNED
        ))
        canonical = "\n".join([method, path, canonical_query, canonical_headers, signed, _EMPTY_SHA256])
        credential_scope = "/".join(scope[1:])
        to_sign = "\n".join([
            "AWS4-HMAC-SHA256", params["X-Amz-Date"], credential_scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ])
        signing_key = f"AWS4{secret}".encode()
        for part in (date, region, service, "aws4_request"):
            signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            raise SignatureError("the signature does not match the local credentials")
    return Principal(region, account_id, key, None)


class _WebSocketTransport(asyncio.Transport):
    """What `Connection` writes to: frames are sent in order by one task, with flow control."""

    def __init__(self, ws: web.WebSocketResponse, connection: Connection, peer: str) -> None:
        super().__init__()
        self.ws = ws
        self.connection = connection
        self.peer = peer
        self.pending: list[bytes] = []
        self.size = 0
        self.high, self.low = 256 * 1024, 64 * 1024
        self.paused = False
        self.closing = False
        self.sender: asyncio.Task | None = None

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.peer if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closing

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high = high or self.high
        self.low = low or self.high // 4

    def get_write_buffer_size(self) -> int:
        return self.size

    def write(self, data: bytes) -> None:
        if self.closing:
            return
        self.pending.append(data)
        self.size += len(data)
        if self.size > self.high and not self.paused:
            self.paused = True
            self.connection.pause_writing()
        self._kick()

    def _kick(self) -> None:
        if self.sender is None or self.sender.done():
            self.sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        try:
            while self.pending:
                chunk = b"".join(self.pending)
                self.pending.clear()
                await self.ws.send_bytes(chunk)
                self.size -= len(chunk)
                if self.paused and self.size <= self.low:
                    self.paused = False
                    self.connection.resume_writing()
        except (ConnectionError, RuntimeError):
            self.closing = True
        if self.closing:
            await self.ws.close()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self._kick()

    def abort(self) -> None:
        self.close()


class WebSocketListener:
    """An aiohttp server for `/mqtt` upgrades that hands each socket to the broker."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> int:
        app = web.Application()
        app.router.add_get(WS_PATH, self.handle)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        ctx = server_context(self.broker.core.ca)
        ctx.verify_mode = ssl.CERT_NONE  # WebSocket clients authenticate with SigV4
        ctx.set_alpn_protocols(["http/1.1"])
        site = web.TCPSite(self.runner, host, port, ssl_context=ctx, reuse_address=True)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        config = self.broker.config
        peername = request.transport.get_extra_info("peername") if request.transport else None
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        try:
            principal = presigned_principal(
                request.query_string, request.headers, request.method, request.rel_url.raw_path,
                account_id=config.account_id,
                access_key_id=config.access_key_id if config.strict_auth else None,
                secret=config.secret_access_key if config.strict_auth else None,
            )
        except SignatureError as error:
            self.broker.journal.record(logging.WARNING, "Connect", f"WebSocket upgrade refused (403): {error}",
                                       peer=peer, principal=_access_key(request.query_string))
            return web.Response(status=403, text=str(error))
        ws = web.WebSocketResponse(protocols=("mqtt",), max_msg_size=0, autoping=True)
        await ws.prepare(request)
        connection = Connection(self.broker, peer=peer)
        transport = _WebSocketTransport(ws, connection, peer)
        connection.attach(transport, principal)
        try:
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    connection.data_received(message.data)
                    if connection.closed:
                        break
                elif message.type in (WSMsgType.TEXT, WSMsgType.ERROR):
                    connection.note(logging.WARNING, "Disconnect", "sent a non-binary WebSocket frame: closing")
                    break
        finally:
            connection.connection_lost(None)
            if not ws.closed:
                await ws.close()
        return ws
