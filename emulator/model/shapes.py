"""Converting model dataclasses to and from AWS's JSON shapes, strictly, with AWS-located errors.

Model fields are snake_case Python names of AWS's fields. ECS speaks
camelCase (`taskDefinitionArn`); ELBv2, EC2 Auto Scaling and Application
Auto Scaling speak PascalCase (`HealthCheckPath`). One converter per case
renders objects as the API shows them and reads AWS's JSON back. A field
whose AWS name is not the plain form (`bindIP`) says so with
`metadata={"aws": "bindIP"}`. Absent values (None) are omitted, as AWS
omits them. Reading is strict about types, as botocore is: a quoted
"false" is not a bool and 2.5 is not an int. A class with an `extra` field
keeps the AWS fields it lists in `AWS_UNTYPED_FIELDS` verbatim there (fields
AWS accepts that the emulator stores but does not act on).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import cattrs
from cattrs.cols import list_structure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ..errors import AwsError

T = TypeVar("T")
NameOf = Callable[[dataclasses.Field], str]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def aws_name(f: dataclasses.Field) -> str:
    """A field's camelCase AWS name."""
    return f.metadata.get("aws") or camel(f.name)


def pascal_name(f: dataclasses.Field) -> str:
    """A field's PascalCase AWS name."""
    return f.metadata.get("aws") or pascal(f.name)


def _strict(kind: str, accepts: tuple[type, ...], convert: Any = None):
    def hook(value: Any, _: type) -> Any:
        if isinstance(value, bool) != (bool in accepts) or not isinstance(value, accepts):
            raise ValueError(f"expected {kind}, got {value!r}")
        return convert(value) if convert else value
    return hook


def _strict_list(conv: cattrs.Converter):
    """Lists must be lists: cattrs alone walks any iterable, so "CMD" would become ['C', 'M', 'D']."""
    def factory(tp: Any):
        items = list_structure_factory(tp, conv)

        def hook(value: Any, _: type) -> Any:
            if not isinstance(value, list):
                raise ValueError(f"expected a list, got {value!r}")
            return items(value, tp)
        return hook
    return factory


def _has_extra(cls: type) -> bool:
    return any(f.name == "extra" for f in dataclasses.fields(cls))


def _make_converter(name_of: NameOf) -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict("an integer", (int,)))
    conv.register_structure_hook(float, _strict("a number", (int, float), float))
    conv.register_structure_hook(bool, _strict("true or false", (bool,)))
    # YAML reads `HttpCode: 200` or `value: 8080` as ints where AWS's shape is a string.
    conv.register_structure_hook(str, _strict("a string", (str, int), str))
    conv.register_structure_hook_factory(lambda t: typing.get_origin(t) is list, _strict_list(conv))

    def renames(cls: type) -> dict[str, Any]:
        return {f.name: override(rename=name_of(f)) for f in dataclasses.fields(cls)}

    def unstructure_factory(cls: type):
        plain = make_dict_unstructure_fn(cls, conv, **renames(cls))
        keeps_extra = _has_extra(cls)

        def unstructure(obj: Any) -> dict[str, Any]:
            out = {k: v for k, v in plain(obj).items() if v is not None}
            if keeps_extra:
                out.update(out.pop(name_of(next(f for f in dataclasses.fields(cls) if f.name == "extra")), None) or {})
            return out
        return unstructure

    def structure_factory(cls: type):
        if not _has_extra(cls):
            return make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True, **renames(cls))
        plain = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True,
                                       **{**renames(cls), "extra": override(omit=True)})
        typed = {name_of(f) for f in dataclasses.fields(cls) if f.name != "extra"}
        untyped = getattr(cls, "AWS_UNTYPED_FIELDS", frozenset())

        def structure(data: Any, _: type) -> Any:
            if not isinstance(data, dict):
                return plain(data, cls)  # lets cattrs report the wrong type
            unknown = set(data) - typed - untyped
            if unknown:
                raise cattrs.ForbiddenExtraKeysError("", cls, unknown)
            obj = plain({k: v for k, v in data.items() if k in typed}, cls)
            obj.extra = {k: v for k, v in data.items() if k in untyped}
            return obj
        return structure

    conv.register_unstructure_hook_factory(dataclasses.is_dataclass, unstructure_factory)
    conv.register_structure_hook_factory(dataclasses.is_dataclass, structure_factory)
    return conv


camel_converter = _make_converter(aws_name)
pascal_converter = _make_converter(pascal_name)


def to_api(obj: Any) -> Any:
    """The camelCase AWS JSON shape of a model object (or list of them)."""
    return camel_converter.unstructure(obj)


def from_api(cls: type[T], data: Any) -> T:
    """A model object from camelCase AWS JSON; raises cattrs' errors on bad input (trusted data)."""
    return camel_converter.structure(data, cls)


def to_pascal_api(obj: Any) -> Any:
    """The PascalCase AWS shape of a model object; None fields are left out, as AWS does."""
    return pascal_converter.unstructure(obj)


def from_camel_api(cls: type[T], data: Any, error: type[AwsError]) -> T:
    """A model object from a client's camelCase JSON, or `error` located at the offending key."""
    return _structure(camel_converter, aws_name, cls, data, error)


def from_pascal_api(cls: type[T], data: Any, error: type[AwsError]) -> T:
    """A model object from a client's PascalCase JSON, or `error` located at the offending key."""
    return _structure(pascal_converter, pascal_name, cls, data, error)


def _structure(conv: cattrs.Converter, name_of: NameOf, cls: type[T], data: Any, error: type[AwsError]) -> T:
    try:
        return conv.structure(data, cls)
    except Exception as exc:  # cattrs' validation errors: report the first, with its AWS path
        text = (cattrs.transform_error(exc, path="$", format_exception=_describe) or ["Invalid value. @ $"])[0]
        problem, _, path = text.rpartition(" @ ")
        aws_path = _aws_path(cls, path, name_of)
        if problem.startswith("unknown key "):
            key = problem.removeprefix("unknown key ").split(",")[0]
            aws_path, problem = (f"{aws_path}.{key}" if aws_path else key), f"Unknown parameter '{key}'."
        fail(error, aws_path, problem)


def fail(error: type[AwsError], field_path: str, message: str) -> NoReturn:
    """Raise `error(message)` carrying `field_path` (AWS key path) so stack files can point at it."""
    exc = error(message)
    exc.field_path = field_path  # type: ignore[attr-defined]
    raise exc


def out_of_range(error: type[AwsError], path: str, value: Any, low: Any, high: Any) -> None:
    """AWS's wording for a modelled range check ("1 validation error detected: ...")."""
    if value is None or low <= value <= high:
        return
    bound = f"greater than or equal to {low}" if value < low else f"less than or equal to {high}"
    fail(error, path, f"1 validation error detected: Value '{value}' at '{path[:1].lower() + path[1:]}' "
                      f"failed to satisfy constraint: Member must have value {bound}")


def _describe(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return "unknown key " + ",".join(sorted(map(str, exc.extra_fields)))
    if isinstance(exc, KeyError):
        return "A required parameter is missing."
    if isinstance(exc, ValueError) and str(exc).startswith("expected "):
        return f"Invalid value: {exc}."
    if type_ is None or dataclasses.is_dataclass(type_):
        return "Invalid value: expected an object." if isinstance(exc, (TypeError, AttributeError)) else f"{exc}."
    if typing.get_origin(type_) is list:
        return "Invalid value: expected a list."
    return f"Invalid value: expected {getattr(type_, '__name__', None) or type_}."


def _aws_path(cls: Any, path: str, name_of: NameOf) -> str:
    """`$.health_check[0].http_code` (python names) -> `HealthCheck[0].HttpCode` (AWS names)."""
    out = []
    for segment in path.split(".")[1:]:
        name, bracket, index = segment.partition("[")
        f = next((f for f in dataclasses.fields(cls) if f.name == name), None) if cls else None
        out.append((name_of(f) if f else name) + bracket + index)
        cls = _dataclass_in(typing.get_type_hints(cls)[name]) if f else None
    return ".".join(out)


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if found := _dataclass_in(arg):
            return found
    return None
