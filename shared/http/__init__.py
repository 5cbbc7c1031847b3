"""The HTTP side of a node: REST API under /api/, later DICOMweb and the console."""
