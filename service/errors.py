"""Typed domain errors. Each carries a reason a user can act on; the API maps families to HTTP."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class of every error raised on purpose by ``service``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unauthorized(ServiceError):
    """No API key, or one the service does not know (HTTP 401 with ``WWW-Authenticate``)."""

    def __init__(self, reason: str, invalid: bool = False) -> None:
        super().__init__(reason)
        self.invalid = invalid  # a key was presented but is wrong (vs none at all)


class NotFound(ServiceError):
    """Something addressed by id does not exist (HTTP 404)."""


class JobNotFound(NotFound):
    """No job with that id."""


class DatasetNotFound(NotFound):
    """No dataset with that id."""


class ArtifactNotFound(NotFound):
    """No artifact with that name for that job."""


class Conflict(ServiceError):
    """The request is well formed but clashes with the current state (HTTP 409)."""


class DatasetInUse(Conflict):
    """A dataset cannot be removed while a queued or running job reads it."""


class IllegalTransition(Conflict):
    """A job cannot move from its current status to the requested one."""


class InvalidInput(ServiceError):
    """The request is well formed but its content cannot be accepted (HTTP 422)."""


class IdempotencyMismatch(InvalidInput):
    """An Idempotency-Key was reused with a different request body."""


class InvalidSpec(InvalidInput):
    """A job spec does not fit the data it names (unknown ids, impossible settings)."""


class UnknownReference(InvalidSpec):
    """A job spec names a dataset or supernet that does not exist."""


class InvalidDataset(InvalidInput):
    """An uploaded archive is not a usable dataset (not a zip, no classes, corrupt image)."""


class InvalidArtifactName(InvalidInput):
    """An artifact name is empty, too long, or has unsafe characters."""


class UploadTooLarge(ServiceError):
    """An upload exceeds the configured size cap (HTTP 413)."""


class Unavailable(ServiceError):
    """A dependency (Redis, the workers) is down; retry later (HTTP 503)."""
