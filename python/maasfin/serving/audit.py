"""The audit log: one JSON line per prediction request, whatever its outcome.

Durability: each line is handed to the kernel with a single write(2) on a file opened with
O_APPEND before the response is sent, so a response a client has received is in the log even if
the server process dies right after. With `fsync=True` each line is also fsync'ed before the
response (it then survives a power loss too, at the cost of a disk flush per request).

Rotation by size: when a line would take the file past `max_bytes`, it is renamed to `PATH.1`
(`PATH.1` to `PATH.2`, ..., keeping `backups` files) and a new file is started. A line is never
split across files.

Hand-written rather than logging.handlers.RotatingFileHandler: that handler prints and swallows
write errors (a lost audit line must fail the request instead), buffers through a stream, and has
no fsync.

Fields are capped: a string longer than 256 characters (a model name a client made up, say) is
cut, and `<field>_sha256` holds the SHA-256 of the whole value; a lone surrogate is escaped.

Canonical input hash (`input_sha256`): SHA-256 over, for each model input in order, its name, its
shape and its float32 little-endian bytes: `input_digest(arrays, names)`. It is the same whichever
protocol carried the request, and an auditor can recompute it from the rows the model saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import datetime, timezone

import numpy as np


def timestamp() -> str:
    """The `time` of an audit line: UTC, microseconds, ISO 8601 with a Z."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def tensor_digest(arrays: list[np.ndarray], names: list[str]) -> str:
    h = hashlib.sha256()
    for name, a in zip(names, arrays):
        a = np.ascontiguousarray(a, dtype="<f4")
        h.update(name.encode("utf-8") + b"\x00" + ",".join(str(d) for d in a.shape).encode() + b"\x00")
        h.update(a.tobytes())
    return h.hexdigest()


def input_digest(arrays: list[np.ndarray], names: list[str]) -> str:
    """The `input_sha256` of an audit line for these model inputs (float32 rows)."""
    return tensor_digest(arrays, names)


MAX_FIELD_CHARS = 256


def capped(record: dict, limit: int = MAX_FIELD_CHARS) -> dict:
    """`record` with every string longer than `limit` characters cut to its first `limit`, and
    followed by `<field>_sha256`: the SHA-256 of the whole value (UTF-8; a lone surrogate as its
    surrogatepass bytes), so that a client's 4 MiB model name costs the log a few hundred bytes."""
    if not any(isinstance(v, str) and len(v) > limit for v in record.values()):
        return record
    out = {}
    for k, v in record.items():
        if isinstance(v, str) and len(v) > limit:
            out[k] = v[:limit]
            out[f"{k}_sha256"] = hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest()
        else:
            out[k] = v
    return out


def encode_line(record: dict) -> bytes:
    """One JSON line, UTF-8. Text that is not valid Unicode (a lone surrogate such as "\\ud800",
    which JSON can carry) is written with JSON escapes, so any record makes a complete line."""
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
    try:
        return text.encode()
    except UnicodeEncodeError:
        return (json.dumps(record, separators=(",", ":"), ensure_ascii=True, allow_nan=False) + "\n").encode()


class AuditLog:
    def __init__(
        self,
        path,
        max_bytes: int = 100 * 1024 * 1024,
        backups: int = 10,
        fsync: bool = False,
        outputs: str = "hash",
        max_field_chars: int = MAX_FIELD_CHARS,
    ):
        if outputs not in ("hash", "values"):
            raise ValueError(f"audit outputs must be 'hash' or 'values', got {outputs!r}")
        if max_bytes < 1024:
            raise ValueError("audit max_bytes must be at least 1024")
        self.path = os.path.abspath(os.fspath(path))
        self.max_bytes = int(max_bytes)
        self.backups = int(backups)
        self.fsync = bool(fsync)
        self.outputs = outputs
        self.max_field_chars = int(max_field_chars)
        self._lock = threading.Lock()
        self._fd = None
        self._size = 0
        self._open()

    def _open(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = None
        if self.backups > 0:
            for k in range(self.backups - 1, 0, -1):
                src = f"{self.path}.{k}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{k + 1}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)
        self._open()

    def write(self, record: dict) -> None:
        """Appends one line; raises OSError if it could not be written."""
        line = encode_line(capped(record, self.max_field_chars))
        with self._lock:
            if self._fd is None:
                self._open()
            if self._size > 0 and self._size + len(line) > self.max_bytes:
                self._rotate()
            view = memoryview(line)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._size += len(line)
            if self.fsync:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
