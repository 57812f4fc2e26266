"""Time from process start to first frame: `iot-tui` against a running local core, and a bare
Textual app (Header, a label, Footer) in the same run. Prints both medians and the ratio.

    .venv/bin/python benchmarks/startup.py [--runs 7]

Each app runs in a pseudo-terminal of 120x40; the first frame is the first output holding the
app's marker text. The local core is started once, before timing, as `iot-tui` finds it.
"""

from __future__ import annotations

import argparse
import compileall
import fcntl
import os
import pty
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

BARE_APP = """
from textual.app import App
from textual.widgets import Footer, Header, Label

class Bare(App):
    def compose(self):
        yield Header()
        yield Label("bare-first-frame")
        yield Footer()

Bare().run()
"""


def first_frame_seconds(command: list[str], marker: bytes, env: dict[str, str], timeout: float = 30.0) -> float:
    """Seconds from spawn until the terminal output contains `marker`; the app is then ended."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, env=env,
                               start_new_session=True, close_fds=True)
    os.close(follower)
    seen = b""
    try:
        while marker not in seen:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"no first frame from {command[0]} in {timeout} s: {seen[-300:]!r}")
            ready, _, _ = select.select([leader], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
        elapsed = time.perf_counter() - started
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(leader)
    return elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    iot_tui = shutil.which("iot-tui", path=str(bin_dir)) or "iot-tui"
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    for name in ("AWS_ENDPOINT_URL_IOT", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    # Textual's modules come precompiled (pip writes their bytecode); an editable checkout under
    # PYTHONDONTWRITEBYTECODE would compile ours from source on every start. Compile once, as an install does.
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "iot_tui", quiet=1)
    data_dir = tempfile.mkdtemp(prefix="iot-tui-bench-")
    port = free_port()
    core = subprocess.Popen([iot_tui, "local", "serve", "--data-dir", data_dir, "--http-port", str(port),
                             "--mqtt-port", "0", "--ws-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert core.stdout is not None
        core.stdout.readline()  # the first listener line: the core is serving
        url = f"http://127.0.0.1:{port}"
        ours, bare = [], []
        for _ in range(args.runs):
            # The tab bar is in the first frame; the "target:" line the CLI prints before is not.
            ours.append(first_frame_seconds([iot_tui, "--endpoint-url", url], b"Registry", env))
            bare.append(first_frame_seconds([sys.executable, "-c", BARE_APP], b"bare-first-frame", env))
    finally:
        core.terminate()
        core.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    print(f"runs: {args.runs} each, terminal 120x40")
    print(f"iot-tui first frame:     median {ours_median * 1000:7.0f} ms  (min {min(ours) * 1000:.0f}, max {max(ours) * 1000:.0f})")
    print(f"bare Textual first frame: median {bare_median * 1000:7.0f} ms  (min {min(bare) * 1000:.0f}, max {max(bare) * 1000:.0f})")
    print(f"ratio iot-tui / bare: {ours_median / bare_median:.2f} (target: at most 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
