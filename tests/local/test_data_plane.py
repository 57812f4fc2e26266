"""The iot-data plane through real boto3: shadows over REST, Publish and retained messages."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from iot_tui.local.broker import codec
from iot_tui.local.core import Message, MqttMessage
from tests.conftest import client, error_code, http_status


def update(iot_data, thing: str, document: dict, shadow: str | None = None) -> dict:
    extra = {"shadowName": shadow} if shadow else {}
    response = iot_data.update_thing_shadow(thingName=thing, payload=json.dumps(document), **extra)
    return json.loads(response["payload"].read())


def get(iot_data, thing: str, shadow: str | None = None) -> dict:
    extra = {"shadowName": shadow} if shadow else {}
    return json.loads(iot_data.get_thing_shadow(thingName=thing, **extra)["payload"].read())


@pytest.fixture
def messages(core, region) -> Iterator[list[Message]]:
    """What the broker would receive from `core.publish` in this test's region."""
    seen: list[Message] = []

    def listener(message: Message) -> None:
        if message.region == region:
            seen.append(message)

    core.core.listeners.append(listener)
    yield seen
    core.core.listeners.remove(listener)


# -- shadows --


def test_missing_shadow_is_not_found(iot_data):
    with pytest.raises(ClientError) as excinfo:
        iot_data.get_thing_shadow(thingName="ghost")
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert http_status(excinfo) == 404
    assert excinfo.value.response["Error"]["Message"] == "No shadow exists with name: 'ghost'"


def test_update_creates_classic_shadow_without_a_registered_thing(iot_data, clock):
    """AWS keeps shadows for any valid thing name, registered or not."""
    now = int(clock.now)
    accepted = update(iot_data, "lamp", {"state": {"desired": {"color": "red", "on": True}}})
    assert accepted == {
        "state": {"desired": {"color": "red", "on": True}},
        "metadata": {"desired": {"color": {"timestamp": now}, "on": {"timestamp": now}}},
        "version": 1,
        "timestamp": now,
    }
    document = get(iot_data, "lamp")
    assert document["version"] == 1
    assert document["state"]["desired"] == {"color": "red", "on": True}
    assert document["state"]["delta"] == {"color": "red", "on": True}
    assert document["metadata"]["delta"] == {"color": {"timestamp": now}, "on": {"timestamp": now}}


def test_delta_and_metadata_follow_reported(iot_data, clock):
    first = int(clock.now)
    update(iot_data, "lamp", {"state": {"desired": {"color": "red", "level": 5}}})
    clock.advance(10)
    second = int(clock.now)
    update(iot_data, "lamp", {"state": {"reported": {"color": "red", "level": 3, "temp": 20}}})
    document = get(iot_data, "lamp")
    assert document["version"] == 2
    assert document["state"]["delta"] == {"level": 5}  # keys only in reported are left out
    assert document["metadata"]["delta"] == {"level": {"timestamp": first}}
    assert document["metadata"]["reported"]["temp"] == {"timestamp": second}
    update(iot_data, "lamp", {"state": {"reported": {"level": 5}}})
    document = get(iot_data, "lamp")
    assert "delta" not in document["state"]
    assert "delta" not in document["metadata"]


def test_null_deletes_keys_and_sections(iot_data):
    update(
        iot_data,
        "lamp",
        {"state": {"desired": {"a": 1, "b": {"c": 2, "d": 3}}, "reported": {"a": 1}}},
    )
    update(iot_data, "lamp", {"state": {"desired": {"b": {"c": None}}, "reported": None}})
    document = get(iot_data, "lamp")
    assert document["state"] == {
        "desired": {"a": 1, "b": {"d": 3}},
        "delta": {"a": 1, "b": {"d": 3}},
    }
    assert "reported" not in document["metadata"]
    accepted = update(iot_data, "lamp", {"state": None})
    assert accepted["state"] is None
    document = get(iot_data, "lamp")
    assert document["state"] == {}
    assert document["version"] == 3


def test_named_shadows_are_apart_from_the_classic_one(iot_data):
    update(iot_data, "lamp", {"state": {"reported": {"mode": "eco"}}}, shadow="config")
    assert get(iot_data, "lamp", "config")["state"] == {"reported": {"mode": "eco"}}
    with pytest.raises(ClientError) as excinfo:
        get(iot_data, "lamp")
    assert error_code(excinfo) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        get(iot_data, "lamp", "other")
    assert excinfo.value.response["Error"]["Message"] == "No shadow exists with name: 'other'"
    # The model allows "$" in shadow names (AWS-managed shadows such as "$package").
    update(iot_data, "lamp", {"state": {"reported": {"v": 1}}}, shadow="$package")
    assert get(iot_data, "lamp", "$package")["version"] == 1


def test_version_conflict(iot_data):
    update(iot_data, "lamp", {"state": {"desired": {"a": 1}}})
    with pytest.raises(ClientError) as excinfo:
        update(iot_data, "lamp", {"state": {"desired": {"a": 2}}, "version": 7})
    assert error_code(excinfo) == "ConflictException"
    assert http_status(excinfo) == 409
    assert excinfo.value.response["Error"]["Message"] == "Version conflict"
    assert get(iot_data, "lamp")["state"]["desired"] == {"a": 1}
    assert update(iot_data, "lamp", {"state": {"desired": {"a": 2}}, "version": 1})["version"] == 2


def test_client_token_is_echoed(iot_data):
    accepted = update(iot_data, "lamp", {"state": {"desired": {"a": 1}}, "clientToken": "req-42"})
    assert accepted["clientToken"] == "req-42"
    with pytest.raises(ClientError) as excinfo:
        update(iot_data, "lamp", {"state": {"desired": {"a": 1}}, "clientToken": "x" * 65})
    assert error_code(excinfo) == "InvalidRequestException"
    assert excinfo.value.response["Error"]["Message"] == "Invalid clientToken"


def test_state_larger_than_8_kb_is_refused(iot_data):
    with pytest.raises(ClientError) as excinfo:
        update(iot_data, "lamp", {"state": {"desired": {"blob": "x" * 8200}}})
    assert error_code(excinfo) == "RequestEntityTooLargeException"
    assert http_status(excinfo) == 413
    with pytest.raises(ClientError):
        get(iot_data, "lamp")


def nested(levels: int) -> dict:
    """A desired section `levels` objects deep, the section's own object counting as one."""
    document: dict = {"leaf": 1}
    for level in range(levels - 1):
        document = {f"l{level}": document}
    return document


def test_nesting_deeper_than_6_is_refused(iot_data):
    update(iot_data, "lamp", {"state": {"desired": nested(6)}})
    with pytest.raises(ClientError) as excinfo:
        update(iot_data, "lamp", {"state": {"desired": nested(7)}})
    assert error_code(excinfo) == "InvalidRequestException"
    assert (
        excinfo.value.response["Error"]["Message"]
        == "JSON contains too many levels of nesting; maximum is 6"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Payload contains invalid json"),
        (b"[1, 2]", "Missing required node: state"),
        (b'{"desired": {"a": 1}}', "Missing required node: state"),
        (b'{"state": 5}', "State node must be an object"),
        (b'{"state": {"desired": 5}}', "Desired node must be an object"),
        (b'{"state": {"delta": {"a": 1}}}', "State contains an invalid node"),
        (b'{"state": {"desired": {}}, "version": "1"}', "Invalid version"),
    ],
)
def test_bad_update_documents_are_invalid_requests(iot_data, body, message):
    with pytest.raises(ClientError) as excinfo:
        iot_data.update_thing_shadow(thingName="lamp", payload=body)
    assert error_code(excinfo) == "InvalidRequestException"
    assert http_status(excinfo) == 400
    assert excinfo.value.response["Error"]["Message"] == message


def test_non_utf8_body_is_an_unsupported_encoding(iot_data):
    with pytest.raises(ClientError) as excinfo:
        iot_data.update_thing_shadow(thingName="lamp", payload=b'{"state": "\xff"}')
    assert error_code(excinfo) == "UnsupportedDocumentEncodingException"


def test_delete_returns_version_and_keeps_it_for_48_hours(iot_data, clock):
    update(iot_data, "lamp", {"state": {"desired": {"a": 1}}})
    update(iot_data, "lamp", {"state": {"desired": {"a": 2}}})
    deleted = json.loads(iot_data.delete_thing_shadow(thingName="lamp")["payload"].read())
    assert deleted == {"version": 2, "timestamp": int(clock.now)}
    with pytest.raises(ClientError) as excinfo:
        get(iot_data, "lamp")
    assert error_code(excinfo) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        iot_data.delete_thing_shadow(thingName="lamp")
    assert error_code(excinfo) == "ResourceNotFoundException"
    # Re-created within 48 hours: the version continues; the old state does not come back.
    assert update(iot_data, "lamp", {"state": {"reported": {"b": 1}}})["version"] == 3
    assert get(iot_data, "lamp")["state"] == {"reported": {"b": 1}}
    iot_data.delete_thing_shadow(thingName="lamp")
    clock.advance(48 * 3600 + 1)
    assert update(iot_data, "lamp", {"state": {"reported": {"b": 1}}})["version"] == 1


def test_delete_named_shadow(iot_data):
    update(iot_data, "lamp", {"state": {"desired": {"a": 1}}}, shadow="cfg")
    update(iot_data, "lamp", {"state": {"desired": {"a": 1}}})
    response = iot_data.delete_thing_shadow(thingName="lamp", shadowName="cfg")
    assert json.loads(response["payload"].read())["version"] == 1
    assert get(iot_data, "lamp")["version"] == 1  # the classic shadow stays


def test_list_named_shadows(iot_data, clock):
    for name in ("gamma", "alpha", "beta", "delta"):
        update(iot_data, "lamp", {"state": {"reported": {"n": name}}}, shadow=name)
    update(iot_data, "lamp", {"state": {"reported": {"n": "classic"}}})
    iot_data.delete_thing_shadow(thingName="lamp", shadowName="delta")
    update(iot_data, "other", {"state": {"reported": {"n": 1}}}, shadow="zeta")

    listing = iot_data.list_named_shadows_for_thing(thingName="lamp")
    assert listing["results"] == ["alpha", "beta", "gamma"]
    assert listing["timestamp"] == int(clock.now)
    assert "nextToken" not in listing

    first = iot_data.list_named_shadows_for_thing(thingName="lamp", pageSize=2)
    assert first["results"] == ["alpha", "beta"]
    second = iot_data.list_named_shadows_for_thing(
        thingName="lamp", pageSize=2, nextToken=first["nextToken"]
    )
    assert second["results"] == ["gamma"]
    assert "nextToken" not in second


def test_list_named_shadows_of_unknown_thing_is_empty(iot_data):
    """AWS: an empty list, not a 404, for a thing with no named shadow or no thing at all."""
    update(iot_data, "classic-only", {"state": {"reported": {"n": 1}}})
    assert iot_data.list_named_shadows_for_thing(thingName="classic-only")["results"] == []
    assert iot_data.list_named_shadows_for_thing(thingName="nobody")["results"] == []
    with pytest.raises(ClientError) as excinfo:
        iot_data.list_named_shadows_for_thing(thingName="nobody", nextToken="%%%")
    assert error_code(excinfo) == "InvalidRequestException"


def test_shadow_name_is_validated_by_the_model(iot_data):
    with pytest.raises(ClientError) as excinfo:
        iot_data.get_thing_shadow(thingName="lamp", shadowName="bad/name")
    assert error_code(excinfo) == "InvalidRequestException"


def test_http_update_publishes_accepted_delta_and_documents(iot_data, messages, clock):
    now = int(clock.now)
    update(iot_data, "lamp", {"state": {"reported": {"a": 1}}}, shadow="cfg")
    messages.clear()
    accepted = update(
        iot_data, "lamp", {"state": {"desired": {"a": 2}}, "clientToken": "t1"}, shadow="cfg"
    )
    prefix = "$aws/things/lamp/shadow/name/cfg"
    assert [m.topic for m in messages] == [
        f"{prefix}/update/accepted",
        f"{prefix}/update/delta",
        f"{prefix}/update/documents",
    ]
    assert all(m.qos == 1 and not m.retain for m in messages)
    assert json.loads(messages[0].payload) == accepted
    assert json.loads(messages[1].payload) == {
        "version": 2,
        "timestamp": now,
        "state": {"a": 2},
        "metadata": {"a": {"timestamp": now}},
        "clientToken": "t1",
    }
    documents = json.loads(messages[2].payload)
    assert documents["previous"]["state"] == {"reported": {"a": 1}}
    assert documents["current"]["state"] == {"desired": {"a": 2}, "reported": {"a": 1}}
    assert documents["current"]["version"] == 2
    assert documents["clientToken"] == "t1"


def test_http_update_without_delta_and_delete_messages(iot_data, messages):
    update(iot_data, "lamp", {"state": {"reported": {"a": 1}}})
    assert [m.topic for m in messages] == [
        "$aws/things/lamp/shadow/update/accepted",
        "$aws/things/lamp/shadow/update/documents",
    ]
    messages.clear()
    deleted = json.loads(iot_data.delete_thing_shadow(thingName="lamp")["payload"].read())
    assert [m.topic for m in messages] == ["$aws/things/lamp/shadow/delete/accepted"]
    assert json.loads(messages[0].payload) == deleted


def test_refused_update_publishes_nothing(iot_data, messages):
    """AWS emits no /rejected message for a REST request: the HTTP error is the answer."""
    with pytest.raises(ClientError):
        update(iot_data, "lamp", {"state": {"desired": {"a": 1}}, "version": 3})
    assert messages == []


def test_delete_shadows_for_thing(core, iot_data, region):
    update(iot_data, "lamp", {"state": {"desired": {"a": 1}}})
    update(iot_data, "lamp", {"state": {"desired": {"a": 1}}}, shadow="cfg")
    update(iot_data, "other", {"state": {"desired": {"a": 1}}})
    store = core.core.store
    with store.transaction():
        store.delete_shadows_for_thing(region, "lamp")
    with pytest.raises(ClientError):
        get(iot_data, "lamp")
    assert iot_data.list_named_shadows_for_thing(thingName="lamp")["results"] == []
    assert get(iot_data, "other")["version"] == 1
    assert update(iot_data, "lamp", {"state": {"desired": {"a": 1}}})["version"] == 1


# -- publish and retained messages --


def test_publish_reaches_the_message_path(iot_data, messages, region):
    iot_data.publish(
        topic="plant/$line/1",
        qos=1,
        payload=b"\x00\x01binary",
        userProperties=[{"deviceName": "alpha"}, {"deviceCnt": "45"}],
        contentType="application/octet-stream",
        correlationData="Y29ycg==",
        messageExpiry=60,
    )
    assert messages == [
        MqttMessage(
            region,
            "plant/$line/1",
            b"\x00\x01binary",
            qos=1,
            user_properties=(("deviceName", "alpha"), ("deviceCnt", "45")),
            properties=((codec.MESSAGE_EXPIRY_INTERVAL, 60), (codec.CONTENT_TYPE, "application/octet-stream"),
                        (codec.CORRELATION_DATA, b"corr")),
        )
    ]
    with pytest.raises(ClientError) as excinfo:
        iot_data.get_retained_message(topic="plant/$line/1")
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_a_publish_without_mqtt5_headers_is_a_plain_message(iot_data, messages, region):
    iot_data.publish(topic="a/b", payload=b"x")
    assert messages == [Message(region, "a/b", b"x")]


@pytest.mark.parametrize("headers, why", [
    ({"correlationData": "not base64!"}, "base64"),
    ({"payloadFormatIndicator": "UTF8_DATA", "payload": b"\xff\xfe"}, "UTF-8"),
    ({"messageExpiry": -1}, "messageExpiry"),
])
def test_bad_mqtt5_headers_are_refused(iot_data, messages, headers, why):
    with pytest.raises(ClientError) as excinfo:
        iot_data.publish(**{"topic": "a/b", "payload": b"x", **headers})
    assert error_code(excinfo) == "InvalidRequestException" and why in str(excinfo.value)
    assert messages == []


def test_user_properties_as_json_text(iot_data, messages):
    iot_data.publish(topic="a/b", payload=b"x", userProperties='[{"k": "v"}]')
    assert messages[0].user_properties == (("k", "v"),)
    with pytest.raises(ClientError) as excinfo:
        iot_data.publish(topic="a/b", payload=b"x", userProperties={"k": 1})
    assert error_code(excinfo) == "InvalidRequestException"


def test_retained_publish_get_list_and_delete(iot_data, messages, clock):
    iot_data.publish(
        topic="config/site/1",
        qos=1,
        retain=True,
        payload=b'{"rate": 5}',
        userProperties=[{"schema": "v2"}],
    )
    assert messages[0].retain
    retained = iot_data.get_retained_message(topic="config/site/1")
    assert retained["topic"] == "config/site/1"
    assert retained["payload"] == b'{"rate": 5}'
    assert retained["qos"] == 1
    assert retained["lastModifiedTime"] == int(clock.now * 1000)  # epoch milliseconds
    assert json.loads(retained["userProperties"]) == [{"schema": "v2"}]

    clock.advance(5)
    iot_data.publish(topic="config/site/1", retain=True, payload=b"v2")
    iot_data.publish(topic="config/site/1", payload=b"not kept")  # no RETAIN: store unchanged
    retained = iot_data.get_retained_message(topic="config/site/1")
    assert (retained["payload"], retained["qos"]) == (b"v2", 0)
    assert retained["lastModifiedTime"] == int(clock.now * 1000)
    assert "userProperties" not in retained

    assert iot_data.list_retained_messages()["retainedTopics"] == [
        {
            "topic": "config/site/1",
            "payloadSize": 2,
            "qos": 0,
            "lastModifiedTime": int(clock.now * 1000),
        }
    ]
    messages.clear()
    iot_data.publish(topic="config/site/1", retain=True, payload=b"")
    assert messages[0].payload == b"" and messages[0].retain  # subscribers still get it
    with pytest.raises(ClientError) as excinfo:
        iot_data.get_retained_message(topic="config/site/1")
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert iot_data.list_retained_messages()["retainedTopics"] == []


def test_list_retained_messages_pages(iot_data):
    topics = [f"fleet/{n}" for n in ("c", "a", "e", "b", "d")]
    for topic in topics:
        iot_data.publish(topic=topic, retain=True, payload=topic.encode())
    seen, token = [], None
    while True:
        page = iot_data.list_retained_messages(
            maxResults=2, **({"nextToken": token} if token else {})
        )
        assert len(page["retainedTopics"]) <= 2
        seen += [item["topic"] for item in page["retainedTopics"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == sorted(topics)
    paginator = iot_data.get_paginator("list_retained_messages")
    pages = paginator.paginate(PaginationConfig={"PageSize": 3})
    assert [t["topic"] for page in pages for t in page["retainedTopics"]] == sorted(topics)


def test_retained_messages_are_regional(iot_data, core):
    iot_data.publish(topic="here", retain=True, payload=b"1")
    elsewhere = client("iot-data", core, "eu-elsewhere-9")
    assert all(t["topic"] != "here" for t in elsewhere.list_retained_messages()["retainedTopics"])


@pytest.mark.parametrize(
    "topic",
    [
        "a/+/b",
        "a/#",
        "a/b/c/d/e/f/g/h/i",  # 8 slashes; AWS allows 7
        "t" * 257,
    ],
)
def test_invalid_topics_are_invalid_requests(iot_data, topic):
    with pytest.raises(ClientError) as excinfo:
        iot_data.publish(topic=topic, payload=b"x")
    assert error_code(excinfo) == "InvalidRequestException"
    assert http_status(excinfo) == 400


def test_topic_limits_are_inclusive(iot_data, messages):
    iot_data.publish(topic="a/b/c/d/e/f/g/h", payload=b"x")
    iot_data.publish(topic="t" * 256, payload=b"x")
    # Basic Ingest's "$aws/rules/<rule>/" prefix does not count toward the limits.
    iot_data.publish(topic="$aws/rules/my_rule/a/b/c/d/e/f/g/h", payload=b"x")
    assert len(messages) == 3


def test_response_topic_must_be_a_topic_name(iot_data):
    with pytest.raises(ClientError) as excinfo:
        iot_data.publish(topic="a/b", payload=b"x", responseTopic="replies/#")
    assert error_code(excinfo) == "InvalidRequestException"


def test_reserved_topics(iot_data, messages):
    iot_data.publish(topic="$aws/things/lamp/shadow/update", payload=b"{}")
    assert messages[0].topic == "$aws/things/lamp/shadow/update"
    for topic, retain in (
        ("$aws/events/presence/connected/dev1", False),  # AWS's own topic
        ("$aws/things/lamp/shadow/update", True),  # reserved topics are never retained
    ):
        with pytest.raises(ClientError) as excinfo:
            iot_data.publish(topic=topic, payload=b"{}", retain=retain)
        assert error_code(excinfo) == "ForbiddenException"
        assert http_status(excinfo) == 403
    assert len(messages) == 1


def test_payload_limit_is_128_kb(iot_data, messages):
    iot_data.publish(topic="big", payload=b"x" * 128 * 1024)
    with pytest.raises(ClientError) as excinfo:
        iot_data.publish(topic="big", payload=b"x" * (128 * 1024 + 1), retain=True)
    assert error_code(excinfo) == "RequestEntityTooLargeException"
    assert http_status(excinfo) == 413
    assert len(messages) == 1
    assert iot_data.list_retained_messages()["retainedTopics"] == []
