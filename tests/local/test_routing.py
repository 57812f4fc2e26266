"""Routing from botocore's models: every operation's own request template routes back to it."""

from __future__ import annotations

import re

import pytest

from iot_tui.local.http.errors import ApiError
from iot_tui.local.http.restjson import find_route, service_model


@pytest.mark.parametrize("service", ["iot", "iot-data"])
def test_every_operation_routes_to_itself(service):
    model = service_model(service)
    wrong = []
    for name in model.operation_names:
        op = model.operation_model(name)
        path = re.sub(r"\{[^}]+\}", "sample-1", op.http["requestUri"].split("?")[0])
        found = find_route(service, op.http["method"], path)
        if found is None or found[0].name != name:
            wrong.append((name, path, found and found[0].name))
    assert wrong == []
    assert len(model.operation_names) > (200 if service == "iot" else 10)


def test_encoded_slashes_stay_inside_one_member():
    op, params = find_route("iot-data", "POST", "/topics/a%2Fb%2Fc")
    assert op.name == "Publish"
    assert params == {"topic": "a/b/c"}
    op, params = find_route("iot", "GET", "/things/Vehicle-VIN-001")
    assert (op.name, params) == ("DescribeThing", {"thingName": "Vehicle-VIN-001"})
    op, _ = find_route("iot-data", "GET", "/things/Vehicle-VIN-001/shadow")
    assert op.name == "GetThingShadow"


def test_wrong_method_and_unknown_path():
    with pytest.raises(ApiError) as excinfo:
        find_route("iot", "PUT", "/things/x")
    assert excinfo.value.code == "MethodNotAllowedException"
    assert find_route("iot", "GET", "/no-such-resource") is None
