"""MQTT pane benchmark: a flood into the live pane, and whether the keyboard still answers.

    .venv/bin/python benchmarks/mqtt_pane.py              # 5,000 msg/s for 10 s (issue 6)
    .venv/bin/python benchmarks/mqtt_pane.py --quick      # 2,000 msg/s for 5 s

The local core runs as a subprocess (`iot-tui local serve`, as in broker.py). The app runs headless
in this process at 120x40, connects the MQTT pane with a wizard-made device certificate (full-learning
policy) and subscribes to `bench/#` at QoS 1 through the subscriptions panel. A publisher process
(broker.py's raw asyncio client, 100 QoS 1 messages in flight) sends JSON messages at a fixed rate.
Meanwhile a key (F4, follow/newest first) is pressed every 200 ms and timed from the key event to
the next screen update the compositor produces. Printed: messages received by the pane versus sent
(must be equal at QoS 1), p50/p95/max key-to-update latency (target p95 under 100 ms), and the RSS
of this process (app + awscrt) when the 10,000-message buffer first fills, at its peak, and at the end
(target: flat once the buffer is full).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config
from broker import HOST, Broker, Client, Identity, client_context, log, start_ours

from iot_tui.aws import certs, policies
from iot_tui.aws.core_process import fetch_health
from iot_tui.aws.target import Target
from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.local.broker import codec
from iot_tui.ui.app import make_app
from iot_tui.ui.screens.mqtt import MqttView

TOPIC = "bench/pane/sensor"
LATENCY_TARGET_MS = 100.0
KEY_EVERY = 0.2


def paced_publisher(identity: Identity, rate: int, seconds: float, start, results) -> None:
    """QoS 1 JSON messages at `rate` per second, sent in 10 ms slices; reports how many were PUBACKed."""
    async def main() -> None:
        client = await Client.connect(identity, client_context(identity), "bench-publisher")
        pump = asyncio.create_task(client.pump())
        start.wait()
        total = int(rate * seconds)
        began = time.monotonic()
        for n in range(total):
            due = began + n / rate
            if n % max(rate // 100, 1) == 0:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await client.writer.drain()
            payload = json.dumps({"n": n, "value": n % 100}).encode()
            client.writer.write(codec.encode(codec.Publish(TOPIC, payload, 1, packet_id=(n % 65535) + 1),
                                             codec.MQTT_311))
            while n + 1 - client.acked >= 100:  # 100 in flight, AWS's limit
                client.ack_event.clear()
                await client.ack_event.wait()
        await client.writer.drain()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while client.acked < total:
                    client.ack_event.clear()
                    await client.ack_event.wait()
        results.put((total, client.acked, time.monotonic() - began))
        pump.cancel()
        client.writer.close()

    asyncio.run(main())


def app_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def flood(work: Path, core: Broker, rate: int, seconds: float) -> None:
    http_url, identity = core.http_url or "", core.identity
    health = fetch_health(HOST, int(http_url.rsplit(":", 1)[1]), timeout=5)
    assert health is not None
    target = Target.local(health, region="us-east-1")
    iot = boto3.client("iot", endpoint_url=http_url, region_name="us-east-1", aws_access_key_id=LOCAL_ACCESS_KEY_ID,
                       aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY, config=Config(retries={"max_attempts": 1}))
    iot.create_thing(thingName="pane-bench")
    policies.create_from_template(iot, "pane-bench", policies.template("full-learning"), "us-east-1", "000000000000")
    certs.create_and_attach(iot, "pane-bench", target, work / "certs", "pane-bench")

    # Started before the app: Textual's captured stdio would break multiprocessing's fd passing.
    mp = multiprocessing.get_context("spawn")
    start, results = mp.Event(), mp.Queue()
    publisher = mp.Process(target=paced_publisher, args=(identity, rate, seconds, start, results))
    publisher.start()
    app = make_app(target, cert_root=work / "certs")
    displays: list[float] = []
    toggled: list[float] = []
    # The press being timed, and the event its first screen update after the toggle sets: waiting on
    # an event (not polling the loop) keeps the harness from competing with the app it measures.
    pressed_at: list[float] = [0.0]
    shown_at: list[float] = [0.0]
    shown = asyncio.Event()
    original_display = app._display

    def display(screen, renderable) -> None:  # noqa: ANN001 - Textual's private hook, timed only
        if renderable is not None:
            displays.append(time.perf_counter())
            if toggled and toggled[-1] >= pressed_at[0] and not shown.is_set():
                shown_at[0] = displays[-1]
                shown.set()
        original_display(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        view = app.query_one(MqttView)
        await wait(pilot, lambda: bool(view.query_one("ConnectionForm").devices), "device folder listed")
        await pilot.press("f5")
        await wait(pilot, lambda: view.connection is not None or "failed" in view.note, "connect")
        if view.connection is None:
            raise SystemExit(f"the pane did not connect: {view.note}")
        view.query_one("#sub-filter").value = "bench/#"
        view.query_one("#sub-filter").focus()
        await pilot.press("enter")
        await wait(pilot, lambda: "bench/#" in view.subscribed, "SUBACK")
        view.query_one("#mqtt-log").focus()
        original_follow = view.action_follow

        def follow() -> None:
            original_follow()
            toggled.append(time.perf_counter())

        view.action_follow = follow  # type: ignore[method-assign]

        await asyncio.sleep(1.0)
        rss_start, rss_full, rss_peak = rss_mb(), None, 0.0
        latencies: list[float] = []
        cpu_app, cpu_core = app_cpu_seconds(), core.cpu_seconds()
        start.set()
        began = time.monotonic()
        sent = acked = None
        while time.monotonic() - began < seconds + 30:
            shown.clear()
            pressed = pressed_at[0] = time.perf_counter()
            app.simulate_key("f4")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shown.wait(), 5)
                latencies.append((shown_at[0] - pressed) * 1000)
            rss_peak = max(rss_peak, rss_mb())
            if rss_full is None and view.log_buffer.total >= view.log_buffer.capacity:
                rss_full = rss_mb()
            if sent is None and not results.empty():
                sent, acked, _ = results.get()
            if sent is not None and view.log_buffer.total >= sent:
                break
            if sent is not None and time.monotonic() - began > seconds + 10:
                break
            await asyncio.sleep(max(0.0, KEY_EVERY - (time.perf_counter() - pressed)))
        publisher.join(10)
        if sent is None:
            sent, acked, _ = results.get(timeout=10)
        received = view.log_buffer.total
        cpu_app, cpu_core = app_cpu_seconds() - cpu_app, core.cpu_seconds() - cpu_core
        stats = view.connection.stats()
        rss_end = rss_mb()

    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1] if latencies else float("nan")
    print(f"load:                       {rate} msg/s for {seconds:g} s at QoS 1 to {TOPIC}")
    print(f"sent (PUBACKed):            {sent} ({acked})")
    print(f"received by the pane:       {received}  (connection counted {stats.messages_in})  "
          f"{'EQUAL' if received == sent else 'MISSING ' + str(sent - received)}")
    print(f"key to screen update:       p50 {statistics.median(latencies):.1f} ms  p95 {p95:.1f} ms  "
          f"max {latencies[-1]:.1f} ms  ({len(latencies)} presses; target p95 < {LATENCY_TARGET_MS:g} ms: "
          f"{'met' if p95 < LATENCY_TARGET_MS else 'NOT met'})")
    print(f"RSS (app process):          before {rss_start:.0f} MB, buffer full {rss_full or float('nan'):.0f} MB, "
          f"peak {rss_peak:.0f} MB, end {rss_end:.0f} MB")
    print(f"CPU during the flood:       app {cpu_app:.1f} s, local core {cpu_core:.1f} s "
          f"({os.cpu_count()} CPUs shared with the publisher)")


async def wait(pilot, condition, what: str, limit: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 msg/s for 5 s")
    parser.add_argument("--rate", type=int, default=None, help="messages per second (default 5000)")
    parser.add_argument("--seconds", type=float, default=None, help="flood duration (default 10)")
    args = parser.parse_args()
    rate = args.rate or (2000 if args.quick else 5000)
    seconds = args.seconds or (5.0 if args.quick else 10.0)
    with tempfile.TemporaryDirectory(prefix="iot-tui-pane-bench-") as scratch:
        work = Path(scratch)
        log("starting the local core ...")
        core = start_ours(work)
        try:
            asyncio.run(flood(work, core, rate, seconds))
        finally:
            core.stop()


if __name__ == "__main__":
    sys.exit(main())
