"""The one error type the serving layer raises for anything a client did or asked for."""

from __future__ import annotations


class RequestError(Exception):
    """A request the server refuses: becomes an HTTP `status` with body {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> RequestError:
    return RequestError(400, message)


def not_found(message: str) -> RequestError:
    return RequestError(404, message)
