"""The index: one data-access layer over SQLite (WAL) or PostgreSQL."""
