"""A PDF as Encapsulated PDF (``1.2.840.10008.5.1.4.1.1.104.1``): the file's bytes unchanged in
Encapsulated Document, padded to even length (RIS-5.7: ECG/EEG reports)."""

from __future__ import annotations

from pydicom import Dataset
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian

from mekong.edge.dicomize.common import Origin, base_dataset, sc_equipment
from mekong.edge.orders import OrderContext


class NotAPdf(ValueError):
    """The bytes are not a complete PDF file."""


def check_pdf(data: bytes) -> None:
    if not data.startswith(b"%PDF-"):
        raise NotAPdf("not a PDF file (no %PDF- header)")
    if b"%%EOF" not in data[-1024:]:
        raise NotAPdf("the PDF file is cut off (no %%EOF at its end)")


def pdf_object(ctx: OrderContext, pdf: bytes, origin: Origin, title: str = "") -> Dataset:
    check_pdf(pdf)
    ds = base_dataset(ctx, EncapsulatedPDFStorage, origin, ExplicitVRLittleEndian)
    sc_equipment(ds, origin)
    ds.AcquisitionDateTime = ds.ContentDate + ds.ContentTime
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = title[:64]
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    return ds
