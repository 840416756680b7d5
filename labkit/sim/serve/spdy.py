"""``kubectl port-forward``'s protocol: SPDY/3.1 streams, tunnelled in WebSocket binary messages.

kubectl (1.31+) opens ``pods/NAME/portforward`` as a WebSocket with the
sub-protocol ``SPDY/3.1+portforward.k8s.io`` and then speaks SPDY/3.1 inside
it, exactly as it would over a raw SPDY upgrade: for each local connection
it opens an *error* stream and a *data* stream (headers ``streamtype``,
``port``, ``requestid``), sends the connection's bytes as DATA frames on the
data stream, and waits until the server ends the error stream. The served
mesh answers each HTTP request arriving on a data stream from the pod's
modelled app (or the proxy's admin port, or Prometheus), then ends both
streams, as the connection closes after one response (``Connection: close``).

Only what that exchange uses is implemented: SYN_STREAM/SYN_REPLY with
zlib-compressed header blocks (one compression context per direction, with
the SPDY/3 dictionary), DATA, RST_STREAM, PING, GOAWAY; SETTINGS and
WINDOW_UPDATE are read and ignored (the answers are far below the 64 KiB
initial window).
"""
from __future__ import annotations

import struct
import zlib

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
MAX_FRAME = 3 * 1024 * 1024  # the API server's request limit; also the most one forwarded request may buffer

# The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): these words, each
# preceded by its length as a 32-bit big-endian integer, then the literal tail below.
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status|200 OK|version|HTTP/1.1|url public set-cookie "
    "keep-alive origin"
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _dictionary() -> bytes:
    words = []
    for part in _WORDS.split("|"):
        words += [part] if " " in part and part[0].isdigit() or part.startswith("HTTP") else part.split()
    return b"".join(struct.pack(">I", len(w)) + w.encode("ascii") for w in words) + _TAIL.encode("ascii")


DICTIONARY = _dictionary()


class SpdyError(Exception):
    pass


class ByteStream:
    """Bytes from a WebSocket's binary messages, read as one stream (the tunnel carries no other framing)."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def read(self, n: int) -> bytes:
        from labkit.sim.serve import websocket as ws

        while len(self.buf) < n:
            opcode, data = self.sock.recv()
            if opcode == ws.OP_CLOSE:
                raise ws.WebSocketClosed("closed by the client")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Session:
    """The server side of one SPDY/3.1 connection."""

    def __init__(self, read, write):
        self.read, self.write = read, write
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.deflate = zlib.compressobj(zdict=DICTIONARY)

    # -- frames in -------------------------------------------------------------------------------------
    def next_frame(self) -> tuple:
        """("control", type, flags, payload) or ("data", stream id, flags, payload)."""
        head = self.read(8)
        first, flags_len = struct.unpack(">II", head)
        flags, length = flags_len >> 24, flags_len & 0xFFFFFF
        if length > MAX_FRAME:
            raise SpdyError(f"a SPDY frame of {length} bytes")
        payload = self.read(length) if length else b""
        if first & 0x80000000:
            version, ftype = (first >> 16) & 0x7FFF, first & 0xFFFF
            if version != VERSION:
                raise SpdyError(f"SPDY version {version}; only 3 is spoken here")
            return "control", ftype, flags, payload
        return "data", first & 0x7FFFFFFF, flags, payload

    def headers(self, block: bytes) -> dict[str, str]:
        raw = self.inflate.decompress(block)
        (count,), i, out = struct.unpack(">I", raw[:4]), 4, {}
        for _ in range(count):
            (n,) = struct.unpack(">I", raw[i:i + 4])
            name = raw[i + 4:i + 4 + n].decode("latin-1")
            i += 4 + n
            (n,) = struct.unpack(">I", raw[i:i + 4])
            out[name.lower()] = raw[i + 4:i + 4 + n].decode("latin-1").split("\x00")[0]
            i += 4 + n
        return out

    # -- frames out ----------------------------------------------------------------------------------------
    def _control(self, ftype: int, flags: int, payload: bytes) -> None:
        self.write(struct.pack(">II", 0x80000000 | VERSION << 16 | ftype, flags << 24 | len(payload)) + payload)

    def reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> None:
        items = list((headers or {}).items())
        raw = struct.pack(">I", len(items)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode() for k, v in items)
        block = self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self._control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + block)

    def data(self, stream_id: int, payload: bytes, fin: bool = False) -> None:
        for i in range(0, max(len(payload), 1), 16384):
            chunk = payload[i:i + 16384]
            last = fin and i + 16384 >= len(payload)
            self.write(struct.pack(">II", stream_id, (FLAG_FIN if last else 0) << 24 | len(chunk)) + chunk)

    def pong(self, payload: bytes) -> None:
        self._control(PING, 0, payload)

    def reset(self, stream_id: int, status: int = 1) -> None:
        self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def serve_port_forward(session: Session, handler_for) -> None:
    """Run kubectl's port-forward exchange: ``handler_for(port)`` → fn(method, target, headers, body) → bytes,
    or None when nothing listens on that port (the client is told on the error stream)."""
    from labkit.sim.serve import _split_http  # the HTTP framing the v4 port-forward uses too

    streams: dict[int, dict] = {}
    pairs: dict[str, dict] = {}  # requestid → {"error": id, "data": id, "port": n}
    buffers: dict[int, bytes] = {}
    while True:
        kind, what, flags, payload = session.next_frame()
        if kind == "control":
            if what == SYN_STREAM:
                (stream_id,) = struct.unpack(">I", payload[:4])
                stream_id &= 0x7FFFFFFF
                headers = session.headers(payload[10:])
                streams[stream_id] = headers
                session.reply(stream_id)
                pair = pairs.setdefault(headers.get("requestid", str(stream_id)), {})
                pair[headers.get("streamtype", "data")] = stream_id
                pair["port"] = headers.get("port", "")
                if headers.get("streamtype") == "data":
                    buffers[stream_id] = b""
                    if handler_for(_port(pair["port"])) is None:
                        _fail(session, pair, f"error forwarding port {pair['port']} to the pod: connection refused "
                                             "(nothing in the modelled pod listens on it)")
            elif what == PING:
                session.pong(payload)
            elif what == GOAWAY:
                return
            continue  # SETTINGS, WINDOW_UPDATE, RST_STREAM, HEADERS: nothing to do
        stream_id = what
        headers = streams.get(stream_id)
        if headers is None or headers.get("streamtype") != "data" or stream_id not in buffers:
            continue  # the client half-closing its error stream, or a stream already ended
        pair = pairs.get(headers.get("requestid", str(stream_id)), {})
        buffers[stream_id] += payload
        if len(buffers[stream_id]) > MAX_FRAME:
            buffers.pop(stream_id)
            _fail(session, pair, f"a forwarded request over {MAX_FRAME} bytes: refused")
            continue
        handler = handler_for(_port(pair.get("port", "")))
        request, rest = _split_http(buffers[stream_id])
        if request is not None and handler is not None:
            buffers.pop(stream_id)
            response = handler(*request)
            session.data(stream_id, _with_close(response), fin=True)
            if "error" in pair:
                session.data(pair["error"], b"", fin=True)
        elif flags & FLAG_FIN:
            buffers.pop(stream_id, None)
            session.data(stream_id, b"", fin=True)
            if "error" in pair:
                session.data(pair["error"], b"", fin=True)


def _port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _fail(session: Session, pair: dict, message: str) -> None:
    if "error" in pair:
        session.data(pair["error"], message.encode(), fin=True)
    session.data(pair["data"], b"", fin=True)


def _with_close(response: bytes) -> bytes:
    """One response per forwarded connection: say so, so the client closes it after reading."""
    head, sep, body = response.partition(b"\r\n\r\n")
    if b"\r\nconnection:" not in head.lower():
        head += b"\r\nConnection: close"
    return head + sep + body
