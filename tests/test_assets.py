"""The shipped assets are usable as they are: policy templates parse, the Amazon root CA loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from iot_tui.iotcore.policy import AuthContext, evaluate, parse_policy
from iot_tui.iotcore.x509 import describe

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TEMPLATES = sorted((ASSETS / "policies").glob("*.json"))


def _fill(path: Path) -> str:
    return path.read_text().replace("{{region}}", "us-east-1").replace("{{account}}", "000000000000")


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_policy_templates_parse(path):
    assert parse_policy(_fill(path)).statements


def test_shadow_template_limits_a_device_to_its_own_shadow():
    policy = parse_policy(_fill(ASSETS / "policies" / "shadow-device.json"))
    ctx = AuthContext(region="us-east-1", account_id="000000000000", client_id="car1", thing_name="car1",
                      is_attached=True)
    own = "arn:aws:iot:us-east-1:000000000000:topic/$aws/things/car1/shadow/update"
    other = "arn:aws:iot:us-east-1:000000000000:topic/$aws/things/car2/shadow/update"
    assert evaluate([("shadow", policy)], "iot:Publish", own, ctx).allowed
    assert not evaluate([("shadow", policy)], "iot:Publish", other, ctx).allowed


def test_amazon_root_ca_ships():
    info = describe((ASSETS / "AmazonRootCA1.pem").read_text())
    assert info.common_name == "Amazon Root CA 1"
    assert info.self_signed
