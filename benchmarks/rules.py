"""Rules engine benchmark: the IoT SQL evaluator's rate, and what 10 enabled rules cost the broker.

    .venv/bin/python benchmarks/rules.py            # about a minute
    .venv/bin/python benchmarks/rules.py --quick    # fewer messages and rounds

1. Evaluations per second of the one evaluator the local rules engine and the app's dry run share,
   JSON decoding included (target: at least 50,000/s for ``SELECT * FROM 't/+' WHERE temperature > 30``),
   and for a rule with five functions.
2. The broker's throughput (QoS 0, one publisher to one subscriber, over mutual TLS, with policy
   checks) with 10 enabled rules against none, on the same core in the same run. The rules match
   the topic and evaluate their WHERE clause on every message, as AWS's rules engine would; the
   rounds alternate (none, rules, none, rules...) so machine noise hits both alike.
   Target: throughput with rules at least 0.8 of throughput without.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))

import broker as bench_broker  # noqa: E402  (a sibling script)
import rules_sql  # noqa: E402

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY  # noqa: E402

RULES = 10
THROUGHPUT_TARGET = 0.8
# JSON, about 100 bytes, like the broker benchmark's payload; temperature below every WHERE threshold.
PAYLOAD = b'{"temperature": 25.5, "humidity": 41, "battery": 87, "motion": "none", "device": "sensor-7"}'
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def evaluator_figures(rounds: int) -> dict[str, float]:
    context = rules_sql._context()
    figures = {}
    for workload in rules_sql.WORKLOADS[:2]:
        rule = rules_sql._compile(workload, context)
        figures[workload.sql] = rules_sql._best_rate(
            lambda rule=rule: rule.evaluate(rules_sql.PAYLOAD, context), 50_000, rounds)
    return figures


def client(service: str, url: str):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=LOCAL_ACCESS_KEY_ID,
                        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY, config=Config(retries={"max_attempts": 1}))


def create_rules(url: str) -> list[str]:
    """10 rules on the benchmark's topic; each evaluates WHERE on every message and republishes none."""
    role = client("iam", url).create_role(RoleName="BenchRules", AssumeRolePolicyDocument=json.dumps(TRUST))
    iot = client("iot", url)
    names = []
    for n in range(RULES):
        name = f"bench_rule_{n}"
        iot.create_topic_rule(ruleName=name, topicRulePayload={
            "sql": f"SELECT temperature, topic(2) AS device FROM 'bench/+' WHERE temperature > {40 + n}",
            "awsIotSqlVersion": "2016-03-23", "ruleDisabled": True,
            "actions": [{"republish": {"roleArn": role["Role"]["Arn"], "topic": "bench-out/${topic(2)}"}}],
        })
        names.append(name)
    return names


def set_rules(url: str, names: list[str], enabled: bool) -> None:
    iot = client("iot", url)
    for name in names:
        (iot.enable_topic_rule if enabled else iot.disable_topic_rule)(ruleName=name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds")
    args = parser.parse_args()
    messages = 20_000 if args.quick else 60_000
    rounds = 2 if args.quick else 3

    print("1. IoT SQL evaluator (JSON decoding included)")
    figures = evaluator_figures(3 if args.quick else 5)
    for sql, rate in figures.items():
        print(f"   {rate:>12,.0f} evaluations/s   {sql}")
    first = next(iter(figures.values()))

    print(f"\n2. Broker throughput, QoS 0, 1 publisher -> 1 subscriber, {messages:,} messages a round")
    with tempfile.TemporaryDirectory(prefix="iot-tui-rules-bench-") as scratch:
        ours = bench_broker.start_ours(Path(scratch))
        try:
            names = create_rules(ours.http_url)
            samples: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            bench_broker.run_load(ours, 1, messages // 4, 0, PAYLOAD)  # warm up
            for _ in range(rounds):
                for enabled in (False, True):
                    set_rules(ours.http_url, names, enabled)
                    rate, cpu, delivered = bench_broker.run_load(ours, 1, messages, 0, PAYLOAD)
                    if delivered != messages:
                        print(f"   warning: {delivered:,} of {messages:,} delivered")
                    samples[enabled].append((rate, cpu))
                    label = f"{RULES} rules" if enabled else "no rules"
                    print(f"   {label:<9} {rate:>10,.0f} deliveries/s   {cpu:5.2f} broker CPU s per 100k")
        finally:
            ours.stop()
    rate_none = statistics.median(r for r, _ in samples[False])
    rate_rules = statistics.median(r for r, _ in samples[True])
    cpu_none = statistics.median(c for _, c in samples[False])
    cpu_rules = statistics.median(c for _, c in samples[True])
    ratio = rate_rules / rate_none
    cpu_ratio = cpu_none / cpu_rules

    print("\nSummary")
    print(f"   evaluator, {rules_sql.WORKLOADS[0].sql}: {first:,.0f}/s "
          f"(target {rules_sql.TARGET:,}) {'PASS' if first >= rules_sql.TARGET else 'MISS'}")
    print(f"   throughput with {RULES} rules / none (median deliveries/s): {ratio:.2f} "
          f"(target {THROUGHPUT_TARGET}) {'PASS' if ratio >= THROUGHPUT_TARGET else 'MISS'}")
    print(f"   broker CPU per message, none / {RULES} rules: {cpu_ratio:.2f} (the same figure, free of load noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
