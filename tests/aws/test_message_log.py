"""The message log and the payload helpers: unit tests with a fixed clock, then a live capture
from the local broker exported to NDJSON and CSV."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from iot_tui.aws import mqtt_payload
from iot_tui.aws.mqtt import MessageReceived, MqttConnection, MqttSettings, new_client_id
from iot_tui.aws.mqtt_log import MessageLog
from iot_tui.aws.mqtt_payload import describe_payload, parse_payload
from iot_tui.aws.payloads import PayloadError
from iot_tui.aws.target import Target
from iot_tui.iotcore.topics import TopicError
from tests.aws.mqtt_support import Recorder, make_device, require_listener

T0 = 1_780_000_000.0


def message(topic: str, payload: bytes | str, at: float = 0.0, **extra) -> MessageReceived:
    data = payload.encode() if isinstance(payload, str) else payload
    return MessageReceived(topic, data, extra.pop("qos", 1), extra.pop("retain", False), extra, T0 + at)


# -- payloads ------------------------------------------------------------------------------------


def test_text_and_json_payloads() -> None:
    assert parse_payload("héllo", "text") == "héllo".encode()
    assert parse_payload('{\n  "a": [1, 2.5, true, null]\n}', "json") == b'{"a":[1,2.5,true,null]}'


def test_json_errors_point_at_line_and_column() -> None:
    with pytest.raises(PayloadError) as error:
        parse_payload('{\n  "a": 1,\n  "b" 2\n}', "json")
    assert (error.value.line, error.value.column) == (3, 7)
    assert "Expecting ':'" in error.value.reason


def test_key_values_become_typed_json() -> None:
    text = 'temp=21.5 count=3 neg=-2 big=1e3 on=true off=false none=null name=room-1 quoted="42" s=\'a b\' a.b.c=1'
    assert json.loads(parse_payload(text, "kv")) == {
        "temp": 21.5, "count": 3, "neg": -2, "big": 1000.0, "on": True, "off": False, "none": None,
        "name": "room-1", "quoted": "42", "s": "a b", "a": {"b": {"c": 1}},
    }
    assert parse_payload("", "kv") == b"{}"
    with pytest.raises(PayloadError) as error:
        parse_payload("a=1 oops b=2", "kv")
    assert error.value.column == 5 and "oops" in error.value.reason
    with pytest.raises(PayloadError):
        parse_payload("a=1 a.b=2", "kv")
    with pytest.raises(ValueError):
        parse_payload("x", "yaml")  # type: ignore[arg-type]


def test_test_message_is_deterministic_with_a_fixed_clock() -> None:
    payload = json.loads(mqtt_payload.test_message(T0, sequence=7, client_id="dev-1"))
    assert payload == {"message": "Hello from iot-tui", "sequence": 7, "timestamp": int(T0 * 1000),
                       "time": "2026-05-28T20:26:40.000Z", "clientId": "dev-1"}


def test_describe_payload_for_the_detail_view() -> None:
    assert describe_payload(b'{"a":1}') == mqtt_payload.PayloadView("json", '{\n  "a": 1\n}', {"a": 1})
    assert describe_payload(b"plain").kind == "text"
    binary = describe_payload(bytes(range(20)))
    assert binary.kind == "binary"
    assert binary.text.splitlines()[0].startswith("00000000  00 01 02")
    assert binary.text.splitlines()[1].startswith("00000010  10 11 12 13")


# -- the log -------------------------------------------------------------------------------------


def test_bounded_buffer_views_and_counts() -> None:
    log = MessageLog(capacity=5)
    for i in range(8):
        log.append(message(f"room/{i % 2}/temp", json.dumps({"t": i}), at=i))
    assert len(log) == 5 and log.total == 8 and log.capacity == 5
    assert [e.seq for e in log.view()] == [8, 7, 6, 5, 4]
    assert [e.seq for e in log.view(newest_first=False)] == [4, 5, 6, 7, 8]
    assert [e.seq for e in log.page(1, 2)] == [7, 6]
    assert [e.seq for e in log.tail(3)] == [6, 7, 8]
    topics = log.topics()
    assert {t: s.count for t, s in topics.items()} == {"room/0/temp": 4, "room/1/temp": 4}
    assert topics["room/1/temp"].last.json == {"t": 7}
    log.set_capacity(3)
    assert [e.seq for e in log.view()] == [8, 7, 6]
    log.clear()
    assert len(log) == 0 and log.topics() == {} and list(log.view()) == []


def test_filters_by_topic_filter_and_text() -> None:
    log = MessageLog()
    log.append(message("sensor/a/temp", "hot"))
    log.append(message("sensor/b/humidity", "Dry"))
    log.append(message("sensor", "bare"))
    log.append(message("other/x", "dry too"))
    log.set_filter("sensor/#")
    assert [e.topic for e in log.view()] == ["sensor/b/humidity", "sensor/a/temp"]
    log.set_filter("sensor/+/temp")
    assert [e.topic for e in log.view()] == ["sensor/a/temp"]
    log.set_filter(text="DRY")
    assert [e.topic for e in log.view()] == ["other/x", "sensor/b/humidity"]
    log.set_filter("sensor/#", "dry")
    assert log.count_view() == 1
    log.append(message("sensor/c", "dry again"))
    assert log.count_view() == 2
    assert len(list(log.view(filtered=False))) == 5
    with pytest.raises(TopicError):
        log.set_filter("a/#/b")
    log.set_filter()
    assert log.count_view() == 5


def test_pause_freezes_the_view_without_losing_messages() -> None:
    log = MessageLog()
    log.append(message("a", "1"))
    log.pause()
    log.append(message("a", "2"))
    log.append(message("b", "3"))
    assert log.paused and log.pending == 2
    assert [e.text for e in log.view()] == ["1"]
    assert log.topics()["a"].count == 2  # counting goes on
    log.resume()
    assert not log.paused and log.pending == 0
    assert [e.text for e in log.view()] == ["3", "2", "1"]


def test_previous_message_on_the_same_topic_for_the_diff() -> None:
    log = MessageLog(capacity=3)
    first = log.append(message("a", '{"v": 1}'))
    log.append(message("b", "x"))
    second = log.append(message("a", '{"v": 2}'))
    assert log.previous(second) is first and log.previous(first) is None
    log.append(message("c", "y"))  # evicts `first`
    assert log.previous(second) is None
    assert log.get(second.seq) is second and log.get(1) is None


def test_topic_tree_sums_counts_and_keeps_last_values() -> None:
    log = MessageLog()
    for topic in ("home/kitchen/temp", "home/kitchen/temp", "home/hall/temp", "home", "car/speed"):
        log.append(message(topic, topic))
    root = log.topic_tree()
    assert root.count == 5 and sorted(root.children) == ["car", "home"]
    home = root.children["home"]
    assert home.count == 4 and home.last is not None and home.last.text == "home"
    kitchen = home.children["kitchen"]
    assert kitchen.count == 2 and kitchen.topic == "home/kitchen"
    assert kitchen.children["temp"].last.topic == "home/kitchen/temp"


def test_numeric_series_for_the_plot() -> None:
    log = MessageLog()
    log.append(message("s/1", json.dumps({"t": 20, "env": {"h": [40, 41]}, "ok": True}), at=1))
    log.append(message("s/2", "not json", at=2))
    log.append(message("s/1", json.dumps({"t": 21.5, "env": {"h": [42]}}), at=3))
    log.append(message("s/3", json.dumps({"t": "warm"}), at=4))
    log.append(message("s/1", json.dumps({"x": 1}), at=5))
    newest = log.page(0, 1)[0]
    assert MessageLog.numeric_fields(log.get(1)) == ["t", "env.h[0]", "env.h[1]"]
    assert MessageLog.numeric_fields(log.get(2)) == []
    assert MessageLog.numeric_fields(newest) == ["x"]
    assert log.series("t") == [(T0 + 1, 20.0), (T0 + 3, 21.5)]
    assert log.series("env.h[0]", topic_filter="s/+") == [(T0 + 1, 40.0), (T0 + 3, 42.0)]
    assert log.series("t", limit=1) == [(T0 + 3, 21.5)]
    assert log.series("env.h[1]") == [(T0 + 1, 41.0)]


def test_export_ndjson_and_csv(tmp_path: Path) -> None:
    log = MessageLog()
    log.append(message("a/1", '{"v": 1}', at=0, user_properties=[("k", "v")]))
    log.append(message("b/1", b"\x00\xff", at=1, qos=0, retain=True))
    log.append(message("a/2", 'say "hi", ok', at=2))
    assert log.export_ndjson(tmp_path / "all.ndjson", filtered=False) == 3
    records = [json.loads(line) for line in (tmp_path / "all.ndjson").read_text().splitlines()]
    assert [r["topic"] for r in records] == ["a/1", "b/1", "a/2"]
    assert records[0] == {"seq": 1, "time": "2026-05-28T20:26:40.000Z", "topic": "a/1", "qos": 1, "retain": False,
                          "size": 8, "encoding": "utf-8", "payload": '{"v": 1}',
                          "properties": {"user_properties": [["k", "v"]]}}
    assert records[1]["encoding"] == "base64" and records[1]["payload"] == "AP8=" and records[1]["retain"]

    log.set_filter("a/#")
    assert log.export_csv(tmp_path / "out" / "filtered.csv") == 2
    with open(tmp_path / "out" / "filtered.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["topic"] for r in rows] == ["a/1", "a/2"]
    assert rows[1]["payload"] == 'say "hi", ok' and rows[1]["retain"] == "false"
    assert json.loads(rows[0]["properties"]) == {"user_properties": [["k", "v"]]}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["filtered.csv"]  # no temporary left


def test_stays_fast_with_a_full_buffer() -> None:
    log = MessageLog()
    messages = [message(f"fleet/{i % 100}/telemetry", json.dumps({"n": i}), at=i) for i in range(50_000)]
    started = time.perf_counter()
    for item in messages:
        log.append(item)
    per_append = (time.perf_counter() - started) / len(messages)
    assert len(log) == 10_000 and log.total == 50_000
    assert per_append < 50e-6, f"{per_append * 1e6:.1f} µs per append"
    started = time.perf_counter()
    page = log.page(0, 100)
    log.set_filter("fleet/7/+", "4")
    filtered = log.page(0, 100)
    elapsed = time.perf_counter() - started
    assert page[0].seq == 50_000 and all(e.topic == "fleet/7/telemetry" for e in filtered)
    assert elapsed < 0.5, f"views took {elapsed:.3f}s"


# -- live, from the local broker -----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_capture_from_the_broker_and_export(iot, core, target: Target, tmp_path: Path) -> None:
    require_listener(core, "mqtt")
    device = make_device(iot, tmp_path / "device")
    settings = MqttSettings.mtls(target, device.cert_file, device.key_file, new_client_id("log"),
                                 connect_timeout=5, operation_timeout=3)
    log = MessageLog(capacity=150)
    connection = MqttConnection(settings)
    recorder = Recorder()
    connection.add_listener(recorder)
    connection.add_listener(lambda e: log.append(e) if isinstance(e, MessageReceived) else None)
    try:
        connection.connect()
        assert connection.subscribe("plant/+/line/#", 1).ok
        for i in range(200):
            body = parse_payload(f"machine={i % 4} speed={i} running=true", "kv")
            assert connection.publish(f"plant/{i % 4}/line/speed", body, qos=1).ok
        recorder.wait_for(lambda e: isinstance(e, MessageReceived), count=200)
    finally:
        connection.disconnect()
    assert len(log) == 150 and log.total == 200
    assert log.page(0, 1)[0].json == {"machine": 3, "speed": 199, "running": True}
    assert [value for _, value in log.series("speed", "plant/0/#")][-2:] == [192.0, 196.0]
    assert log.topic_tree().children["plant"].count == 200
    latest = log.page(0, 1)[0]
    assert log.previous(latest).json["speed"] == 195
    log.set_filter("plant/1/line/#")
    assert log.export_ndjson(tmp_path / "plant1.ndjson") == log.count_view() == 37
    lines = (tmp_path / "plant1.ndjson").read_text().splitlines()
    assert json.loads(json.loads(lines[-1])["payload"]) == {"machine": 1, "speed": 197, "running": True}
