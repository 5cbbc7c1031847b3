"""Non-DICOM import: JPEG, PNG, PDF and MP4 files from watch folders and uploads become DICOM
objects of an order, the original kept byte for byte (RIS-5.7, RIS-6.8, PACS-5, FEAT-2.2/2.3).

:mod:`.convert` decides what each file becomes, :mod:`.transcode` re-encodes video that cannot
be wrapped, :mod:`.service` stores the object and the original, :mod:`.watch` takes complete
files from watch folders, :mod:`.routes` is the upload API.
"""
