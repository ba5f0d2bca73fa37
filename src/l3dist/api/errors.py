"""API errors in Octavia's fault format: ``{"faultcode", "faultstring", "debuginfo"}``.

Every refusal names the field at fault (also in a ``field`` key) so operators see what to fix.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        return fault(self.status, self.message, self.field)


def fault(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    return {
        "faultcode": "Client" if status < 500 else "Server",
        "faultstring": message,
        "debuginfo": None,
        "field": field,
    }


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, message, field)


def not_found(kind: str, object_id: str, field: str | None = None) -> ApiError:
    return ApiError(404, f"{kind} {object_id} not found.", field)


def conflict(message: str, field: str | None = None) -> ApiError:
    return ApiError(409, message, field)


def forbidden(message: str = "Policy does not allow this request to be performed.") -> ApiError:
    return ApiError(403, message)


def immutable(kind: str, object_id: str) -> ApiError:
    """Octavia's 409 for a change while the load balancer is busy (PENDING_*)."""
    return ApiError(409, f"{kind} {object_id} is immutable and cannot be updated.")
