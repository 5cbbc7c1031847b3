"""The DIMSE listener component: one pynetdicom AE, handlers bound per service: Verification,
C-STORE, Query/Retrieve (find.py, retrieve.py), Modality Worklist (worklist.py: RIS-5.1) and
MPPS (mpps.py: RIS-5.3, RIS-5.4).

Associations run on pynetdicom's threads; handlers reach the index through the node's loop.
On stop the listener closes first, then in-flight associations are given time to finish.
"""

from __future__ import annotations

import asyncio
import logging
import socketserver
import time
from collections.abc import Iterator
from typing import Any

from pynetdicom import AE, _config, evt
from pynetdicom.presentation import (
    AllStoragePresentationContexts,
    PresentationContext,
    build_context,
)
from pynetdicom.sop_class import (
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from mekong.shared import __version__
from mekong.shared.config import NodeConfig
from mekong.shared.dicom.transfer_syntaxes import ACCEPTED_FOR_STORAGE, NATIVE
from mekong.shared.dimse.find import handle_find
from mekong.shared.dimse.mpps import connect_outbound, handle_n_create, handle_n_set
from mekong.shared.dimse.policy import AePolicy
from mekong.shared.dimse.retrieve import handle_get, handle_move
from mekong.shared.dimse.services import Services
from mekong.shared.dimse.status import NOT_AUTHORIZED, SUCCESS
from mekong.shared.dimse.store import handle_store
from mekong.shared.dimse.tuning import tune_pynetdicom
from mekong.shared.dimse.worklist import MWL_FIND, handle_sop_extended, handle_worklist_find
from mekong.shared.ris import upstream
from mekong.shared.ris.status import Status

log = logging.getLogger(__name__)
_DRAIN_SECONDS = 30.0
_SERVICE_MODELS = (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    ModalityWorklistInformationFind,  # RIS-5.1: Modality Worklist (worklist.py)
    ModalityPerformedProcedureStep,  # RIS-5.3/5.4: MPPS N-CREATE / N-SET (mpps.py)
)


class _PolicyAE(AE):
    """An AE whose accepted calling titles follow the live AE table (association reject
    "calling AE title not recognized" for unknown callers when the policy says reject)."""

    policy: AePolicy | None = None

    @property  # type: ignore[override]
    def require_calling_aet(self) -> list[str]:
        if self.policy is None or self.policy.accept_unknown:
            return []
        titles = [ae for ae in self.policy.known_titles()]
        # an empty list means "accept anyone" to pynetdicom, so name an impossible title
        return titles or ["\x00"]

    @require_calling_aet.setter
    def require_calling_aet(self, _value: list[str]) -> None:
        pass


def storage_contexts() -> list[PresentationContext]:
    """Verification and every storage SOP class, with the syntaxes Mekong stores."""
    contexts = [build_context(Verification, NATIVE)]
    for context in AllStoragePresentationContexts:
        # scp_role: a C-GET requester may act as Storage SCP on this context
        storage = build_context(context.abstract_syntax, ACCEPTED_FOR_STORAGE)
        storage.scu_role, storage.scp_role = True, True
        contexts.append(storage)
    return contexts


class DimseServer:
    """The pynetdicom listener. Behind the front door it listens on a loopback port and
    serves the associations the front door relays (query/retrieve)."""

    name = "dimse-qr"

    def __init__(
        self,
        config: NodeConfig,
        services: Services,
        policy: AePolicy,
        address: tuple[str, int] | None = None,
    ) -> None:
        self._config = config
        self._address = address or (config.bind, config.dicom.port)
        self._services = services
        self._policy = policy
        self._server: ThreadedAssociationServer | None = None
        self.state = "stopped"

    def build_ae(self) -> AE:
        ae = _PolicyAE(ae_title=self._config.dicom.ae_title)
        ae.implementation_version_name = f"MEKONG_{__version__}"[:16]
        ae.policy = self._policy
        ae.maximum_pdu_size = self._config.dicom.max_pdu
        ae.network_timeout = self._config.dicom.network_timeout
        ae.acse_timeout = self._config.dicom.network_timeout
        ae.dimse_timeout = self._config.dicom.network_timeout
        ae.maximum_associations = self._config.dicom.max_associations
        for context in storage_contexts():
            ae.add_supported_context(
                context.abstract_syntax, context.transfer_syntax,
                scu_role=context.scu_role, scp_role=context.scp_role,
            )  # fmt: skip
        for model in _SERVICE_MODELS:
            ae.add_supported_context(model, NATIVE)
        return ae

    async def start(self) -> None:
        tune_pynetdicom()
        connect_outbound()  # MPPS status changes → outbound HL7, in this process too
        upstream.enable(self._config.mode == "edge" and self._config.hub.enabled)  # → the hub
        _config.LOG_REQUEST_IDENTIFIERS = False
        _config.LOG_RESPONSE_IDENTIFIERS = False
        args = [self._services]
        offered = tuple(Status(s) for s in self._config.dicom.worklist_statuses)
        handlers = [
            (evt.EVT_C_ECHO, _handle_echo, [self._policy]),
            (evt.EVT_C_STORE, handle_store, args),
            (evt.EVT_C_FIND, _route_find, [self._services, offered]),
            (evt.EVT_C_GET, handle_get, args),
            (evt.EVT_C_MOVE, handle_move, args),
            (evt.EVT_N_CREATE, handle_n_create, args),
            (evt.EVT_N_SET, handle_n_set, args),
            (evt.EVT_SOP_EXTENDED, handle_sop_extended),
        ]
        self._server = self.build_ae().start_server(
            self._address, block=False, evt_handlers=handlers
        )
        self.state = "running"
        log.info("pynetdicom listening on %s:%s", *self._server.server_address[:2])

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    async def stop(self) -> None:
        """Stop accepting, let in-flight associations finish (bounded), then close."""
        if self._server is None:
            return
        self.state = "draining"
        server = self._server
        await asyncio.to_thread(_drain, server)
        self.state = "stopped"


def _drain(server: ThreadedAssociationServer) -> None:
    socketserver.BaseServer.shutdown(server)  # leave the accept loop
    server.server_close()  # refuse new connections at once
    deadline = time.monotonic() + _DRAIN_SECONDS
    while server.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    if server.active_associations:
        log.warning("%d associations still open at shutdown", len(server.active_associations))


def _route_find(event: evt.Event, services: Services, offered: tuple[Status, ...]) -> Iterator[Any]:
    """C-FIND on the worklist model goes to the worklist SCP, the Q/R models to find.py."""
    if event.context.abstract_syntax == MWL_FIND:
        return handle_worklist_find(event, services, offered)
    return handle_find(event, services)


def _handle_echo(event: evt.Event, policy: AePolicy) -> int:
    caller = str(event.assoc.requestor.ae_title).strip()
    if not policy.allows(caller, "echo"):
        log.warning("C-ECHO refused: AE %r may not echo", caller)
        return NOT_AUTHORIZED
    return SUCCESS
