"""Find a local core that answers, or start one as a child process (`iot-tui local serve`).

A child process keeps the core off the app's event loop and its GIL; the app stops it on exit.
A core started elsewhere (another terminal) is used as is and left running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from iot_tui.core_defaults import DEFAULT_HOST, DEFAULT_HTTP_PORT

HEALTH_PATH = "/_iot_tui/health"
# Runs first in the child: on Linux ask for SIGTERM when the parent dies (closed terminal, kill -9),
# then exec the real command; PR_SET_PDEATHSIG survives exec. Start cores from the main thread:
# the signal follows the thread that forked.
_LAUNCHER = (
    "import os, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    import ctypes, signal\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
)


class CoreStartError(RuntimeError):
    """The core did not come up; the message carries the end of its log."""


def get_json(url: str | urllib.request.Request, timeout: float) -> dict | None:
    """A JSON object from one of the core's own endpoints; None when nothing answers, or not with one."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = json.loads(answer.read())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def fetch_health(host: str = DEFAULT_HOST, port: int = DEFAULT_HTTP_PORT, timeout: float = 0.5) -> dict | None:
    """The health answer of an iot-tui core on host:port, or None when nothing (or something else) answers."""
    health = get_json(f"http://{host}:{port}{HEALTH_PATH}", timeout)
    return health if health is not None and health.get("service") == "iot-tui local core" else None


def health_of_url(url: str, timeout: float = 0.5) -> dict | None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    return fetch_health(parts.hostname, parts.port or 80, timeout)


def default_log_file() -> Path:
    return Path(platformdirs.user_log_dir("iot-tui")) / "local-core.log"


@dataclass
class CoreProcess:
    """A core this app started; `stop()` ends it (only it, by its own pid)."""

    process: subprocess.Popen[bytes]
    health: dict[str, Any]
    log_file: Path

    @classmethod
    def start(cls, host: str = DEFAULT_HOST, port: int = DEFAULT_HTTP_PORT, extra_args: list[str] | None = None,
              timeout: float = 30.0, log_file: Path | None = None) -> CoreProcess:
        log_file = log_file or default_log_file()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-c", _LAUNCHER, "-m", "iot_tui", "local", "serve", "--host", host,
                   "--http-port", str(port), *(extra_args or [])]
        with open(log_file, "ab") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = fetch_health(host, port, timeout=0.5)
            if health is not None:
                return cls(process, health, log_file)
            if process.poll() is not None:
                raise CoreStartError(f"the local core exited with code {process.returncode}: {_tail(log_file)}")
            time.sleep(0.05)
        process.kill()
        raise CoreStartError(f"the local core did not answer within {timeout:g} s: {_tail(log_file)}")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def ensure_local_core(host: str = DEFAULT_HOST, port: int = DEFAULT_HTTP_PORT) -> tuple[dict, CoreProcess | None]:
    """A running core's health; starts one (returned, for the caller to stop) when none answers."""
    health = fetch_health(host, port)
    if health is not None:
        return health, None
    process = CoreProcess.start(host, port)
    return process.health, process


def _tail(log_file: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log_file.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
