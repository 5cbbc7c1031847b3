"""Helpers for the worklist and MPPS tests: DCMTK findscu -W, HL7 orders, pynetdicom MPPS."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from tests.conftest import dcmtk, dimse_statuses
from tests.nodeproc import AE_TITLE, NodeProcess
from tools.hl7send import MllpClient, ack_fields

SPS = "ScheduledProcedureStepSequence"
NAME = "Nguyễn^Thị Hồng Nhung"


@dataclass
class WorklistAnswer:
    items: list[Dataset]
    raw: list[bytes]  # each response identifier as DCMTK wrote it (-X)
    statuses: list[int]  # every DIMSE status (with debug=True)
    result: subprocess.CompletedProcess[str]


def worklist(node: NodeProcess, *keys: str, aet: str = "MODALITY") -> WorklistAnswer:
    """findscu -W with ``keys`` (DCMTK paths: ``ScheduledProcedureStepSequence[0].Modality=CR``)."""
    out = node.data_dir.parent / f"mwl-{time.monotonic_ns()}"
    out.mkdir()
    args = ["findscu", "-W", "-d", "-X", "-od", str(out), "-aet", aet, "-aec", AE_TITLE,
            "127.0.0.1", str(node.dicom_port)]  # fmt: skip
    if not all(key.isascii() for key in keys):  # say how the query's text is encoded
        keys = ("SpecificCharacterSet=ISO_IR 192", *keys)
    for key in keys:
        args += ["-k", key]
    result = dcmtk(*args)
    files = sorted(out.glob("rsp*.dcm"))
    return WorklistAnswer(
        [pydicom.dcmread(f) for f in files],
        [f.read_bytes() for f in files],
        dimse_statuses(result.stderr),
        result,
    )


def step_keys(**values: str) -> list[str]:
    """DCMTK keys inside the SPS item: ``step_keys(Modality="CR", ScheduledProcedureStepID="")``."""
    return [
        f"{SPS}[0].{key}={value}" if value else f"{SPS}[0].{key}" for key, value in values.items()
    ]


def send_hl7(node: NodeProcess, message: str) -> dict[str, str]:
    with MllpClient("127.0.0.1", node.hl7_port) as client:
        return ack_fields(client.send(message.encode()))


def get_order(node: NodeProcess, accession: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{node.url}/api/orders/{accession}", timeout=10) as reply:
        return json.load(reply)


def mpps_association(node: NodeProcess, aet: str = "MODALITY") -> Association:
    ae = AE(ae_title=aet)
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate("127.0.0.1", node.dicom_port, ae_title=AE_TITLE)
    assert assoc.is_established
    return assoc
