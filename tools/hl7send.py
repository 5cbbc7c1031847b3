"""HL7 sender: send HL7 v2 messages over MLLP and print each ACK (a HIS stand-in for tests,
integration checks and the benchmark).

    python -m tools.hl7send --port 2575 message.hl7 [more.hl7 ...]
    python -m tools.hl7send --port 2575 --charset 8859/1 - < message.hl7

A message file may use LF or CRLF line ends; they are sent as CR (the HL7 segment end).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Iterable
from pathlib import Path

START, END = b"\x0b", b"\x1c\x0d"
CODECS = {"UNICODE UTF-8": "utf-8", "": "utf-8", "8859/1": "latin-1", "ASCII": "ascii"}


def segment(name: str, fields: dict[int, str]) -> str:
    """One segment from {field number: value} (MSH numbering: MSH-3 is ``fields[3]``)."""
    if name == "MSH":
        values = ["MSH", "^~\\&"] + [
            fields.get(n, "") for n in range(3, max(fields, default=2) + 1)
        ]
        return "|".join(values)
    return "|".join([name] + [fields.get(n, "") for n in range(1, max(fields, default=0) + 1)])


def orm(
    control_id: str,
    accession: str,
    *,
    patient: str = "BN001^^^BVCR",
    name: str = "Nguyễn^Thị Hồng Nhung",
    control: str = "NW",
    modality: str = "CR",
    station: str = "CR1",
    start: str = "",
    msh: dict[int, str] | None = None,
) -> str:
    """A sample ORM^O01 (v2.3.1, UTF-8): one order, accession = requested procedure = SPS ID."""
    header = {3: "HIS", 4: "BVCR", 5: "MEKONG", 6: "BVCR", 7: "20261126080000",
              9: "ORM^O01", 10: control_id, 11: "P", 12: "2.3.1", 18: "UNICODE UTF-8",
              **(msh or {})}  # fmt: skip
    return "\r".join([
        segment("MSH", header),
        segment("PID", {1: "1", 3: patient, 5: name, 7: "19800115", 8: "F"}),
        segment("PV1", {1: "1", 2: "O", 3: "KHOA_NOI^P12", 19: f"V{accession}"}),
        segment("ORC", {1: control, 2: f"P{accession}", 7: f"^^^{start}^^R"}),
        segment("OBR", {1: "1", 2: f"P{accession}", 4: "XQ001^Chụp X quang ngực thẳng",
                        18: accession, 19: accession, 20: accession, 21: station,
                        24: modality}),
    ]) + "\r"  # fmt: skip


def frame(message: bytes) -> bytes:
    return START + message + END


def to_bytes(message: str, encoding: str = "utf-8") -> bytes:
    """A message as text (segments on lines) → bytes with CR segment ends."""
    text = message.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    return text.replace("\n", "\r").encode(encoding) + b"\r"


class MllpClient:
    """A blocking MLLP connection: ``send`` one message, get its ACK bytes (unframed)."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def send(self, message: bytes) -> bytes:
        self.sock.sendall(frame(message))
        return self.receive()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> bytes:
        while END not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the receiver closed the connection without an ACK")
            self._buffer += chunk
        block, self._buffer = self._buffer.split(END, 1)
        return block[block.find(START) + 1 :]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def ack_fields(ack: bytes, encoding: str = "utf-8") -> dict[str, str]:
    """MSA-1, MSA-2, MSA-3 and ERR-3 / ERR-8 of an ACK, by name."""
    out: dict[str, str] = {}
    for segment in ack.decode(encoding).split("\r"):
        fields = segment.split("|")
        if fields[0] == "MSA":
            out.update(code=_at(fields, 1), control_id=_at(fields, 2), text=_at(fields, 3))
        elif fields[0] == "ERR":
            out.update(error_code=_at(fields, 3).split("^")[0], error_location=_at(fields, 2),
                       error=_at(fields, 8))  # fmt: skip
    return out


def _at(fields: list[str], n: int) -> str:
    return fields[n] if n < len(fields) else ""


def send_all(host: str, port: int, messages: Iterable[bytes]) -> list[bytes]:
    with MllpClient(host, port) as client:
        return [client.send(message) for message in messages]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hl7send", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="message files ('-' for stdin)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2575)
    parser.add_argument("--charset", default="UNICODE UTF-8", help="encoding of the files")
    args = parser.parse_args(argv)
    encoding = CODECS.get(args.charset.upper(), "utf-8")
    texts = [sys.stdin.read() if str(f) == "-" else f.read_text(encoding) for f in args.files]
    acks = send_all(args.host, args.port, (to_bytes(t, encoding) for t in texts))
    failed = 0
    for ack in acks:
        print(ack.decode(encoding, errors="replace").replace("\r", "\n"))
        failed += ack_fields(ack, encoding).get("code") != "AA"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
