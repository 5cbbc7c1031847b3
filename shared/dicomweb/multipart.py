"""multipart/related responses (RFC 2387) written part by part, never built whole in memory."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from aiohttp import web

_CHUNK = 1024 * 1024


class MultipartWriter:
    def __init__(self, request: web.Request, part_type: str) -> None:
        self.request = request
        self.boundary = uuid.uuid4().hex
        self.response = web.StreamResponse(
            headers={
                "Content-Type": f'multipart/related; type="{part_type}"; boundary={self.boundary}'
            }
        )
        self._started = False

    async def part(self, data: bytes, content_type: str, _open: bool = False) -> None:
        if not self._started:
            await self.response.prepare(self.request)
            self._started = True
        head = f"--{self.boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        await self.response.write(head + data + (b"" if _open else b"\r\n"))

    async def part_file(self, path: Path, content_type: str) -> None:
        """A part holding a whole file, read and sent a chunk at a time."""
        await self.part(b"", content_type, _open=True)  # header only; body follows
        with open(path, "rb") as file:
            while chunk := await asyncio.to_thread(file.read, _CHUNK):
                await self.response.write(chunk)
        await self.response.write(b"\r\n")

    async def finish(self) -> web.StreamResponse:
        if not self._started:
            await self.response.prepare(self.request)
        await self.response.write(f"--{self.boundary}--\r\n".encode())
        await self.response.write_eof()
        return self.response


def multipart_response(parts: list[bytes], part_type: str, content_type: str) -> web.Response:
    """Small multipart/related bodies (frames, bulk data) as one sized response."""
    boundary = uuid.uuid4().hex
    head = f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
    body = [piece for part in parts for piece in (head, part, b"\r\n")]
    body.append(f"--{boundary}--\r\n".encode())
    return web.Response(
        body=b"".join(body),
        headers={"Content-Type": f'multipart/related; type="{part_type}"; boundary={boundary}'},
    )
