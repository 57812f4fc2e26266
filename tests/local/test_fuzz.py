"""Property: whatever a client sends to any implemented operation, the core never answers 5xx,
never drops the connection, and keeps serving consistently afterwards.

Inputs come from botocore's own input shapes, valid and invalid (wrong types, missing members,
oversize strings, bad enums, odd characters), serialized by botocore's rest-json serializer and
SigV4-signed so they get past authentication; raw malformed bodies are sent as well.
"""

from __future__ import annotations

import json

import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, prepare_request_dict
from botocore.credentials import Credentials
from botocore.model import OperationModel, Shape
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.local.http.ops import HANDLERS
from iot_tui.local.http.restjson import service_model

SIGNING = {"iot": "iot", "iot-data": "iotdata"}
REGION = "us-fuzz-1"
CREDENTIALS = Credentials(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY)
ODD_TEXT = st.text(
    alphabet=st.sampled_from(list("aZ09:_-./ %$#+?&=\\\"'{}[]é😀\x00\n")), min_size=0, max_size=40
)
NAME_TEXT = st.text(alphabet=st.sampled_from(list("abcXYZ019:_-")), min_size=1, max_size=20)


def implemented() -> list[tuple[str, OperationModel]]:
    ops = []
    for service, name in sorted(HANDLERS):
        if service in SIGNING:
            ops.append((service, service_model(service).operation_model(name)))
    return ops


def _valid_string(shape: Shape) -> st.SearchStrategy:
    meta = shape.metadata
    if "enum" in meta:
        return st.sampled_from(meta["enum"])
    low = meta.get("min", 0)
    high = min(meta.get("max", 40), 40)
    return st.text(alphabet=st.sampled_from(list("abcXYZ019:_-")), min_size=low, max_size=max(low, high))


def _invalid(shape: Shape) -> st.SearchStrategy:
    """Values a careless or hostile client might put in this member."""
    meta = shape.metadata
    options = [ODD_TEXT, st.integers(-(2**63), 2**63), st.booleans(), st.none(), st.just([1, "x"]), st.just({"k": [None]})]
    if "max" in meta and shape.type_name == "string":
        options.append(st.just("x" * (int(meta["max"]) + 1)))
    if "enum" in meta:
        options.append(st.just("NOT_AN_ENUM_VALUE"))
    return st.one_of(options)


def value_for(shape: Shape, depth: int = 0) -> st.SearchStrategy:
    kind = shape.type_name
    if depth > 4:
        return st.none()
    if kind == "structure":
        members = {name: value_for(member, depth + 1) for name, member in shape.members.items()}
        required = {n: s for n, s in members.items() if n in shape.required_members}
        optional = {n: s for n, s in members.items() if n not in shape.required_members}
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "list":
        return st.lists(value_for(shape.member, depth + 1), max_size=3)
    if kind == "map":
        return st.dictionaries(NAME_TEXT, value_for(shape.value, depth + 1), max_size=3)
    if kind == "string":
        return st.one_of(_valid_string(shape), NAME_TEXT, _invalid(shape))
    if kind in ("integer", "long"):
        return st.one_of(st.integers(-5, 300), _invalid(shape))
    if kind == "boolean":
        return st.one_of(st.booleans(), _invalid(shape))
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "blob":
        return st.one_of(st.binary(max_size=64), st.just(b'{"state":{"desired":{"a":1}}}'), st.just(b"{not json"))
    if kind == "timestamp":
        return st.integers(0, 2_000_000_000)
    return st.none()


def _input_params(op: OperationModel) -> st.SearchStrategy:
    if op.input_shape is None:
        return st.just({})
    return value_for(op.input_shape).map(lambda d: {k: v for k, v in d.items() if v is not None})


@st.composite
def requests(draw) -> tuple[str, OperationModel, dict]:
    service, op = draw(st.sampled_from(implemented()))
    params = draw(_input_params(op))
    if op.input_shape is not None and op.input_shape.required_members and draw(st.booleans()):
        params.pop(draw(st.sampled_from(sorted(op.input_shape.required_members))), None)
    return service, op, params


class Sender:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=30))

    def send(self, service: str, method: str, path_and_query: str, headers: dict, body: bytes) -> int | None:
        request = AWSRequest(method=method, url=self.endpoint + path_and_query, headers=headers, data=body)
        SigV4Auth(CREDENTIALS, SIGNING[service], REGION).add_auth(request)
        prepared = request.prepare()
        if any(ord(c) < 0x20 or ord(c) == 0x7F for v in prepared.headers.values() for c in str(v)):
            return None  # not HTTP: servers reject control characters in headers before any handler
        try:
            answer = self.pool.request(
                prepared.method, prepared.url, body=prepared.body, headers=dict(prepared.headers), redirect=False
            )
        except ValueError:
            return None  # http.client refuses control characters in headers before sending

        if answer.status >= 400:
            document = json.loads(answer.data or b"{}")
            assert "message" in document, answer.data
            assert answer.headers.get("x-amzn-ErrorType"), answer.headers
        return answer.status

    def send_operation(self, service: str, op: OperationModel, params: dict) -> int | None:
        serializer = create_serializer("rest-json", include_validation=False)
        try:
            request_dict = serializer.serialize_to_request(params, op)
        except (TypeError, ValueError, AttributeError, KeyError):
            return None  # botocore itself cannot put this on the wire
        prepare_request_dict(request_dict, endpoint_url=self.endpoint)
        url = request_dict["url"][len(self.endpoint):]
        body = request_dict["body"]
        if isinstance(body, dict):
            return None
        if isinstance(body, str):
            body = body.encode()
        return self.send(service, request_dict["method"], url, request_dict["headers"], body or b"")


@pytest.fixture(scope="module")
def sender(core) -> Sender:
    return Sender(core.http_url)


def _still_consistent(sender: Sender) -> None:
    assert sender.send("iot", "GET", "/things?maxResults=5", {}, b"") == 200
    assert sender.pool.request("GET", sender.endpoint + "/_iot_tui/health").status == 200


@settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)
@given(case=requests())
def test_no_input_makes_the_core_fail(sender, case):
    service, op, params = case
    status = sender.send_operation(service, op, params)
    assume(status is not None)
    assert status < 500, (op.name, params)
    _still_consistent(sender)


@settings(max_examples=150, suppress_health_check=list(HealthCheck), deadline=None)
@given(
    case=st.sampled_from(implemented()),
    body=st.one_of(st.binary(max_size=200), st.sampled_from([b"{", b"[]", b"null", b'{"a":', b"\xff\xfe", b'"x"', b"1e999"])),
)
def test_malformed_bodies_are_client_errors(sender, case, body):
    service, op = case
    path = op.http["requestUri"].split("?")[0].replace("{", "").replace("}", "").replace("+", "")
    status = sender.send(service, op.http["method"], path, {"Content-Type": "application/json"}, body)
    assert status is not None and status < 500, (op.name, body)
    _still_consistent(sender)


def test_unsigned_requests_are_refused(core):
    answer = urllib3.PoolManager(retries=False).request("GET", core.http_url + "/things")
    assert answer.status == 403
    assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_nested_nulls_are_absent_members(sender):
    """Found by the fuzzer: `"actionType": null` inside authInfos reached the handler as None (a 500).
    AWS reads a null member as absent; a required one is then reported as missing."""
    body = json.dumps({"authInfos": [{"actionType": None, "resources": ["arn:aws:iot:us-east-1:0:topic/t"]}]})
    assert sender.send("iot", "POST", "/test-authorization", {"Content-Type": "application/json"},
                       body.encode()) == 400
    body = json.dumps({"authInfos": [{"actionType": "PUBLISH", "resources": None}]})
    assert sender.send("iot", "POST", "/test-authorization", {"Content-Type": "application/json"},
                       body.encode()) == 400
