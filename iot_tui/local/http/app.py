"""The HTTP front door: one aiohttp handler that authenticates, routes by the model, and answers as AWS."""

from __future__ import annotations

import inspect
import logging
import uuid
from urllib.parse import parse_qs

from aiohttp import web

from iot_tui import __version__
from iot_tui.local import auth
from iot_tui.local.broker.journal import JOURNAL_SIZE, Journal
from iot_tui.local.core import CoreState
from iot_tui.local.http import handlers as _handlers  # noqa: F401 - registers every operation
from iot_tui.local.http import query, restjson
from iot_tui.local.http.errors import ApiError
from iot_tui.local.http.ops import HANDLERS, RequestContext

log = logging.getLogger("iot_tui.local.http")

# SigV4 signing names -> botocore service names.
SIGNING_NAMES = {"iot": "iot", "iotdata": "iot-data", "sts": "sts", "iam": "iam"}
REST_SERVICES = ("iot", "iot-data")
HEALTH_PATH = "/_iot_tui/health"
# The broker's journal for one client: ?clientId=&principalId=&limit= (a SigV4-signed GET).
CLIENT_LOG_PATH = "/_iot_tui/clients/log"


def _to_web(response: restjson.Response, request_id: str) -> web.Response:
    headers = dict(response.headers)
    headers["x-amzn-RequestId"] = request_id
    return web.Response(status=response.status, body=response.body, headers=headers)


class HttpApi:
    def __init__(self, core: CoreState, ports: dict[str, int], journal: Journal | None = None):
        self.core = core
        self.ports = ports
        self.journal = journal

    def application(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.handle)
        return app

    def health(self) -> dict:
        config = self.core.config
        return {
            "service": "iot-tui local core",
            "version": __version__,
            "dataDir": str(config.data_dir),
            "region": config.region,
            "accountId": config.account_id,
            "host": config.host,
            "ports": self.ports,
            "caFile": str(self.core.ca.ca_cert_path),
        }

    def client_log(self, query_string: str) -> web.Response:
        params = {key: values[-1] for key, values in parse_qs(query_string).items()}
        if not params.get("clientId") and not params.get("principalId"):
            return web.json_response({"message": "give clientId or principalId"}, status=400)
        limit = params.get("limit", "50")
        if not limit.isdigit() or not 0 < int(limit) <= JOURNAL_SIZE:
            return web.json_response({"message": f"limit must be 1..{JOURNAL_SIZE}, not {limit!r}"}, status=400)
        entries = [] if self.journal is None else self.journal.for_client(
            params.get("clientId", ""), params.get("principalId", ""), int(limit))
        return web.json_response({"entries": [entry.to_json() for entry in entries]})

    async def handle(self, request: web.Request) -> web.Response:
        raw_path = request.rel_url.raw_path
        if raw_path == HEALTH_PATH:
            return web.json_response(self.health())
        request_id = str(uuid.uuid4())
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        query_string = request.rel_url.raw_query_string
        service = "iot"
        try:
            caller = auth.identify(headers, query_string)
            service = SIGNING_NAMES.get(caller.service, "iot")
            if self.core.config.strict_auth:
                auth.verify(
                    caller, request.method, str(request.url), headers, body,
                    self.core.config.access_key_id, self.core.config.secret_access_key,
                )
            if raw_path == CLIENT_LOG_PATH:  # like CloudWatch Logs, only for signed callers
                return self.client_log(query_string)
            context = RequestContext(self.core, service, caller.region, caller.access_key_id, request_id)
            if service in ("sts", "iam"):
                return _to_web(await self._query(context, query_string, body), request_id)
            return _to_web(await self._rest(context, request.method, raw_path, query_string, headers, body), request_id)
        except ApiError as error:
            if service in ("sts", "iam"):
                return _to_web(query.serialize_error(service, error, request_id), request_id)
            return _to_web(restjson.serialize_error(service, error), request_id)
        except Exception:
            log.exception("internal error on %s %s", request.method, raw_path)
            failure = ApiError("InternalFailureException", "An internal error occurred in the local core", 500)
            return _to_web(restjson.serialize_error(service, failure), request_id)

    async def _rest(self, context: RequestContext, method: str, raw_path: str, query_string: str,
                    headers: dict[str, str], body: bytes) -> restjson.Response:
        found = restjson.find_route(context.service, method, raw_path)
        if found is None:
            raise ApiError("ResourceNotFoundException", f"No {context.service} operation matches {method} {raw_path}", 404)
        op, uri_params = found
        handler = HANDLERS.get((context.service, op.name))
        if handler is None:
            raise _not_implemented(context.service, op.name)
        params = restjson.bind_input(op, uri_params, query_string, headers, body)
        result = await _call(handler, context, params)
        return restjson.serialize_output(op, result)

    async def _query(self, context: RequestContext, query_string: str, body: bytes) -> restjson.Response:
        form = query.parse_form(query_string, body)
        op = query.find_operation(context.service, form)
        handler = HANDLERS.get((context.service, op.name))
        if handler is None:
            raise _not_implemented(context.service, op.name)
        params = query.bind_input(op, form)
        result = await _call(handler, context, params)
        return query.serialize_output(context.service, op, result, context.request_id)


def _not_implemented(service: str, name: str) -> ApiError:
    # 4xx, never 5xx: botocore retries 5xx and the caller would hang for seconds.
    return ApiError(
        "NotImplementedException",
        f"{service} operation {name} is not implemented by the iot-tui local core",
        400,
    )


async def _call(handler, context: RequestContext, params: dict) -> dict | None:
    result = handler(context, params)
    if inspect.isawaitable(result):
        result = await result
    return result
