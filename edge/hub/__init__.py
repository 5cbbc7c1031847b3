"""The edge's side of hub trust (issue 6): enroll once with the token of ``mekong site add``
(``enroll``), keep the certificate in ``DATA/hub/`` and give the uplink its mutual-TLS target
(``link``), report health to the hub over the same channel (``report``)."""
