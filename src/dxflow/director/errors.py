"""Director errors.

DirectorError
├── StartupError      the director cannot start (CA permissions, database, port)
└── ApiError          an HTTP error answered as ``{"error": message}`` with ``status``
"""

from __future__ import annotations

import json

from aiohttp import web

__all__ = ["ApiError", "DirectorError", "StartupError", "json_error"]


class DirectorError(Exception):
    """Base of the director's errors."""


class StartupError(DirectorError):
    """The director cannot start."""


class ApiError(DirectorError):
    """An error the API answers with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_error(status: int, message: str) -> web.Response:
    """The error response every director endpoint uses."""
    return web.Response(status=status, text=json.dumps({"error": message}), content_type="application/json")
