"""Security counters shared by replicas: TOTP replay memory, login lockouts, rate limits.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_counters",
        sa.Column("key", sa.String(320), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("stamp", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_security_counters_expires_at", "security_counters", ["expires_at"])
