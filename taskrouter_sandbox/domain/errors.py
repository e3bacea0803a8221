"""The errors TaskRouter answers with, raised anywhere below the HTTP face."""

from __future__ import annotations


class EngineError(Exception):
    """A request TaskRouter refuses: a bad parameter or a state change that is not allowed."""

    def __init__(self, message: str, *, status: int = 400, code: int = 20001) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class NotFound(EngineError):
    """A SID in the path that does not exist (in this workspace)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404, code=20404)


class InvalidTransition(RuntimeError):
    """A status write the lifecycle tables do not allow: a bug in the sandbox, never a
    client's error (the API's own checks refuse a client's request first)."""
