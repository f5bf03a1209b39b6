"""Hostnames unique among registered agents; session tokens revoked by logout.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

REGISTERED_WITH_NAME = sa.text("state = 'registered' AND hostname != ''")


def upgrade() -> None:
    op.create_index(
        "ux_agents_registered_hostname",
        "agents",
        ["hostname"],
        unique=True,
        sqlite_where=REGISTERED_WITH_NAME,
        postgresql_where=REGISTERED_WITH_NAME,
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=False),
    )
    op.create_index("ix_revoked_tokens_revoked_at", "revoked_tokens", ["revoked_at"])
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])
