"""Benchmarks of Mekong against Orthanc (``python -m tools.bench.dimse``)."""
