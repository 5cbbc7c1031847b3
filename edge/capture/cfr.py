"""Constant frame rate from a source's timestamps (RIS-6.7: frames never silently lost).

Output frame n covers the time ``t0 + n / fps``. A source frame goes to the slot nearest its
timestamp: when the source is late, the slots it skipped repeat the previous frame
(*duplicated*); when it is early, the slot is already filled and the frame is *dropped*.
A steady source at the clip's rate gives neither. The time origin follows the source's mean
phase slowly (5 % of each frame's offset), so the first frame's jitter does not decide every
later slot.
"""

from __future__ import annotations

from dataclasses import dataclass

PHASE_GAIN = 0.05


@dataclass
class Placement:
    duplicates: int  # the previous frame repeated this many times first
    take: bool  # the frame fills the next slot


class CfrClock:
    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.t0: float | None = None
        self.last = -1  # the last slot filled
        self.dropped = 0
        self.duplicated = 0

    def place(self, timestamp: float) -> Placement:
        if self.t0 is None:
            self.t0 = timestamp
        slot = round((timestamp - self.t0) * self.fps)
        if slot <= self.last:
            self.dropped += 1
            return Placement(0, False)
        gap = slot - self.last - 1 if self.last >= 0 else 0
        self.duplicated += gap
        self.last = slot
        self.t0 += (timestamp - self.t0 - slot / self.fps) * PHASE_GAIN
        return Placement(gap, True)

    def lose(self) -> None:
        """A frame that could not be handed on (the encoder is behind): its slot repeats."""
        self.dropped += 1
        self.duplicated += 1
