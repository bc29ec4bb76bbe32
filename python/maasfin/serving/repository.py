"""The model repository: `ROOT/<name>/<version>/model.maas`, with labels in `ROOT/<name>/labels.json`.

- Versions are directory names made of digits; the newest *available* version serves by default.
- `labels.json` maps label names to versions, e.g. {"stable": 1, "canary": 2}, and may hold a
  traffic policy under "routing" (splits, sticky keys and shadow versions: routing.py).
- `poll()` (run every `poll_seconds` by a background thread) picks up changes without a restart:
  a new or changed model file is loaded, validated (signature, warm-up predicts on a zero tile and
  on representative rows stored in the model, finite outputs: warmup.py) and only then swapped in,
  atomically, under a lock that requests take for a few microseconds to resolve a version.
- A version that fails to load is reported (`status()`, the log) and retried only when its file
  changes; the version it would have replaced keeps serving.
- A version removed from disk stops taking new requests at once and is dropped when the requests
  already using it have finished (leases count them).

Loading runs only in `start()`/`poll()`, never at construction: a server that forks workers
creates the repository in the parent and loads models in each worker.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field

from maasfin import saving
from maasfin.serving import routing
from maasfin.serving.errors import RequestError, not_found
from maasfin.serving.tiling import DEFAULT_TILE
from maasfin.serving.warmup import warm_up
from maasfin.signature import Signature

log = logging.getLogger("maasfin.serving")

MODEL_FILE = "model.maas"
LABELS_FILE = "labels.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
VERSION_RE = re.compile(r"\A[0-9]{1,18}\Z")  # ASCII digits only, no trailing newline


def _stat_key(path: str):
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ServedVersion:
    """One loaded version: the model, its signature, and a count of the requests using it."""

    def __init__(
        self,
        name: str,
        version: int,
        path: str,
        model,
        signature: Signature,
        metadata: dict,
        stat_key,
        load_seconds: float,
    ):
        self.name = name
        self.version = version
        self.path = path
        self.model = model
        self.signature = signature
        self.metadata = metadata
        self.stat_key = stat_key
        self.loaded_at = time.time()
        self.load_seconds = load_seconds
        self.retired = False
        self.attachments: dict = {}  # per-version state of the server (its batcher), closed on release
        self._leases = 0
        self._lock = threading.Lock()
        self._on_idle: list = []

    def acquire(self) -> None:
        """Counts one more request using this version (ModelRepository.lease)."""
        with self._lock:
            self._leases += 1

    def release(self) -> None:
        """Counts one request fewer; the last one of a retired version unloads it (Lease.release)."""
        with self._lock:
            self._leases -= 1
            done = self.retired and self._leases == 0
        if done:
            self._finalize()

    def retire(self) -> None:
        """Takes no new requests; unloads once the last one has finished."""
        with self._lock:
            self.retired = True
            done = self._leases == 0
        if done:
            self._finalize()

    def _finalize(self) -> None:
        callbacks, self._on_idle = self._on_idle, []
        for cb in callbacks:
            try:
                cb(self)
            except Exception:  # noqa: BLE001 - a cleanup hook must not break the poller
                log.exception("cleanup of model '%s' version %d failed", self.name, self.version)
        log.info("model '%s' version %d unloaded", self.name, self.version)
        self.model = None
        self.attachments.clear()

    def on_unload(self, callback) -> None:
        """Calls `callback(version)` once this version is retired and its last request has finished."""
        with self._lock:
            if not (self.retired and self._leases == 0):
                self._on_idle.append(callback)
                return
        callback(self)

    @property
    def leases(self) -> int:
        return self._leases


class Lease:
    """A resolved version, held for the duration of one request (`with repo.lease(...) as v:`)."""

    __slots__ = ("version", "route", "shadows", "_released")

    def __init__(self, version: ServedVersion, route: str = "version", shadows: tuple[int, ...] = ()):
        self.version = version
        self.route = route  # "default" | "version" | "label" | "split" | "sticky" (routing.py)
        self.shadows = shadows
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.version.release()

    def __enter__(self) -> ServedVersion:
        return self.version

    def __exit__(self, *exc) -> None:
        self.release()


@dataclass
class _ModelEntry:
    versions: dict[int, ServedVersion] = field(default_factory=dict)
    failures: dict[int, tuple[str, object]] = field(default_factory=dict)  # version -> (message, stat key)
    labels: dict[str, int] = field(default_factory=dict)
    labels_key: object = None
    labels_error: str | None = None
    routing: routing.RoutingPolicy | None = None

    def newest(self) -> ServedVersion | None:
        return self.versions[max(self.versions)] if self.versions else None


class ModelRepository:
    def __init__(self, root, poll_seconds: float = 5.0, tile: int = DEFAULT_TILE, warmup: bool = True):
        self.root = os.path.abspath(os.fspath(root))
        self.poll_seconds = float(poll_seconds)
        self.tile = tile
        self.warmup = warmup
        self._models: dict[str, _ModelEntry] = {}
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scanned = False
        self._listeners: list = []
        self._poll_hooks: list = []
        self.poll_count = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, background: bool = True) -> None:
        """Loads what is on disk now, then polls every `poll_seconds` in a daemon thread."""
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"model repository '{self.root}' is not a directory")
        self.poll()
        if background and self.poll_seconds > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="maasfin-repository-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the poller must survive anything on disk
                log.exception("polling the model repository '%s' failed", self.root)

    def add_listener(self, callback) -> None:
        """`callback(event, name, version, detail)` on "loaded", "failed", "unloaded" (from the poll thread)."""
        self._listeners.append(callback)

    def _emit(self, event: str, name: str, version, detail=None) -> None:
        for cb in self._listeners:
            try:
                cb(event, name, version, detail)
            except Exception:  # noqa: BLE001
                log.exception("repository listener failed")

    # -- polling -----------------------------------------------------------------------------
    def poll(self) -> None:
        """One pass over the repository: load what is new or changed, retire what is gone."""
        with self._poll_lock:
            self._poll()
            self.poll_count += 1
            self._scanned = True
        for hook in self._poll_hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001
                log.exception("repository poll hook failed")

    def add_poll_hook(self, callback) -> None:
        """`callback()` after every poll, in the poll thread (the server re-reads its keys file there)."""
        self._poll_hooks.append(callback)

    def _poll(self) -> None:
        try:
            names = sorted(n for n in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, n)))
        except OSError as e:
            log.error("cannot list the model repository '%s': %s", self.root, e)
            return
        names = [n for n in names if NAME_RE.match(n)]
        for name in names:
            self._poll_model(name)
        gone = [n for n in list(self._models) if n not in names]
        for name in gone:
            with self._lock:
                entry = self._models.pop(name)
            for v in entry.versions.values():
                v.retire()
                self._emit("unloaded", name, v.version)
            log.info("model '%s' removed from the repository", name)

    def _poll_model(self, name: str) -> None:
        mdir = os.path.join(self.root, name)
        entry = self._models.get(name) or _ModelEntry()
        on_disk: dict[int, tuple[str, object]] = {}
        try:
            children = os.listdir(mdir)
        except OSError:
            children = []
        for child in children:
            if not VERSION_RE.match(child):
                continue
            path = os.path.join(mdir, child, MODEL_FILE)
            try:
                key = _stat_key(path)
            except OSError:
                continue  # a version directory without its model file (yet)
            version = int(child)
            if version in on_disk:  # "1" and "01": the first one listed wins, reported
                entry.failures[version] = (f"version {version} has two directories; rename one", None)
                continue
            on_disk[version] = (path, key)

        new_versions = dict(entry.versions)
        failures = {v: f for v, f in entry.failures.items() if v in on_disk}
        changed = False
        for version in sorted(on_disk):
            path, key = on_disk[version]
            current = entry.versions.get(version)
            if current is not None and current.stat_key == key:
                continue
            if version in failures and failures[version][1] == key:
                continue  # failed before and unchanged since: not retried
            try:
                loaded = self._load(name, version, path, key)
            except Exception as e:  # noqa: BLE001 - any failure is reported and the old version kept
                msg = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
                failures[version] = (msg, key)
                what = "reload" if current is not None else "load"
                log.error(
                    "model '%s' version %d failed to %s (%s)%s",
                    name,
                    version,
                    what,
                    msg,
                    "; the loaded copy keeps serving" if current is not None else "",
                )
                self._emit("failed", name, version, msg)
                continue
            failures.pop(version, None)
            new_versions[version] = loaded
            changed = True
        removed = [v for v in new_versions if v not in on_disk]
        for v in removed:
            new_versions.pop(v)
        labels, labels_key, labels_error, policy = self._read_labels(mdir, entry)
        if policy is not None and labels_error is None:
            try:
                routing.check_versions(policy, on_disk)
            except ValueError as e:
                labels_error = f"{os.path.join(mdir, LABELS_FILE)}: {e}"
                log.error("routing policy of model '%s' is invalid (%s); keeping the previous one", name, e)
                policy = entry.routing

        retired = [
            entry.versions[v]
            for v in entry.versions
            if v not in new_versions or new_versions[v] is not entry.versions[v]
        ]
        new_entry = _ModelEntry(
            versions=new_versions,
            failures=failures,
            labels=labels,
            labels_key=labels_key,
            labels_error=labels_error,
            routing=policy,
        )
        with self._lock:  # the atomic swap
            self._models[name] = new_entry
        for old in retired:
            old.retire()
            if old.version not in new_versions:
                self._emit("unloaded", name, old.version)
                log.info("model '%s' version %d removed; unloading after in-flight requests", name, old.version)
        if changed:
            for v in sorted(new_versions):
                if v not in entry.versions or new_versions[v] is not entry.versions[v]:
                    self._emit("loaded", name, v)

    def _read_labels(self, mdir: str, entry: _ModelEntry):
        path = os.path.join(mdir, LABELS_FILE)
        try:
            key = _stat_key(path)
        except OSError:
            return {}, None, None, None
        if key == entry.labels_key:
            return entry.labels, entry.labels_key, entry.labels_error, entry.routing
        try:
            with open(path, "rb") as f:
                raw = f.read(1 << 20)
            labels = json.loads(raw.decode("utf-8"))
            if not isinstance(labels, dict):
                raise ValueError("it must be a JSON object mapping label names to versions")
            policy = (
                routing.parse_policy(labels.pop(routing.ROUTING_ENTRY)) if routing.ROUTING_ENTRY in labels else None
            )
            for k, v in labels.items():
                if not LABEL_RE.match(k):
                    raise ValueError(f"label {k!r} is not a valid name (letters, digits, '_' and '-')")
                if type(v) is not int or v < 0:
                    raise ValueError(f"label {k!r} maps to {v!r}, not a version number")
        except (OSError, ValueError) as e:
            msg = f"{path}: {e}"
            log.error("labels file %s is invalid (%s); keeping the previous labels", path, e)
            return entry.labels, key, msg, entry.routing
        return dict(labels), key, None, policy

    def _load(self, name: str, version: int, path: str, key) -> ServedVersion:

        t0 = time.perf_counter()
        model = saving.load_model(path, compile=False)
        try:
            metadata = saving.read_metadata(path).get("user_metadata") or {}
        except Exception:  # noqa: BLE001 - the model loaded; its metadata is optional
            metadata = {}
        sig = model.signature
        if self.warmup:
            warm_up(model, sig, self.tile)
        seconds = time.perf_counter() - t0
        log.info("model '%s' version %d loaded from %s in %.3f s", name, version, path, seconds)
        return ServedVersion(name, version, path, model, sig, metadata, key, seconds)

    # -- requests ----------------------------------------------------------------------------
    def lease(
        self, name: str, version: int | str | None = None, label: str | None = None, routing_key: str | None = None
    ) -> Lease:
        """The version a request names (or the one its model's traffic policy picks for
        `routing_key`, or the newest), counted until the lease is released; `Lease.route` says how
        it was chosen and `Lease.shadows` lists the shadow versions of a routed request."""
        route, shadows, routed = "label" if label is not None else "version", (), None
        with self._lock:
            entry = self._models.get(name)
            if entry is None:
                raise not_found(f"model '{name}' is not in the repository")
            if label is None and version is None and entry.routing is not None:
                routed, route = entry.routing.choose(routing_key)
                shadows = entry.routing.shadow
                if routed is not None:
                    version = routed
            if label is not None:
                if label not in entry.labels:
                    raise not_found(
                        f"model '{name}' has no label '{label}'"
                        + (f"; labels: {sorted(entry.labels)}" if entry.labels else "")
                    )
                target = entry.labels[label]
                v = entry.versions.get(target)
                if v is None:
                    raise not_found(
                        f"label '{label}' of model '{name}' points to version {target}, "
                        f"which is not available{self._why(entry, target)}"
                    )
            elif version is not None:
                if isinstance(version, str):
                    if not VERSION_RE.match(version):
                        raise RequestError(400, f"version {version!r} is not a version number")
                    version = int(version)
                v = entry.versions.get(version)
                if v is None and routed is not None:
                    raise RequestError(
                        503,
                        f"model '{name}' routes this request to version {version}, which is not available"
                        f"{self._why(entry, version)}",
                    )
                if v is None:
                    raise not_found(f"model '{name}' has no available version {version}{self._why(entry, version)}")
            else:
                route = "default"
                v = entry.newest()
                if v is None:
                    raise RequestError(
                        503,
                        f"model '{name}' has no available version"
                        f"{self._why(entry, max(entry.failures)) if entry.failures else ''}",
                    )
            v.acquire()
            return Lease(v, route, shadows)

    @staticmethod
    def _why(entry: _ModelEntry, version: int) -> str:
        f = entry.failures.get(version)
        if f is not None:
            return f" (version {version} failed to load: {f[0]})"
        avail = sorted(entry.versions)
        return f"; available versions: {avail}" if avail else ""

    # -- status ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def has_model(self, name: str) -> bool:
        with self._lock:
            return name in self._models

    def ready(self) -> bool:
        """True once the first scan has finished and every model has an available version."""
        with self._lock:
            return self._scanned and all(e.versions for e in self._models.values())

    def model_ready(self, name: str, version: int | None = None) -> bool:
        with self._lock:
            e = self._models.get(name)
            if e is None:
                return False
            return bool(e.versions) if version is None else version in e.versions

    def status(self, name: str) -> dict:
        """{"name", "versions": [{"version", "state", "error"}], "default_version", "labels", "labels_error"}."""
        with self._lock:
            e = self._models.get(name)
            if e is None:
                raise not_found(f"model '{name}' is not in the repository")
            rows = []
            for v in sorted(set(e.versions) | set(e.failures), reverse=True):
                sv = e.versions.get(v)
                fail = e.failures.get(v)
                row = {
                    "version": v,
                    "state": "AVAILABLE" if sv is not None else "FAILED",
                    "error": fail[0] if fail else None,
                }
                if sv is not None:
                    row["loaded_at"] = sv.loaded_at
                rows.append(row)
            newest = e.newest()
            return {
                "name": name,
                "versions": rows,
                "default_version": None if newest is None else newest.version,
                "labels": dict(e.labels),
                "labels_error": e.labels_error,
                "routing": e.routing.as_json() if e.routing is not None else None,
            }

    def loaded_versions(self) -> list[ServedVersion]:
        with self._lock:
            return [v for e in self._models.values() for v in e.versions.values()]
