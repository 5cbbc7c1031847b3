"""HL7 v2 inbound over MLLP (RIS-6.1, RIS-9.1, RIS-9.4–9.6, PACS-16.5).

``listener`` frames messages (python-hl7's asyncio MLLP streams, bytes only), ``receiver``
decodes by MSH-18, parses, applies through the RIS domain in one transaction with the message
log row, and builds the ACK. See ``docs/hl7.md`` for the interface specification.
"""
