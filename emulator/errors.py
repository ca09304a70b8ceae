"""AWS's error classes, so every user-caused failure reads as AWS would say it.

Each error carries the `__type` code botocore understands, the HTTP status AWS
answers with, and a message in AWS's wording. The API layer renders them as
`{"__type": code, "message": ...}`; the CLI prints `code: message`.
"""

from __future__ import annotations


class AwsError(Exception):
    """Base of every error a client can cause or see."""

    code = "ServerException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_api(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ServerException(AwsError):
    code = "ServerException"
    status = 500


class ClientException(AwsError):
    code = "ClientException"
    status = 400


class InvalidParameterException(AwsError):
    code = "InvalidParameterException"
    status = 400


class ClusterNotFoundException(AwsError):
    code = "ClusterNotFoundException"
    status = 400


class ServiceNotFoundException(AwsError):
    code = "ServiceNotFoundException"
    status = 400


class ServiceNotActiveException(AwsError):
    code = "ServiceNotActiveException"
    status = 400


class ClusterContainsServicesException(AwsError):
    code = "ClusterContainsServicesException"
    status = 400


class ClusterContainsTasksException(AwsError):
    code = "ClusterContainsTasksException"
    status = 400


class ClusterContainsContainerInstancesException(AwsError):
    code = "ClusterContainsContainerInstancesException"
    status = 400


class ResourceInUseException(AwsError):
    code = "ResourceInUseException"
    status = 400


class UpdateInProgressException(AwsError):
    code = "UpdateInProgressException"
    status = 400


class ValidationException(AwsError):
    """Application Auto Scaling's (and Auto Scaling's) validation error."""

    code = "ValidationException"
    status = 400


class ObjectNotFoundException(AwsError):
    code = "ObjectNotFoundException"
    status = 400


class ValidationError(AwsError):
    """ELBv2's and EC2 Auto Scaling's validation error (query protocol codes drop "Exception")."""

    code = "ValidationError"
    status = 400


class LimitExceededException(AwsError):
    """A quota would be exceeded (Application Auto Scaling's and ECS's code alike)."""

    code = "LimitExceededException"
    status = 400


class ConcurrentUpdateException(AwsError):
    """Application Auto Scaling: the resource already has an update in progress."""

    code = "ConcurrentUpdateException"
    status = 400


class InvalidNextTokenException(AwsError):
    """Application Auto Scaling: a NextToken that no earlier answer gave."""

    code = "InvalidNextTokenException"
    status = 400
