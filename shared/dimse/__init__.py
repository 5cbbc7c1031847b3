"""DIMSE services (pynetdicom): one thin handler per service, the work done by the archive."""
