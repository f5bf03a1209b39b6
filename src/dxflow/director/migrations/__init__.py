"""Alembic migrations of the director database (``dxflow director migrate``); see ``dxflow.director.schema``."""
