"""DICOM data handling shared by DIMSE and DICOMweb: parsing, names, integrity, codecs."""
