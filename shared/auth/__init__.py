"""Users, roles, passwords, sessions and API tokens (SEC-1..8, QOS-1)."""
