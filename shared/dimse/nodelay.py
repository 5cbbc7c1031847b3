"""TCP_NODELAY on every pynetdicom socket, accepted and requested.

Without it, small DIMSE responses wait for the peer's delayed ACK (~40 ms each on Linux);
pynetdicom does not set it, so the two socket factories are wrapped once at start-up.
"""

from __future__ import annotations

import contextlib
import socket

from pynetdicom import transport

_applied = False


def enable_tcp_nodelay() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    original_get_request = transport.AssociationServer.get_request
    original_create_socket = transport.AssociationSocket._create_socket

    def get_request(self):  # type: ignore[no-untyped-def]
        client, address = original_get_request(self)
        set_nodelay(client)
        return client, address

    def create_socket(self, address):  # type: ignore[no-untyped-def]
        sock = original_create_socket(self, address)
        set_nodelay(sock)
        return sock

    transport.AssociationServer.get_request = get_request  # type: ignore[method-assign]
    transport.AssociationSocket._create_socket = create_socket  # type: ignore[method-assign]


def set_nodelay(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
