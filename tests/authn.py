"""Signing in to a node from tests: users and tokens made with the real CLI, HTTP via requests."""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import dataclass

import requests

from tests.nodeproc import NodeProcess, mekong_command, mekong_env

STRONG = "Sông-Cửu-Long-2026"  # meets the policy, not a dictionary word


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mekong_command(*args), capture_output=True, text=True, env=mekong_env(), timeout=60,
    )  # fmt: skip


def add_user(node: NodeProcess, name: str, role: str) -> str:
    """Create a user with the CLI; returns the one-time password it printed."""
    result = cli("user", "add", name, "--role", role, "--data", str(node.data_dir))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def add_token(node: NodeProcess, name: str, role: str) -> str:
    result = cli("token", "create", name, "--role", role, "--data", str(node.data_dir))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@dataclass
class Browser:
    """A requests session that behaves like the console: cookie + X-CSRF-Token."""

    node: NodeProcess
    http: requests.Session
    csrf: str = ""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.node.http_port}{path}"

    def login(self, username: str, password: str, **extra: str) -> requests.Response:
        body = {"username": username, "password": password, **extra}
        reply = self.http.post(self.url("/api/auth/login"), json=body)
        if reply.ok:
            self.csrf = reply.json()["csrf"]
        return reply

    def get(self, path: str, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
        return self.http.get(self.url(path), **kwargs)

    def send(self, method: str, path: str, csrf: bool = True, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        return self.http.request(method, self.url(path), headers=headers, **kwargs)


def browser(node: NodeProcess) -> Browser:
    return Browser(node, requests.Session())


def signed_in(node: NodeProcess, name: str, role: str) -> Browser:
    """A user past the first sign-in (one-time password changed to ``STRONG``)."""
    session, password = browser(node), add_user(node, name, role)
    assert session.login(name, password).ok
    change = {"current_password": password, "new_password": STRONG}
    reply = session.send("POST", "/api/auth/password", json=change)
    assert reply.ok, reply.text
    return session


def db(node: NodeProcess) -> sqlite3.Connection:
    return sqlite3.connect(node.data_dir / "index.db")
