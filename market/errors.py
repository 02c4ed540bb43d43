"""Domain errors shared by the services of every package."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the request. `code` is stable; `field` names the input."""

    code = "invalid"

    def __init__(self, message: str = "", *, field: str | None = None, code: str | None = None):
        super().__init__(message or self.code)
        self.field = field
        if code:
            self.code = code


class NotFoundError(DomainError):
    code = "not_found"


class ConflictError(DomainError):
    code = "conflict"


class PermissionDeniedError(DomainError):
    code = "forbidden"
