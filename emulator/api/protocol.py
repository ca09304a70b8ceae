"""AWS's JSON 1.1 protocol over aiohttp: `POST /` dispatched on `X-Amz-Target`, answers in AWS's shapes.

One endpoint serves every JSON service: `X-Amz-Target: <prefix>.<Operation>`
picks the service by its target prefix (ECS's `AmazonEC2ContainerServiceV20141113`,
Application Auto Scaling's `AnyScaleFrontendService`) and the handler by
operation name. Handlers take `(backend, params)` and return a dict; they
never see HTTP. Whatever goes wrong reaches the client as AWS's error body
`{"__type": code, "message": ...}` with AWS's status, and never as a
traceback: an unexpected exception is logged here and answered with 500
`ServerException`. Any credentials are accepted: the Authorization header is
not read. Query-protocol clients (ELBv2, Auto Scaling: form bodies, no
target) get an XML `InvalidAction` until a query handler is plugged in.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from aiohttp import web

from ..errors import AwsError, ServerException
from .backend import Backend
from .errors import RequestEntityTooLarge, SerializationException, UnknownOperationException
from .params import Params

log = logging.getLogger(__name__)

ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
APPLICATION_AUTOSCALING_TARGET_PREFIX = "AnyScaleFrontendService"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

Handler = Callable[[Backend, Params], Awaitable[dict[str, Any]]]
QueryHandler = Callable[[web.Request, bytes], Awaitable[web.Response]]

BACKEND_KEY = web.AppKey("backend", Backend)


class JsonServices:
    """The JSON services the endpoint speaks: operations by target prefix."""

    def __init__(self) -> None:
        self._services: dict[str, dict[str, Handler]] = {}

    def register(self, prefix: str, operations: Mapping[str, Handler]) -> None:
        self._services.setdefault(prefix, {}).update(operations)

    def operations(self, prefix: str) -> list[str]:
        return sorted(self._services.get(prefix, {}))

    def lookup(self, target: str) -> tuple[str, Handler]:
        prefix, _, operation = target.rpartition(".")
        handlers = self._services.get(prefix)
        if handlers is None:
            raise UnknownOperationException(f"Unknown target '{target}': this endpoint serves "
                                            f"{', '.join(sorted(self._services)) or 'no services'}.")
        handler = handlers.get(operation)
        if handler is None:
            raise UnknownOperationException(f"Operation {operation} is not supported by this emulator's "
                                            f"{prefix}.")
        return operation, handler


def default_services() -> JsonServices:
    """ECS and Application Auto Scaling, each under its own target prefix."""
    from .autoscaling import OPERATIONS as AUTOSCALING_OPERATIONS
    from .ecs import OPERATIONS as ECS_OPERATIONS
    services = JsonServices()
    services.register(ECS_TARGET_PREFIX, ECS_OPERATIONS)
    services.register(APPLICATION_AUTOSCALING_TARGET_PREFIX, AUTOSCALING_OPERATIONS)
    return services


def make_app(backend: Backend, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
             services: JsonServices | None = None, query_handler: QueryHandler | None = None) -> web.Application:
    """The endpoint's aiohttp application: `POST /` for AWS's protocols, `GET /health` for readiness."""
    services = services or default_services()
    app = web.Application(client_max_size=max_body_bytes)
    app[BACKEND_KEY] = backend

    async def dispatch(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        operation = "?"
        try:
            body = await _read_body(request, max_body_bytes)
            target = request.headers.get("X-Amz-Target", "").strip()
            if not target and _is_form(request):
                return await (query_handler or _query_unsupported)(request, body)
            if not target:
                raise UnknownOperationException(
                    "Missing X-Amz-Target header: AWS JSON requests name their operation as "
                    f"'X-Amz-Target: {ECS_TARGET_PREFIX}.<Operation>' (ECS) or 'X-Amz-Target: "
                    f"{APPLICATION_AUTOSCALING_TARGET_PREFIX}.<Operation>' (Application Auto Scaling).")
            operation, handler = services.lookup(target)
            result = await handler(backend, Params(_parse_json(body)))
            response = _json_response(200, result, request_id)
        except AwsError as exc:
            response = _error_response(exc, request_id)
        except Exception:
            log.exception("internal error in %s (request %s)", operation, request_id)
            response = _error_response(ServerException(
                f"Internal error (request {request_id}); the emulator's log has the details."), request_id)
        log.debug("%s -> %s in %.1f ms", operation, response.status, (time.perf_counter() - started) * 1000)
        return response

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_post("/", dispatch)
    app.router.add_get("/health", health)
    return app


async def _read_body(request: web.Request, max_body_bytes: int) -> bytes:
    too_large = RequestEntityTooLarge(f"Request body is larger than the limit of {max_body_bytes} bytes.")
    if request.content_length is not None and request.content_length > max_body_bytes:
        raise too_large
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None


def _parse_json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationException(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SerializationException("The request body must be a JSON object.")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _json_response(status: int, data: Any, request_id: str, **headers: str) -> web.Response:
    body = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    return web.Response(status=status, body=body,
                        headers={"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": request_id, **headers})


def _error_response(exc: AwsError, request_id: str) -> web.Response:
    return _json_response(exc.status, exc.to_api(), request_id, **{"x-amzn-ErrorType": exc.code})


def _is_form(request: web.Request) -> bool:
    return request.content_type == "application/x-www-form-urlencoded"


async def _query_unsupported(request: web.Request, body: bytes) -> web.Response:
    """AWS's query-protocol error shape, so ELBv2/Auto Scaling clients read why they were refused."""
    request_id = str(uuid.uuid4())
    action = (parse_qs(body.decode("utf-8", "replace")).get("Action") or ["(none)"])[0]
    xml = ("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>"
           f"<Message>The action {escape(action)} is not valid for this web service: this emulator does not "
           "serve query-protocol APIs yet.</Message></Error>"
           f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    return web.Response(status=400, text=xml, content_type="text/xml", headers={"x-amzn-RequestId": request_id})
