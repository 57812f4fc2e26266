"""AWS's query protocol (STS, IAM): form-encoded `Action=...` requests and XML answers, from the model."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import OperationModel, Shape

from iot_tui.local.http.errors import ApiError, invalid_request
from iot_tui.local.http.restjson import Response, service_model
from iot_tui.local.http.validate import validate_input

XMLNS = {
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
}


def find_operation(service: str, form: dict[str, str]) -> OperationModel:
    action = form.get("Action", "")
    model = service_model(service)
    if action not in model.operation_names:
        raise ApiError("InvalidAction", f"Could not find operation {action} for version {form.get('Version', '')}", 400)
    return model.operation_model(action)


def parse_form(query: str, body: bytes) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _read(shape: Shape, form: dict[str, str], prefix: str) -> Any:
    """Rebuild a value from flattened keys such as `Tags.member.1.Key`."""
    kind = shape.type_name
    if kind == "structure":
        result = {}
        for name, member in shape.members.items():
            value = _read(member, form, f"{prefix}.{name}" if prefix else name)
            if value is not None:
                result[name] = value
        return result if result or not prefix else None
    if kind == "list":
        items, index = [], 1
        while True:
            key = f"{prefix}.member.{index}"
            if not any(k == key or k.startswith(key + ".") for k in form):
                break
            items.append(_read(shape.member, form, key))
            index += 1
        return items or None
    if kind == "map":
        result, index = {}, 1
        while f"{prefix}.entry.{index}.key" in form:
            key = form[f"{prefix}.entry.{index}.key"]
            result[key] = _read(shape.value, form, f"{prefix}.entry.{index}.value")
            index += 1
        return result or None
    raw = form.get(prefix)
    if raw is None:
        return None
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
    except ValueError:
        raise invalid_request(f"Value '{raw}' at '{prefix}' is not a valid {kind}") from None
    if kind == "boolean":
        return raw.lower() == "true"
    return raw


def bind_input(op: OperationModel, form: dict[str, str]) -> dict[str, Any]:
    if op.input_shape is None:
        return {}
    params = {}
    for name, member in op.input_shape.members.items():
        value = _read(member, form, name)
        if value is not None:
            params[name] = value
    # Query services answer ValidationError and name members in camelCase ('roleName').
    validate_input(op.input_shape, params, code="ValidationError", member_name=lambda n: n[:1].lower() + n[1:])
    return params


def _xml(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "structure":
        return "".join(
            f"<{name}>{_xml(shape.members[name], item)}</{name}>"
            for name, item in value.items()
            if name in shape.members and item is not None
        )
    if kind == "list":
        return "".join(f"<member>{_xml(shape.member, item)}</member>" for item in value)
    if kind == "map":
        return "".join(
            f"<entry><key>{escape(str(k))}</key><value>{_xml(shape.value, v)}</value></entry>"
            for k, v in value.items()
        )
    if kind == "timestamp":
        if isinstance(value, (int, float)):
            value = dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "boolean":
        return "true" if value else "false"
    return escape(str(value))


def serialize_output(service: str, op: OperationModel, result: dict[str, Any] | None, request_id: str) -> Response:
    name = op.name
    inner = ""
    if op.output_shape is not None and result:
        inner = f"<{name}Result>{_xml(op.output_shape, result)}</{name}Result>"
    body = (
        f'<{name}Response xmlns="{XMLNS.get(service, "")}">{inner}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{name}Response>"
    )
    return Response(200, {"Content-Type": "text/xml"}, body.encode())


def serialize_error(service: str, error: ApiError, request_id: str) -> Response:
    status = error.status
    if status is None:
        try:
            shape = service_model(service).shape_for(error.code)
            status = int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
            code = shape.metadata.get("error", {}).get("code", error.code)
        except Exception:
            status, code = 400, error.code
    else:
        code = error.code
    kind = "Receiver" if status >= 500 else "Sender"
    body = (
        f'<ErrorResponse xmlns="{XMLNS.get(service, "")}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return Response(status, {"Content-Type": "text/xml"}, body.encode())
