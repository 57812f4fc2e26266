"""The rest-json protocol of `iot` and `iot-data`, driven by botocore's own service models.

Routing, parameter binding, validation and response serialization all read the model, so every
operation AWS defines reaches a handler or a clear error, and validation messages match AWS's.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from iot_tui.local.http.errors import ApiError, invalid_request
from iot_tui.local.http.validate import validate_input


@cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    literal_length: int
    operation: OperationModel


def _compile_template(template: str) -> tuple[re.Pattern[str], int]:
    """`/things/{thingName}` -> a regex on the still-encoded path; `{name+}` is greedy."""
    path = template.split("?", 1)[0]
    regex, literal = "", 0
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            name = part[1:-1]
            if name.endswith("+"):
                regex += f"(?P<{name[:-1]}>.+)"
            else:
                regex += f"(?P<{name}>[^/]+)"
        else:
            regex += re.escape(part)
            literal += len(part)
    return re.compile(f"^{regex}/?$" if path != "/" else "^/$"), literal


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") else ""


@cache
def routes(service: str) -> dict[str, tuple[Route, ...]]:
    """Operations grouped by the literal first path segment, most specific template first.

    Grouping keeps a request to the couple of dozen templates that could match it instead of all
    272; a template whose first segment is a variable is tried for every path (key "").
    """
    model = service_model(service)
    groups: dict[str, list[Route]] = {}
    for name in model.operation_names:
        op = model.operation_model(name)
        template = op.http["requestUri"]
        pattern, literal = _compile_template(template)
        first = _first_segment(template)
        groups.setdefault("" if first.startswith("{") else first, []).append(Route(op.http["method"], pattern, literal, op))
    return {
        key: tuple(sorted(table, key=lambda r: (-r.literal_length, r.pattern.pattern.count("(?P"))))
        for key, table in groups.items()
    }


def find_route(service: str, method: str, raw_path: str) -> tuple[OperationModel, dict[str, str]] | None:
    table = routes(service)
    candidates = table.get(_first_segment(raw_path), ()) + table.get("", ())
    path_matched = False
    for route in candidates:
        match = route.pattern.match(raw_path)
        if match is None:
            continue
        path_matched = True
        if route.method == method:
            return route.operation, {k: unquote(v) for k, v in match.groupdict().items()}
    if path_matched:
        raise ApiError("MethodNotAllowedException", f"The method {method} is not allowed on {raw_path}", 405)
    return None


def _coerce_text(value: str, shape: Shape, where: str) -> Any:
    """Query strings and headers carry text; the model says what type it stands for."""
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(value)
        if kind in ("float", "double"):
            return float(value)
    except ValueError:
        raise invalid_request(f"Value '{value}' at '{where}' is not a valid {kind}") from None
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise invalid_request(f"Value '{value}' at '{where}' is not a valid boolean")
        return value.lower() == "true"
    if kind == "string" and shape.serialization.get("jsonvalue"):
        try:
            return json.loads(base64.b64decode(value))
        except ValueError:
            raise invalid_request(f"Value at '{where}' is not base64-encoded JSON") from None
    return value


def _decode_body_value(value: Any, shape: Shape) -> Any:
    """JSON bodies carry blobs as base64; everything else is already typed. A member given as
    null is absent, as AWS reads it (handlers then see no key, never a None)."""
    if shape.type_name == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return value  # left for the validator to reject
    if shape.type_name == "structure" and isinstance(value, dict):
        return {
            k: _decode_body_value(v, shape.members[k]) if k in shape.members else v
            for k, v in value.items() if v is not None
        }
    if shape.type_name == "list" and isinstance(value, list):
        return [_decode_body_value(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _decode_body_value(v, shape.value) for k, v in value.items()}
    return value


def bind_input(
    op: OperationModel,
    uri_params: dict[str, str],
    query: str,
    headers: dict[str, str],
    body: bytes,
) -> dict[str, Any]:
    """Gather an operation's members from the path, query string, headers and body, typed and validated."""
    shape = op.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    query_pairs = parse_qsl(query, keep_blank_values=True)
    payload_member = shape.serialization.get("payload")
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in uri_params:
                params[name] = _coerce_text(uri_params[wire], member, name)
        elif location == "querystring":
            if member.type_name == "list":
                values = [v for k, v in query_pairs if k == wire]
                if values:
                    params[name] = [_coerce_text(v, member.member, name) for v in values]
            elif member.type_name == "map":
                params[name] = dict(query_pairs)
            else:
                for k, v in query_pairs:
                    if k == wire:
                        params[name] = _coerce_text(v, member, name)
        elif location == "header":
            value = headers.get(wire.lower())
            if value is not None:
                params[name] = _coerce_text(value, member, name)
    if payload_member:
        member = shape.members[payload_member]
        if member.type_name in ("blob", "string"):
            if body:
                params[payload_member] = body
        elif body:
            params[payload_member] = _decode_body_value(_parse_json_body(body), member)
    elif any(not m.serialization.get("location") for m in shape.members.values()):
        document = _parse_json_body(body) if body.strip() else {}
        if not isinstance(document, dict):
            raise invalid_request("The request body must be a JSON object")
        for name, value in document.items():
            member = shape.members.get(name)
            if member is not None and not member.serialization.get("location") and value is not None:
                params[name] = _decode_body_value(value, member)
    validate_input(shape, params)
    return params


def _parse_json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise invalid_request("The request body is not valid JSON") from None


def _jsonable(value: Any, shape: Shape | None) -> Any:
    if value is None:
        return None
    kind = shape.type_name if shape is not None else None
    if kind == "blob" and isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if kind == "structure" and isinstance(value, dict):
        return {
            k: _jsonable(v, shape.members.get(k)) for k, v in value.items() if v is not None
        }
    if kind == "list" and isinstance(value, (list, tuple)):
        return [_jsonable(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _jsonable(v, shape.value) for k, v in value.items()}
    return value


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def serialize_output(op: OperationModel, result: dict[str, Any] | None) -> Response:
    """Place each output member where the model says: headers, a raw payload, or the JSON body."""
    status = int(op.http.get("responseCode", 200))
    shape = op.output_shape
    headers = {"Content-Type": "application/json"}
    if shape is None or not result:
        return Response(status, headers, b"{}" if shape is not None else b"")
    payload_member = shape.serialization.get("payload")
    document: dict[str, Any] = {}
    body: bytes | None = None
    for name, value in result.items():
        member = shape.members.get(name)
        if member is None or value is None:
            continue
        location = member.serialization.get("location")
        if location == "header":
            headers[member.serialization.get("name", name)] = str(value)
        elif location == "statusCode":
            status = int(value)
        elif name == payload_member:
            body = value if isinstance(value, bytes) else json.dumps(_jsonable(value, member)).encode()
        else:
            document[name] = _jsonable(value, member)
    if body is None:
        body = json.dumps(document).encode()
    return Response(status, headers, body)


def serialize_error(service: str, error: ApiError) -> Response:
    """AWS's rest-json error: `x-amzn-ErrorType` header and a JSON body with `message`."""
    status = error.status
    if status is None:
        try:
            shape = service_model(service).shape_for(error.code)
            status = int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
        except Exception:  # the code is not in this service's model
            status = 400
    body = {"message": error.message, **error.fields}
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
    return Response(status, headers, json.dumps(body).encode())
