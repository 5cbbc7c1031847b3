"""C-ECHO to another AE (PACS-18.3): can this node reach a modality or a peer archive?

Blocking; callers run it in a thread. The TCP connection is tried first on its own so a closed
port, an unknown host or a timeout gets a clear message instead of pynetdicom's generic one.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from mekong.shared.dimse.tuning import set_nodelay, tune_pynetdicom

TIMEOUT = 10.0


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    status: int | None  # the C-ECHO-RSP status (0 = success), None without a response
    ms: float
    error: str

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "status": self.status, "ms": self.ms, "error": self.error}


def echo(calling: str, called: str, host: str, port: int, timeout: float = TIMEOUT) -> EchoResult:
    started = time.perf_counter()
    problem = _tcp_problem(host, port, timeout)
    if problem:
        return EchoResult(False, None, _ms(started), problem)
    status, error = _associate_and_echo(calling, called, host, port, timeout)
    return EchoResult(status == 0 and not error, status, _ms(started), error)


def _tcp_problem(host: str, port: int, timeout: float) -> str:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            set_nodelay(sock)
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout:g} s"
    except socket.gaierror:
        return f"unknown host name {host!r}"
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port}: nothing listens on that port"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    return ""


def _associate_and_echo(
    calling: str, called: str, host: str, port: int, timeout: float
) -> tuple[int | None, str]:
    tune_pynetdicom()  # TCP_NODELAY on pynetdicom's sockets
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    for name in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(ae, name, timeout)
    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        return None, _refusal(assoc, called)
    try:
        reply = assoc.send_c_echo()
    finally:
        assoc.release()
    if "Status" not in reply:
        return None, f"{called} did not answer the C-ECHO within {timeout:g} s"
    status = int(reply.Status)
    return status, "" if status == 0 else f"{called} answered C-ECHO with status 0x{status:04X}"


def _refusal(assoc, called: str) -> str:  # type: ignore[no-untyped-def]
    if assoc.is_rejected:
        answer = assoc.acceptor.primitive
        reason = getattr(answer, "reason_str", "") if answer is not None else ""
        return f"association rejected by {called}: {reason or 'no reason given'}"
    if assoc.is_aborted:
        return f"{called} aborted the association (does it accept Verification?)"
    return f"no association with {called}: no answer to the association request"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
