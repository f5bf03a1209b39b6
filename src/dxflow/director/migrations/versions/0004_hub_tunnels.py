"""Where each agent's tunnel is (``dxflow.director.hub.locations``), shared by the replicas.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_tunnels",
        sa.Column("server_guid", sa.String(36), primary_key=True),
        sa.Column("replica", sa.String(255), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        if_not_exists=True,  # directors before 0004 made it at start
    )
