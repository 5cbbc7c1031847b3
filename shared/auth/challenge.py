"""The self-hosted challenge after repeated login failures (SEC-3; no third-party service).

A short code is drawn as a distorted PNG; the client gets the image and an opaque challenge id
and must send the code back with the next login. Codes live in memory for five minutes and are
used once.
"""

from __future__ import annotations

import io
import random
import secrets
import time

from PIL import Image, ImageDraw, ImageFont

_ALPHABET = "ACDEFHJKLMNPRTUVWXY34679"  # no look-alikes (0/O, 1/I, 5/S, 8/B, 2/Z)
_LIFETIME = 300.0


class Challenges:
    def __init__(self) -> None:
        self._open: dict[str, tuple[str, float]] = {}

    def issue(self) -> tuple[str, bytes]:
        self._expire()
        answer = "".join(secrets.choice(_ALPHABET) for _ in range(5))
        challenge_id = secrets.token_urlsafe(16)
        self._open[challenge_id] = (answer, time.monotonic() + _LIFETIME)
        return challenge_id, _draw(answer)

    def solve(self, challenge_id: str, answer: str) -> bool:
        """True once for the right answer; any attempt uses the challenge up."""
        entry = self._open.pop(challenge_id, None)
        return bool(entry) and entry[1] > time.monotonic() and answer.strip().upper() == entry[0]

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, until) in self._open.items() if until < now]:
            del self._open[key]


def _draw(text: str) -> bytes:
    rng = random.Random(secrets.randbits(64))
    image = Image.new("L", (180, 60), 235)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=34)
    for n, char in enumerate(text):
        draw.text((12 + n * 32 + rng.randint(-4, 4), 10 + rng.randint(-6, 6)), char, 30, font)
    for _ in range(6):
        points = [(rng.randint(0, 180), rng.randint(0, 60)) for _ in range(2)]
        draw.line(points, fill=rng.randint(60, 160), width=2)
    buffer = io.BytesIO()
    image.rotate(rng.uniform(-6, 6), fillcolor=235).save(buffer, "PNG")
    return buffer.getvalue()
