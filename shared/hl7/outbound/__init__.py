"""Outbound HL7 to the HIS (RIS-6.2): order status changes as ORM^O01 / OMI^O23 with ORC-1
``SC``, through a durable outbox.

``build`` turns a :class:`~.build.StatusEvent` into the message text for one destination;
``outbox`` writes one row per message per destination inside the caller's transaction and
moves rows through PENDING → SENT / DEAD; ``sender`` is the node component that delivers each
destination's queue in order over MLLP, with capped exponential back-off. Delivery is
at-least-once: MSH-10 never changes, also on resend, so a receiver drops duplicates by it.
See ``docs/hl7.md`` (Outbound messages).
"""
