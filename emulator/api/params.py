"""Reading a JSON 1.1 request body strictly, and paging List* answers, as AWS's JSON services do.

botocore checks types before sending, but raw HTTP clients do not: a member
of the wrong JSON type is a `SerializationException`, a value outside its
enum or range an `InvalidParameterException` in AWS's "1 validation error
detected" wording. `nextToken` is an opaque base64 offset into the listing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from ..errors import InvalidParameterException
from .errors import SerializationException

T = TypeVar("T")

_JSON_TYPES = {str: "a string", int: "an integer", bool: "a boolean", list: "a list", dict: "an object",
               float: "a number", type(None): "null"}


class Params:
    """One request's members, read with the type AWS's model gives them."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __contains__(self, name: str) -> bool:
        return self.data.get(name) is not None

    def _typed(self, name: str, kind: type | tuple[type, ...], what: str, required: bool) -> Any:
        value = self.data.get(name)
        if value is None:
            if required:
                raise InvalidParameterException(f"1 validation error detected: Value null at '{name}' failed "
                                                "to satisfy constraint: Member must not be null")
            return None
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self._wrong(name, what, value)
        if not isinstance(value, kind):
            self._wrong(name, what, value)
        return value

    @staticmethod
    def _wrong(name: str, what: str, value: Any) -> None:
        got = _JSON_TYPES.get(type(value), type(value).__name__)
        raise SerializationException(f"Invalid type for '{name}': expected {what}, got {got}.")

    def str(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._typed(name, str, "a string", required)
        return default if value is None else value

    def int(self, name: str, default: int | None = None, *, required: bool = False) -> int | None:
        value = self._typed(name, int, "an integer", required)
        return default if value is None else value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self._typed(name, bool, "a boolean", False)
        return default if value is None else value

    def obj(self, name: str, *, required: bool = False) -> dict[str, Any] | None:
        return self._typed(name, dict, "an object", required)

    def list(self, name: str, *, required: bool = False) -> list[Any] | None:
        return self._typed(name, list, "a list", required)

    def str_list(self, name: str, *, required: bool = False) -> list[str] | None:
        items = self.list(name, required=required)
        if items is not None:
            for i, item in enumerate(items):
                if not isinstance(item, str):
                    self._wrong(f"{name}[{i}]", "a string", item)
        return items

    def obj_list(self, name: str, *, required: bool = False) -> list[dict[str, Any]] | None:
        items = self.list(name, required=required)
        if items is not None:
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    self._wrong(f"{name}[{i}]", "an object", item)
        return items

    def enum(self, name: str, values: Sequence[str], default: str | None = None, *,
             required: bool = False) -> str | None:
        value = self.str(name, required=required)
        if value is None:
            return default
        if value not in values:
            raise InvalidParameterException(
                f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(values)}]")
        return value

    def unsupported(self, names: Sequence[str], operation: str) -> None:
        """Refuse members AWS accepts that the emulator does not act on, rather than ignore them."""
        for name in names:
            value = self.data.get(name)
            if value not in (None, [], {}, False):
                raise InvalidParameterException(
                    f"{operation} parameter '{name}' is not supported by this emulator.")


def page(items: Sequence[T], params: Params, *, default_max: int = 100, limit: int = 100) -> tuple[list[T], dict]:
    """One page of `items` after `nextToken`, and {"nextToken": ...} when more remain."""
    max_results = params.int("maxResults", default_max)
    if not 1 <= max_results <= limit:
        raise InvalidParameterException(f"maxResults must be between 1 and {limit}.")
    start = decode_token(params.str("nextToken")) if "nextToken" in params else 0
    end = start + max_results
    more = {"nextToken": encode_token(end)} if end < len(items) else {}
    return list(items[start:end]), more


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error, AttributeError):
        raise InvalidParameterException("Invalid nextToken: use the nextToken of the previous answer.") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidParameterException("Invalid nextToken: use the nextToken of the previous answer.")
    return offset
