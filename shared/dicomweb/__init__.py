"""DICOMweb (PS3.18) under ``/dicom-web/``: QIDO-RS, WADO-RS, WADO-URI, STOW-RS, rendering.

Requirements: MOB-2, RIS-13, ADV-2 (web access to images), RIS-6.6 / RIS-7.3 (HIS viewer
launch through the same data source).
"""
