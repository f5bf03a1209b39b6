"""The schema as ``metadata.create_all()`` made it before migrations (agents, certs, servers, sessions).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("guid", sa.String(36), primary_key=True),
        sa.Column("common_name", sa.String(64), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("approved_at", sa.Float),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("cert_serial", sa.String(40)),
        sa.Column("cert_not_after", sa.Float),
    )
    op.create_index("ix_agents_state", "agents", ["state"])
    op.create_table(
        "certs",
        sa.Column("serial", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("revoked_at", sa.Float),
        sa.Column("not_after", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_certs_subject", "certs", ["subject"])
    op.create_index("ix_certs_revoked_at", "certs", ["revoked_at"])
    op.create_table(
        "servers",
        sa.Column("guid", sa.String(36), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("agent_port", sa.Integer, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("engine", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_servers_hostname", "servers", ["hostname"])
    op.create_index("ix_servers_updated", "servers", ["updated_at"])
    op.create_table(
        "sessions",
        sa.Column("server_guid", sa.String(36), primary_key=True),
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_sessions_id", "sessions", ["id"])
