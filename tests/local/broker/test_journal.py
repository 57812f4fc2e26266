"""The broker's journal: why each client was refused or disconnected, served per client over HTTP
(`/_iot_tui/clients/log`), with real TLS and MQTT clients."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.local.broker import codec
from iot_tui.local.broker.codec import MQTT_5, MQTT_311
from iot_tui.local.broker.journal import Journal
from tests.local.broker.conftest import RawClient, make_device


def signed(url: str) -> urllib.request.Request:
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY), "iot", "us-east-1").add_auth(request)
    return urllib.request.Request(url, headers=dict(request.headers))


def journal(core, **query) -> list[dict]:
    url = f"{core.http_url}/_iot_tui/clients/log?{urlencode(query)}"
    with urllib.request.urlopen(signed(url), timeout=5) as answer:
        return json.loads(answer.read())["entries"]


def wait_for(core, predicate, **query) -> list[dict]:
    """The journal once an entry satisfies `predicate` (the broker writes on its own loop)."""
    deadline = time.monotonic() + 5
    while True:
        entries = journal(core, **query)
        if any(predicate(entry) for entry in entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


def connect(core, device, client_id, version=MQTT_311) -> tuple[RawClient, bytes]:
    raw = RawClient(core, device)
    raw.send(codec.encode(codec.Connect(version, client_id, True, 60), version))
    packet = raw.read()
    return raw, packet[2] if packet else b""


def test_a_session_is_journaled_from_connect_to_disconnect(core, iot, tmp_path):
    device = make_device(iot, core, tmp_path)
    raw, connack = connect(core, device, "journal-ok", MQTT_5)
    assert connack[:2] == b"\x00\x00"
    raw.send(codec.encode(codec.Disconnect(codec.SUCCESS), MQTT_5))
    assert raw.closed_by_server()
    entries = wait_for(core, lambda e: e["eventType"] == "Disconnect", clientId="journal-ok")
    assert [(e["eventType"], e["status"]) for e in entries if e["clientId"] == "journal-ok"] == [
        ("Connect", "Success"), ("Disconnect", "Success")]
    connected, disconnected = entries[-2:]
    assert "MQTT 5" in connected["message"] and device.certificate_id in connected["message"]
    assert connected["principalId"] == device.certificate_id
    assert "CLIENT_INITIATED_DISCONNECT" in disconnected["message"]


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED"])
def test_a_refused_certificate_is_found_by_its_id(core, iot, tmp_path, status):
    device = make_device(iot, core, tmp_path)
    iot.update_certificate(certificateId=device.certificate_id, newStatus=status)
    raw = RawClient(core, device)
    raw.send(codec.encode(codec.Connect(MQTT_311, "journal-refused", True, 60), MQTT_311))
    assert raw.closed_by_server()
    entries = wait_for(core, lambda e: e["principalId"] == device.certificate_id, principalId=device.certificate_id)
    mine = [e for e in entries if e["principalId"] == device.certificate_id]
    assert mine and mine[-1]["eventType"] == "TLS" and mine[-1]["status"] == "Failure"
    assert f"is {status}, not ACTIVE" in mine[-1]["message"]
    assert mine[-1]["logLevel"] == "WARNING"


def test_connect_refused_by_policy_names_the_client_and_the_action(core, iot, tmp_path):
    device = make_device(iot, core, tmp_path, policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/someone-else"}]})
    raw, connack = connect(core, device, "journal-denied")
    assert connack == b"\x00\x05"  # 3.1.1: not authorized
    entries = wait_for(core, lambda e: e["eventType"] == "Connect", clientId="journal-denied")
    refused = [e for e in entries if e["clientId"] == "journal-denied" and e["eventType"] == "Connect"]
    assert refused[-1]["status"] == "Failure"
    assert "iot:Connect is not allowed for client 'journal-denied'" in refused[-1]["message"]


def test_denied_subscribe_and_publish_are_journaled(core, iot, tmp_path):
    device = make_device(iot, core, tmp_path, policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})
    raw, connack = connect(core, device, "journal-packets", MQTT_5)
    assert connack[:2] == b"\x00\x00"
    raw.send(codec.encode(codec.Subscribe(1, [("secret/#", 1)]), MQTT_5))
    assert raw.read()[0] == codec.SUBACK
    raw.send(codec.encode(codec.Publish("secret/x", b"{}", 1, False, False, 2), MQTT_5))
    assert raw.read()[0] == codec.PUBACK
    entries = wait_for(core, lambda e: e["eventType"] == "Publish-In", clientId="journal-packets")
    by_type = {e["eventType"]: e for e in entries if e["clientId"] == "journal-packets"}
    assert "iot:Subscribe is not allowed on 'secret/#'" in by_type["Subscribe"]["message"]
    assert "iot:Publish is not allowed on 'secret/x'" in by_type["Publish-In"]["message"]
    raw.close()


def test_other_clients_events_are_not_served(core, iot, tmp_path):
    device = make_device(iot, core, tmp_path)
    for client_id in ("journal-a", "journal-b"):
        raw, _ = connect(core, device, client_id)
        raw.close()
    entries = wait_for(core, lambda e: e["clientId"] == "journal-a", clientId="journal-a")
    assert {e["clientId"] for e in entries} <= {"journal-a", ""}  # "": refusals before a client named itself


@pytest.mark.parametrize("query", [{}, {"clientId": "x", "limit": "0"}, {"clientId": "x", "limit": "lots"}])
def test_bad_queries_answer_400_with_the_reason(core, query):
    with pytest.raises(urllib.error.HTTPError) as refused:
        journal(core, **query)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["message"]


def test_the_journal_is_only_for_signed_callers(core):
    """As CloudWatch Logs are: it names clients, certificates and addresses."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{core.http_url}/_iot_tui/clients/log?clientId=x", timeout=5)
    assert refused.value.code == 403
    assert refused.value.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")


def test_the_journal_is_bounded_and_keeps_the_newest():
    now = iter(range(1000))
    kept = Journal(lambda: float(next(now)), size=3)
    for n in range(5):
        kept.record(logging.INFO, "Connect", f"event {n}", peer="p", client_id="c")
    assert [e.message for e in kept.for_client("c")] == ["event 2", "event 3", "event 4"]
    assert [e.message for e in kept.for_client("c", limit=1)] == ["event 4"]


def test_unattributed_refusals_are_served_with_any_client():
    kept = Journal(lambda: 0.0)
    kept.record(logging.WARNING, "TLS", "handshake failed", peer="127.0.0.1:5")
    kept.record(logging.INFO, "Connect", "ok", peer="p", client_id="other")
    kept.record(logging.WARNING, "TLS", "refused", peer="p", principal="cert-1")
    assert [e.message for e in kept.for_client("mine", "cert-1")] == ["handshake failed", "refused"]
    assert not kept.for_client("mine")[0].attributed
