"""A core the app starts runs in a child process, answers health, and ends with the app."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

from iot_tui.aws.core_process import CoreProcess, fetch_health, health_of_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def core_args(tmp_path) -> list[str]:
    return ["--data-dir", str(tmp_path / "core"), "--mqtt-port", "0", "--ws-port", "0"]


def test_nothing_answering_is_none():
    assert fetch_health("127.0.0.1", free_port(), timeout=0.2) is None
    assert health_of_url("https://iot.eu-west-1.amazonaws.com") is None


def test_start_and_stop(tmp_path):
    port = free_port()
    process = CoreProcess.start(port=port, extra_args=core_args(tmp_path), log_file=tmp_path / "core.log")
    try:
        assert process.health["ports"]["http"] == port
        assert process.health["dataDir"] == str(tmp_path / "core")
        assert health_of_url(f"http://127.0.0.1:{port}") == process.health
    finally:
        process.stop()
    assert process.process.returncode is not None
    assert fetch_health("127.0.0.1", port, timeout=0.2) is None


def test_core_ends_when_its_parent_dies(tmp_path):
    """A closed terminal or kill -9 of the app must not leave a core holding the port."""
    port = free_port()
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from iot_tui.aws.core_process import CoreProcess
        process = CoreProcess.start(port={port}, extra_args={core_args(tmp_path)!r},
                                    log_file=Path({str(tmp_path / 'core.log')!r}))
        print(process.process.pid, flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and fetch_health("127.0.0.1", port, timeout=0.2) is not None:
        time.sleep(0.1)
    assert fetch_health("127.0.0.1", port, timeout=0.2) is None, f"core {child} outlived its parent"
