"""One request on its way through the server: its id, body, plan, reply and record.

- `Exchange`: the request as the audit log and the metrics see it, filled in as it goes;
- `Plan`: a decoded request: the leased model version, the validated inputs, the protocol's
  `answer` (how the outputs become a reply) and, for explanations, their options;
- `Reply`: status, body, headers and media type, whichever web framework sends it;
- the body helpers both front ends share: Content-Encoding, the size limit, the digest.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
import zlib
from dataclasses import dataclass, field

from maasfin.serving import codec
from maasfin.serving.auth import KeyEntry
from maasfin.serving.errors import RequestError
from maasfin.serving.repository import Lease


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)
    media_type: str = "application/json"


def error_reply(e: RequestError) -> Reply:
    return Reply(e.status, codec.dumps({"error": e.message}), dict(e.headers))


def json_reply(obj, status: int = 200) -> Reply:
    return Reply(status, codec.dumps(obj))


class _RequestIds:
    """A random prefix and a counter, renewed in a forked child (pre-forked WSGI workers)."""

    def __init__(self):
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self.prefix, self.counter = os.urandom(8).hex(), itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


_IDS = _RequestIds()


def new_request_id() -> str:
    """32 hex digits, unique per process (a random prefix and a counter): the X-Request-ID of a
    request. Cheaper than uuid4 (no system call per request)."""
    return _IDS.new()


@dataclass
class Exchange:
    """One prediction request, as the audit log and the metrics see it."""

    protocol: str
    method: str
    path: str
    client: str | None
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    key: KeyEntry | None = None
    model: str | None = None
    version: int | None = None
    label: str | None = None
    rows: int | None = None
    input_sha256: str | None = None
    body_sha256: str | None = None
    outputs: object = None
    outputs_sha256: str | None = None
    error: str | None = None
    observe: bool = True  # a prediction request, counted in the request metrics (read routes: audit only)
    routing_key: str | None = None  # the client's (routing.py)
    route: str | None = None  # how the version was chosen: default, version, label, split, sticky
    shadow: tuple | None = None  # (decode, request, versions) of a routed request with shadow versions
    scores: object = None  # the PD per row, for the outcome store (outcomes/recorder.py)


@dataclass
class Plan:
    """A decoded prediction request, holding its model version's lease until released.

    `answer` is the protocol's: `answer.encode(y) -> Reply` and, for explanations,
    `answer.explanation(y, attributions, names, reasons) -> Reply`; neither has side effects
    (Service.reply does the accounting around them)."""

    exchange: Exchange
    lease: Lease
    xs: list
    answer: object
    explain: dict | None = None  # {"top_k", "steps"} of an explanation request


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body after its Content-Encoding (identity, gzip or deflate), at most `limit` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise RequestError(415, f"Content-Encoding {encoding!r} is not supported (use gzip, deflate or none)")
    d = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise RequestError(400, f"the request body is not valid {encoding} data ({e})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise RequestError(413, f"the decompressed request body is larger than the limit of {limit} bytes")
    return out


def too_large(limit: int) -> RequestError:
    return RequestError(413, f"the request body is larger than the limit of {limit} bytes")
