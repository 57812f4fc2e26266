"""AWS IoT SQL evaluator benchmark: evaluations per second, JSON decoding included.

    .venv/bin/python benchmarks/rules_sql.py            # about 10 seconds
    .venv/bin/python benchmarks/rules_sql.py --quick    # fewer rounds
    .venv/bin/python benchmarks/rules_sql.py --profile  # cProfile of each workload

Each workload evaluates one compiled rule against the same small JSON payload, as the local
core does for every publish that reaches a rule: topic match, JSON decoding, WHERE and SELECT.
The figure is the best of several timed rounds (the least disturbed by other processes). The
peer is a bare ``json.loads`` of the same payload in the same run: the ratio says how much a
rule costs beyond decoding its message, whatever the machine.
Target: at least 50,000 evaluations per second for ``SELECT * ... WHERE temperature > 30``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass

from iot_tui.iotcore.sql import EvalContext, Rule, parse

PAYLOAD = b'{"temperature": 35.5, "humidity": 41, "battery": 87, "motion": "detected", "device": "sensor-7"}'
TOPIC = "t/sensor-7"
TARGET = 50_000


@dataclass(frozen=True)
class Workload:
    """One rule to time; ``matches`` says whether it must produce a message for the payload."""

    name: str
    sql: str
    matches: bool = True
    target: int | None = None


WORKLOADS = (
    Workload("where", "SELECT * FROM 't/+' WHERE temperature > 30", target=TARGET),
    Workload(
        "five functions",
        "SELECT upper(device) AS device, round(temperature) AS t, topic(2) AS source, timestamp() AS ts, "
        "concat(motion, '-', battery) AS state FROM 't/+' WHERE battery > 15",
    ),
    Workload("no match", "SELECT * FROM 'other/+' WHERE temperature > 30", matches=False),
)


def _context() -> EvalContext:
    return EvalContext(topic=TOPIC, client_id="sensor-7", timestamp_ms=1_700_000_000_000, newuuid=lambda: "uuid")


def _best_rate(step: Callable[[], object], count: int, rounds: int) -> float:
    """Best calls per second over ``rounds`` runs of ``count`` calls."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            step()
        best = min(best, time.perf_counter() - started)
    return count / best


def _compile(workload: Workload, context: EvalContext) -> Rule:
    """The workload's rule, checked to do what its name says before it is timed."""
    rule = parse(workload.sql)
    if (rule.evaluate(PAYLOAD, context) is not None) != workload.matches:
        raise SystemExit(f"{workload.name}: the rule does not behave as the benchmark expects")
    return rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each workload instead")
    args = parser.parse_args()
    count, rounds = (20_000, 3) if args.quick else (100_000, 5)
    context = _context()
    print(f"payload: {len(PAYLOAD)} bytes of JSON, topic {TOPIC!r}")
    if args.profile:
        for workload in WORKLOADS:
            rule = _compile(workload, context)
            profiler = cProfile.Profile()
            profiler.runcall(_best_rate, lambda r=rule: r.evaluate(PAYLOAD, context), count, 1)
            print(f"\n== {workload.name}: {workload.sql}")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(8)
        return
    decode_rate = _best_rate(lambda: json.loads(PAYLOAD), count, rounds)
    print(f"{'json.loads alone':>16}: {decode_rate:>10,.0f} decodes/s (the peer)")
    for workload in WORKLOADS:
        rule = _compile(workload, context)
        rate = _best_rate(lambda r=rule: r.evaluate(PAYLOAD, context), count, rounds)
        verdict = ""
        if workload.target is not None:
            verdict = f"  target {workload.target:,}: " + ("PASS" if rate >= workload.target else "MISS")
        print(f"{workload.name:>16}: {rate:>10,.0f} evaluations/s  {rate / decode_rate:.2f}x json.loads{verdict}")
        print(f"{'':>18}{workload.sql}")


if __name__ == "__main__":
    main()
