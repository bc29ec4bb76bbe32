"""Header and body read timeouts and the header size limit of a real `maasfin serve`, over raw sockets."""

import json
import socket
import time

import pytest
from serving_support import credit_model, put
from test_serving_cli import Serve

ROW = b'{"model_name": "credit", "input_data": [[0.5, 0.2, 0.1, 0.3, 0.0]]}'
GUARD = 20  # seconds a test waits before it calls a connection held open (the limits under test are < 1 s)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeouts")
    put(tmp / "repo", "credit", 1, credit_model(seed=5))
    audit = tmp / "audit.jsonl"
    args = ["--header-timeout", 0.5, "--body-timeout", 0.5, "--max-header-bytes", 4096, "--poll-seconds", 0]
    args += ["--audit-refused-rate", 5, "--audit-refused-burst", 50]
    with Serve(tmp / "repo", *args, "--audit-log", audit) as srv:
        srv.audit = audit
        yield srv


def _connect(server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=GUARD)
    return s


def _read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it never does)."""
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk


def _read_response(s: socket.socket) -> bytes:
    """One whole response: its headers, then Content-Length bytes of body (a single recv may
    return only part of it)."""
    out = b""
    while b"\r\n\r\n" not in out:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        None,
    )
    while length is not None and len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _request(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def test_half_headers_get_408_and_the_connection_is_closed(server):
    with _connect(server) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
        status, body = _status_and_body(_read_until_closed(s))
    assert (status, body) == (
        408,
        {"error": "the request headers did not arrive within the server's header timeout of 0.5 s"},
    )


def test_a_silent_connection_is_closed(server):
    with _connect(server) as s:
        assert _status_and_body(_read_until_closed(s))[0] == 408


def test_half_headers_of_a_second_keep_alive_request_are_timed_out(server):
    with _connect(server) as s:
        s.sendall(_request(ROW))
        first = _read_response(s)
        assert first.startswith(b"HTTP/1.1 200 ")
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 1")
        assert _status_and_body(_read_until_closed(s))[0] == 408


def test_headers_sent_in_pieces_within_the_timeout_are_served(server):
    with _connect(server) as s:
        raw = _request(ROW)
        for k in range(0, len(raw), 40):
            s.sendall(raw[k : k + 40])
            time.sleep(0.01)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_oversized_headers_get_431(server):
    with _connect(server) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for _ in range(100):  # 100 KiB of headers, more than 4096 bytes
                s.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection while the client was still sending
        raw = _read_until_closed(s)
    status, body = _status_and_body(raw)
    assert (status, body) == (431, {"error": "the request headers are larger than the server's limit of 4096 bytes"})
    # a request with headers within the limit is served
    with _connect(server) as s:
        s.sendall(_request(ROW, b"X-Filler: " + b"a" * 3000 + b"\r\n"))
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_a_trickled_body_gets_408_and_an_audit_line(server):
    with _connect(server) as s:
        raw = _request(ROW)
        head = raw[: raw.index(b"\r\n\r\n") + 4]
        s.sendall(head + ROW[:10])
        for k in range(10, 14):  # one byte every 0.2 s: the body would take 11 s
            time.sleep(0.2)
            try:
                s.sendall(ROW[k : k + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
        s.shutdown(socket.SHUT_WR)
        raw = _read_until_closed(s)
    status, body = _status_and_body(raw)
    assert (status, body) == (
        408,
        {"error": "the request body did not arrive within the server's body timeout of 0.5 s"},
    )
    request_id = raw.split(b"x-request-id: ")[1].split(b"\r\n")[0].decode()
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in server.audit.read_text().splitlines()]
        mine = [x for x in lines if x.get("request_id") == request_id]
        if mine:
            break
        time.sleep(0.05)
    assert [(x["status"], x["error"]) for x in mine] == [(408, body["error"])]


@pytest.mark.parametrize(
    "raw, status, error",
    [
        (
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999999999999999\r\n\r\n",
            413,
            "the request body is larger than the limit of 16777216 bytes",
        ),
        (
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: \xd9\xa1\xd9\xa2\r\n\r\n",
            400,
            "the request is not valid HTTP/1.1 (Invalid HTTP request received)",
        ),
        (b"GARBAGE\r\n\r\n", 400, "the request is not valid HTTP/1.1 (Invalid HTTP request received)"),
    ],
    ids=["19-digit-length", "arabic-digit-length", "bad-request-line"],
)
def test_unreadable_requests_get_json_errors(server, raw, status, error):
    with _connect(server) as s:
        s.sendall(raw)
        got = _read_response(s)
    assert _status_and_body(got) == (status, {"error": error})
