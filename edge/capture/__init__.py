"""Video capture from frame grabbers, streams and demo files (RIS-5.6, RIS-6.7, FEAT-2.1).

Pipeline, one folder per stage: :mod:`.sources` read frames with the device's timestamps,
:mod:`.device` runs one capture thread per open device (latest frame for preview and snapshot,
the clip's constant-frame-rate placement in :mod:`.cfr`), :mod:`.recording` hands frames through
shared memory (:mod:`.ring`) to the H.264 encoder process (:mod:`.encoder`), :mod:`.store` turns
a clip or a snapshot into DICOM of the order and stores it, :mod:`.manager` is the node
component, :mod:`.routes` the REST API and the capture page.
"""
