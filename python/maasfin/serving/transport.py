"""uvicorn's HTTP protocol with TCP_NODELAY, a header read timeout and a header size limit.

TCP_NODELAY: asyncio turns Nagle's algorithm off only for sockets whose `proto` is IPPROTO_TCP. A
listening socket made with proto 0 (as uvicorn's own `--workers` mode makes it) yields connections
that keep Nagle on, and since uvicorn writes a response's headers and body in two writes, every
keep-alive response then waits for the client's delayed ACK: about 40 ms per request (measured: 22
requests/s instead of 1,300 on one connection). Setting TCP_NODELAY here fixes it whatever made the
socket.

Header limits: uvicorn times out idle keep-alive connections, but not a request whose headers never
finish (a new connection that sends nothing, or half its headers, is held open for as long as the
client likes), and its httptools parser takes headers of any size. Each connection here runs a
timer from the moment it waits for a request's headers (the connection opened, or the parser began
the next request on a keep-alive connection) until the parser has the whole header block; past
`header_timeout_s` the connection gets a 408 and is closed. Bytes received while the header block
is incomplete are counted: past `max_header_bytes` the connection gets a 431 and is closed (after
up to LINGER_S of reading and dropping what the client still sends, so that the answer is not lost
to a connection reset). The body's own timeout is the app's (app.py: 408).

`maasfin serve` passes `protocol_class(header_timeout_s, max_header_bytes)`, or with `--workers`
the import string HTTP_PROTOCOL, whose limits the workers read from MAASFIN_HTTP_LIMITS.
"""

from __future__ import annotations

import json
import os
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LIMITS_ENV = "MAASFIN_HTTP_LIMITS"
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_MAX_HEADER_BYTES = 32 * 1024
LINGER_S = 2.0  # a refused connection is read (and dropped) this long before it is closed


def _refusal(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


class NoDelayHTTPProtocol(HttpToolsProtocol):  # type: ignore[misc, valid-type]
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES

    def connection_made(self, transport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._header_timer = None
        self._header_bytes = 0
        self._refused = False
        self._body_chunk = False
        super().connection_made(transport)
        self._await_headers()  # a connection that sends nothing is closed too

    def _await_headers(self) -> None:
        if self._header_timer is None:
            self._header_bytes = 0
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_timed_out)

    def _headers_done(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    # the parser's callbacks: a request begins, its header block is complete, it is complete
    def on_message_begin(self) -> None:
        self._await_headers()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            # answered before its body was read (a 413, say): uvicorn's keep-alive timer, armed
            # when the response completed, was cancelled by the body's bytes; the next request's
            # headers are awaited under the header timeout instead (this chunk's bytes were body)
            self._await_headers()
            self._body_chunk = True

    def send_400_response(self, msg: str) -> None:
        """A request the parser cannot read (a malformed request line or header, a Content-Length
        that is not a number): a 400 with a JSON body like every other error, and the connection
        closed (uvicorn's own answer is plain text)."""
        self._headers_done()
        if not self.transport.is_closing():
            self.transport.write(_refusal(400, "Bad Request", f"the request is not valid HTTP/1.1 ({msg.rstrip('.')})"))
            self.transport.close()

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """Answers, half-closes, and reads (and drops) what the client is still sending for up to
        LINGER_S before closing: closing with unread data would reset the connection, and the client
        would lose the answer."""
        self._headers_done()
        self._refused = True
        if self.transport.is_closing():
            return
        self.transport.write(_refusal(status, reason, message))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered (its headers arrived with the timer's expiry)
        self._refuse(
            408,
            "Request Timeout",
            f"the request headers did not arrive within the server's header timeout of {self.header_timeout_s:g} s",
        )

    def data_received(self, data: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._body_chunk = False
        super().data_received(data)
        if self._header_timer is None or self.transport.is_closing() or self._body_chunk:
            return
        self._header_bytes += len(data)
        if self._header_bytes > self.max_header_bytes:
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"the request headers are larger than the server's limit of {self.max_header_bytes} bytes",
            )

    def connection_lost(self, exc) -> None:
        self._headers_done()
        super().connection_lost(exc)


def protocol_class(header_timeout_s: float, max_header_bytes: int) -> type:
    """NoDelayHTTPProtocol with these limits."""
    return type(
        "LimitedHTTPProtocol",
        (NoDelayHTTPProtocol,),
        {"header_timeout_s": float(header_timeout_s), "max_header_bytes": int(max_header_bytes)},
    )


def _from_environment() -> type:
    limits = json.loads(os.environ.get(LIMITS_ENV) or "{}")
    return protocol_class(
        limits.get("header_timeout_s", DEFAULT_HEADER_TIMEOUT_S),
        limits.get("max_header_bytes", DEFAULT_MAX_HEADER_BYTES),
    )


EnvironmentHTTPProtocol = _from_environment()
HTTP_PROTOCOL = "maasfin.serving.transport:EnvironmentHTTPProtocol"
