"""One asyncio process serving the local core's listeners, with a clean start and stop.

`LocalServer` can run in the foreground (`iot-tui local serve`), in a background thread with
its own event loop (tests, the app), and stops every listener it started.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from iot_tui.local.broker.broker import Broker
from iot_tui.local.broker.websocket import WebSocketListener
from iot_tui.local.ca import LocalCA
from iot_tui.local.config import CoreConfig
from iot_tui.local.core import CoreState
from iot_tui.local.http.app import HttpApi
from iot_tui.local.rules.engine import RulesEngine
from iot_tui.local.store import Store


class DataDirLocked(RuntimeError):
    """Two cores never share one data dir: the second one refuses to start."""


def lock_data_dir(data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "core.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirLocked(f"another local core is already using {data_dir}") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


@dataclass
class LocalServer:
    config: CoreConfig
    ports: dict[str, int] = field(default_factory=dict)
    core: CoreState | None = None
    _lock_fd: int | None = None
    _runner: web.AppRunner | None = None
    broker: Broker | None = None
    _websocket: WebSocketListener | None = None
    rules: RulesEngine | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stopped: asyncio.Event | None = None

    async def start(self) -> None:
        self._stopped = asyncio.Event()
        self._lock_fd = lock_data_dir(self.config.data_dir)
        try:
            ca = LocalCA.load_or_create(self.config.ca_dir)
            store = Store.open(self.config.db_path)
            self.core = CoreState(self.config, store, ca)
            self.rules = RulesEngine(self.core)
            self.rules.attach()
            self.broker = Broker(self.core)
            self.ports["mqtt"] = await self.broker.listen_tls(self.config.host, self.config.mqtt_port)
            self._websocket = WebSocketListener(self.broker)
            self.ports["ws"] = await self._websocket.start(self.config.host, self.config.ws_port)
            # HTTP last: its health answer names every port, so it must not answer before they exist.
            api = HttpApi(self.core, self.ports, self.broker.journal)
            self._runner = web.AppRunner(api.application(), access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.config.host, self.config.http_port, reuse_address=True)
            await site.start()
            self.ports["http"] = site._server.sockets[0].getsockname()[1]
        except BaseException:
            await self.stop()
            raise

    @property
    def http_url(self) -> str:
        return f"http://{self.config.host}:{self.ports['http']}"

    def listener_lines(self) -> list[str]:
        lines = [f"http  {self.http_url}"]
        if "mqtt" in self.ports:
            lines.append(f"mqtt  mqtts://{self.config.host}:{self.ports['mqtt']}")
        if "ws" in self.ports:
            lines.append(f"ws    wss://{self.config.host}:{self.ports['ws']}/mqtt")
        return lines

    async def stop(self) -> None:
        if self.broker is not None:
            await self.broker.stop()
            self.broker = None
        if self._websocket is not None:
            await self._websocket.stop()
            self._websocket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.rules is not None:
            self.rules.detach()
            self.rules = None
        if self.core is not None:
            self.core.store.close()
            self.core = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def serve_forever(self) -> None:
        assert self._stopped is not None, "start() first"
        await self._stopped.wait()

    def request_stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    # -- running on a background thread (tests, the app's embedded core) --

    def start_in_thread(self, timeout: float = 30.0) -> LocalServer:
        """Start on a private event loop in a daemon thread; returns once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as error:  # reported to the starting thread
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_until_complete(self.serve_forever())
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="iot-tui-local-core", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the local core did not start in time")
        if failure:
            raise failure[0]
        return self

    def stop_thread(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self.request_stop)
            self._thread.join(timeout)
            self._thread = None
