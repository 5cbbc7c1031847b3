"""Accept headers (RFC 9110 media ranges) and the transfer syntax a client gets for frames.

Browsers' viewers send parameters quoted or not (``type=application/octet-stream``) and
``transfer-syntax=*``; both are accepted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from pydicom import uid

from mekong.shared.dicom.transfer_syntaxes import VIDEO

EXPLICIT_LE = str(uid.ExplicitVRLittleEndian)
# What browser codecs (OHIF / Cornerstone) decode as they are: everything else is transcoded.
BROWSER_DECODABLE = {
    str(s)
    for s in (
        uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit, uid.JPEGLosslessSV1, uid.JPEGLossless, uid.JPEGLSLossless,
        uid.JPEGLSNearLossless, uid.JPEG2000Lossless, uid.JPEG2000, uid.HTJ2KLossless,
        uid.HTJ2KLosslessRPCL, uid.HTJ2K, uid.RLELossless,
    )
}  # fmt: skip


class NotAcceptable(web.HTTPNotAcceptable):
    def __init__(self, message: str) -> None:
        super().__init__(text=message)


@dataclass(frozen=True)
class MediaRange:
    type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    @property
    def part_type(self) -> str:
        """For multipart/related, the media type of its parts (``type`` parameter)."""
        return self.params.get("type", "")

    def matches(self, media_type: str) -> bool:
        major, _, minor = self.type.partition("/")
        want_major, _, want_minor = media_type.partition("/")
        return major in ("*", want_major) and minor in ("*", want_minor)


def parse_accept(header: str | None) -> list[MediaRange]:
    """Media ranges in order of preference; an absent header accepts anything."""
    if not header or not header.strip():
        return [MediaRange("*/*")]
    ranges = [_media_range(item) for item in _split_outside_quotes(header, ",") if item.strip()]
    ranges = [r for r in ranges if r.q > 0]
    return sorted(ranges, key=lambda r: -r.q)  # stable: equal q keep the client's order


def _media_range(text: str) -> MediaRange:
    media, *raw_params = _split_outside_quotes(text, ";")
    params: dict[str, str] = {}
    for raw in raw_params:
        name, _, value = raw.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    try:
        q = float(params.pop("q", "1"))
    except ValueError:
        q = 1.0
    return MediaRange(media.strip().lower(), params, q)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def choose(request: web.Request, offered: list[str]) -> str:
    """The first of ``offered`` (plain media types) the client accepts, else 406."""
    for media_range in parse_accept(request.headers.get("Accept")):
        for media_type in offered:
            if media_range.matches(media_type):
                return media_type
    raise NotAcceptable(
        f"this resource is available as {', '.join(offered)}; Accept asked for "
        f"{request.headers.get('Accept')!r}"
    )


def multipart_syntax(request: web.Request, part_type: str, stored: str) -> str:
    """Transfer syntax for ``multipart/related; type=part_type`` parts, or 406.

    ``*`` gives the stored syntax when a browser can decode it; no parameter means Explicit VR
    Little Endian (PS3.18 default); a named syntax is honoured when it is the stored one or
    Explicit VR Little Endian (decoded here).
    """
    for media_range in parse_accept(request.headers.get("Accept")):
        if media_range.type == "*/*" or (
            media_range.type in ("multipart/related", "multipart/*")
            and media_range.part_type in (part_type, "", "*/*")
        ):
            asked = media_range.params.get("transfer-syntax", "")
            chosen = _syntax_for(asked, stored, part_type)
            if chosen:
                return chosen
    raise NotAcceptable(
        f"cannot send this instance (stored as {stored}) as {request.headers.get('Accept')!r}; "
        f'ask for multipart/related; type="{part_type}"; transfer-syntax=* or '
        f"transfer-syntax={EXPLICIT_LE}"
    )


def _syntax_for(asked: str, stored: str, part_type: str) -> str | None:
    if asked == "*":
        # whole instances travel as stored (they describe themselves); frames only when a
        # browser can decode them
        if part_type == "application/dicom" or stored in BROWSER_DECODABLE:
            return stored
        return None if stored in VIDEO else EXPLICIT_LE
    if asked == stored:
        return stored
    if asked in ("", EXPLICIT_LE):
        return None if stored in VIDEO else EXPLICIT_LE
    return None
