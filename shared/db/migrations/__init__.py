"""Alembic migrations for the index, run at node start-up by :mod:`mekong.shared.db.engine`."""
