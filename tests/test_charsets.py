"""Instances in other character sets are decoded for the index and answered in UTF-8."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_charset_files

from tests.nodeproc import NodeProcess
from tests.test_dimse_dcmtk import find, store

SAMPLES = ["chrFren.dcm", "chrGreek.dcm", "chrRuss.dcm", "chrH31.dcm", "chrX2.dcm", "chrI2.dcm"]


@pytest.mark.parametrize("name", SAMPLES)
def test_name_in_another_charset_comes_back_as_the_same_characters(
    node: NodeProcess, name: str
) -> None:
    [path] = [Path(p) for p in get_charset_files(name)]
    original = pydicom.dcmread(path)
    assert store(node, path).returncode == 0
    [study] = find(node, "STUDY", f"StudyInstanceUID={original.StudyInstanceUID}",
                   "PatientName", "PatientID")  # fmt: skip
    assert study.SpecificCharacterSet == "ISO_IR 192"
    assert str(study.PatientName) == str(original.PatientName)
