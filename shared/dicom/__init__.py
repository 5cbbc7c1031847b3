"""DICOM data handling shared by DIMSE and DICOMweb: parsing, names, integrity, codecs."""

import pydicom.config


def configure_pydicom() -> None:
    """Process-wide pydicom settings for a node.

    Reading validation is off: values are kept as received and only indexed, and validating
    every header value on read cost ~2 ms per instance (most of the parse time).
    """
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
