"""The ``linkerd-debug`` sidecar: tshark on the pod's own network namespace.

``config.linkerd.io/enable-debug-sidecar: "true"`` adds a container running
tshark next to the app and its proxy. Between meshed pods traffic is mTLS on
the wire, but inside the pod the proxy talks to the app in plaintext over
loopback, so tshark sees every HTTP request and response the app handles
(inbound: proxy → app on the app's port) and makes (outbound: app → the
proxy's outbound listener on 4140). The capture here is fed by the data
plane with exactly the requests that passed the pod, and printed the way
tshark prints them: one summary line per packet in the sidecar's log, or
``-V`` packet details for ``kubectl exec … -- tshark -V -Y http.request``.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

#: Outbound listener the proxy redirects the app's connections to (iptables by linkerd-init).
PROXY_OUTBOUND_PORT = 4140
#: How many requests the sidecar keeps (tshark's own ring is its log; bounded here).
KEEP = 5000
#: How long an exec'd tshark captures when no ``-a duration:N`` / ``-c N`` stops it (virtual seconds).
DEFAULT_CAPTURE = 10.0
STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 303: "See Other", 400: "Bad Request",
               404: "Not Found", 422: "Unprocessable Entity", 500: "Internal Server Error",
               502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(frozen=True)
class Packet:
    """One HTTP message as tshark decodes it on loopback."""

    time: float
    src_port: int
    dst_port: int
    http2: bool
    is_request: bool
    method: str
    path: str
    authority: str
    status: int
    length: int
    stream: int
    grpc_status: int | None
    grpc_message: str | None = None

    @property
    def trailers_only(self) -> bool:
        """A failed gRPC call answered with no message: one HEADERS frame carrying the status (gRPC's
        "Trailers-Only" response), as grpc-go sends for a handler that returned an error."""
        return not self.is_request and self.http2 and self.grpc_status not in (None, 0)

    def headers(self) -> list[tuple[str, str]]:
        """The HTTP/2 header fields of the packet's HEADERS frames, in wire order (trailers last)."""
        if self.is_request:
            return [(":method", self.method), (":path", self.path), (":authority", self.authority),
                    (":scheme", "http"), ("content-type", "application/grpc"), ("te", "trailers")]
        out = [(":status", str(self.status)), ("content-type", "application/grpc")]
        if self.grpc_status is not None:
            out.append(("grpc-status", str(self.grpc_status)))
        if self.grpc_message:
            out.append(("grpc-message", self.grpc_message))
        return out


class DebugCapture:
    """Listens on one pod's proxy (as a tap session does) and keeps what tshark would have seen."""

    def __init__(self, pod, clock):
        self.pod = pod
        self.clock = clock
        self.started = clock.t
        self.packets: deque[Packet] = deque(maxlen=KEEP)
        self._streams: dict[tuple, int] = {}
        self._ports: dict[tuple, int] = {}

    # The data plane calls this like a tap session, for every request through the pod's proxy.
    def __call__(self, direction, client, server, request, response, target_port, latency_ms, route=None) -> None:
        inbound = direction == "in"
        if inbound and server is not self.pod or not inbound and client is not self.pod:
            return
        conn = (client.uid, server.uid, target_port, direction)
        ephemeral = self._ports.get(conn)
        if ephemeral is None:
            ephemeral = self._ports[conn] = 40000 + (len(self._ports) * 7919) % 20000
        app_port = target_port if inbound else PROXY_OUTBOUND_PORT
        # HTTP/2 (gRPC) streams are odd-numbered per connection; HTTP/1.1 has none.
        stream = self._streams.get(conn, -1) + 2
        self._streams[conn] = stream
        http2 = request.grpc
        t = self.clock.t
        self.packets.append(Packet(t, ephemeral, app_port, http2, True, request.method, request.path,
                                   request.authority, 0, 80 + len(request.path) + request.body_bytes, stream, None))
        message = response.body if http2 and response.grpc_status and isinstance(response.body, str) else None
        self.packets.append(Packet(t + latency_ms / 1000.0, app_port, ephemeral, http2, False, request.method,
                                   request.path, request.authority, response.status, 60 + response.length,
                                   stream, response.grpc_status, message))

    # -- what tshark prints ------------------------------------------------------------------------
    def summary(self, packet: Packet, number: int, start: float) -> str:
        src = dst = "127.0.0.1"
        if packet.http2:
            proto = "HTTP2"
            info = (f"HEADERS[{packet.stream}]: {packet.method} {packet.path}" if packet.is_request
                    else f"HEADERS[{packet.stream}]: {packet.status} {STATUS_TEXT.get(packet.status, '')}".rstrip())
            if not packet.is_request and not packet.trailers_only:  # headers, the message, then the trailers
                info += f", DATA[{packet.stream}], HEADERS[{packet.stream}]"
        else:
            proto = "HTTP"
            info = (f"{packet.method} {packet.path} HTTP/1.1" if packet.is_request
                    else f"HTTP/1.1 {packet.status} {STATUS_TEXT.get(packet.status, '')}".rstrip())
        return f"{number:5d} {packet.time - start:12.9f}    {src} → {dst}    {proto} {packet.length} {info}"

    def verbose(self, packet: Packet, number: int, start: float) -> str:
        frame = packet.length + 66
        lines = [
            f"Frame {number}: {frame} bytes on wire ({frame * 8} bits), {frame} bytes captured ({frame * 8} bits) on interface any, id 0",
            "Linux cooked capture v1",
            "Internet Protocol Version 4, Src: 127.0.0.1, Dst: 127.0.0.1",
            f"Transmission Control Protocol, Src Port: {packet.src_port}, Dst Port: {packet.dst_port}, Len: {packet.length}",
        ]
        if packet.http2:
            fields = packet.headers()
            if packet.is_request or packet.trailers_only:
                frames = [("HEADERS", fields, packet.length)]
            else:  # gRPC puts grpc-status in the trailers, a second HEADERS frame after the DATA frame
                frames = [("HEADERS", fields[:2], 14), ("DATA", [], max(packet.length - 29, 5)),
                          ("HEADERS", fields[2:], 15)]
            for kind, headers, length in frames:
                lines.append("HyperText Transfer Protocol 2")
                lines.append(f"    Stream: {kind}, Stream ID: {packet.stream}, Length {length}")
                lines += [f"        Header: {name}: {value}" for name, value in headers]
        else:
            lines.append("Hypertext Transfer Protocol")
            if packet.is_request:
                lines += [f"    {packet.method} {packet.path} HTTP/1.1\\r\\n", f"    Host: {packet.authority}\\r\\n",
                          "    \\r\\n", f"    [Full request URI: http://{packet.authority}{packet.path}]"]
            else:
                lines += [f"    HTTP/1.1 {packet.status} {STATUS_TEXT.get(packet.status, '')}\\r\\n",
                          f"    Content-Length: {max(packet.length - 60, 0)}\\r\\n", "    \\r\\n"]
        return "\n".join(lines) + "\n"

    def log_text(self, tail: int | None = None) -> str:
        """The sidecar's log: tshark started with the pod and prints a line per HTTP packet."""
        lines = ["Capturing on 'any'"] + [self.summary(p, i, self.started) for i, p in enumerate(self.packets, 1)]
        if tail is not None:
            lines = lines[-tail:]
        return "\n".join(lines) + "\n"

    def tshark(self, argv: list[str], ctx) -> str:
        """``tshark [-i any] [-f tcp] [-V] [-Y filter] [-a duration:N] [-c N]`` run in the sidecar."""
        opts = _tshark_options(argv)
        begin = len(self.packets)
        start = self.clock.t
        run_for = getattr(ctx, "run_for", None)
        if run_for is not None:  # an interactive exec: capture from now on, for the session's length
            run_for(opts["duration"])
            packets = list(self.packets)[begin:]
        else:  # inside the model (no clock to advance): what the ring holds from the last `duration`
            packets = [p for p in self.packets if p.time >= start - opts["duration"]]
            start = start - opts["duration"]
        shown = [p for p in packets if _display(p, opts["filter"])]
        if opts["count"]:
            shown = shown[: opts["count"]]
        render = self.verbose if opts["verbose"] else self.summary
        out = ["Capturing on 'any'"] + [render(p, i, start) for i, p in enumerate(shown, 1)]
        out.append(f"{len(shown)} packets captured")
        return "\n".join(out) + "\n"


def _tshark_options(argv: list[str]) -> dict:
    args = list(argv[1:]) if argv and argv[0] == "tshark" else list(argv)
    opts = {"verbose": False, "filter": "", "duration": DEFAULT_CAPTURE, "count": 0}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-V":
            opts["verbose"] = True
        elif arg in ("-Y", "-R", "-f", "-i", "-a", "-c") and i + 1 < len(args):
            value = args[i + 1]
            if arg in ("-Y", "-R"):
                opts["filter"] = value
            elif arg == "-a" and value.startswith("duration:"):
                opts["duration"] = float(value.split(":", 1)[1])
            elif arg == "-c":
                opts["count"] = int(value)
            i += 1
        i += 1
    return opts


_HEADER_TEST = re.compile(r'http2\.(header\.name|header\.value|headers\.path)\s*(==|!=|contains)\s*"([^"]*)"')


def _header_test(packet: Packet, field: str, op: str, wanted: str) -> bool:
    """Wireshark's http2 header fields: true when *any* header of the packet passes (as a display filter does)."""
    if not packet.http2:
        return False
    fields = packet.headers()
    if field == "headers.path":
        values = [v for n, v in fields if n == ":path"]
    else:
        values = [n if field == "header.name" else v for n, v in fields]
    if op == "contains":
        return any(wanted in v for v in values)
    return any((v == wanted) == (op == "==") for v in values)


def _display(packet: Packet, expr: str) -> bool:
    """The display filters the labs use: http.request, http.response, http2, port tests, http2 header fields
    (``http2.headers.path contains "…"``, ``http2.header.name == "grpc-message"``), `or`/`and`."""
    expr = expr.strip()
    if not expr:
        return True
    for op in (" or ", " and "):
        if op in expr:
            parts = [_display(packet, part.strip("() ")) for part in expr.split(op)]
            return any(parts) if op == " or " else all(parts)
    # Wireshark's `http.*` fields are HTTP/1.x only; gRPC is HTTP/2 and needs `http2` filters.
    if expr == "http.request":
        return packet.is_request and not packet.http2
    if expr == "http.response":
        return not packet.is_request and not packet.http2
    if expr == "http":
        return not packet.http2
    if expr in ("http2", "grpc", "http2.type == 1"):
        return packet.http2
    m = _HEADER_TEST.fullmatch(expr)
    if m:
        return _header_test(packet, *m.groups())
    m = re.fullmatch(r"tcp\.(srcport|dstport|port)\s*==\s*(\d+)", expr)
    if m:
        port = int(m.group(2))
        which = m.group(1)
        return (which in ("srcport", "port") and packet.src_port == port) or \
               (which in ("dstport", "port") and packet.dst_port == port)
    return True

