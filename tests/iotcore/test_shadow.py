"""Device Shadow document logic, checked against the developer guide's examples."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iot_tui.iotcore.shadow import (
    DELETED_VERSION_RETENTION_SECONDS,
    MAX_NESTING_DEPTH,
    MAX_STATE_BYTES,
    MSG_NESTING,
    ShadowError,
    ShadowTopic,
    apply_update,
    compute_delta,
    delete_response,
    get_document,
    is_deleted,
    list_shadows_response,
    not_found,
    parse_client_token,
    parse_shadow_topic,
    parse_update,
    shadow_topic,
    state_size,
    tombstone,
    validate_shadow_name,
    validate_thing_name,
)

T0 = 1_700_000_000


def req(doc: Any) -> dict[str, Any]:
    """A parsed update request from a Python document."""
    return parse_update(json.dumps(doc).encode())


def update(current: dict[str, Any] | None, doc: Any, now: int = T0):
    return apply_update(current, req(doc), now)


def error_of(payload: bytes) -> ShadowError:
    with pytest.raises(ShadowError) as info:
        parse_update(payload)
    return info.value


# --- parse_update -------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (b"", 400, "Payload contains invalid json"),
        (b"{not json", 400, "Payload contains invalid json"),
        (b'{"state": {"desired": {"x": NaN}}}', 400, "Payload contains invalid json"),
        (b"\xff\xfe{}", 415, "Unsupported documented encoding; supported encoding is UTF-8"),
        (b"66", 400, "Missing required node: state"),
        (b"[]", 400, "Missing required node: state"),
        (b'{"desired": {"a": 1}}', 400, "Missing required node: state"),
        (b'{"state": 5}', 400, "State node must be an object"),
        (b'{"state": [1]}', 400, "State node must be an object"),
        (b'{"state": {"desired": 1}}', 400, "Desired node must be an object"),
        (b'{"state": {"reported": "x"}}', 400, "Reported node must be an object"),
        (b'{"state": {"delta": {"a": 1}}}', 400, "State contains an invalid node"),
        (b'{"state": {}, "version": "3"}', 400, "Invalid version"),
        (b'{"state": {}, "version": true}', 400, "Invalid version"),
        (b'{"state": {}, "version": 1.5}', 400, "Invalid version"),
        (b'{"state": {}, "version": -1}', 400, "Invalid version"),
        (b'{"state": {}, "clientToken": 7}', 400, "Invalid clientToken"),
        (b'{"state": {"desired": {"c": [null, "RED"]}}}', 400, "Payload contains invalid json"),
    ],
)
def test_parse_update_rejects_with_aws_messages(payload: bytes, code: int, message: str) -> None:
    err = error_of(payload)
    assert (err.code, err.message) == (code, message)


def test_client_token_limit_is_64_utf8_bytes() -> None:
    assert (
        parse_update(json.dumps({"state": {}, "clientToken": "a" * 64}).encode())["clientToken"]
        == "a" * 64
    )
    err = error_of(json.dumps({"state": {}, "clientToken": "é" * 33}).encode())  # 66 bytes
    assert (err.code, err.message) == (400, "Invalid clientToken")


def test_nesting_limit_is_six_levels_inside_desired() -> None:
    assert MAX_NESTING_DEPTH == 6
    six: Any = 1
    for _ in range(6):
        six = {"k": six}
    ok = parse_update(json.dumps({"state": {"desired": six}}).encode())  # desired object = 6
    assert ok["state"]["desired"] == six
    err = error_of(json.dumps({"state": {"reported": {"k": six}}}).encode())
    assert (err.code, err.message) == (
        400,
        "JSON contains too many levels of nesting; maximum is 6",
    )
    # Arrays count as levels too: the desired object plus five arrays is six.
    assert parse_update(b'{"state": {"desired": {"a": [[[[[1]]]]]}}}')
    assert error_of(b'{"state": {"desired": {"a": [[[[[[1]]]]]]}}}').message.startswith("JSON")
    # Far deeper than Python's parser recursion is still a clean 400.
    assert error_of(b"[" * 100_000).message == MSG_NESTING


def test_parse_update_keeps_nulls_drops_unknown_top_level_keys() -> None:
    doc = {
        "state": {"desired": None, "reported": {"engine": None}},
        "version": 3,
        "clientToken": "tok",
        "timestamp": 0,
        "metadata": {},
    }
    assert req(doc) == {
        "state": {"desired": None, "reported": {"engine": None}},
        "version": 3,
        "clientToken": "tok",
    }
    assert req({"state": None}) == {"state": None}


def test_invalid_request_error_still_carries_the_client_token() -> None:
    err = error_of(b'{"state": {"bogus": 1}, "clientToken": "abc"}')
    assert err.to_rejected(None, T0) == {
        "code": 400,
        "message": "State contains an invalid node",
        "timestamp": T0,
        "clientToken": "abc",
    }


def test_parse_client_token_for_get_and_delete() -> None:
    assert parse_client_token(b"") is None
    assert parse_client_token(b"junk") is None
    assert parse_client_token(b'{"clientToken": "x1"}') == "x1"
    assert parse_client_token(json.dumps({"clientToken": "a" * 65}).encode()) is None


# --- ShadowError ---------------------------------------------------------------


def test_rejected_payload_code_is_an_int_and_token_optional() -> None:
    err = ShadowError(404, "No shadow exists with name: 'lamp'")
    assert err.to_rejected(None, T0) == {
        "code": 404,
        "message": "No shadow exists with name: 'lamp'",
        "timestamp": T0,
    }
    assert err.to_rejected("t", T0)["clientToken"] == "t"
    assert err.error_type == "ResourceNotFoundException"
    assert err.to_http_body() == {"message": "No shadow exists with name: 'lamp'"}


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (400, "InvalidRequestException"),
        (401, "UnauthorizedException"),
        (403, "ForbiddenException"),
        (409, "ConflictException"),
        (413, "RequestEntityTooLargeException"),
        (415, "UnsupportedDocumentEncodingException"),
        (429, "ThrottlingException"),
        (500, "InternalFailureException"),
    ],
)
def test_error_types_follow_the_iot_data_model(code: int, error_type: str) -> None:
    assert ShadowError(code, "m").error_type == error_type


def test_not_found_names_the_thing_for_the_classic_shadow() -> None:
    assert not_found("lamp").message == "No shadow exists with name: 'lamp'"
    assert not_found("lamp", "simShadow1").message == "No shadow exists with name: 'simShadow1'"


# --- apply_update ---------------------------------------------------------------


def test_first_update_creates_version_1_with_array_metadata() -> None:
    # "Using shadows" tutorial: reported ColorRGB array, metadata one entry per element.
    result = update(
        None,
        {
            "state": {"reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}},
            "clientToken": "c",
        },
    )
    ts = {"timestamp": T0}
    assert result.accepted == {
        "state": {"reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}},
        "metadata": {"reported": {"ID": ts, "ColorRGB": [ts, ts, ts]}},
        "version": 1,
        "timestamp": T0,
        "clientToken": "c",
    }
    assert result.stored == {
        "state": {"reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}},
        "metadata": {"reported": {"ID": ts, "ColorRGB": [ts, ts, ts]}},
        "version": 1,
        "timestamp": T0,
    }
    assert result.delta is None
    assert result.documents == {
        "previous": None,
        "current": {
            "state": result.stored["state"],
            "metadata": result.stored["metadata"],
            "version": 1,
        },
        "timestamp": T0,
        "clientToken": "c",
    }


def test_tutorial_flow_desired_then_reported() -> None:
    v1 = update(None, {"state": {"reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}}})
    v2 = update(v1.stored, {"state": {"desired": {"ColorRGB": [255, 255, 0]}}}, T0 + 10)
    t10 = {"timestamp": T0 + 10}
    assert v2.delta == {
        "version": 2,
        "timestamp": T0 + 10,
        "state": {"ColorRGB": [255, 255, 0]},
        "metadata": {"ColorRGB": [t10, t10, t10]},
    }
    # Accepted only echoes what the request contained.
    assert v2.accepted["state"] == {"desired": {"ColorRGB": [255, 255, 0]}}
    assert v2.accepted["metadata"] == {"desired": {"ColorRGB": [t10, t10, t10]}}

    v3 = update(v2.stored, {"state": {"reported": {"ColorRGB": [255, 255, 0]}}}, T0 + 20)
    assert v3.delta is None
    t0, t20 = {"timestamp": T0}, {"timestamp": T0 + 20}
    assert v3.documents["previous"] == {
        "state": {
            "desired": {"ColorRGB": [255, 255, 0]},
            "reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]},
        },
        "metadata": {
            "desired": {"ColorRGB": [t10, t10, t10]},
            "reported": {"ID": t0, "ColorRGB": [t0, t0, t0]},
        },
        "version": 2,
    }
    assert v3.documents["current"]["metadata"]["reported"] == {
        "ID": t0,
        "ColorRGB": [t20, t20, t20],
    }
    assert v3.documents["current"]["version"] == 3


def test_merge_is_recursive_and_null_deletes() -> None:
    # "Using shadows": reported color {r,g,b}, then desired {color: {r: 10}, engine: ON}.
    v1 = update(None, {"state": {"reported": {"color": {"r": 255, "g": 255, "b": 0}}}})
    v2 = update(v1.stored, {"state": {"desired": {"color": {"r": 10}, "engine": "ON"}}}, T0 + 5)
    assert v2.delta is not None
    assert v2.delta["state"] == {"color": {"r": 10}, "engine": "ON"}
    v3 = update(v2.stored, {"state": {"reported": {"color": {"r": 10}, "engine": "ON"}}}, T0 + 9)
    assert v3.stored["state"]["reported"] == {"color": {"r": 10, "g": 255, "b": 0}, "engine": "ON"}
    assert v3.stored["metadata"]["reported"] == {
        "color": {"r": {"timestamp": T0 + 9}, "g": {"timestamp": T0}, "b": {"timestamp": T0}},
        "engine": {"timestamp": T0 + 9},
    }
    assert v3.delta is None
    v4 = update(v3.stored, {"state": {"reported": {"color": {"g": None}, "engine": None}}}, T0 + 12)
    assert v4.stored["state"]["reported"] == {"color": {"r": 10, "b": 0}}
    assert v4.stored["metadata"]["reported"] == {
        "color": {"r": {"timestamp": T0 + 9}, "b": {"timestamp": T0}}
    }
    # The accepted document mirrors the request, nulls and all.
    assert v4.accepted["state"] == {"reported": {"color": {"g": None}, "engine": None}}
    assert v4.accepted["metadata"] == {
        "reported": {"color": {"g": {"timestamp": T0 + 12}}, "engine": {"timestamp": T0 + 12}}
    }


def test_deleting_data_example() -> None:
    # "Deleting data": desired null removes the section, reported.engine null removes a key.
    v1 = update(
        None,
        {
            "state": {
                "desired": {"lights": {"color": "RED"}, "engine": "ON"},
                "reported": {"lights": {"color": "GREEN"}, "engine": "OFF"},
            }
        },
    )
    v2 = update(v1.stored, {"state": {"desired": None, "reported": {"engine": None}}}, T0 + 1)
    assert v2.stored["state"] == {"reported": {"lights": {"color": "GREEN"}}}
    assert v2.stored["metadata"] == {"reported": {"lights": {"color": {"timestamp": T0}}}}
    assert v2.accepted["metadata"] == {
        "desired": {"timestamp": T0 + 1},
        "reported": {"engine": {"timestamp": T0 + 1}},
    }


def test_state_null_clears_everything_but_keeps_the_shadow() -> None:
    v1 = update(None, {"state": {"desired": {"a": 1}, "reported": {"a": 2}}})
    v2 = update(v1.stored, {"state": None, "clientToken": "z"}, T0 + 3)
    # Real AWS answer: {"state":null,"metadata":{"timestamp":t},"version":n,"timestamp":t}
    assert v2.accepted == {
        "state": None,
        "metadata": {"timestamp": T0 + 3},
        "version": 2,
        "timestamp": T0 + 3,
        "clientToken": "z",
    }
    assert v2.stored == {"state": {}, "metadata": {}, "version": 2, "timestamp": T0 + 3}
    assert v2.delta is None
    assert get_document(v2.stored, T0 + 4) == {
        "state": {},
        "metadata": {},
        "version": 2,
        "timestamp": T0 + 4,
    }


def test_section_emptied_by_deletes_is_removed() -> None:
    v1 = update(None, {"state": {"desired": {"a": 1}, "reported": {"b": 2}}})
    v2 = update(v1.stored, {"state": {"desired": {"a": None}}}, T0 + 1)
    assert v2.stored["state"] == {"reported": {"b": 2}}
    assert "desired" not in v2.stored["metadata"]


def test_arrays_are_replaced_whole() -> None:
    v1 = update(None, {"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}})
    v2 = update(v1.stored, {"state": {"desired": {"colors": ["RED"]}}}, T0 + 1)
    assert v2.stored["state"]["desired"] == {"colors": ["RED"]}
    assert v2.stored["metadata"]["desired"] == {"colors": [{"timestamp": T0 + 1}]}


def test_array_of_objects_metadata_mirrors_each_element() -> None:
    v1 = update(None, {"state": {"reported": {"l": [{"a": 1, "b": [2]}, 3]}}})
    ts = {"timestamp": T0}
    assert v1.stored["metadata"]["reported"] == {"l": [{"a": ts, "b": [ts]}, ts]}


def test_value_can_change_type() -> None:
    v1 = update(None, {"state": {"reported": {"x": 5}}})
    v2 = update(v1.stored, {"state": {"reported": {"x": {"y": 1}}}}, T0 + 1)
    assert v2.stored["state"]["reported"] == {"x": {"y": 1}}
    assert v2.stored["metadata"]["reported"] == {"x": {"y": {"timestamp": T0 + 1}}}
    v3 = update(v2.stored, {"state": {"reported": {"x": [1]}}}, T0 + 2)
    assert v3.stored["metadata"]["reported"] == {"x": [{"timestamp": T0 + 2}]}
    # An object made only of deletions adds nothing.
    v4 = update(v3.stored, {"state": {"reported": {"z": {"q": None}}}}, T0 + 3)
    assert v4.stored["state"]["reported"] == {"x": [1]}


def test_version_must_match_current() -> None:
    # "Optimistic locking": version 10 current, 9 rejected, 10 accepted -> 11.
    stored = {
        "state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}},
        "metadata": {"desired": {"colors": [{"timestamp": 1}] * 3}},
        "version": 10,
        "timestamp": 1,
    }
    with pytest.raises(ShadowError) as info:
        update(
            stored, {"state": {"desired": {"colors": ["BLUE"]}}, "version": 9, "clientToken": "k"}
        )
    assert (info.value.code, info.value.message) == (409, "Version conflict")
    assert info.value.to_rejected(None, T0)["clientToken"] == "k"
    ok = update(stored, {"state": {"desired": {"colors": ["BLUE"]}}, "version": 10})
    assert ok.stored["version"] == 11
    assert ok.stored["state"] == {"desired": {"colors": ["BLUE"]}}
    assert stored["version"] == 10  # input untouched


def test_new_shadow_current_version_is_zero() -> None:
    assert update(None, {"state": {"desired": {"a": 1}}, "version": 0}).stored["version"] == 1
    with pytest.raises(ShadowError) as info:
        update(None, {"state": {"desired": {"a": 1}}, "version": 1})
    assert info.value.code == 409


def test_size_limit_counts_desired_and_reported_only() -> None:
    # {"k":"<n x's>"} is n + 8 bytes; fill desired to exactly the limit.
    exact = {"k": "x" * (MAX_STATE_BYTES - 8)}
    v1 = update(None, {"state": {"desired": exact}})
    assert state_size(v1.stored["state"]) == MAX_STATE_BYTES
    with pytest.raises(ShadowError) as info:
        update(v1.stored, {"state": {"reported": {"z": 1}}})
    assert (info.value.code, info.value.message) == (
        413,
        "The payload exceeds the maximum size allowed",
    )
    # Deleting brings it back under.
    shrunk = update(v1.stored, {"state": {"desired": {"k": None}, "reported": {"z": 1}}})
    assert shrunk.stored["state"] == {"reported": {"z": 1}}


def test_size_counts_utf8_bytes_not_characters() -> None:
    assert state_size({"desired": {"k": "é"}}) == len('{"k":"é"}'.encode())


# --- delta -------------------------------------------------------------------------


def test_delta_example_from_the_guide() -> None:
    stored = update(
        None,
        {
            "state": {
                "desired": {"color": "RED", "state": "STOP"},
                "reported": {"color": "GREEN", "engine": "ON"},
            }
        },
    ).stored
    doc = get_document(stored, T0 + 1, "tok")
    ts = {"timestamp": T0}
    assert doc["state"]["delta"] == {"color": "RED", "state": "STOP"}
    assert doc["metadata"]["delta"] == {"color": ts, "state": ts}
    assert list(doc["state"]) == ["desired", "reported", "delta"]
    assert doc["timestamp"] == T0 + 1 and doc["clientToken"] == "tok" and doc["version"] == 1


def test_nested_delta_keeps_the_path_to_the_root() -> None:
    stored = update(
        None,
        {
            "state": {
                "desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}},
                "reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}},
            }
        },
    ).stored
    assert compute_delta(stored) == (
        {"lights": {"color": {"g": 255}}},
        {"lights": {"color": {"g": {"timestamp": T0}}}},
    )


def test_delta_rules_from_the_mqtt_topics_page() -> None:
    v1 = update(None, {"state": {"reported": {"only_reported": 1, "same": 2, "gone": 3}}})
    v2 = update(v1.stored, {"state": {"desired": {"same": 2, "new": 4, "gone": 3}}}, T0 + 1)
    assert v2.delta is not None
    assert v2.delta["state"] == {"new": 4}  # same is equal, only_reported is left out
    v3 = update(v2.stored, {"state": {"reported": {"gone": None}}}, T0 + 2)
    assert v3.delta is not None
    assert v3.delta["state"] == {"new": 4, "gone": 3}  # deleted from reported, still desired
    assert v3.delta["metadata"] == {"new": {"timestamp": T0 + 1}, "gone": {"timestamp": T0 + 1}}


def test_delta_compares_json_values_not_python_values() -> None:
    stored = update(
        None,
        {
            "state": {
                "desired": {"a": 1, "b": True, "c": [1, 2]},
                "reported": {"a": 1.0, "b": 1, "c": [2, 1]},
            }
        },
    ).stored
    found = compute_delta(stored)
    assert found is not None
    assert found[0] == {"b": True, "c": [1, 2]}


def test_get_without_delta_when_in_sync() -> None:
    stored = update(None, {"state": {"desired": {"a": 1}, "reported": {"a": 1, "b": 2}}}).stored
    doc = get_document(stored, T0 + 7)
    assert doc == {
        "state": {"desired": {"a": 1}, "reported": {"a": 1, "b": 2}},
        "metadata": {
            "desired": {"a": {"timestamp": T0}},
            "reported": {"a": {"timestamp": T0}, "b": {"timestamp": T0}},
        },
        "version": 1,
        "timestamp": T0 + 7,
    }


def test_outputs_do_not_share_objects_with_stored() -> None:
    result = update(None, {"state": {"desired": {"a": {"b": [1]}}}})
    assert result.delta is not None
    result.delta["state"]["a"]["b"].append(2)
    result.accepted["state"]["desired"]["a"]["b"].append(3)
    result.documents["current"]["state"]["desired"]["a"]["b"].append(4)
    get_document(result.stored, T0)["state"]["desired"]["a"]["b"].append(5)
    assert result.stored["state"]["desired"] == {"a": {"b": [1]}}


# --- get / delete -------------------------------------------------------------------


def test_get_missing_shadow_is_404_with_aws_message() -> None:
    with pytest.raises(ShadowError) as info:
        get_document(None, T0, "tok", thing_name="lamp")
    assert info.value.to_rejected(None, T0) == {
        "code": 404,
        "message": "No shadow exists with name: 'lamp'",
        "timestamp": T0,
        "clientToken": "tok",
    }
    with pytest.raises(ShadowError) as info:
        get_document(None, T0, thing_name="lamp", shadow_name="cfg")
    assert info.value.message == "No shadow exists with name: 'cfg'"


def test_delete_then_recreate_continues_the_version() -> None:
    stored = update(None, {"state": {"reported": {"a": 1}}}).stored
    stored = update(stored, {"state": {"reported": {"a": 2}}}, T0 + 1).stored
    assert delete_response(stored, T0 + 2, "d") == {
        "version": 2,
        "timestamp": T0 + 2,
        "clientToken": "d",
    }
    gone = tombstone(stored, T0 + 2)
    assert is_deleted(gone) and not is_deleted(stored) and not is_deleted(None)
    with pytest.raises(ShadowError) as info:
        get_document(gone, T0 + 3, thing_name="lamp")
    assert info.value.code == 404
    with pytest.raises(ShadowError) as info:
        delete_response(gone, T0 + 3, thing_name="lamp")
    assert info.value.message == "No shadow exists with name: 'lamp'"

    again = update(gone, {"state": {"reported": {"b": 1}}}, T0 + 100)
    assert again.stored["version"] == 3
    assert again.stored["state"] == {"reported": {"b": 1}}  # nothing of the old state
    assert again.documents["previous"] is None
    with pytest.raises(ShadowError):
        update(gone, {"state": {}, "version": 0}, T0 + 100)
    assert update(gone, {"state": {}, "version": 2}, T0 + 100).stored["version"] == 3


def test_version_restarts_after_48_hours() -> None:
    gone = tombstone(update(None, {"state": {"reported": {"a": 1}}}).stored, T0)
    later = T0 + DELETED_VERSION_RETENTION_SECONDS + 1
    assert update(gone, {"state": {"reported": {"a": 1}}}, later).stored["version"] == 1
    quick = apply_update(gone, req({"state": {}}), T0 + 11, version_retention=10)
    assert quick.stored["version"] == 1


def test_delete_missing_shadow_is_404() -> None:
    with pytest.raises(ShadowError) as info:
        delete_response(None, T0, thing_name="lamp", shadow_name="cfg")
    assert (info.value.code, info.value.message) == (404, "No shadow exists with name: 'cfg'")


def test_list_shadows_response() -> None:
    assert list_shadows_response(["a", "b"], T0) == {"results": ["a", "b"], "timestamp": T0}
    assert list_shadows_response([], T0, "n")["nextToken"] == "n"


# --- names and topics --------------------------------------------------------------


def test_names() -> None:
    validate_shadow_name(None)
    validate_shadow_name("")
    validate_shadow_name("simShadow1:a_b-c")
    validate_shadow_name("$package")
    validate_shadow_name("x" * 64)
    for bad in ("x" * 65, "a/b", "a b", "a+", "a#"):
        with pytest.raises(ShadowError) as info:
            validate_shadow_name(bad)
        assert info.value.code == 400
    validate_thing_name("t" * 128)
    for bad in ("", "t" * 129, "a/b", "$t"):
        with pytest.raises(ShadowError):
            validate_thing_name(bad)


def test_build_topics() -> None:
    assert shadow_topic("lamp", None, "update") == "$aws/things/lamp/shadow/update"
    assert shadow_topic("lamp", "", "get/accepted") == "$aws/things/lamp/shadow/get/accepted"
    assert (
        shadow_topic("lamp", "simShadow1", "/update/delta")
        == "$aws/things/lamp/shadow/name/simShadow1/update/delta"
    )


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("$aws/things/lamp/shadow/update", ("lamp", None, "update", None)),
        ("$aws/things/lamp/shadow/get/accepted", ("lamp", None, "get", "accepted")),
        ("$aws/things/lamp/shadow/update/documents", ("lamp", None, "update", "documents")),
        ("$aws/things/lamp/shadow/name/s1/delete", ("lamp", "s1", "delete", None)),
        ("$aws/things/lamp/shadow/name/s1/update/delta", ("lamp", "s1", "update", "delta")),
        ("$aws/things/lamp/shadow/get/delta", None),  # delta exists for update only
        ("$aws/things/lamp/shadow/list", None),
        ("$aws/things/lamp/shadow", None),
        ("$aws/things/lamp/shadow/name/s1", None),
        ("$aws/things/lamp/shadow/name//update", None),
        ("$aws/things/lamp/shadow/update/accepted/x", None),
        ("$aws/things/la mp/shadow/update", None),
        ("$aws/things/lamp/jobs/get", None),
        ("things/lamp/shadow/update", None),
    ],
)
def test_parse_topics(topic: str, expected: tuple | None) -> None:
    parsed = parse_shadow_topic(topic)
    assert parsed == expected
    if parsed is not None:
        assert isinstance(parsed, ShadowTopic)
        suffix = parsed.operation + (f"/{parsed.suffix}" if parsed.suffix else "")
        assert shadow_topic(parsed.thing, parsed.shadow_name, suffix) == topic


# --- properties ---------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c"])
SCALARS = st.one_of(st.integers(-3, 3), st.booleans(), st.sampled_from(["x", "y"]))
VALUES = st.recursive(
    SCALARS | st.lists(SCALARS, max_size=3),
    lambda inner: st.dictionaries(KEYS, inner | st.none(), max_size=3),
    max_leaves=8,
)
SECTION = st.one_of(st.none(), st.dictionaries(KEYS, VALUES | st.none(), max_size=3))
STATE = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"desired": SECTION, "reported": SECTION}),
)


def _paths(delta: dict[str, Any], prefix: tuple[str, ...] = ()):
    for key, value in delta.items():
        if isinstance(value, dict) and value:
            yield from _paths(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _lookup(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return KeyError
        doc = doc[key]
    return doc


def _mirrors(state: Any, meta: Any, now_max: int) -> bool:
    if isinstance(state, dict):
        return (
            isinstance(meta, dict)
            and state.keys() == meta.keys()
            and all(_mirrors(state[k], meta[k], now_max) for k in state)
        )
    if isinstance(state, list):
        return (
            isinstance(meta, list)
            and len(meta) == len(state)
            and all(_mirrors(s, m, now_max) for s, m in zip(state, meta, strict=True))
        )
    return isinstance(meta, dict) and meta.keys() == {"timestamp"} and meta["timestamp"] <= now_max


@settings(max_examples=150, deadline=None)
@given(st.lists(STATE, min_size=1, max_size=8))
def test_random_updates_keep_every_invariant(states: list[Any]) -> None:
    stored: dict[str, Any] | None = None
    for step, state in enumerate(states):
        now = T0 + step
        result = apply_update(stored, {"state": state}, now)
        new = result.stored
        assert new["version"] == step + 1
        assert result.accepted["version"] == new["version"]
        expected_previous = (
            None
            if stored is None
            else {"state": stored["state"], "metadata": stored["metadata"], "version": step}
        )
        assert result.documents["previous"] == expected_previous
        assert result.documents["current"] == {
            "state": new["state"],
            "metadata": new["metadata"],
            "version": new["version"],
        }
        assert set(new["state"]) <= {"desired", "reported"}
        assert all(new["state"][s] for s in new["state"])  # no empty sections
        assert _mirrors(new["state"], new["metadata"], now)
        assert json.dumps(result.accepted)  # serialisable as-is

        reported = new["state"].get("reported", {})
        desired = new["state"].get("desired", {})
        if result.delta is None:
            assert compute_delta(new) is None
        else:
            assert result.delta["version"] == new["version"]
            assert _mirrors(result.delta["state"], result.delta["metadata"], now)
            for path, value in _paths(result.delta["state"]):
                assert _lookup(desired, path) == value
                assert _lookup(reported, path) != value or type(
                    _lookup(reported, path)
                ) is not type(value)
            # Reporting what is desired clears the delta.
            synced = apply_update(new, {"state": {"reported": desired}}, now)
            assert synced.delta is None
        stored = new
