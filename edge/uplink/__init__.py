"""Edge uplink: store-and-forward of every stored instance to the hub (PACS-19, PACS-7.1, QOS-3).

``outbox`` is the durable queue (table ``uplink_outbox``), ``stowclient`` speaks STOW-RS and
reads the destination's per-instance answer, ``policy`` decides retry / dead-letter,
``throttle`` caps bandwidth, ``sender`` is the component, ``routes`` the operator API.
"""
