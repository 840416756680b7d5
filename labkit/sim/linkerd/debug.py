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
        self.packets.append(Packet(t + latency_ms / 1000.0, app_port, ephemeral, http2, False, request.method,
                                   request.path, request.authority, response.status, 60 + response.length,
                                   stream, response.grpc_status))

    # -- what tshark prints ------------------------------------------------------------------------
    def summary(self, packet: Packet, number: int, start: float) -> str:
        src = dst = "127.0.0.1"
        if packet.http2:
            proto = "HTTP2"
            info = (f"HEADERS[{packet.stream}]: {packet.method} {packet.path}" if packet.is_request
                    else f"HEADERS[{packet.stream}]: {packet.status} {STATUS_TEXT.get(packet.status, '')}".rstrip())
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
            lines.append("HyperText Transfer Protocol 2")
            lines.append(f"    Stream: HEADERS, Stream ID: {packet.stream}, Length {packet.length}")
            if packet.is_request:
                lines += [f"        Header: :method: {packet.method}", f"        Header: :path: {packet.path}",
                          f"        Header: :authority: {packet.authority}", "        Header: :scheme: http",
                          "        Header: content-type: application/grpc", "        Header: te: trailers"]
            else:
                lines += [f"        Header: :status: {packet.status}", "        Header: content-type: application/grpc"]
                if packet.grpc_status is not None:
                    lines.append(f"        Header: grpc-status: {packet.grpc_status}")
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


def _display(packet: Packet, expr: str) -> bool:
    """The few display filters the lab uses: http.request, http.response, http2, port tests, `or`/`and`."""
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
    m = re.fullmatch(r"tcp\.(srcport|dstport|port)\s*==\s*(\d+)", expr)
    if m:
        port = int(m.group(2))
        which = m.group(1)
        return (which in ("srcport", "port") and packet.src_port == port) or \
               (which in ("dstport", "port") and packet.dst_port == port)
    return True

