"""The thin command line: `iot-tui local serve|env|reset`.

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
    for flag in ("host", "http_port", "mqtt_port", "ws_port", "region", "account_id", "strict_auth", "deprecation_wait"):
        if getattr(args, flag, None) is not None:
            setattr(config, flag, getattr(args, flag))
    return config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iot-tui",
        description="Learn and operate AWS IoT Core from the terminal, on an embedded local IoT Core or on AWS.",
    )
    parser.add_argument("--version", action="version", version=f"iot-tui {__version__}")
    commands = parser.add_subparsers(dest="command")
    local = commands.add_parser("local", help="the embedded local AWS IoT Core")
    local_commands = local.add_subparsers(dest="local_command", required=True)

    serve = local_commands.add_parser("serve", help="run the local core in the foreground")
    _add_core_flags(serve)
    serve.add_argument("--strict-auth", action="store_true", default=None,
                       help="verify SigV4 signatures against the local credentials")
    serve.add_argument("--deprecation-wait", type=float, default=None, metavar="SECONDS",
                       help="how long a deprecated thing type must wait before deletion (AWS: 300)")
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
    if args.command is None:
        parser.print_help()
        return 0
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
