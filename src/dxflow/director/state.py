"""The director's runtime state, stored on the app under ``STATE`` (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from dxflow.common.ca import CertificateAuthority
from dxflow.common.director_config import DirectorConfig
from dxflow.director.agent_client import AgentClient
from dxflow.director.auth import LoginGuard, OtpVerifier, PasswordBackend, SharedRateLimiter
from dxflow.director.db import Database
from dxflow.director.identity import CertChecker
from dxflow.director.policy import PolicyStore
from dxflow.director.tokens import TokenService
from dxflow.director.updates import UpdateBatcher

__all__ = ["CONFIG", "STATE", "DirectorState"]


@dataclass
class DirectorState:
    """Everything the handlers share."""

    config: DirectorConfig
    ca: CertificateAuthority
    db: Database
    policy: PolicyStore
    tokens: TokenService
    certs: CertChecker
    updates: UpdateBatcher
    agents: AgentClient
    login_limit: SharedRateLimiter
    register_limit: SharedRateLimiter
    auth: PasswordBackend
    otp: OtpVerifier | None
    guard: LoginGuard


CONFIG = web.AppKey("config", DirectorConfig)
STATE = web.AppKey("state", DirectorState)
