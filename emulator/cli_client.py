"""The `ecsemu` views' HTTP client for a running emulator: ECS's JSON 1.1 protocol and the native API.

Standard library only (urllib), synchronous: the command line has no event
loop of its own. An error the API answers becomes `ApiError` (an AwsError
with the server's code, so `ecsemu` prints `Code: message`); an endpoint
nobody answers on becomes `EmulatorUnreachable`.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from .api.native import PREFIX as NATIVE_PREFIX
from .api.protocol import ECS_TARGET_PREFIX, JSON_CONTENT_TYPE
from .app import DEFAULT_API_HOST, DEFAULT_API_PORT
from .errors import AwsError

DEFAULT_ENDPOINT = f"http://{DEFAULT_API_HOST}:{DEFAULT_API_PORT}"
ENDPOINT_ENV = "ECSEMU_ENDPOINT"
DEFAULT_TIMEOUT_S = 30.0
MAX_DESCRIBE = 100          # DescribeTasks / DescribeContainerInstances take at most 100 at once
MAX_DESCRIBE_SERVICES = 10  # DescribeServices takes at most 10


class ApiError(AwsError):
    """An error the emulator answered, with its AWS code."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.status = code, status


class EmulatorUnreachable(Exception):
    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"cannot reach the emulator at {endpoint} ({reason}); is it running? "
                         "`ecsemu start` starts it (or set --endpoint-url / ECSEMU_ENDPOINT)")
        self.endpoint, self.reason = endpoint, reason


def resolve_endpoint(explicit: str | None = None) -> str:
    """--endpoint-url, else $ECSEMU_ENDPOINT, else http://127.0.0.1:4566."""
    return (explicit or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")


class EmulatorClient:
    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        # The emulator is local: a proxy from the environment must not stand between it and its CLI.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # --- ECS -------------------------------------------------------------------------------

    def ecs(self, operation: str, **params: Any) -> dict[str, Any]:
        """One ECS call: `POST /` with `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<operation>`."""
        body = json.dumps({k: v for k, v in params.items() if v is not None}).encode()
        return self._send("POST", "/", body, {"Content-Type": JSON_CONTENT_TYPE,
                                              "X-Amz-Target": f"{ECS_TARGET_PREFIX}.{operation}"})

    def ecs_all(self, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item of a List* call, following nextToken."""
        items: list[Any] = []
        token = None
        while True:
            page = self.ecs(operation, **params, **({"nextToken": token} if token else {}))
            items += page.get(key, [])
            token = page.get("nextToken")
            if not token:
                return items

    def describe(self, operation: str, key: str, names_key: str, names: Iterable[str], *,
                 chunk: int = MAX_DESCRIBE, **params: Any) -> list[dict[str, Any]]:
        """A Describe* call over any number of names, `chunk` at a time."""
        names = list(names)
        found: list[dict[str, Any]] = []
        for start in range(0, len(names), chunk):
            found += self.ecs(operation, **{names_key: names[start:start + chunk]}, **params).get(key, [])
        return found

    # --- native API -------------------------------------------------------------------------

    def native(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: bytes | None = None,
               content_type: str = "application/json", timeout: float | None = None) -> Any:
        """One native call (`/ecsemu/v1/<path>`); None-valued query parameters are left out."""
        url = f"{NATIVE_PREFIX}/{path}"
        pairs = {k: str(v) for k, v in (query or {}).items() if v is not None}
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs)
        return self._send(method, url, body, {"Content-Type": content_type} if body is not None else {}, timeout)

    # --- HTTP ---------------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str],
              timeout: float | None = None) -> Any:
        request = urllib.request.Request(self.endpoint + path, data=body, method=method,
                                         headers={"Accept": "application/json", **headers})
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as response:
                return _decode(response.read(), response.status)
        except urllib.error.HTTPError as exc:
            raise _api_error(exc.code, exc.read()) from None
        except urllib.error.URLError as exc:
            raise EmulatorUnreachable(self.endpoint, str(getattr(exc.reason, "strerror", None) or exc.reason)) from None
        except (ConnectionError, socket.timeout, TimeoutError, http.client.HTTPException) as exc:
            # HTTPException: the connection broke mid-answer (IncompleteRead, BadStatusLine): it went away.
            raise EmulatorUnreachable(self.endpoint, str(exc) or type(exc).__name__) from None


def _decode(raw: bytes, status: int) -> Any:
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ApiError("ServerException", f"the emulator answered {status} with a body that is not JSON: "
                                          f"{raw[:200].decode(errors='replace')}", status) from None


def _api_error(status: int, raw: bytes) -> ApiError:
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and "__type" in data:
        code = str(data["__type"]).rsplit("#", 1)[-1]  # botocore's "namespace#Code" form, too
        return ApiError(code, str(data.get("message") or data.get("Message") or ""), status)
    return ApiError("ServerException" if status >= 500 else "ClientException",
                    f"HTTP {status}: {raw[:200].decode(errors='replace').strip()}", status)
