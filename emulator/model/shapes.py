"""Converting model dataclasses to and from AWS's JSON shapes.

Model fields are snake_case Python names of AWS's camelCase fields, so one
converter renders every object as the API shows it (`to_api`) and reads
AWS's JSON back (`from_api`). A field whose AWS name is not the plain camel
form (`bindIP`) says so with `metadata={"aws": "bindIP"}`. Absent values
(None) are omitted, as AWS omits them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def aws_name(field: dataclasses.Field) -> str:
    return field.metadata.get("aws") or camel(field.name)


def _overrides(cls: type) -> dict[str, Any]:
    return {f.name: override(rename=aws_name(f)) for f in dataclasses.fields(cls)}


def _unstructure_factory(cls: type):
    plain = make_dict_unstructure_fn(cls, converter, **_overrides(cls))
    keeps_extra = _has_extra(cls)

    def unstructure(obj: Any) -> dict[str, Any]:
        out = {k: v for k, v in plain(obj).items() if v is not None}
        if keeps_extra:
            out.update(out.pop("extra", None) or {})
        return out

    return unstructure


def _structure_factory(cls: type):
    if not _has_extra(cls):
        return make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=True, **_overrides(cls))
    plain = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True,
                                   **{**_overrides(cls), "extra": override(omit=True)})
    typed = {aws_name(f) for f in dataclasses.fields(cls) if f.name != "extra"}
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


def _has_extra(cls: type) -> bool:
    """Classes with an `extra` field keep AWS fields the emulator does not act on."""
    return any(f.name == "extra" for f in dataclasses.fields(cls))


converter.register_unstructure_hook_factory(dataclasses.is_dataclass, _unstructure_factory)
converter.register_structure_hook_factory(dataclasses.is_dataclass, _structure_factory)


def to_api(obj: Any) -> Any:
    """The AWS JSON shape of a model object (or list of them)."""
    return converter.unstructure(obj)


def from_api(cls: type[T], data: Any) -> T:
    """A model object from AWS's JSON shape; raises cattrs errors on bad input."""
    return converter.structure(data, cls)


def shape_error_messages(exc: Exception, root: str) -> list[str]:
    """cattrs' structuring errors as `problem @ root.awsName[0].field` lines."""
    messages = cattrs.transform_error(exc, path=root)
    return [_camel_path(m) for m in messages]


def _camel_path(message: str) -> str:
    text, sep, path = message.rpartition(" @ ")
    if not sep:
        return message
    segments = [camel(s) if "[" not in s else camel(s.split("[", 1)[0]) + "[" + s.split("[", 1)[1]
                for s in path.split(".")]
    return f"{text} @ {'.'.join(segments)}"
