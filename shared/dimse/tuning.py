"""pynetdicom tuned for an archive: TCP_NODELAY on every socket, shorter reactor polling.

- Without TCP_NODELAY, small DIMSE responses wait for the peer's delayed ACK (~40 ms each on
  Linux); pynetdicom does not set it, so its two socket factories are wrapped.
- pynetdicom's association and DUL reactors poll with ``time.sleep(0.001)``; a C-STORE crosses
  both about three times, which cost ~1.2 ms of pure waiting per instance (measured: 300 CT
  instances to a do-nothing pynetdicom SCP took 1.18 s, 0.82 s with 0.1 ms polls). Their
  ``time`` module reference is swapped for one whose ``sleep`` is capped at ``POLL_SECONDS``;
  an idle association then wakes more often, which costs little CPU at this interval.
- Every accepted association deep-copied the server's supported presentation contexts (~180
  here: every storage class with its transfer syntaxes), ~26 ms per association before any
  C-FIND, worklist query or MPPS message (measured: 8.5 ms to associate with no storage
  contexts, 40.9 ms with them). Negotiation only reads them (``negotiate_as_acceptor`` builds
  new result contexts) and Mekong never changes them after start, so each association gets a
  new list of the same context objects.
"""

from __future__ import annotations

import contextlib
import copy
import socket
import time
from typing import Any

from pynetdicom import association, dul, transport
from pynetdicom.presentation import PresentationContext

POLL_SECONDS = 0.0002
_applied = False


class _ShortSleeps:
    """Stands in for the ``time`` module inside pynetdicom's reactors."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(min(seconds, POLL_SECONDS))


def tune_pynetdicom() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _wrap_sockets()
    association.time = _ShortSleeps()  # type: ignore[assignment]
    dul.time = _ShortSleeps()  # type: ignore[assignment]
    transport.deepcopy = _share_contexts  # type: ignore[attr-defined]


def _wrap_sockets() -> None:
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


def _share_contexts(value: Any) -> Any:
    """``deepcopy`` for pynetdicom's transport module: a list of presentation contexts (the
    server's, read-only during negotiation) is copied shallowly; anything else deeply."""
    if isinstance(value, list) and all(isinstance(cx, PresentationContext) for cx in value):
        return list(value)
    return copy.deepcopy(value)


def set_nodelay(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
