"""The exception hierarchy.

Every expected failure is a :class:`SyllabusError` subclass with a stable ``code`` (used in
the CLI, the REST problem JSON and by the remote client to re-raise the same class) and a
message a user can act on: it names the object and, where there is one, the next step.
Anything else escaping the library is a bug.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "BlobCorruptError",
    "BlobNotFoundError",
    "ConfigError",
    "ConflictError",
    "DatabaseError",
    "DeploymentFailedError",
    "InvalidArgumentError",
    "InvalidReferenceError",
    "NotFoundError",
    "PathEscapeError",
    "PermissionDeniedError",
    "PromotionRefusedError",
    "SchemaMismatchError",
    "SchemaOutdatedError",
    "StorageError",
    "SyllabusError",
    "TargetUnavailableError",
    "UnsafeLoadError",
    "WorkspaceNotFoundError",
    "error_class_for_code",
]


class SyllabusError(Exception):
    """Base of every error the library raises on purpose.

    ``code`` is stable across releases; ``http_status`` is the status the REST API answers
    with. Messages are one line.
    """

    code: ClassVar[str] = "syllabus_error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgumentError(SyllabusError):
    """A value given by the caller is malformed or out of range."""

    code = "invalid_argument"
    http_status = 400


class InvalidReferenceError(InvalidArgumentError):
    """A reference such as ``churn@3`` did not parse; the message points at the bad character."""

    code = "invalid_reference"


class PathEscapeError(InvalidArgumentError):
    """A path would leave its root: absolute, ``..``, or through a symlink."""

    code = "path_escape"


class SchemaMismatchError(InvalidArgumentError):
    """Data does not have the columns or types expected: a prediction log that no longer
    matches the monitored model's inputs, or current data missing reference columns."""

    code = "schema_mismatch"


class ConfigError(SyllabusError):
    """A setting is missing, unknown or has a bad value."""

    code = "config_error"
    http_status = 400


class NotFoundError(SyllabusError):
    """The named object does not exist."""

    code = "not_found"
    http_status = 404


class WorkspaceNotFoundError(NotFoundError):
    """No ``.syllabus`` workspace in this folder or any parent, and none was configured."""

    code = "workspace_not_found"


class BlobNotFoundError(NotFoundError):
    """A content id is not in the blob store."""

    code = "blob_not_found"


class AlreadyExistsError(SyllabusError):
    """An object with this name or id already exists."""

    code = "already_exists"
    http_status = 409


class ConflictError(SyllabusError):
    """The request contradicts the current state (immutable value changed, concurrent update)."""

    code = "conflict"
    http_status = 409


class PromotionRefusedError(ConflictError):
    """A stage change was refused: the policy does not allow it or a gate failed. The message
    lists every failed criterion with its measured value; ``results`` holds them all."""

    code = "promotion_refused"

    def __init__(self, message: str, results: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.results = results


class AuthenticationError(SyllabusError):
    """A team server needs a valid API token: none was sent, or it is unknown, expired or
    revoked."""

    code = "unauthenticated"
    http_status = 401


class PermissionDeniedError(SyllabusError):
    """The authenticated user's role in this workspace does not allow the operation."""

    code = "permission_denied"
    http_status = 403


class UnsafeLoadError(SyllabusError):
    """Refused to load a file that could execute code (pickle) without a matching content id."""

    code = "unsafe_load"
    http_status = 403


class StorageError(SyllabusError):
    """The blob store or the database failed in a way the user must look at."""

    code = "storage_error"
    http_status = 500


class BlobCorruptError(StorageError):
    """Stored bytes do not hash to their content id."""

    code = "blob_corrupt"


class DatabaseError(StorageError):
    """The metadata database could not be reached or refused the operation."""

    code = "database_error"


class SchemaOutdatedError(DatabaseError):
    """The database schema is older (or newer) than this version of Syllabus expects."""

    code = "schema_outdated"
    http_status = 503


class DeploymentFailedError(SyllabusError):
    """A new deployment revision did not become ready (or did not start); the previous
    revision, if any, keeps serving. The message says why and where the log is."""

    code = "deployment_failed"
    http_status = 502


class TargetUnavailableError(SyllabusError):
    """A deployment target cannot be reached from here (no Docker daemon, no kubectl)."""

    code = "target_unavailable"
    http_status = 503


def _all_subclasses(cls: type[SyllabusError]) -> list[type[SyllabusError]]:
    out: list[type[SyllabusError]] = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def error_class_for_code(code: str) -> type[SyllabusError]:
    """The exception class registered under ``code`` (``SyllabusError`` when unknown).

    Used by the remote client to re-raise the class the server raised.
    """
    for cls in _all_subclasses(SyllabusError):
        if cls.code == code:
            return cls
    return SyllabusError
