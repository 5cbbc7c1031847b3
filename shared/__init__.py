"""Mekong code shared by the edge and hub modes (the framework: node, index, DICOM, HTTP)."""

__version__ = "0.1.0"
