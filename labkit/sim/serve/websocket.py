"""The server side of the Kubernetes streaming protocols over WebSocket (RFC 6455), standard library only.

kube-apiserver serves ``pods/exec`` and ``pods/portforward`` as WebSocket
upgrades speaking the ``channel.k8s.io`` framing: every binary message starts
with one byte naming the channel. For exec, channel 0 is stdin, 1 stdout, 2
stderr and 3 the error channel, which carries a ``metav1.Status`` as the
command's exit status. For port-forward, each requested port gets a data
channel (``2*i``) and an error channel (``2*i + 1``), and the first message on
each is the port number as two little-endian bytes. That is exactly what the
``kubernetes`` Python client's ``stream`` / ``portforward`` expect, so the kube
backend runs its real-cluster code against the embedded mesh.
"""
from __future__ import annotations

import base64
import hashlib
import socket
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
#: Sub-protocols offered by the client, in our order of preference.
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "channel.k8s.io", "v5.channel.k8s.io", "portforward.k8s.io")


#: The largest message accepted (the API server's request limit): bigger ones end the stream.
MAX_MESSAGE = 3 * 1024 * 1024


class WebSocketClosed(Exception):
    pass


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode("ascii")


def choose_protocol(offered: str | None) -> str | None:
    names = [p.strip() for p in (offered or "").split(",") if p.strip()]
    for proto in CHANNEL_PROTOCOLS:
        if proto in names:
            return proto
    return names[0] if names else None


def handshake(handler) -> str | None:
    """Answer the HTTP Upgrade on a ``BaseHTTPRequestHandler``; returns the chosen sub-protocol."""
    key = handler.headers.get("Sec-WebSocket-Key")
    proto = choose_protocol(handler.headers.get("Sec-WebSocket-Protocol"))
    handler.send_response(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept_key(key or ""))
    if proto:
        handler.send_header("Sec-WebSocket-Protocol", proto)
    handler.end_headers()
    handler.wfile.flush()
    return proto


class WebSocket:
    """Server-side frames over a connected socket (client frames are masked, ours are not)."""

    def __init__(self, rfile, wfile):
        self.rfile, self.wfile = rfile, wfile
        self.closed = False

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(n - len(data))
            if not chunk:
                raise WebSocketClosed("connection closed")
            data += chunk
        return data

    def recv(self) -> tuple[int, bytes]:
        """The next complete message: (opcode, payload). Pings are answered; fragments joined."""
        message, first_op = b"", None
        while True:
            b1, b2 = self._read_exact(2)
            fin, opcode = b1 & 0x80, b1 & 0x0F
            length = b2 & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", self._read_exact(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", self._read_exact(8))
            if length > MAX_MESSAGE or len(message) + length > MAX_MESSAGE:
                raise WebSocketClosed(f"a WebSocket message over {MAX_MESSAGE} bytes")  # never buffer unbounded
            mask = self._read_exact(4) if b2 & 0x80 else b"\0\0\0\0"
            payload = bytearray(self._read_exact(length))
            for i in range(length):
                payload[i] ^= mask[i % 4]
            if opcode == OP_PING:
                self.send(bytes(payload), OP_PONG)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self.closed = True
                return OP_CLOSE, bytes(payload)
            if first_op is None:
                first_op = opcode
            message += bytes(payload)
            if fin:
                return first_op, message

    def send(self, payload: bytes, opcode: int = OP_BINARY) -> None:
        if self.closed and opcode != OP_CLOSE:
            raise WebSocketClosed("connection closed")
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        try:
            self.wfile.write(head + payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, socket.error) as exc:
            self.closed = True
            raise WebSocketClosed(str(exc)) from None

    def send_channel(self, channel: int, data: bytes) -> None:
        self.send(bytes([channel]) + data)

    def close(self, code: int = 1000) -> None:
        if self.closed:
            return
        try:
            self.send(struct.pack(">H", code), OP_CLOSE)
        except WebSocketClosed:
            pass
        self.closed = True
