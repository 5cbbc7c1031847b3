"""systemd's service notification protocol (``sd_notify(3)``) without a library.

The node tells systemd it is ready (``Type=notify``), that it is alive (``WatchdogSec=``), what
it is doing (``STATUS=``) and that it is stopping. Availability QOS-3.1: a node that hangs stops
its watchdog pings and systemd restarts it. Without ``NOTIFY_SOCKET`` every call is a no-op, so
the node runs the same under a shell, in tests and under systemd.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends datagrams to ``$NOTIFY_SOCKET`` (a path, or an abstract name written ``@name``)."""

    def __init__(self, address: str | None) -> None:
        self._address = _socket_address(address) if address else None
        self._socket: socket.socket | None = None

    @classmethod
    def from_env(cls) -> Notifier:
        return cls(os.environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one datagram; False (logged once per failure) if the
        manager is not listening: a lost notification must never stop the node."""
        if self._address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", os.environ.get("NOTIFY_SOCKET"), exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _socket_address(value: str) -> str:
    # Python's AF_UNIX addresses take a leading NUL byte for the abstract namespace
    return "\0" + value[1:] if value.startswith("@") else value


def watchdog_interval() -> float | None:
    """Seconds between pings (half of ``WATCHDOG_USEC``), or None when systemd expects none.

    ``WATCHDOG_PID`` names the process systemd watches. A Nuitka onefile binary runs the node
    as a child of its unpacking launcher, which is systemd's main PID: the parent counts too.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid.isdigit() and int(pid) not in (os.getpid(), os.getppid()):
        return None
    return int(usec) / 1e6 / 2
