"""Director errors (HTTP errors are ``dxflow.common.json_api.ApiError``).

DirectorError
└── StartupError      the director cannot start (CA permissions, database, port)
"""

from __future__ import annotations

__all__ = ["DirectorError", "StartupError"]


class DirectorError(Exception):
    """Base of the director's errors."""


class StartupError(DirectorError):
    """The director cannot start."""
