"""A model's traffic policy (the "routing" entry of labels.json): weighted splits, sticky keys, shadows.

    {"stable": 2, "routing": {"split": {"2": 90, "3": 10}, "shadow": [4]}}

- `split` maps versions to weights (percentages, at most two decimals) that sum to 100. A request
  that names no version and no label goes to one of them: by a hash of its routing key (request
  field `routing_key` or header `X-Routing-Key`) when it has one, so that the same applicant
  always gets the same version, else at random.
- `shadow` lists versions that receive a copy of that traffic off the response path: their outputs
  go to the audit log (lines marked `"shadow": true`) and the metrics, never to the client.

The policy is validated when labels.json is read (and against the versions on disk at every
poll); an invalid policy is reported in the model's status and the previous one stays in force.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from maasfin.serving.errors import bad_request

__all__ = ["BUCKETS", "ROUTING_ENTRY", "RoutingPolicy", "check_versions", "key_bucket", "parse_policy", "routing_key"]

ROUTING_ENTRY = "routing"
BUCKETS = 10_000  # weights are percentages with two decimals: one bucket per basis point
MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class RoutingPolicy:
    """A validated policy: `split` as (version, cumulative upper bucket) pairs, `shadow` versions."""

    split: tuple[tuple[int, int], ...]
    shadow: tuple[int, ...]
    weights: tuple[tuple[int, float], ...]

    def versions(self) -> set[int]:
        return {v for v, _ in self.split} | set(self.shadow)

    def choose(self, key: str | None) -> tuple[int | None, str]:
        """(version, route) for a request with routing key `key` (None: a random bucket); the
        version is None when the policy has no split (shadows only)."""
        if not self.split:
            return None, "default"
        if key is None:
            bucket, route = random.randrange(BUCKETS), "split"
        else:
            bucket, route = key_bucket(key), "sticky"
        for version, upper in self.split:
            if bucket < upper:
                return version, route
        return self.split[-1][0], route  # unreachable: the last upper bound is BUCKETS

    def as_json(self) -> dict:
        return {"split": {str(v): w for v, w in self.weights}, "shadow": list(self.shadow)}


def key_bucket(key: str) -> int:
    """The bucket in [0, BUCKETS) of a routing key: stable across processes, restarts and machines
    (BLAKE2b, not Python's salted hash())."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def _version(text, where: str) -> int:
    if isinstance(text, bool):
        raise ValueError(f"{where} {text!r} is not a version number")
    if isinstance(text, int) and text >= 0:
        return text
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    raise ValueError(f"{where} {text!r} is not a version number")


def parse_policy(obj) -> RoutingPolicy:
    """The policy of a labels.json "routing" entry; ValueError naming the field otherwise."""
    if not isinstance(obj, dict):
        raise ValueError('"routing" must be an object with "split" and/or "shadow"')
    unknown = sorted(k for k in obj if k not in ("split", "shadow"))
    if unknown:
        raise ValueError(f'"routing" has unknown field(s) {unknown}; it takes "split" and "shadow"')
    split_obj = obj.get("split", {})
    if not isinstance(split_obj, dict):
        raise ValueError('"routing.split" must be an object mapping versions to percentages')
    weights: list[tuple[int, float]] = []
    for k, w in split_obj.items():
        v = _version(k, '"routing.split" key')
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 <= w <= 100):
            raise ValueError(f'"routing.split" weight of version {v} is {w!r}, not a percentage in [0, 100]')
        if abs(w * 100 - round(w * 100)) > 1e-6:
            raise ValueError(f'"routing.split" weight of version {v} is {w!r}: at most two decimals')
        if any(v == u for u, _ in weights):
            raise ValueError(f'"routing.split" names version {v} twice')
        weights.append((v, w))
    weights.sort()
    if weights:
        total = sum(round(w * 100) for _, w in weights)
        if total != BUCKETS:
            listed = ", ".join(f"{v}: {w}" for v, w in weights)
            raise ValueError(f'"routing.split" weights sum to {total / 100:g}, not 100 ({listed})')
    shadow_obj = obj.get("shadow", [])
    if not isinstance(shadow_obj, list):
        raise ValueError('"routing.shadow" must be a list of version numbers')
    shadow: list[int] = []
    for s in shadow_obj:
        v = _version(s, '"routing.shadow" entry')
        if v in shadow:
            raise ValueError(f'"routing.shadow" names version {v} twice')
        if any(v == u for u, _ in weights):
            raise ValueError(f'version {v} is both in "routing.split" and in "routing.shadow"')
        shadow.append(v)
    upper, cumulative = 0, []
    for v, w in weights:
        if round(w * 100) == 0:
            continue
        upper += round(w * 100)
        cumulative.append((v, upper))
    return RoutingPolicy(tuple(cumulative), tuple(shadow), tuple(weights))


def check_versions(policy: RoutingPolicy, on_disk) -> None:
    """ValueError if the policy names a version that is not in the model's directory."""
    missing = sorted(policy.versions() - set(on_disk))
    if missing:
        raise ValueError(f'"routing" names version(s) {missing}, which are not in the model directory')


def routing_key(value, field: str) -> str | None:
    """A client's routing key (request field or header) validated: a non-empty string of at most
    256 characters, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_KEY_LENGTH:
        raise bad_request(f"{field} must be a non-empty string of at most {MAX_KEY_LENGTH} characters")
    return value
