"""Debian's mosquitto_pub and mosquitto_sub (MQTT 3.1.1 and 5) against the broker, unchanged."""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_sub") is None,
    reason="mosquitto-clients is not installed (apt-get install mosquitto-clients)",
)


def tls_args(core, device) -> list[str]:
    return ["-h", "localhost", "-p", str(core.ports["mqtt"]), "--cafile", str(device.ca_path),
            "--cert", str(device.cert_path), "--key", str(device.key_path)]


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_sub_receives_what_mosquitto_pub_sends(core, device, version):
    sub = subprocess.Popen(
        ["mosquitto_sub", *tls_args(core, device), "-V", version, "-i", f"msub-{version}",
         "-t", f"mosq/{version}", "-q", "1", "-C", "1", "-W", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(50):  # publish until the subscriber is in place and gets one
            subprocess.run(["mosquitto_pub", *tls_args(core, device), "-V", version, "-i", f"mpub-{version}",
                            "-t", f"mosq/{version}", "-q", "1", "-m", "hello"], check=True, timeout=10)
            try:
                out, err = sub.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            pytest.fail("mosquitto_sub received nothing")
        assert sub.returncode == 0, err
        assert out.strip() == "hello"
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
