"""Frames handed to the encoder process through shared memory: a fixed ring of slots.

The capture thread copies a frame into a free slot and sends the slot number; the encoder
sends the number back once it has converted the frame, so a slot is reused only after that.
"""

from __future__ import annotations

import contextlib
from multiprocessing.shared_memory import SharedMemory

import numpy as np


class FrameRing:
    def __init__(self, slots: int, height: int, width: int) -> None:
        self.shape = (slots, height, width, 3)
        self.memory = SharedMemory(create=True, size=slots * height * width * 3)
        self.frames = np.ndarray(self.shape, np.uint8, self.memory.buf)
        self.free = list(range(slots))
        self.closed = False

    @property
    def name(self) -> str:
        return self.memory.name

    def put(self, frame: np.ndarray) -> int | None:
        """Copy ``frame`` into a free slot; None when every slot is still in use."""
        if not self.free:
            return None
        slot = self.free.pop()
        self.frames[slot] = frame
        return slot

    def release(self, slot: int) -> None:
        self.free.append(slot)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        del self.frames
        with contextlib.suppress(FileNotFoundError):
            self.memory.close()
            self.memory.unlink()


def attach(name: str, shape: tuple[int, int, int, int]) -> tuple[SharedMemory, np.ndarray]:
    """The encoder's view of a ring made by the capture thread."""
    # A spawned child shares its parent's resource tracker: attaching registers the same
    # name again (a set), and the capture side's unlink removes it once.
    memory = SharedMemory(name=name)
    return memory, np.ndarray(shape, np.uint8, memory.buf)
