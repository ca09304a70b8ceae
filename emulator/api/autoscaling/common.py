"""What Application Auto Scaling's handlers share: its error words for bad members, and reading the key of a
scalable target (ServiceNamespace, ResourceId, ScalableDimension)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from ...errors import InvalidParameterException, ValidationException
from ..backend import Backend
from ..params import Params

Handler = Callable[[Backend, Params], Awaitable[dict[str, Any]]]


def operation(handler: Handler) -> Handler:
    """Application Auto Scaling has no InvalidParameterException: a missing or out-of-range member is its
    ValidationException, with the same "1 validation error detected" words."""
    @functools.wraps(handler)
    async def run(backend: Backend, params: Params) -> dict[str, Any]:
        try:
            return await handler(backend, params)
        except InvalidParameterException as exc:
            raise ValidationException(exc.message) from None
    return run


def target_key(params: Params) -> tuple[str, str, str]:
    """(ServiceNamespace, ResourceId, ScalableDimension), each required."""
    return (params.str("ServiceNamespace", required=True), params.str("ResourceId", required=True),
            params.str("ScalableDimension", required=True))


def page_members(params: Params) -> dict[str, Any]:
    return {"max_results": params.int("MaxResults"), "next_token": params.str("NextToken")}


def with_token(data: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token is not None:
        data["NextToken"] = token
    return data
