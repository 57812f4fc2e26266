"""Control-plane benchmarks of the local core, with moto's server as the peer in the same run.

    .venv/bin/python benchmarks/control_plane.py            # full run (100,000-thing store)
    .venv/bin/python benchmarks/control_plane.py --quick    # 10,000-thing store
    .venv/bin/python benchmarks/control_plane.py --profile  # cProfile our core under the workload

Both servers run as subprocesses on 127.0.0.1 and are driven by the same boto3 client code, so the
ratios compare servers, not clients. Figures go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import io
import math
import os
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.local.config import CoreConfig
from iot_tui.local.server import lock_data_dir
from iot_tui.local.store import Store
from iot_tui.local.store.registry import Thing, ThingType

HOST = "127.0.0.1"
REGION = "us-east-1"
SEED = 20240601
WORKLOAD_TARGET = 2.0  # moto / ours wall time, at least
PAGE_RATIO_TARGET = 1.5  # large store / small store page latency, at most
PAGE_SIZE = 100
SMALL_STORE = 1_000
# No retries: every figure is the first answer, and a 5xx fails loudly instead of being hidden.
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=120)
BIN = Path(sys.executable).parent


def progress(message: str) -> None:
    """Progress goes to stderr so stdout holds only the figures."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


# -- server subprocesses -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A server subprocess this script started; always stopped by `stop`, at exit or on a signal."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    startup_seconds: float = 0.0

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM first: our core then shuts down cleanly (and cProfile writes its file)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _RUNNING.discard(self)

    __hash__ = object.__hash__


_RUNNING: set[Server] = set()


def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop(timeout=10)


def _exit_on_signal(signum: int, frame: Any) -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C does, so the `finally` blocks stop the servers."""
    raise SystemExit(128 + signum)


def _spawn(name: str, argv: list[str], log_path: Path, *, pipe_stdout: bool) -> Server:
    log = log_path.open("wb")
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if pipe_stdout else log,
        stderr=log,
        # Own session: a Ctrl-C in the terminal reaches only this script, which then stops the
        # servers itself, in order, instead of racing them.
        start_new_session=True,
    )
    log.close()
    server = Server(name, process, log_path)
    _RUNNING.add(server)
    return server


def start_ours(data_dir: Path, logs: Path, profile_to: Path | None = None) -> Server:
    """`iot-tui local serve` on a free port; ready once it prints its `http  http://...` line."""
    # Port 0 everywhere: the core picks free ports and prints the HTTP one.
    flags = {
        "--host": HOST,
        "--http-port": "0",
        "--mqtt-port": "0",
        "--ws-port": "0",
        "--data-dir": str(data_dir),
        "--deprecation-wait": "0",
        "--log-level": "WARNING",
    }
    command = ["local", "serve", *(part for pair in flags.items() for part in pair)]
    if profile_to is not None:
        profiler = [sys.executable, "-m", "cProfile", "-o", str(profile_to)]
        argv = [*profiler, "-m", "iot_tui.cli", *command]
    elif (BIN / "iot-tui").exists():
        argv = [str(BIN / "iot-tui"), *command]
    else:
        argv = [sys.executable, "-m", "iot_tui.cli", *command]
    started = time.perf_counter()
    server = _spawn("ours", argv, logs / f"ours-{int(started * 1000)}.log", pipe_stdout=True)
    found = threading.Event()

    def read_stdout() -> None:
        # Keeps draining after the line so the pipe never fills and blocks the core.
        assert server.process.stdout is not None
        for raw in server.process.stdout:
            line = raw.decode(errors="replace").split()
            if len(line) == 2 and line[0] == "http" and not found.is_set():
                server.url = line[1]
                found.set()

    threading.Thread(target=read_stdout, daemon=True).start()
    deadline = time.monotonic() + 60
    while not found.wait(0.05):
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"our core did not start:\n{server.log_tail()}")
    server.startup_seconds = time.perf_counter() - started
    return server


def start_moto(logs: Path) -> Server:
    """moto's own server (werkzeug, threaded) on a free port; ready once it accepts connections."""
    port = free_port()
    started = time.perf_counter()
    argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    server = _spawn("moto", argv, logs / "moto.log", pipe_stdout=False)
    server.url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                break
        except OSError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"moto did not start:\n{server.log_tail()}") from None
            time.sleep(0.05)
    server.startup_seconds = time.perf_counter() - started
    return server


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """Printed with the figures: other work on the machine is the usual cause of a noisy run."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def iot_client(url: str) -> Any:
    """The one client both targets get: explicit endpoint and credentials, no retries."""
    return boto3.session.Session().client(
        "iot",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        config=NO_RETRY,
    )


# -- 1. the fleet workload -----------------------------------------------------------------------

THING_TYPES = {
    "SedanVehicle": "Passenger sedans",
    "SUVVehicle": "Sport utility vehicles",
    "TruckVehicle": "Light and heavy trucks",
}
THING_GROUPS = {
    "CustomerFleet": "Vehicles owned by customers",
    "TestFleet": "Engineering test vehicles",
    "MaintenanceFleet": "Vehicles in the workshop",
    "DealerFleet": "Vehicles at dealers",
}
SEARCHABLE = ["customerId", "country", "manufacturingDate"]
COUNTRIES = ["US", "DE", "JP", "FR", "BR"]
WORKLOAD_THINGS = 20
PHASES = ("create", "list", "describe", "cleanup")


@dataclass(frozen=True)
class FleetThing:
    name: str
    thing_type: str
    group: str
    attributes: dict[str, str]


def build_fleet(seed: int) -> list[FleetThing]:
    """The 20 vehicles, the same in every run and on both targets."""
    rng = random.Random(seed)
    fleet = []
    for number in range(1, WORKLOAD_THINGS + 1):
        date = f"{rng.randint(2019, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        attributes = {
            "customerId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "country": rng.choice(COUNTRIES),
            "manufacturingDate": date,
        }
        fleet.append(
            FleetThing(
                f"Vehicle-VIN-{number:03d}",
                rng.choice(list(THING_TYPES)),
                rng.choice(list(THING_GROUPS)),
                attributes,
            )
        )
    return fleet


@dataclass
class RunResult:
    phases: dict[str, float]
    calls: int
    counts: dict[str, int]

    @property
    def total(self) -> float:
        return sum(self.phases.values())


def list_all(client: Any, **kwargs: Any) -> tuple[list[dict], int]:
    """Every page of ListThings, following nextToken; returns the things and the number of calls."""
    things: list[dict] = []
    calls = 0
    while True:
        answer = client.list_things(**kwargs)
        calls += 1
        things += answer.get("things", [])
        token = answer.get("nextToken")
        if not token:
            return things, calls
        kwargs = {**kwargs, "nextToken": token}


def list_queries(fleet: list[FleetThing]) -> dict[str, dict[str, Any]]:
    """One ListThings query per filter; the probe thing makes the attribute filters match."""
    probe = fleet[6]
    queries: dict[str, dict[str, Any]] = {f"type={name}": {"thingTypeName": name} for name in THING_TYPES}
    queries["attr country"] = {
        "attributeName": "country",
        "attributeValue": probe.attributes["country"],
    }
    queries["attr customerId"] = {
        "attributeName": "customerId",
        "attributeValue": probe.attributes["customerId"],
    }
    queries["prefix date"] = {
        "attributeName": "manufacturingDate",
        "attributeValue": probe.attributes["manufacturingDate"][:4],
        "usePrefixAttributeValue": True,
    }
    queries["all, maxResults=5"] = {"maxResults": 5}
    return queries


def expected_counts(fleet: list[FleetThing]) -> dict[str, int]:
    """What AWS answers for each query, to check our core while timing it."""
    counts = {}
    for label, query in list_queries(fleet).items():

        def matches(thing: FleetThing, query: dict[str, Any] = query) -> bool:
            if "thingTypeName" in query and thing.thing_type != query["thingTypeName"]:
                return False
            if "attributeName" in query:
                value = thing.attributes.get(query["attributeName"], "")
                if query.get("usePrefixAttributeValue"):
                    return value.startswith(query["attributeValue"])
                return value == query["attributeValue"]
            return True

        counts[label] = sum(matches(thing) for thing in fleet)
    return counts


def run_workload(client: Any, fleet: list[FleetThing]) -> RunResult:
    """Create, list, describe and clean up a 20-vehicle fleet; timed per phase."""
    phases: dict[str, float] = {}
    calls = 0
    counts: dict[str, int] = {}

    started = time.perf_counter()
    for name, description in THING_TYPES.items():
        client.create_thing_type(
            thingTypeName=name,
            thingTypeProperties={
                "thingTypeDescription": description,
                "searchableAttributes": SEARCHABLE,
            },
        )
    for name, description in THING_GROUPS.items():
        client.create_thing_group(thingGroupName=name, thingGroupProperties={"thingGroupDescription": description})
    for thing in fleet:
        client.create_thing(
            thingName=thing.name,
            thingTypeName=thing.thing_type,
            attributePayload={"attributes": thing.attributes},
        )
        client.add_thing_to_thing_group(thingGroupName=thing.group, thingName=thing.name)
    calls += len(THING_TYPES) + len(THING_GROUPS) + 2 * len(fleet)
    phases["create"] = time.perf_counter() - started

    started = time.perf_counter()
    for label, query in list_queries(fleet).items():
        things, made = list_all(client, **query)
        counts[label] = len(things)
        calls += made
    phases["list"] = time.perf_counter() - started

    started = time.perf_counter()
    for thing in fleet:
        client.describe_thing(thingName=thing.name)
    for name in THING_TYPES:
        client.describe_thing_type(thingTypeName=name)
    for name in THING_GROUPS:
        client.describe_thing_group(thingGroupName=name)
    calls += len(fleet) + len(THING_TYPES) + len(THING_GROUPS)
    phases["describe"] = time.perf_counter() - started

    started = time.perf_counter()
    for thing in fleet:
        client.remove_thing_from_thing_group(thingGroupName=thing.group, thingName=thing.name)
        client.delete_thing(thingName=thing.name)
    for name in THING_GROUPS:
        client.delete_thing_group(thingGroupName=name)
    for name in THING_TYPES:
        client.deprecate_thing_type(thingTypeName=name)
    for name in THING_TYPES:
        client.delete_thing_type(thingTypeName=name)
    calls += 2 * len(fleet) + len(THING_GROUPS) + 2 * len(THING_TYPES)
    phases["cleanup"] = time.perf_counter() - started
    return RunResult(phases, calls, counts)


@dataclass
class WorkloadFigures:
    cold: dict[str, RunResult] = field(default_factory=dict)
    runs: dict[str, list[RunResult]] = field(default_factory=lambda: {"ours": [], "moto": []})
    startup: dict[str, float] = field(default_factory=dict)
    # CPU seconds over all timed runs: this script (boto3) and the server process.
    client_cpu: dict[str, float] = field(default_factory=lambda: {"ours": 0.0, "moto": 0.0})
    server_cpu: dict[str, float] = field(default_factory=lambda: {"ours": 0.0, "moto": 0.0})

    def median(self, target: str) -> float:
        return statistics.median(run.total for run in self.runs[target])

    def best(self, target: str) -> float:
        return min(run.total for run in self.runs[target])

    @property
    def ratio(self) -> float:
        return self.median("moto") / self.median("ours")


def workload_benchmark(work: Path, repeat: int) -> WorkloadFigures:
    """Both targets up at once; one cold run each, then `repeat` runs alternating who goes first."""
    fleet = build_fleet(SEED)
    figures = WorkloadFigures()
    ours = start_ours(work / "workload-core", work)
    moto = start_moto(work)
    try:
        figures.startup = {"ours": ours.startup_seconds, "moto": moto.startup_seconds}
        clients = {"ours": iot_client(ours.url), "moto": iot_client(moto.url)}
        expected = expected_counts(fleet)
        for target in ("ours", "moto"):
            progress(f"workload: cold run on {target}")
            figures.cold[target] = run_workload(clients[target], fleet)
        if figures.cold["ours"].counts != expected:
            raise AssertionError(f"our core listed {figures.cold['ours'].counts}, expected {expected}")
        pids = {"ours": ours.process.pid, "moto": moto.process.pid}
        for index in range(repeat):
            order = ("ours", "moto") if index % 2 == 0 else ("moto", "ours")
            progress(f"workload: run {index + 1}/{repeat} ({' then '.join(order)})")
            for target in order:
                client_before, server_before = time.process_time(), process_cpu(pids[target])
                figures.runs[target].append(run_workload(clients[target], fleet))
                figures.client_cpu[target] += time.process_time() - client_before
                figures.server_cpu[target] += process_cpu(pids[target]) - server_before
    finally:
        ours.stop()
        moto.stop()
    return figures


def print_workload(figures: WorkloadFigures, repeat: int) -> None:
    print()
    print(f"1. Fleet workload (3 types, 4 groups, 20 things; list, describe, clean up), {repeat} runs")
    cold = figures.cold["ours"]
    print(f"   {cold.calls} API calls per run on our core; wall time in ms")
    print(
        f"   {'target':<8} {'startup':>8} {'cold':>8} {'median':>8} {'best':>8} {'ms/call':>8}   "
        + "  ".join(f"{phase:>8}" for phase in PHASES)
    )
    for target in ("ours", "moto"):
        runs = figures.runs[target]
        calls = runs[0].calls
        phase_medians = [statistics.median(run.phases[phase] for run in runs) * 1000 for phase in PHASES]
        print(
            f"   {target:<8} {figures.startup[target] * 1000:8.0f} "
            f"{figures.cold[target].total * 1000:8.1f} "
            f"{figures.median(target) * 1000:8.1f} {figures.best(target) * 1000:8.1f} "
            f"{figures.median(target) * 1000 / calls:8.2f}   " + "  ".join(f"{value:8.1f}" for value in phase_medians)
        )
    print(f"   moto / ours (median): {figures.ratio:.2f}x   (best: {figures.best('moto') / figures.best('ours'):.2f}x)")
    print("   where a call's time goes, ms over all timed runs (CPU times tick in 10 ms steps; other is")
    print("   the remainder: loopback, scheduling and that rounding):")
    for target in ("ours", "moto"):
        calls = sum(run.calls for run in figures.runs[target])
        wall = sum(run.total for run in figures.runs[target]) / calls * 1000
        client = figures.client_cpu[target] / calls * 1000
        server = figures.server_cpu[target] / calls * 1000
        print(
            f"   {target:<8} wall {wall:5.2f} = boto3 CPU {client:5.2f} + server CPU {server:5.2f}"
            f" + other {wall - client - server:+5.2f}"
        )
    ours_counts, moto_counts = figures.cold["ours"].counts, figures.cold["moto"].counts
    differ = [
        f"{label}: ours {ours_counts[label]}, moto {moto_counts.get(label)}"
        for label in ours_counts
        if ours_counts[label] != moto_counts.get(label)
    ]
    if differ:
        print("   listings where moto answers differently (it is timed all the same): " + "; ".join(differ))


# -- 2. list-page latency against store size ------------------------------------------------------

BULK_TYPES = ["SedanVehicle", "SUVVehicle", "TruckVehicle"]
RARE_TYPE = "PrototypeVehicle"
RARE_TYPE_AT = frozenset({101, 303, 505, 707, 909})  # the same 5 prototypes in every store size
PROBE_THING = 500  # its customerId is the 1-match attribute filter


def _digest_uuid(seed: int, kind: str, index: int) -> str:
    """A uuid4-shaped value from (seed, kind, index) alone: a grown store keeps its old things."""
    digest = hashlib.md5(f"{seed}:{kind}:{index}".encode()).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def bulk_thing(index: int, seed: int = SEED) -> Thing:
    """Thing number `index`; its filters' selectivities are the same at any store size."""
    thing_type = RARE_TYPE if index in RARE_TYPE_AT else BULK_TYPES[index % 3]
    month, day = (index // 2) % 12 + 1, (index // 24) % 28 + 1
    attributes = {
        "customerId": _digest_uuid(seed, "customer", index),
        "country": ["US", "DE", "JP", "FR"][index % 4],
        "manufacturingDate": f"{2020 + index % 2}-{month:02d}-{day:02d}",
    }
    return Thing(
        f"Vehicle-VIN-{index:06d}",
        _digest_uuid(seed, "thing", index),
        thing_type,
        attributes,
        1,
        None,
    )


@dataclass(frozen=True)
class PageQuery:
    label: str
    kwargs: dict[str, Any]
    matches: Callable[[Thing], bool]


def page_queries() -> list[PageQuery]:
    """Common filters (full pages in any store) and rare ones (the same few things in any store)."""
    probe = bulk_thing(PROBE_THING).attributes["customerId"]
    return [
        PageQuery("no filter", {}, lambda t: True),
        PageQuery(
            "attribute country=DE (25%)",
            {"attributeName": "country", "attributeValue": "DE"},
            lambda t: t.attributes["country"] == "DE",
        ),
        PageQuery(
            "type TruckVehicle (33%)",
            {"thingTypeName": "TruckVehicle"},
            lambda t: t.thing_type == "TruckVehicle",
        ),
        PageQuery(
            "prefix manufacturingDate=2021-0 (37%)",
            {
                "attributeName": "manufacturingDate",
                "attributeValue": "2021-0",
                "usePrefixAttributeValue": True,
            },
            lambda t: t.attributes["manufacturingDate"].startswith("2021-0"),
        ),
        PageQuery(
            "attribute customerId (1 thing)",
            {"attributeName": "customerId", "attributeValue": probe},
            lambda t: t.attributes["customerId"] == probe,
        ),
        PageQuery(
            "prefix customerId (1 thing)",
            {
                "attributeName": "customerId",
                "attributeValue": probe[:13],
                "usePrefixAttributeValue": True,
            },
            lambda t: t.attributes["customerId"].startswith(probe[:13]),
        ),
        PageQuery(
            "type PrototypeVehicle (5 things)",
            {"thingTypeName": RARE_TYPE},
            lambda t: t.thing_type == RARE_TYPE,
        ),
    ]


def populate(data_dir: Path, start: int, stop: int) -> float:
    """Write things [start, stop) straight into the store in one transaction, with the core down."""
    config = CoreConfig(data_dir=data_dir)
    lock = lock_data_dir(data_dir)  # refuses if a core holds the dir
    try:
        store = Store.open(config.db_path)
        started = time.perf_counter()
        with store.transaction():
            if start == 0:
                for number, name in enumerate([*BULK_TYPES, RARE_TYPE]):
                    store.insert_thing_type(
                        REGION,
                        ThingType(
                            name,
                            _digest_uuid(SEED, "type", number),
                            f"{name} (bulk)",
                            SEARCHABLE,
                            False,
                            None,
                            time.time(),
                        ),
                    )
            for index in range(start, stop):
                store.put_thing(REGION, bulk_thing(index))
        elapsed = time.perf_counter() - started
        store.close()
    finally:
        os.close(lock)
    return elapsed


@dataclass
class PageFigure:
    median_ms: float
    best_ms: float
    items: int


def _token_before_page(client: Any, kwargs: dict[str, Any], page: int) -> str:
    """Walk `page` pages (untimed) to get the nextToken that opens page number `page`."""
    token = ""
    for _ in range(page):
        more = {"nextToken": token} if token else {}
        token = client.list_things(**kwargs, maxResults=PAGE_SIZE, **more)["nextToken"]
    return token


def page_requests(client: Any, size: int) -> dict[tuple[str, str], dict[str, Any]]:
    """ListThings arguments of the first page and, where there are 2+ full pages, a middle one."""
    requests: dict[tuple[str, str], dict[str, Any]] = {}
    things = [bulk_thing(index) for index in range(size)]
    for query in page_queries():
        matching = sum(query.matches(thing) for thing in things)
        args = {**query.kwargs, "maxResults": PAGE_SIZE}
        requests[(query.label, "first")] = args
        full_pages = matching // PAGE_SIZE
        if full_pages >= 2:
            token = _token_before_page(client, query.kwargs, full_pages // 2)
            requests[(query.label, "middle")] = {**args, "nextToken": token}
        progress(f"pages at {size:,}: {query.label} matches {matching:,}")
    return requests


@dataclass
class PageBenchmark:
    sizes: tuple[int, int]
    figures: dict[int, dict[tuple[str, str], PageFigure]] = field(default_factory=dict)
    load_seconds: dict[int, float] = field(default_factory=dict)
    startup: dict[int, float] = field(default_factory=dict)
    db_bytes: dict[int, int] = field(default_factory=dict)

    def ratio(self, key: tuple[str, str]) -> float:
        small, large = self.sizes
        return self.figures[large][key].median_ms / self.figures[small][key].median_ms


def _db_bytes(data_dir: Path) -> int:
    return sum(path.stat().st_size for path in data_dir.glob("core.sqlite3*"))


def page_benchmark(work: Path, large: int, calls: int) -> PageBenchmark:
    """One store at 1,000 things, grown to `large`; a copy taken at 1,000 is measured beside it.

    Both cores run at once and every round times the same page on each, alternating which goes
    first, so load from other processes on a shared machine lands on both sizes alike.
    """
    small = SMALL_STORE
    grown, snapshot = work / "pages-grown", work / "pages-1000"
    bench = PageBenchmark((small, large))
    progress(f"pages: writing things 0..{small:,} into a fresh store")
    bench.load_seconds[small] = populate(grown, 0, small)
    shutil.copytree(grown, snapshot, ignore=shutil.ignore_patterns("core.lock"))
    bench.db_bytes[small] = _db_bytes(snapshot)
    progress(f"pages: growing the store to {large:,} things")
    bench.load_seconds[large] = populate(grown, small, large)
    bench.db_bytes[large] = _db_bytes(grown)

    cores = {small: start_ours(snapshot, work), large: start_ours(grown, work)}
    try:
        clients = {size: iot_client(core.url) for size, core in cores.items()}
        bench.startup = {size: core.startup_seconds for size, core in cores.items()}
        requests = {size: page_requests(clients[size], size) for size in bench.sizes}
        keys = [key for key in requests[small] if key in requests[large]]
        for _ in range(3):  # warm the connections, the cores' caches and SQLite's page cache
            for size in bench.sizes:
                for key in keys:
                    clients[size].list_things(**requests[size][key])
        samples = {size: {key: [] for key in keys} for size in bench.sizes}
        items: dict[int, dict[tuple[str, str], int]] = {size: {} for size in bench.sizes}
        for round_number in range(calls):
            order = bench.sizes if round_number % 2 == 0 else bench.sizes[::-1]
            for key in keys:
                for size in order:
                    started = time.perf_counter()
                    answer = clients[size].list_things(**requests[size][key])
                    samples[size][key].append(time.perf_counter() - started)
                    items[size][key] = len(answer["things"])
    finally:
        for core in cores.values():
            core.stop()
    for size in bench.sizes:
        bench.figures[size] = {
            key: PageFigure(statistics.median(values) * 1000, min(values) * 1000, items[size][key])
            for key, values in samples[size].items()
        }
    return bench


def print_pages(bench: PageBenchmark, calls: int) -> None:
    small, large = bench.sizes
    print()
    print(f"2. ListThings page latency, maxResults={PAGE_SIZE}, median of {calls} calls (ms), via boto3")
    print("   (the store grown to the large size and its copy at 1,000 are served side by side;")
    print("   every round times each page on both, so machine load hits both alike)")
    for size in bench.sizes:
        added = size - (small if size == large else 0)
        print(
            f"   {size:>9,} things: wrote {added:,} in {bench.load_seconds[size]:.1f} s "
            f"({added / bench.load_seconds[size]:,.0f}/s), db {bench.db_bytes[size] / 1e6:.1f} MB, "
            f"core up in {bench.startup[size] * 1000:.0f} ms"
        )
    print(f"   {'filter':<40} {'page':<7} {small:>9,} {large:>9,} {'ratio':>7}  {'items':>5}")
    for key, figure in bench.figures[small].items():
        big = bench.figures[large][key]
        print(
            f"   {key[0]:<40} {key[1]:<7} {figure.median_ms:9.2f} {big.median_ms:9.2f} "
            f"{bench.ratio(key):7.2f}  {big.items:>5}"
        )


# -- 3. summary -----------------------------------------------------------------------------------


def print_summary(workload: WorkloadFigures | None, pages: PageBenchmark | None) -> bool:
    rows: list[tuple[str, str, str, bool]] = []
    if workload is not None:
        rows.append(
            (
                "fleet workload, moto / ours (median wall)",
                f"{workload.ratio:.2f}x",
                f">= {WORKLOAD_TARGET:g}x",
                workload.ratio >= WORKLOAD_TARGET,
            )
        )
    if pages is not None:
        small, large = pages.sizes
        for key in pages.figures[small]:
            ratio = pages.ratio(key)
            rows.append(
                (
                    f"page {key[0]}, {key[1]} ({large:,} / {small:,})",
                    f"{ratio:.2f}",
                    f"<= {PAGE_RATIO_TARGET:g}",
                    ratio <= PAGE_RATIO_TARGET,
                )
            )
    print()
    print("Summary")
    width = max(len(row[0]) for row in rows)
    print(f"   {'figure':<{width}} {'measured':>9} {'target':>8}  result")
    for label, value, target, passed in rows:
        print(f"   {label:<{width}} {value:>9} {target:>8}  {'PASS' if passed else 'MISS'}")
    missed = sum(not row[3] for row in rows)
    print(f"   {len(rows) - missed} of {len(rows)} targets met; {load_average()}")
    return missed == 0


# -- 4. profile -----------------------------------------------------------------------------------


def profile_workload(work: Path, repeat: int, top: int) -> None:
    """Our core under cProfile (as a subprocess) while the workload runs `repeat` times."""
    out = work / "core.prof"
    fleet = build_fleet(SEED)
    core = start_ours(work / "profile-core", work, profile_to=out)
    try:
        client = iot_client(core.url)
        run_workload(client, fleet)  # warm: the model loads on the first request
        started = time.perf_counter()
        calls = 0
        for index in range(repeat):
            progress(f"profile: run {index + 1}/{repeat}")
            calls += run_workload(client, fleet).calls
        elapsed = time.perf_counter() - started
    finally:
        core.stop()
    print(
        f"\n4. Profile of our core: {repeat + 1} workload runs ({calls} timed calls, "
        f"{elapsed * 1000 / calls:.2f} ms/call under cProfile); stats in {out}"
    )
    text = io.StringIO()
    stats = pstats.Stats(str(out), stream=text)
    stats.sort_stats("tottime").print_stats(top)
    # Our own functions by cumulative time: where a request spends its time inside the core.
    stats.sort_stats("cumulative").print_stats(r"iot_tui[/\\]local", top)
    root = str(Path(__file__).resolve().parent.parent) + os.sep
    titles = iter([f"top {top} by own time", f"top {top} of iot_tui.local by cumulative time"])
    for line in text.getvalue().splitlines():
        if "ncalls" in line:
            print(f"\n   {next(titles)}:")
        fields = line.split()
        is_row = len(fields) >= 6 and fields[0].replace("/", "").isdigit() and "function calls" not in line
        # Imports at startup are not requests; skip them.
        if ("ncalls" in line or is_row) and "(<module>)" not in line:
            print("   " + line.replace(root, "").replace(sys.prefix + os.sep, ""))


# -- main -----------------------------------------------------------------------------------------


@contextmanager
def scratch_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="iot-tui-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"\nscratch files kept in {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="grow the page store to 10,000, not 100,000")
    parser.add_argument("--repeat", type=int, default=5, help="timed workload runs per target (default 5)")
    parser.add_argument("--calls", type=int, default=50, help="calls per page-latency median (default 50)")
    parser.add_argument("--large", type=int, default=None, help="things in the large store (overrides --quick)")
    parser.add_argument("--only", choices=["workload", "pages"], help="run one benchmark")
    parser.add_argument("--profile", action="store_true", help="profile our core under the workload instead")
    parser.add_argument("--top", type=int, default=25, help="profile rows to print (default 25)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (logs, stores, profile)")
    args = parser.parse_args(argv)
    large = args.large or (10_000 if args.quick else 100_000)

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    atexit.register(_stop_all)
    try:
        with scratch_dir(args.keep or args.profile) as work:
            print(
                f"iot-tui control-plane benchmark  (python {sys.version.split()[0]}, "
                f"{os.cpu_count()} CPUs, boto3 {boto3.__version__}, seed {SEED}, "
                f"{load_average()})"
            )
            if args.profile:
                profile_workload(work, max(args.repeat, 10), args.top)
                return 0
            workload = pages = None
            if args.only in (None, "workload"):
                workload = workload_benchmark(work, args.repeat)
                print_workload(workload, args.repeat)
            if args.only in (None, "pages"):
                pages = page_benchmark(work, large, args.calls)
                print_pages(pages, args.calls)
            print_summary(workload, pages)  # a MISS is a figure, not a failure of the script
            return 0
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        _stop_all()


if __name__ == "__main__":
    sys.exit(main())
