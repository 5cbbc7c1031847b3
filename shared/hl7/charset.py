"""Character sets of inbound HL7 (MSH-18, HL7 table 0211) and decoding before parsing.

Empty MSH-18 is read as UTF-8: the standard says ASCII, which UTF-8 contains, and many
Vietnamese HIS send undeclared UTF-8. Bytes that are not valid in the declared set are refused
(never guessed), so a name is stored exactly as the HIS meant it or not at all.
"""

from __future__ import annotations

from mekong.shared.hl7.errors import Hl7Error

CODECS = {
    "": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "ASCII": "ascii",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
}


def declared_charset(block: bytes) -> str:
    """MSH-18 as written (first repetition), read without decoding the rest."""
    header = block.split(b"\r", 1)[0].split(b"\n", 1)[0]
    if not header.startswith(b"MSH") or len(header) < 4:
        return ""
    fields = header.split(header[3:4])
    if len(fields) <= 17:
        return ""
    value = fields[17].decode("latin-1")
    return value.split(_repetition(header), 1)[0].strip()


def _repetition(header: bytes) -> str:
    return chr(header[5]) if len(header) > 5 else "~"


def decode(block: bytes) -> tuple[str, str]:
    """(text, charset as declared); Hl7Error AR 103 / AE 102 when it cannot be decoded."""
    charset = declared_charset(block)
    codec = CODECS.get(charset.upper())
    if codec is None:
        raise Hl7Error(
            "AR",
            "103",
            f"character set {charset!r} is not supported; send UNICODE UTF-8, ASCII or 8859/n",
            "MSH-18",
        )
    try:
        return block.decode(codec), charset
    except UnicodeDecodeError as exc:
        raise Hl7Error(
            "AE",
            "102",
            f"byte {exc.start} is not valid {codec.upper()}; declare the character set the "
            "message is written in (MSH-18, UNICODE UTF-8 for Vietnamese)",
            "MSH-18",
        ) from None


def codec_for(charset: str) -> str:
    return CODECS.get(charset.upper(), "utf-8")
