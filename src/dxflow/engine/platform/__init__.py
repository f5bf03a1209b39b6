"""The public platform group (``/api/platform/``) over the podman or docker CLI, and our extensions to it
(``/api/x/platform/``); apptainer and singularity answer 501 (``dxflow.engine.unimplemented``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from aiohttp import web

from dxflow.engine.platform import api, resources
from dxflow.engine.platform.common import PLATFORM_KEY
from dxflow.engine.platform.runtime import Runtime, settings_from_env

__all__ = ["PLATFORM_KEY", "add_routes"]


def add_routes(app: web.Application, env: Mapping[str, str] | None = None) -> None:
    """Serve the platform group for each runtime configured in ``env`` (default: the engine's environment)."""
    settings = settings_from_env(os.environ if env is None else env)
    app[PLATFORM_KEY] = {name: Runtime(value) for name, value in settings.items()}
    api.add_routes(app)
    resources.add_routes(app)
