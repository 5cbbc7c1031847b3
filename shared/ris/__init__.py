"""RIS domain: patients, visits, orders, requested procedures, scheduled procedure steps and
the master files (RIS-3, RIS-5.2, RIS-6.1, RIS-9.4–9.6, PACS-6.1).

Plain functions over a SQLAlchemy connection, shared by every way in (HL7 v2, the REST order
API, later MWL/MPPS and reconciliation). Each raises a :class:`~.errors.DomainError` for input
it cannot apply; the caller's transaction is then rolled back, so nothing is half-written.
"""
