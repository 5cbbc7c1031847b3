"""Non-DICOM pixels, video and documents made into DICOM objects of an order (RIS-6.8, FEAT-2.3).

One module per kind of object: :mod:`.common` (patient/study/series/equipment and request
attributes every object shares), :mod:`.still` (JPEG, PNG, captured frames), :mod:`.video`
(MP4 → Video Endoscopic / Video Photographic / US Multi-frame), :mod:`.pdf` (Encapsulated
PDF). The SOP classes, attributes and transfer syntaxes are listed in docs/conformance.md §7.
"""
