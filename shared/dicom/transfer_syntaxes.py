"""Transfer syntaxes Mekong accepts on C-STORE and which of them it can decode."""

from __future__ import annotations

from pydicom import uid

NATIVE = [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian]

# Order is preference when a modality proposes several in one context (pynetdicom takes the
# first of ours it was offered): lossless compressed keeps every pixel and saves disk, then
# native, then lossy (taken only when the modality offers nothing else), then video.
ACCEPTED_FOR_STORAGE = [
    uid.JPEG2000Lossless,
    uid.JPEGLSLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLossless,
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.RLELossless,
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLSNearLossless,
    uid.JPEG2000,
    uid.HTJ2K,
    uid.MPEG2MPML,
    uid.MPEG2MPMLF,
    uid.MPEG2MPHL,
    uid.MPEG2MPHLF,
    uid.MPEG4HP41,
    uid.MPEG4HP41F,
    uid.MPEG4HP41BD,
    uid.MPEG4HP41BDF,
    uid.MPEG4HP422D,
    uid.MPEG4HP422DF,
    uid.MPEG4HP423D,
    uid.MPEG4HP423DF,
    uid.MPEG4HP42STEREO,
    uid.MPEG4HP42STEREOF,
    uid.HEVCMP51,
    uid.HEVCM10P51,
]

VIDEO = {
    uid.MPEG2MPML, uid.MPEG2MPMLF, uid.MPEG2MPHL, uid.MPEG2MPHLF, uid.MPEG4HP41, uid.MPEG4HP41F,
    uid.MPEG4HP41BD, uid.MPEG4HP41BDF, uid.MPEG4HP422D, uid.MPEG4HP422DF, uid.MPEG4HP423D,
    uid.MPEG4HP423DF, uid.MPEG4HP42STEREO, uid.MPEG4HP42STEREOF, uid.HEVCMP51, uid.HEVCM10P51,
}  # fmt: skip
