"""uvicorn's HTTP protocol with TCP_NODELAY on every connection.

asyncio turns Nagle's algorithm off only for sockets whose `proto` is IPPROTO_TCP. A listening
socket made with proto 0 (as uvicorn's own `--workers` mode makes it) yields connections that keep
Nagle on, and since uvicorn writes a response's headers and body in two writes, every keep-alive
response then waits for the client's delayed ACK: about 40 ms per request (measured: 22 requests/s
instead of 1,300 on one connection). Setting TCP_NODELAY here fixes it whatever made the socket.
Used by `maasfin serve` as `http="maasfin.serving.transport:NoDelayHTTPProtocol"`.
"""

from __future__ import annotations

import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    def connection_made(self, transport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        super().connection_made(transport)


HTTP_PROTOCOL = "maasfin.serving.transport:NoDelayHTTPProtocol"
