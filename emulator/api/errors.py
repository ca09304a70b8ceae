"""The protocol-level errors AWS's JSON endpoints answer with, beside ECS's own (emulator.errors).

These belong to the wire, not to any service: a body that is not JSON, an
operation nobody registered, a body over the size limit. ECS's attribute
errors live here too until `emulator.errors` has them.
"""

from __future__ import annotations

from ..errors import AwsError


class SerializationException(AwsError):
    """The body is not a JSON object, or a member has the wrong JSON type."""

    code = "SerializationException"
    status = 400


class UnknownOperationException(AwsError):
    code = "UnknownOperationException"
    status = 400


class RequestEntityTooLarge(AwsError):
    code = "RequestEntityTooLargeException"
    status = 413


class TargetNotFoundException(AwsError):
    """ECS: PutAttributes/DeleteAttributes name a container instance that is not in the cluster."""

    code = "TargetNotFoundException"
    status = 400


class AttributeLimitExceededException(AwsError):
    """ECS: more than 10 custom attributes on one resource."""

    code = "AttributeLimitExceededException"
    status = 400
