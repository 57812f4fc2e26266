"""`iot-tui local serve|env|reset` as a user runs them: real processes, real signals, the AWS CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from tests.conftest import NO_RETRY, client, error_code, start_core

IOT_TUI = [sys.executable, "-m", "iot_tui"]
AWS_CLI = str(Path(sys.executable).parent / "aws")


def _clean_env() -> dict[str, str]:
    """The user's environment without any AWS settings that could point elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


class Served:
    """`iot-tui local serve` in a child process, on free ports."""

    def __init__(self, data_dir: Path, *extra: str):
        self.process = subprocess.Popen(
            [*IOT_TUI, "local", "serve", "--http-port", "0", "--mqtt-port", "0", "--ws-port", "0",
             "--data-dir", str(data_dir), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env(),
        )
        self.lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited early: {self.process.stderr.read()}")
            self.lines.append(line.rstrip())
            if line.startswith("http "):
                break
        self.url = re.search(r"http://\S+", self.lines[-1]).group(0)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(30)
        self.process.stdout.close()
        self.process.stderr.close()
        return code


def _iot(url: str, region: str = "us-east-1"):
    return boto3.client("iot", endpoint_url=url, region_name=region, aws_access_key_id=LOCAL_ACCESS_KEY_ID,
                        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY, config=NO_RETRY)


def test_serve_prints_listeners_persists_state_and_stops_on_sigterm(tmp_path):
    served = Served(tmp_path)
    try:
        assert served.lines[-1] == f"http  http://127.0.0.1:{served.port}"
        assert served.port != 0
        _iot(served.url).create_thing(thingName="survivor", attributePayload={"attributes": {"k": "v"}})
    finally:
        assert served.stop(signal.SIGTERM) == 0
    again = Served(tmp_path)
    try:
        assert _iot(again.url).describe_thing(thingName="survivor")["attributes"] == {"k": "v"}
    finally:
        assert again.stop(signal.SIGINT) == 0


def test_acknowledged_writes_survive_kill_9(tmp_path):
    served = Served(tmp_path)
    iot = _iot(served.url)
    for i in range(30):
        iot.create_thing(thingName=f"t{i:02}")
    served.process.kill()
    served.process.wait(30)
    served.process.stdout.close()
    served.process.stderr.close()
    again = Served(tmp_path)
    try:
        names = [t["thingName"] for t in _iot(again.url).list_things(maxResults=100)["things"]]
        assert names == [f"t{i:02}" for i in range(30)]
    finally:
        again.stop()


def test_two_cores_never_share_a_data_dir(tmp_path):
    served = Served(tmp_path)
    try:
        second = subprocess.run(
            [*IOT_TUI, "local", "serve", "--http-port", "0", "--mqtt-port", "0", "--ws-port", "0",
             "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60, env=_clean_env(),
        )
        assert second.returncode == 1
        assert "another local core is already using" in second.stderr
    finally:
        served.stop()


def test_env_lines_drive_the_aws_cli(tmp_path):
    served = Served(tmp_path)
    try:
        printed = subprocess.run(
            [*IOT_TUI, "local", "env", "--http-port", str(served.port), "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60, env=_clean_env(), check=True,
        ).stdout
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", printed, re.M))
        for name in ("AWS_ENDPOINT_URL_IOT", "AWS_ENDPOINT_URL_IOT_DATA_PLANE", "AWS_ENDPOINT_URL_STS",
                     "AWS_ENDPOINT_URL_IAM"):
            assert exports[name] == served.url
        assert exports["AWS_DEFAULT_REGION"] == "us-east-1"
        assert Path(exports["IOT_TUI_CA_FILE"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert exports["IOT_TUI_MQTT_PORT"].isdigit()

        # The user's shell: eval "$(iot-tui local env)" then aws iot ...
        script = f'eval "$({" ".join(IOT_TUI)} local env --http-port {served.port} --data-dir {tmp_path})"\n' \
                 f"{AWS_CLI} iot create-thing --thing-name from-cli >/dev/null\n" \
                 f"{AWS_CLI} iot list-things --output json\n" \
                 f"{AWS_CLI} sts get-caller-identity --output json\n"
        shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                               env=_clean_env(), check=True)
        documents = [json.loads(part) for part in re.split(r"(?<=\})\n(?=\{)", shell.stdout.strip())]
        assert [t["thingName"] for t in documents[0]["things"]] == ["from-cli"]
        assert documents[1]["Account"] == "000000000000"
    finally:
        served.stop()


def test_env_without_a_running_core_uses_the_flags(tmp_path):
    printed = subprocess.run(
        [*IOT_TUI, "local", "env", "--http-port", "4999", "--region", "eu-west-1", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=_clean_env(), check=True,
    ).stdout
    assert "export AWS_ENDPOINT_URL_IOT=http://127.0.0.1:4999" in printed
    assert "export AWS_DEFAULT_REGION=eu-west-1" in printed
    assert (tmp_path / "ca" / "ca.crt").exists()


def test_reset_asks_refuses_while_running_and_wipes(tmp_path):
    served = Served(tmp_path)
    _iot(served.url).create_thing(thingName="doomed")
    refused = subprocess.run([*IOT_TUI, "local", "reset", "--data-dir", str(tmp_path), "--yes"],
                             capture_output=True, text=True, timeout=60, env=_clean_env())
    assert refused.returncode == 1
    assert "stop it before resetting" in refused.stderr
    served.stop()

    unconfirmed = subprocess.run([*IOT_TUI, "local", "reset", "--data-dir", str(tmp_path)],
                                 capture_output=True, text=True, timeout=60, env=_clean_env(), stdin=subprocess.DEVNULL)
    assert unconfirmed.returncode == 2
    assert (tmp_path / "core.sqlite3").exists()

    wiped = subprocess.run([*IOT_TUI, "local", "reset", "--data-dir", str(tmp_path), "--yes"],
                           capture_output=True, text=True, timeout=60, env=_clean_env())
    assert wiped.returncode == 0, wiped.stderr
    assert not (tmp_path / "core.sqlite3").exists()
    again = Served(tmp_path)
    try:
        assert _iot(again.url).list_things()["things"] == []
    finally:
        again.stop()


def test_strict_auth_verifies_signatures(tmp_path):
    server = start_core(tmp_path, strict_auth=True)
    try:
        good = client("iot", server, "us-east-1")
        good.create_thing(thingName="signed")
        wrong_secret = client("iot", server, "us-east-1", secret_key="not-the-secret")
        with pytest.raises(ClientError) as excinfo:
            wrong_secret.list_things()
        assert error_code(excinfo) == "InvalidSignatureException"
        unknown_key = client("iot", server, "us-east-1", access_key="AKIAUNKNOWN000000000")
        with pytest.raises(ClientError) as excinfo:
            unknown_key.list_things()
        assert error_code(excinfo) == "UnrecognizedClientException"
        # Paths with encoded characters and query strings are signed canonically too.
        good.list_things(attributeName="a", attributeValue="b/c", maxResults=5)
        data = client("iot-data", server, "us-east-1")
        data.publish(topic="a/b c/$d", payload=b"x", qos=0)
    finally:
        server.stop_thread()


def test_any_access_key_is_accepted_by_default(core):
    other = client("iot", core, "us-test-anykey", access_key="AKIAANYTHING00000000", secret_key="whatever")
    assert other.list_things()["things"] == []


def test_no_arguments_prints_help_or_runs():
    shown = subprocess.run([*IOT_TUI, "local", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    assert "serve" in shown.stdout and "env" in shown.stdout and "reset" in shown.stdout
