"""The DICOM port. Storage and verification associations are served here, on asyncio;
every other association (query/retrieve) is handed, byte for byte, to pynetdicom.

Why: pynetdicom spends ~2.7 ms of CPU and reactor polling per C-STORE before Mekong does any
work (measured against a do-nothing pynetdicom SCP), more than the archive's own work. An
association that proposes only Storage and Verification contexts — what a modality opens —
is negotiated here with pynetdicom's own PDU classes and negotiation function, and its
C-STORE data sets go straight from the socket to :meth:`Archive.store_blocking`. Anything
else is proxied to the pynetdicom listener on a loopback port, which implements C-FIND,
C-GET and C-MOVE, so behaviour there is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import Counter
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ
from pynetdicom.pdu import A_ASSOCIATE_RQ as AssociateRQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import negotiate_as_acceptor

from mekong.shared import __version__
from mekong.shared.archive import Failure
from mekong.shared.audit.trail import AuditEvent
from mekong.shared.config import NodeConfig
from mekong.shared.dicom.part10 import part10_bytes
from mekong.shared.dimse import status, ul
from mekong.shared.dimse.server import DimseServer, storage_contexts
from mekong.shared.dimse.services import Services
from mekong.shared.dimse.store import FAILURE_STATUS, status_comment
from mekong.shared.tls import server_context

log = logging.getLogger(__name__)
_DRAIN_SECONDS = 30.0
_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
_C_STORE_RQ, _C_ECHO_RQ = 0x0001, 0x0030


class FrontDoor:
    name = "dimse"

    def __init__(
        self,
        config: NodeConfig,
        services: Services,
        backend: DimseServer,
        reuse_port: bool,
        first: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._tls = tls
        self._port = config.dicom.tls_port if tls else config.dicom.port
        if tls:
            self.name = "dimse-tls"
        self._first = first  # the node's own listener, bound before any worker's
        self._config = config
        self._services = services
        self._contexts = storage_contexts()
        self._native = {str(cx.abstract_syntax) for cx in self._contexts}
        self._backend = backend
        self._reuse_port = reuse_port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.state = "stopped"

    async def start(self) -> None:
        if self._reuse_port and self._first:
            _refuse_if_taken(self._config.bind, self._port)
        self._server = await asyncio.start_server(
            self._accept, self._config.bind, self._port,
            reuse_port=self._reuse_port or None, limit=1 << 20, ssl=self._tls,
        )  # fmt: skip
        self.state = "running"
        log.info(
            "DICOM%s listening on %s:%s as %s", " TLS" if self._tls else "", self._config.bind,
            self._port, self._config.dicom.ae_title,
        )  # fmt: skip

    async def stop(self) -> None:
        """Refuse new associations, let open ones finish (bounded), then close them."""
        if self._server is None:
            return
        self.state = "draining"
        self._server.close()
        if self._connections:
            _, pending = await asyncio.wait(self._connections, timeout=_DRAIN_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self.state = "stopped"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await self._association(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the peer went away or fell silent: nothing was acknowledged since
        except ul.ProtocolError as exc:
            log.warning("aborting association from %s: %s", _peer(writer), exc)
            writer.write(ul.abort_pdu(reason=0x02))
        except Exception:  # a fault of ours: abort this association, keep serving the others
            log.exception("aborting association from %s", _peer(writer))
            writer.write(ul.abort_pdu(source=0x02, reason=0x00))
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _association(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        pdu_type, pdu = await self._read(reader)
        if pdu_type != ul.A_ASSOCIATE_RQ:
            raise ul.ProtocolError(f"expected A-ASSOCIATE-RQ, got PDU type {pdu_type:#x}")
        request = AssociateRQ()
        try:
            request.decode(pdu)
            primitive = request.to_primitive()
        except Exception as exc:
            raise ul.ProtocolError(f"A-ASSOCIATE-RQ cannot be decoded: {exc}") from None
        proposed = {
            str(cx.abstract_syntax) for cx in primitive.presentation_context_definition_list
        }
        if not proposed <= self._native:
            await self._proxy(pdu, reader, writer)
            return
        accepted = await self._negotiate(primitive, writer)
        if accepted is not None:
            await self._serve(accepted, reader, writer, primitive.calling_ae_title.strip())

    async def _negotiate(
        self, rq: A_ASSOCIATE, writer: asyncio.StreamWriter
    ) -> dict[int, str] | None:
        """Accept (returns {context id: transfer syntax}) or reject the association."""
        calling = rq.calling_ae_title.strip()
        if not self._services.policy.is_accepted(calling):
            log.warning("association from unknown AE %r rejected", calling)
            writer.write(_reject(rq, (0x01, 0x01, 0x03)))  # calling AE title not recognized
            return None
        if len(self._connections) > self._config.dicom.max_associations:
            writer.write(_reject(rq, (0x02, 0x03, 0x02)))  # local limit exceeded
            return None
        roles = {
            item.sop_class_uid: (item.scu_role, item.scp_role)
            for item in rq.user_information
            if isinstance(item, SCP_SCU_RoleSelectionNegotiation)
        }
        result, role_items = negotiate_as_acceptor(
            rq.presentation_context_definition_list, self._contexts, roles
        )
        writer.write(self._accept_pdu(rq, result, role_items))
        await writer.drain()
        return {
            int(cx.context_id): str(cx.transfer_syntax[0])  # type: ignore[arg-type]
            for cx in result
            if cx.result == 0x00
        }

    def _accept_pdu(self, rq: A_ASSOCIATE, result, role_items) -> bytes:  # type: ignore[no-untyped-def]
        primitive = A_ASSOCIATE()
        primitive.application_context_name = _APPLICATION_CONTEXT
        primitive.calling_ae_title = rq.calling_ae_title
        primitive.called_ae_title = rq.called_ae_title
        primitive.result = 0x00
        primitive.result_source = 0x01
        primitive.presentation_context_definition_results_list = result
        maximum = MaximumLengthNotification()
        maximum.maximum_length_received = self._config.dicom.max_pdu
        implementation = ImplementationClassUIDNotification()
        implementation.implementation_class_uid = PYNETDICOM_IMPLEMENTATION_UID
        version = ImplementationVersionNameNotification()
        version.implementation_version_name = f"MEKONG_{__version__}"[:16]
        primitive.user_information = [maximum, implementation, version, *role_items]
        pdu = A_ASSOCIATE_AC()
        pdu.from_primitive(primitive)
        return pdu.encode()

    async def _serve(
        self,
        contexts: dict[int, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        calling: str,
    ) -> None:
        tally: Counter[tuple[str, str, bool]] = Counter()  # (study, patient, ok) → instances
        try:
            await self._serve_messages(contexts, reader, writer, calling, tally)
        finally:
            self._audit_stores(writer, calling, tally)

    def _audit_stores(self, writer: asyncio.StreamWriter, calling: str, tally: Counter) -> None:  # type: ignore[type-arg]
        """One audit event per study and outcome of an association, not one per instance."""
        peer = _peer(writer)
        for (study, patient, ok), count in tally.items():
            self._services.audit.record(AuditEvent(
                calling, "ae", "images.store", "success" if ok else "failure", peer, study,
                patient, {"instances": count},
            ))  # fmt: skip

    async def _serve_messages(
        self,
        contexts: dict[int, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        calling: str,
        tally: Counter,  # type: ignore[type-arg]
    ) -> None:
        pending: ul.Message | None = None
        while True:
            pdu_type, pdu = await self._read(reader)
            if pdu_type == ul.A_RELEASE_RQ:
                writer.write(ul.RELEASE_RP)
                await writer.drain()
                return
            if pdu_type == ul.A_ABORT:
                return
            if pdu_type != ul.P_DATA_TF:
                raise ul.ProtocolError(f"unexpected PDU type {pdu_type:#x}")
            pending, complete = ul.add_fragments(pdu, pending)
            for message in complete:
                if message.context_id not in contexts:
                    raise ul.ProtocolError(
                        f"presentation context {message.context_id} not accepted"
                    )
                response = await self._answer(message, contexts[message.context_id], calling, tally)
                writer.write(ul.command_pdu(message.context_id, response))
                await writer.drain()

    async def _answer(
        self,
        message: ul.Message,
        syntax: str,
        calling: str,
        tally: Counter,  # type: ignore[type-arg]
    ) -> Dataset:
        command = message.decoded
        assert command is not None
        field = int(command.get("CommandField", 0))
        if field == _C_ECHO_RQ:
            allowed = self._services.policy.allows(calling, "echo")
            return _response(command, 0x8030, status.SUCCESS if allowed else status.NOT_AUTHORIZED)
        if field != _C_STORE_RQ:
            raise ul.ProtocolError(f"DIMSE command {field:#06x} on a storage association")
        if not self._services.policy.allows(calling, "store"):
            log.warning("C-STORE refused: AE %r may not store", calling)
            comment = f"AE '{calling}' may not store to this node"
            return _response(command, 0x8001, status.NOT_AUTHORIZED, comment)
        sop_class = str(command.AffectedSOPClassUID).strip("\0 ")
        sop_instance = str(command.AffectedSOPInstanceUID).strip("\0 ")
        part10 = part10_bytes(sop_class, sop_instance, syntax, bytes(message.dataset))
        result = await asyncio.to_thread(
            self._services.archive.store_blocking, part10, calling, sop_instance
        )
        tally[(result.study_uid, result.patient_id, result.ok)] += 1
        if result.ok:
            return _response(command, 0x8001, status.SUCCESS)
        failure = FAILURE_STATUS[result.failure or Failure.INTERNAL]
        return _response(command, 0x8001, failure, status_comment(result.message))

    async def _read(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        return await asyncio.wait_for(ul.read_pdu(reader), self._config.dicom.network_timeout)

    async def _proxy(
        self, request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Relay the association, unchanged, to the pynetdicom listener."""
        backend_reader, backend_writer = await asyncio.open_connection(
            "127.0.0.1", self._backend.port
        )
        backend_writer.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        backend_writer.write(request)
        try:
            await asyncio.gather(_pump(reader, backend_writer), _pump(backend_reader, writer))
        finally:
            backend_writer.close()


async def _pump(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(1 << 18):
            target.write(data)
            await target.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            target.write_eof()


def _response(command: Dataset, field: int, code: int, comment: str = "") -> Dataset:
    response = Dataset()
    response.AffectedSOPClassUID = command.AffectedSOPClassUID
    response.CommandField = field
    response.MessageIDBeingRespondedTo = command.MessageID
    response.CommandDataSetType = 0x0101
    response.Status = code
    if "AffectedSOPInstanceUID" in command:
        response.AffectedSOPInstanceUID = command.AffectedSOPInstanceUID
    if comment:
        response.ErrorComment = comment
    return response


def _reject(rq: A_ASSOCIATE, reason: tuple[int, int, int]) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.result, primitive.result_source, primitive.diagnostic = reason
    pdu = A_ASSOCIATE_RJ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if peer else "?"


def dicom_listeners(
    config: NodeConfig, services: Services, reuse_port: bool, first: bool = True
) -> list:  # type: ignore[type-arg]
    """The pynetdicom listener on a loopback port, then the front door on the DICOM port."""
    backend = DimseServer(config, services, services.policy, address=("127.0.0.1", 0))
    listeners = [backend, FrontDoor(config, services, backend, reuse_port, first)]
    if config.dicom.tls_port:  # the same service, behind TLS (DICOM Basic TLS profile)
        tls = config.tls
        context = server_context(
            Path(tls.cert), Path(tls.key), Path(tls.client_ca) if tls.client_ca else None
        )
        listeners.append(FrontDoor(config, services, backend, reuse_port, first, context))
    return listeners


def _refuse_if_taken(host: str, port: int) -> None:
    """With SO_REUSEPORT a second node on the same port would silently share it: bind once
    without it first, so a port in use fails start-up as it should."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR ignores closed connections in TIME_WAIT; a listener still refuses it
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
