"""The error the server answers itself, in TaskRouter's JSON shape: raised by the routes and by
the guards in security.py, rendered by the app's error handler."""

from __future__ import annotations


class ApiError(Exception):
    """An error this server answers itself, in the same JSON shape as TaskRouter's errors."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        more_info: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.more_info = more_info
        self.headers = headers or {}

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "more_info": self.more_info,
        }
