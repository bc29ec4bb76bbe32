"""The options of a server (`ServingConfig`); `maasfin serve --help` lists the same ones."""

from __future__ import annotations

import os
from dataclasses import dataclass

from maasfin.serving.outcomes.store import store_url
from maasfin.serving.tiling import DEFAULT_TILE

MiB = 1024 * 1024


@dataclass
class ServingConfig:
    """Every option of a server; `maasfin serve --help` lists the same ones."""

    repo: str
    api_keys: str | None = None  # JSON file of hashed keys (auth.py); None: no authentication
    audit_log: str | None = None  # JSON-lines file; None: no audit log
    audit_outputs: str = "hash"  # "hash" (outputs_sha256) or "values" (the predictions themselves)
    grpc_port: int | None = None  # Open Inference Protocol over gRPC on this port (protocols/grpc.py)
    grpc_host: str = "0.0.0.0"
    store: str | None = None  # outcome store: a SQLite file path or URL, or postgresql://...; None: none
    store_retention_days: float | None = None  # predictions older than this are purged (None: kept)
    store_inputs: str = "hash"  # "hash": store each request's input digest with its predictions; "none"
    audit_fsync: bool = False  # fsync every line before the response
    audit_max_bytes: int = 100 * MiB  # rotate past this size
    audit_backups: int = 10  # rotated files kept
    audit_refused_rate: float = 10.0  # audit lines of refused (4xx) requests per second per key or client
    audit_refused_burst: int = 100  # ... of which this many at once (refusals.py)
    audit_summary_seconds: float = 60.0  # at most one `audit_dropped` summary line per identity this often
    max_batch_size: int = 256  # rows merged into one predict call
    max_latency_ms: float = 2.0  # longest a request waits for others to join its batch
    poll_seconds: float = 5.0  # repository polling period (0: no polling)
    max_body_bytes: int = 16 * MiB  # request body limit (after decompression)
    request_timeout_s: float = 30.0  # body read + queue + predict; then 504
    header_timeout_s: float = 10.0  # a request's whole header block must arrive within this; then 408 and closed
    body_timeout_s: float = 20.0  # a request's whole body must arrive within this after its headers; then 408
    max_header_bytes: int = 32 * 1024  # a larger header block gets 431 and the connection is closed
    num_threads: int | None = None  # oneDNN threads per worker (default: cores // workers)
    predict_threads: int | None = None  # threads running predict calls (default: cores // workers)
    max_queue: int = 4096  # queued requests per model version before 503
    tile: int = DEFAULT_TILE  # rows per core call (tiling.py)
    chunk_rows: int = 4096  # larger requests run in chunks of this many rows, between other requests (batching.py)
    public_docs: bool = False  # /docs and /openapi.json without a key
    workers: int = 1  # processes (maasfin serve); used for thread defaults
    drift_window: int = 5000  # recent rows per version kept for drift reports (0: none)
    drift_dir: str | None = None  # shared by the workers: drift windows merged over them (drift.py)

    def __post_init__(self):
        self.repo = os.fspath(self.repo)
        for name in (
            "max_batch_size",
            "max_body_bytes",
            "max_queue",
            "tile",
            "chunk_rows",
            "workers",
            "audit_max_bytes",
            "audit_refused_burst",
            "max_header_bytes",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("num_threads", "predict_threads"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
        if isinstance(self.drift_window, bool) or not isinstance(self.drift_window, int) or self.drift_window < 0:
            raise ValueError(f"drift_window must be an integer >= 0, got {self.drift_window!r}")
        if self.chunk_rows % self.tile:
            raise ValueError(f"chunk_rows must be a multiple of tile ({self.tile}), got {self.chunk_rows!r}")
        if not self.max_latency_ms >= 0:
            raise ValueError(f"max_latency_ms must be >= 0, got {self.max_latency_ms!r}")
        if not self.poll_seconds >= 0:
            raise ValueError(f"poll_seconds must be >= 0, got {self.poll_seconds!r}")
        for name in ("request_timeout_s", "header_timeout_s", "body_timeout_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1e6:
                raise ValueError(f"{name} must be a number of seconds > 0, got {v!r}")
        if not (self.audit_refused_rate > 0 and self.audit_summary_seconds >= 0):
            raise ValueError(
                "audit_refused_rate must be > 0 and audit_summary_seconds >= 0, got "
                f"{self.audit_refused_rate!r} and {self.audit_summary_seconds!r}"
            )
        if self.grpc_port is not None and (
            isinstance(self.grpc_port, bool) or not isinstance(self.grpc_port, int) or not 0 <= self.grpc_port < 65536
        ):
            raise ValueError(f"grpc_port must be a port number, got {self.grpc_port!r}")
        if self.store is not None:
            store_url(self.store)  # ValueError for a URL that is neither SQLite nor PostgreSQL
        if self.store_retention_days is not None and not self.store_retention_days > 0:
            raise ValueError(f"store_retention_days must be > 0, got {self.store_retention_days!r}")
        if self.store_inputs not in ("hash", "none"):
            raise ValueError(f"store_inputs must be 'hash' or 'none', got {self.store_inputs!r}")
        if self.audit_outputs not in ("hash", "values"):
            raise ValueError(f"audit_outputs must be 'hash' or 'values', got {self.audit_outputs!r}")

    def threads_per_worker(self) -> int:
        return max(1, (os.cpu_count() or 1) // self.workers)
