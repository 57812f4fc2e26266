"""AWS errors as the local core raises them: an AWS error code, a message, and extra members."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class ApiError(Exception):
    """An error answered with AWS's code; the HTTP status comes from botocore's model when omitted."""

    def __init__(self, code: str, message: str, status: int | None = None, **fields: object):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = {k: v for k, v in fields.items() if v is not None}


def invalid_request(message: str) -> ApiError:
    return ApiError("InvalidRequestException", message, 400)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message, 404)


def found(value: T | None, message: str) -> T:
    """`value`, or ResourceNotFoundException with AWS's message for the missing resource."""
    if value is None:
        raise not_found(message)
    return value


def already_exists(message: str, resource_id: str | None = None, resource_arn: str | None = None) -> ApiError:
    return ApiError(
        "ResourceAlreadyExistsException", message, 409, resourceId=resource_id, resourceArn=resource_arn
    )


def version_conflict(message: str) -> ApiError:
    return ApiError("VersionConflictException", message, 409)


def delete_conflict(message: str) -> ApiError:
    return ApiError("DeleteConflictException", message, 409)


def limit_exceeded(message: str) -> ApiError:
    return ApiError("LimitExceededException", message, 410)
