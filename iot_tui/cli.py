"""The thin command line: `iot-tui` (the app), `iot-tui fleet setup|cleanup`, `iot-tui doctor`,
`iot-tui local serve|env|reset`.

Each subcommand only parses flags and calls into the package; no logic lives here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import urllib.request
from pathlib import Path

from iot_tui import __version__
from iot_tui.local import config as defaults
from iot_tui.local.config import CoreConfig


def _add_core_flags(parser: argparse.ArgumentParser, *, listeners: bool = True) -> None:
    parser.add_argument("--data-dir", type=Path, default=None, help="state folder (default: the user data dir)")
    if not listeners:
        return
    parser.add_argument("--host", default=defaults.DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    parser.add_argument("--http-port", type=int, default=defaults.DEFAULT_HTTP_PORT,
                        help="iot, iot-data, STS and IAM APIs; 0 picks a free port (default: %(default)s)")
    parser.add_argument("--mqtt-port", type=int, default=defaults.DEFAULT_MQTT_PORT,
                        help="MQTT over mutual TLS (default: %(default)s)")
    parser.add_argument("--ws-port", type=int, default=defaults.DEFAULT_WS_PORT,
                        help="MQTT over WebSocket with SigV4 (default: %(default)s)")
    parser.add_argument("--region", default=defaults.DEFAULT_REGION, help="default region (default: %(default)s)")
    parser.add_argument("--account-id", default=defaults.DEFAULT_ACCOUNT_ID, help="account id in ARNs (default: %(default)s)")


def _config(args: argparse.Namespace) -> CoreConfig:
    config = CoreConfig()
    if args.data_dir is not None:
        config.data_dir = args.data_dir.expanduser().resolve()
    for flag in ("host", "http_port", "mqtt_port", "ws_port", "region", "account_id", "strict_auth", "deprecation_wait",
                 "session_expiry", "keep_alive_min", "keep_alive_max"):
        if getattr(args, flag, None) is not None:
            setattr(config, flag, getattr(args, flag))
    return config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iot-tui",
        description="Learn and operate AWS IoT Core from the terminal, on an embedded local IoT Core or on AWS.",
    )
    parser.add_argument("--version", action="version", version=f"iot-tui {__version__}")
    _add_target_flags(parser, top=True)
    parser.set_defaults(run=_app)
    commands = parser.add_subparsers(dest="command")
    _add_app_commands(commands)
    local = commands.add_parser("local", help="the embedded local AWS IoT Core")
    local_commands = local.add_subparsers(dest="local_command", required=True)

    serve = local_commands.add_parser("serve", help="run the local core in the foreground")
    _add_core_flags(serve)
    serve.add_argument("--strict-auth", action="store_true", default=None,
                       help="verify SigV4 signatures against the local credentials")
    serve.add_argument("--deprecation-wait", type=float, default=None, metavar="SECONDS",
                       help="how long a deprecated thing type must wait before deletion (AWS: 300)")
    serve.add_argument("--session-expiry", type=float, default=None, metavar="SECONDS",
                       help="how long a disconnected persistent MQTT session is kept (AWS: 3600)")
    serve.add_argument("--keep-alive-min", type=int, default=None, metavar="SECONDS",
                       help="shortest MQTT keep-alive granted; shorter requests are raised (AWS: 30)")
    serve.add_argument("--keep-alive-max", type=int, default=None, metavar="SECONDS",
                       help="longest MQTT keep-alive granted, and the one for keep-alive 0 (AWS: 1200)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.set_defaults(run=_serve)

    env = local_commands.add_parser("env", help="print export lines that point boto3 and the AWS CLI at the core")
    _add_core_flags(env)
    env.set_defaults(run=_env)

    reset = local_commands.add_parser("reset", help="delete all local state")
    _add_core_flags(reset, listeners=False)
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.set_defaults(run=_reset)
    return parser


def _add_target_flags(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """Where the app and the fleet commands talk to; the local core unless told otherwise.

    Given before or after the subcommand; a subcommand's unset flags must not hide the top-level ones.
    """
    unset = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("--aws", action="store_true", help="use real AWS IoT Core (costs money)", **unset)
    parser.add_argument("--profile", help="AWS profile for --aws", **unset)
    parser.add_argument("--region", dest="target_region", help="AWS region", **unset)
    parser.add_argument("--endpoint-url", help="one URL for every AWS API (a local core elsewhere)", **unset)


def _add_app_commands(commands: argparse._SubParsersAction) -> None:
    fleet = commands.add_parser("fleet", help="the sample fleet: 3 thing types, 4 groups, 20 vehicles")
    fleet_commands = fleet.add_subparsers(dest="fleet_command", required=True)
    setup = fleet_commands.add_parser("setup", help="create the sample fleet (idempotent)")
    cleanup = fleet_commands.add_parser("cleanup", help="delete the sample fleet and nothing else")
    cleanup.add_argument("--types", choices=["wait", "skip", "now"], default="wait",
                         help="thing types: wait out AWS's 5 minutes, skip them, or try now (default: wait)")
    for command, run in ((setup, _fleet_setup), (cleanup, _fleet_cleanup)):
        _add_target_flags(command)
        command.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        command.add_argument("--debug", action="store_true", help="print every API call")
        command.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
        command.set_defaults(run=run)
    doctor = commands.add_parser("doctor", help="check credentials, permissions, endpoint and TLS")
    _add_target_flags(doctor)
    doctor.set_defaults(run=_doctor)


def _open_target(args: argparse.Namespace, start_core: bool = True):
    """(clients, inspector, core process or None); prints the reason and returns None on failure."""
    from iot_tui.aws.core_process import CoreStartError
    from iot_tui.aws.inspector import Inspector, as_text
    from iot_tui.aws.target import TargetError, resolve_target

    try:
        target, process = resolve_target(args.aws, args.profile, args.target_region, args.endpoint_url,
                                         start_core=start_core)
    except (TargetError, CoreStartError) as error:
        print(f"iot-tui: {error}", file=sys.stderr)
        return None
    inspector = Inspector()
    if getattr(args, "debug", False):
        inspector.subscribe(lambda call: print(as_text(call), file=sys.stderr) if call.done else None)
    print(f"target: {target.label}", file=sys.stderr)
    return target.connect(inspector), inspector, process


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        print("iot-tui: refusing without confirmation; pass --yes", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _run_fleet(events, summary) -> int:
    for event in events:
        summary.add(event)
        if event.kind == "countdown":
            end = "\r" if sys.stdout.isatty() else "\n"
            print(f"  {event.message}   ", end=end, flush=True)
            continue
        print(event.line(), flush=True)
    for kind, counts in summary.counts.items():
        print(f"{kind}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
    if summary.failures:
        print(f"{len(summary.failures)} step(s) failed", file=sys.stderr)
        return 1
    return 0


def _fleet_setup(args: argparse.Namespace) -> int:
    from iot_tui.aws import fleet

    opened = _open_target(args)
    if opened is None:
        return 2
    clients, _inspector, process = opened
    try:
        plan = fleet.sample_fleet(args.seed)
        print(f"plan: {len(plan.types)} thing types, {len(plan.groups)} thing groups, {len(plan.things)} things")
        if clients.target.billable and not _confirm(f"{fleet.AWS_COST_NOTE} Continue?", args.yes):
            return 1
        return _run_fleet(fleet.setup(clients.iot, plan), fleet.Summary())
    finally:
        if process is not None:
            process.stop()


def _fleet_cleanup(args: argparse.Namespace) -> int:
    from iot_tui.aws import fleet

    opened = _open_target(args)
    if opened is None:
        return 2
    clients, _inspector, process = opened
    try:
        sample = fleet.sample_fleet(args.seed)
        plan = fleet.discover(clients.iot, sample)
        print(f"found: {len(plan.things)} things, {len(plan.certificates)} certificates, "
              f"{len(plan.groups)} groups, {len(plan.types)} thing types")
        if plan.empty and not plan.errors:
            print("nothing to clean up")
            return 0
        if not _confirm("Delete these sample resources?", args.yes):
            return 1
        events = fleet.cleanup(clients.iot, sample, args.types, plan=plan, cert_root=fleet.certificates_dir())
        return _run_fleet(events, fleet.Summary())
    finally:
        if process is not None:
            process.stop()


def _doctor(args: argparse.Namespace) -> int:
    from iot_tui.aws.doctor import run_checks

    opened = _open_target(args, start_core=False)
    if opened is None:
        return 2
    clients, _inspector, _process = opened
    failed = 0
    for check in run_checks(clients):
        print(check.line(), flush=True)
        failed += not check.ok
    return 1 if failed else 0


def _app(args: argparse.Namespace) -> int:
    opened = _open_target(args)
    if opened is None:
        return 2
    clients, inspector, process = opened
    try:
        from iot_tui.ui.app import make_app
        from iot_tui.ui.keymap import load_keymap

        try:
            keymap = load_keymap()
        except ValueError as error:
            print(f"iot-tui: {error}", file=sys.stderr)
            return 2
        make_app(clients.target, inspector=inspector, keymap=keymap).run()
    finally:
        if process is not None:
            process.stop()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from iot_tui.local.server import DataDirLocked, LocalServer

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    server = LocalServer(_config(args))

    async def run() -> None:
        await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.request_stop)
        for line in server.listener_lines():
            print(line, flush=True)
        try:
            await server.serve_forever()
        finally:
            await server.stop()

    try:
        asyncio.run(run())
    except DataDirLocked as error:
        print(f"iot-tui: {error}; stop it first or use another --data-dir", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"iot-tui: cannot start the local core: {error}", file=sys.stderr)
        return 1
    return 0


def running_core_health(host: str, port: int, timeout: float = 0.5) -> dict | None:
    """The health answer of a core already serving on host:port, or None."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/_iot_tui/health", timeout=timeout) as answer:
            health = json.loads(answer.read())
    except (OSError, ValueError):
        return None
    return health if health.get("service") == "iot-tui local core" else None


def env_lines(config: CoreConfig, ca_file: Path, ports: dict[str, int]) -> list[str]:
    url = f"http://{config.host}:{ports['http']}"
    values = {
        "AWS_ENDPOINT_URL_IOT": url,
        "AWS_ENDPOINT_URL_IOT_DATA_PLANE": url,
        "AWS_ENDPOINT_URL_STS": url,
        "AWS_ENDPOINT_URL_IAM": url,
        "AWS_ACCESS_KEY_ID": config.access_key_id,
        "AWS_SECRET_ACCESS_KEY": config.secret_access_key,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_REGION": config.region,
        "IOT_TUI_CA_FILE": str(ca_file),
        "IOT_TUI_MQTT_PORT": str(ports["mqtt"]),
        "IOT_TUI_WS_PORT": str(ports["ws"]),
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def _env(args: argparse.Namespace) -> int:
    from iot_tui.local.ca import LocalCA

    config = _config(args)
    ports = {"http": config.http_port, "mqtt": config.mqtt_port, "ws": config.ws_port}
    health = running_core_health(config.host, config.http_port)
    if health is not None:
        ports.update(health.get("ports", {}))
        ca_file = Path(health["caFile"])
    else:
        ca_file = LocalCA.load_or_create(config.ca_dir).ca_cert_path
    print("\n".join(env_lines(config, ca_file, ports)))
    return 0


def _reset(args: argparse.Namespace) -> int:
    from iot_tui.local.server import DataDirLocked, lock_data_dir

    config = _config(args)
    data_dir = config.data_dir
    if not data_dir.exists():
        print(f"nothing to reset: {data_dir} does not exist")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print("iot-tui: refusing to reset without confirmation; pass --yes", file=sys.stderr)
            return 2
        answer = input(f"Delete all local IoT Core state in {data_dir}? Type 'yes' to confirm: ")
        if answer.strip().lower() != "yes":
            print("reset cancelled; nothing was deleted")
            return 1
    try:
        fd = lock_data_dir(data_dir)
    except DataDirLocked as error:
        print(f"iot-tui: {error}; stop it before resetting", file=sys.stderr)
        return 1
    try:
        for entry in data_dir.iterdir():
            if entry.name == "core.lock":
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    finally:
        os.close(fd)
    print(f"local state deleted: {data_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
