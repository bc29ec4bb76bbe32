"""API keys: a JSON file of key names, the SHA-256 of each key, and the models each may use.

    {
      "scoring-service": {"sha256": "9f86d0...", "models": ["credit"]},
      "ops":             {"sha256": "2c26b4...", "models": ["*"]},
      "prometheus":      {"sha256": "3fc9b6...", "models": [], "scopes": ["metrics"]}
    }

Scopes grant what is not a model: `metrics` lets a key read /metrics (every model's names,
traffic and drift), which a key scoped to some models must not see.

Only hashes are stored; `maasfin keys add FILE NAME --models credit` creates a random key, prints
it once and stores its hash. A request presents its key as `Authorization: Bearer <key>` or
`X-API-Key: <key>`; the server hashes it and compares with every stored hash using
hmac.compare_digest (constant time, and no early exit, so timing says nothing about which entry
matched). No key or an unknown key is 401; a known key used on a model outside its list is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass

from maasfin.serving.errors import RequestError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,127}$")
KEY_PREFIX = "mfk_"
SCOPES = ("metrics",)  # what a key may do beyond its models: "metrics" reads /metrics


class KeysFileError(ValueError):
    pass


@dataclass(frozen=True)
class KeyEntry:
    name: str
    sha256: str
    models: tuple[str, ...]
    scopes: tuple[str, ...] = ()

    def allows(self, model: str) -> bool:
        return "*" in self.models or model in self.models


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_keys(doc, src: str = "keys file") -> dict[str, KeyEntry]:
    if not isinstance(doc, dict) or not doc:
        raise KeysFileError(
            f'{src} must be a non-empty JSON object mapping key names to {{"sha256": ..., "models": [...]}}'
        )
    entries = {}
    for name, e in doc.items():
        if not _NAME.match(name):
            raise KeysFileError(f"{src}: key name {name!r} is not valid (letters, digits, '_', '.', '@', '-')")
        if (
            not isinstance(e, dict)
            or set(e) - {"sha256", "models", "scopes", "comment"}
            or not {"sha256", "models"} <= set(e)
        ):
            raise KeysFileError(
                f"{src}: entry {name!r} must be an object with exactly 'sha256' and 'models' "
                "(and optionally 'scopes' and 'comment')"
            )
        digest = e["sha256"]
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise KeysFileError(
                f"{src}: entry {name!r}: 'sha256' must be 64 lowercase hex digits (the SHA-256 of the key, not the key)"
            )
        scopes = e.get("scopes", [])
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s in SCOPES for s in scopes):
            raise KeysFileError(f"{src}: entry {name!r}: 'scopes' must be a list of scopes from {list(SCOPES)}")
        models = e["models"]
        if not isinstance(models, list) or not (models or scopes) or not all(isinstance(m, str) and m for m in models):
            raise KeysFileError(
                f"{src}: entry {name!r}: 'models' must be a non-empty list of model names (or [\"*\"] for all); "
                "it may be empty only for a key with scopes"
            )
        entries[name] = KeyEntry(name, digest, tuple(models), tuple(scopes))
    return entries


def read_keys_file(path) -> dict[str, KeyEntry]:
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(16 << 20)
    except OSError as e:
        raise KeysFileError(f"cannot read the API keys file '{path}': {e.strerror}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise KeysFileError(f"the API keys file '{path}' is not valid JSON: {e}") from None
    return parse_keys(doc, f"API keys file '{path}'")


class KeyStore:
    """The configured keys; `reload_if_changed()` picks up edits of the file."""

    def __init__(self, path=None, entries: dict[str, KeyEntry] | None = None):
        self.path = None if path is None else os.fspath(path)
        self._stat = None
        if entries is None:
            if self.path is None:
                raise ValueError("KeyStore needs a path or entries")
            self._stat = self._stat_of()
            entries = read_keys_file(self.path)
        self._entries = list(entries.values())

    def _stat_of(self):
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def reload_if_changed(self) -> bool:
        """Re-reads the file if it changed; a broken file raises KeysFileError and the old keys stay."""
        if self.path is None:
            return False
        st = self._stat_of()
        if st == self._stat:
            return False
        entries = read_keys_file(self.path)
        self._entries, self._stat = list(entries.values()), st
        return True

    def authenticate(self, presented: str | None) -> KeyEntry:
        if not presented:
            raise RequestError(
                401,
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                {"WWW-Authenticate": 'Bearer realm="maasfin"'},
            )
        digest = hash_key(presented)
        match = None
        for e in self._entries:  # no early exit
            if hmac.compare_digest(digest, e.sha256):
                match = e
        if match is None:
            raise RequestError(
                401, "invalid API key", {"WWW-Authenticate": 'Bearer realm="maasfin", error="invalid_token"'}
            )
        return match

    @staticmethod
    def authorize(entry: KeyEntry | None, model: str) -> None:
        if entry is not None and not entry.allows(model):
            raise RequestError(403, f"API key '{entry.name}' may not use model '{model}'")

    @staticmethod
    def authorize_scope(entry: KeyEntry | None, scope: str, what: str) -> None:
        """403 unless `entry` (None: keys are off) has `scope`; `what` names what it guards."""
        if entry is not None and scope not in entry.scopes:
            raise RequestError(
                403, f"API key '{entry.name}' may not read {what}: that needs a key with the '{scope}' scope"
            )


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>` (preferred) or `X-API-Key: <key>`."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None if not x_api_key else x_api_key.strip()
    return x_api_key.strip() if x_api_key else None


# -- the `maasfin keys` helpers ----------------------------------------------------------------------
def _load_doc(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        doc = json.loads(f.read().decode("utf-8"))
    parse_keys(doc, f"API keys file '{path}'")
    return doc


def _write_doc(path: str, doc: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def add_key(path, name: str, models: list[str], key: str | None = None, scopes: list[str] = ()) -> str:
    """Adds (or replaces) key `name` allowed on `models` and granted `scopes` (e.g. ["metrics"]);
    returns the key, which is stored only hashed."""
    path = os.fspath(path)
    doc = _load_doc(path)
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    doc[name] = {"sha256": hash_key(key), "models": list(models)}
    if scopes:
        doc[name]["scopes"] = list(scopes)
    parse_keys(doc, f"API keys file '{path}'")
    _write_doc(path, doc)
    return key


def remove_key(path, name: str) -> None:
    path = os.fspath(path)
    doc = _load_doc(path)
    if name not in doc:
        raise KeysFileError(f"API keys file '{path}' has no key named {name!r}")
    del doc[name]
    if not doc:
        raise KeysFileError(f"removing {name!r} would leave '{path}' empty; delete the file instead")
    _write_doc(path, doc)
