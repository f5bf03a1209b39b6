"""Compose workflows on the engine: model and validation, backends (process, docker, podman), state, API."""

from dxflow.engine.workflows.api import MANAGER_KEY, add_routes
from dxflow.engine.workflows.manager import WorkflowManager

__all__ = ["MANAGER_KEY", "WorkflowManager", "add_routes"]
