"""MQTT broker benchmark: the local core's broker and Debian's mosquitto, same load, same run.

    .venv/bin/python benchmarks/broker.py            # full run
    .venv/bin/python benchmarks/broker.py --quick    # fewer messages and connections

Both brokers run as subprocesses on 127.0.0.1 with mutual TLS against the local CA, and the same
raw-asyncio load generator (publisher and subscribers in their own processes) drives both. For
each it prints QoS 0 and QoS 1 deliveries per second for 1 publisher to 1 subscriber and to 100
subscribers (100-byte payloads), broker CPU seconds per 100,000 delivered messages, and the RSS
that 1,000 idle mTLS connections add; then the ratios. Our broker runs with policy checks on (an
allow-all policy still goes through the evaluator for Connect, Publish, Subscribe and Receive).
Both keep at most 100 QoS 1 messages in flight and 10,000 messages or 8 MiB queued per
subscriber (our broker's bounds, given to mosquitto too), so a subscriber that falls behind loses
messages on both: the "delivered %" rows show it. mosquitto is installed with apt-get when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.local.broker import codec

HOST = "127.0.0.1"
PAYLOAD = b"x" * 100
TOPIC = "bench/t"
CPU_TARGET = 1.5  # ours / mosquitto CPU per delivered message, at most
RSS_TARGET_MB = 150  # 1,000 idle connections, at most


@dataclass(frozen=True)
class Identity:
    """What a load-generator process needs to connect: where, and the device's files."""

    port: int
    ca: str
    cert: str
    key: str


@dataclass
class Broker:
    name: str
    process: subprocess.Popen
    identity: Identity
    http_url: str | None = None  # ours only: its control plane, for benchmarks that configure it

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# -- the brokers --


def start_ours(work: Path) -> Broker:
    """`iot-tui local serve` on free ports, with a device certificate and an allow-all policy."""
    http_port, mqtt_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "iot_tui", "local", "serve", "--data-dir", str(work / "core"),
         "--http-port", str(http_port), "--mqtt-port", str(mqtt_port), "--ws-port", "0",
         "--keep-alive-max", "1200", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL,
    )
    wait_port(http_port)
    wait_port(mqtt_port)
    iot = boto3.client(
        "iot", endpoint_url=f"http://{HOST}:{http_port}", region_name="us-east-1",
        aws_access_key_id=LOCAL_ACCESS_KEY_ID, aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 1}),
    )
    made = iot.create_keys_and_certificate(setAsActive=True)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
    iot.create_policy(policyName="bench", policyDocument=json.dumps(policy))
    iot.attach_policy(policyName="bench", target=made["certificateArn"])
    (work / "device.crt").write_text(made["certificatePem"])
    (work / "device.key").write_text(made["keyPair"]["PrivateKey"])
    ca = work / "core" / "ca"
    return Broker("iot-tui", process, Identity(
        mqtt_port, str(ca / "ca.crt"), str(work / "device.crt"), str(work / "device.key")), f"http://{HOST}:{http_port}")


def ensure_mosquitto() -> str:
    found = shutil.which("mosquitto") or (Path("/usr/sbin/mosquitto").exists() and "/usr/sbin/mosquitto")
    if found:
        return found
    log("installing mosquitto with apt-get ...")
    subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "mosquitto"], check=True, stdout=subprocess.DEVNULL)
    return "/usr/sbin/mosquitto"


def start_mosquitto(work: Path, ours: Identity) -> Broker:
    """mosquitto with the same server certificate, CA and client-certificate requirement."""
    ca_dir = Path(ours.ca).parent
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text("\n".join([
        f"listener {port} {HOST}",
        f"cafile {ca_dir / 'ca.crt'}", f"certfile {ca_dir / 'server.crt'}", f"keyfile {ca_dir / 'server.key'}",
        "require_certificate true", "allow_anonymous true", "persistence false", "log_dest none",
        "max_inflight_messages 100", "max_queued_messages 10000", "max_queued_bytes 8388608",
        "user root", "",
    ]))
    process = subprocess.Popen([ensure_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_port(port)
    return Broker("mosquitto", process, Identity(port, ours.ca, ours.cert, ours.key))


# -- the load generator (runs in child processes) --


def client_context(identity: Identity) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=identity.ca)
    ctx.load_cert_chain(identity.cert, identity.key)
    return ctx


class Client:
    """A minimal MQTT 3.1.1 client: counts PUBLISHes, acks QoS 1, tracks its own PUBACKs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = 0
        self.acked = 0
        self.last_received = 0.0
        self.ack_event = asyncio.Event()

    @classmethod
    async def connect(cls, identity: Identity, ctx: ssl.SSLContext, client_id: str) -> Client:
        reader, writer = await asyncio.open_connection(HOST, identity.port, ssl=ctx, server_hostname="localhost")
        writer.write(codec.encode(codec.Connect(codec.MQTT_311, client_id, True, 1200), codec.MQTT_311))
        await reader.readexactly(4)  # CONNACK
        return cls(reader, writer)

    async def subscribe(self, qos: int) -> None:
        self.writer.write(codec.encode(codec.Subscribe(1, [(TOPIC, qos)]), codec.MQTT_311))
        await self.reader.readexactly(5)  # SUBACK

    async def pump(self) -> None:
        """Read packets until the connection ends; counts deliveries and acknowledgements."""
        buffer = b""
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            acks = []
            pos = 0
            for first, body, end in frames(buffer):
                kind = first >> 4
                if kind == codec.PUBLISH:
                    self.received += 1
                    self.last_received = time.monotonic()
                    if first & 0x06:
                        topic_end = body + 2 + int.from_bytes(buffer[body:body + 2], "big")
                        acks.append(b"\x40\x02" + buffer[topic_end:topic_end + 2])
                elif kind == codec.PUBACK:
                    self.acked += 1
                    self.ack_event.set()
                pos = end
            buffer = buffer[pos:]
            if acks:
                self.writer.write(b"".join(acks))


def frames(buffer: bytes):
    """(first byte, body start, packet end) of each whole packet at the start of `buffer`."""
    pos, n = 0, len(buffer)
    while n - pos >= 2:
        length, shift, i = 0, 0, pos + 1
        while i < n:
            byte = buffer[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
        else:
            return
        if n - i < length:
            return
        yield buffer[pos], i, i + length
        pos = i + length


def subscriber_process(identity: Identity, count: int, qos: int, ready, results, expected: int) -> None:
    async def main() -> None:
        ctx = client_context(identity)
        clients = [await Client.connect(identity, ctx, f"sub-{os.getpid()}-{i}") for i in range(count)]
        for client in clients:
            await client.subscribe(qos)
        pumps = [asyncio.create_task(client.pump()) for client in clients]
        ready.set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            total = sum(c.received for c in clients)
            last = max(c.last_received for c in clients)
            if total >= expected or (total and time.monotonic() - last > 3):  # QoS 0 may drop
                break
            await asyncio.sleep(0.01)
        results.put(("received", sum(c.received for c in clients), max(c.last_received for c in clients)))
        for pump in pumps:
            pump.cancel()
        for client in clients:
            client.writer.close()

    asyncio.run(main())


def publisher_process(identity: Identity, messages: int, qos: int, start, results, payload: bytes = PAYLOAD) -> None:
    async def main() -> None:
        client = await Client.connect(identity, client_context(identity), f"pub-{os.getpid()}")
        pump = asyncio.create_task(client.pump())
        start.wait()
        began = time.monotonic()
        for n in range(messages):
            packet = codec.encode(codec.Publish(TOPIC, payload, qos, packet_id=(n % 65535) + 1 if qos else None),
                                  codec.MQTT_311)
            client.writer.write(packet)
            if qos:
                while n + 1 - client.acked >= 100:  # 100 in flight, AWS's limit
                    client.ack_event.clear()
                    await client.ack_event.wait()
            if n % 256 == 0:
                await client.writer.drain()
        await client.writer.drain()
        results.put(("published", began))
        await asyncio.sleep(0.5)
        pump.cancel()
        client.writer.close()

    asyncio.run(main())


def run_load(broker: Broker, subscribers: int, messages: int, qos: int,
             payload: bytes = PAYLOAD) -> tuple[float, float, int]:
    """(deliveries per second, broker CPU seconds per 100,000 deliveries, deliveries)."""
    mp = multiprocessing.get_context("spawn")
    ready, start, results = mp.Event(), mp.Event(), mp.Queue()
    expected = subscribers * messages
    sub = mp.Process(target=subscriber_process, args=(broker.identity, subscribers, qos, ready, results, expected))
    sub.start()
    if not ready.wait(60):
        raise RuntimeError("subscribers did not connect")
    pub = mp.Process(target=publisher_process, args=(broker.identity, messages, qos, start, results, payload))
    pub.start()
    time.sleep(0.5)
    cpu_before = broker.cpu_seconds()
    start.set()
    outcome = {item[0]: item[1:] for item in (results.get(timeout=180), results.get(timeout=180))}
    cpu = broker.cpu_seconds() - cpu_before
    sub.join(10)
    pub.join(10)
    delivered, last = outcome["received"]
    (began,) = outcome["published"]
    return delivered / max(last - began, 1e-6), cpu / max(delivered, 1) * 100_000, delivered


def idle_process(identity: Identity, count: int, ready, done) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (count * 2 + 100, count * 2 + 100))

    async def main() -> None:
        ctx = client_context(identity)
        clients = []
        for start in range(0, count, 50):
            clients += await asyncio.gather(*(
                Client.connect(identity, ctx, f"idle-{i}") for i in range(start, min(start + 50, count))
            ))
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, done.wait)
        for client in clients:
            client.writer.close()

    asyncio.run(main())


def idle_rss(broker: Broker, count: int) -> float:
    """MB of broker RSS that `count` idle mTLS connections add."""
    mp = multiprocessing.get_context("spawn")
    ready, done = mp.Event(), mp.Event()
    before = broker.rss_mb()
    process = mp.Process(target=idle_process, args=(broker.identity, count, ready, done))
    process.start()
    if not ready.wait(180):
        raise RuntimeError("idle connections did not all connect")
    time.sleep(1)
    after = broker.rss_mb()
    done.set()
    process.join(30)
    return after - before


def raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted) if hard == resource.RLIM_INFINITY else min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer messages and connections")
    args = parser.parse_args()
    one, fan, idle = (20_000, 500, 300) if args.quick else (100_000, 2_000, 1_000)
    raise_open_files(idle * 2 + 200)  # children inherit it; the brokers need one per connection
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="iot-tui-bench-") as tmp:
        work = Path(tmp)
        ours = start_ours(work)
        theirs = start_mosquitto(work, ours.identity)
        try:
            for broker in (ours, theirs):
                figures = results.setdefault(broker.name, {})
                for qos in (0, 1):
                    log(f"{broker.name}: QoS {qos}, 1 -> 1 ({one} messages)")
                    rate, cpu, delivered = run_load(broker, 1, one, qos)
                    figures[f"qos{qos} 1->1 msg/s"] = rate
                    figures[f"qos{qos} 1->1 cpu s/100k"] = cpu
                    figures[f"qos{qos} 1->1 delivered %"] = delivered / one * 100
                    log(f"{broker.name}: QoS {qos}, 1 -> 100 ({fan} messages)")
                    rate, cpu, delivered = run_load(broker, 100, fan, qos)
                    figures[f"qos{qos} 1->100 msg/s"] = rate
                    figures[f"qos{qos} 1->100 cpu s/100k"] = cpu
                    figures[f"qos{qos} 1->100 delivered %"] = delivered / (100 * fan) * 100
                log(f"{broker.name}: {idle} idle mTLS connections")
                figures[f"rss MB / {idle} idle conns"] = idle_rss(broker, idle)
        finally:
            ours.stop()
            theirs.stop()
    names = list(next(iter(results.values())))
    print(f"{'figure':32} {'iot-tui':>12} {'mosquitto':>12} {'ratio':>8}")
    for name in names:
        a, b = results["iot-tui"][name], results["mosquitto"][name]
        print(f"{name:32} {a:12.2f} {b:12.2f} {a / b if b else float('inf'):8.2f}")
    cpu_ratio = max(results["iot-tui"][n] / results["mosquitto"][n] for n in names if "cpu" in n)
    rss = results["iot-tui"][f"rss MB / {idle} idle conns"] * 1000 / idle
    print(f"worst CPU-per-delivery ratio: {cpu_ratio:.2f} (target <= {CPU_TARGET})")
    print(f"RSS for 1,000 idle connections (scaled): {rss:.0f} MB (target < {RSS_TARGET_MB} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
