"""The outcome endpoints: POST /v1/outcomes and GET /v1/models/{name}[/versions/{v}]/performance.

Both are of kind "data": `call(service, key, params)` where `params` holds the path parameters,
"query" (the query string as a dict) and "body" (the request body). A key must be allowed on the
model (for outcomes: on the model of every prediction they address).
"""

from __future__ import annotations

import datetime as dt
import math
import time

from maasfin.serving import codec
from maasfin.serving.endpoints import Endpoint, url_version
from maasfin.serving.errors import RequestError, bad_request
from maasfin.serving.exchange import Reply, json_reply
from maasfin.serving.outcomes.performance import performance

__all__ = ["ENDPOINTS", "MAX_OUTCOMES", "parse_time"]

MAX_OUTCOMES = 10_000  # per request
OUTCOME_FIELDS = ("request_id", "row", "label", "observed_at")


def parse_time(value, field: str) -> float:
    """Epoch seconds from an ISO 8601 time (a naive one is UTC) or a number of epoch seconds."""
    if isinstance(value, bool):
        raise bad_request(f"{field} must be an ISO 8601 time or epoch seconds, got a boolean")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise bad_request(f"{field} must be a finite number of epoch seconds")
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise bad_request(f"{field} {value[:64]!r} is not an ISO 8601 time or epoch seconds") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return t.timestamp()
    raise bad_request(f"{field} must be an ISO 8601 time or epoch seconds, got {codec.json_type(value)}")


def _outcome(i: int, it) -> dict:
    where = f"outcomes[{i}]"
    if not isinstance(it, dict):
        raise bad_request(f"{where} must be an object with {list(OUTCOME_FIELDS)}")
    unknown = sorted(k for k in it if k not in OUTCOME_FIELDS)
    if unknown:
        raise bad_request(f"{where} has unknown field(s) {unknown}; it takes {list(OUTCOME_FIELDS)}")
    rid = it.get("request_id")
    if not isinstance(rid, str) or not rid or len(rid) > 64:
        raise bad_request(f"{where}.request_id must be the request_id of a prediction (a string)")
    row = it.get("row", 0)
    if type(row) is not int or row < 0:
        raise bad_request(f"{where}.row must be a row index (an integer >= 0), got {row!r}")
    label = it.get("label")
    if type(label) is not int or label not in (0, 1):
        raise bad_request(f"{where}.label must be 0 or 1 (1: default), got {label!r}")
    observed = parse_time(it["observed_at"], f"{where}.observed_at") if "observed_at" in it else None
    return {"request_id": rid, "row": row, "label": label, "observed_at": observed}


def _enabled(service) -> None:
    if service.outcomes is None:
        raise RequestError(404, "this server has no outcome store (start it with --store PATH_OR_URL)")


def post_outcomes(service, key, params) -> Reply:
    """POST /v1/outcomes: {"outcomes": [{"request_id", "row", "label", "observed_at"}]}."""
    _enabled(service)
    obj = codec.parse_json(params["body"])
    items = obj.get("outcomes") if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or set(obj) != {"outcomes"} or not isinstance(items, list):
        raise bad_request('the request must be {"outcomes": [{"request_id", "row", "label", "observed_at"}, ...]}')
    if not items or len(items) > MAX_OUTCOMES:
        raise bad_request(f"outcomes must hold 1 to {MAX_OUTCOMES} items, got {len(items)}")
    now = time.time()
    parsed = [_outcome(i, it) for i, it in enumerate(items)]
    seen: dict[tuple[str, int], int] = {}
    for i, it in enumerate(parsed):
        k = (it["request_id"], it["row"])
        if k in seen:
            raise bad_request(f"outcomes[{i}] repeats request_id {k[0]!r} row {k[1]} (outcomes[{seen[k]}])")
        seen[k] = i
        if it["observed_at"] is None:
            it["observed_at"] = now
        elif it["observed_at"] > now + 300:
            raise RequestError(422, f"outcomes[{i}].observed_at is in the future")
    stored = service.outcomes.add(parsed, now, lambda model: service.authorize(key, model))
    return json_reply({"stored": stored})


def get_performance(service, key, params) -> Reply:
    """GET /v1/models/{name}[/versions/{v}]/performance?since=&until=."""
    _enabled(service)
    name = params["name"]
    version = url_version(params.get("version"))
    query = params.get("query") or {}
    unknown = sorted(k for k in query if k not in ("since", "until"))
    if unknown:
        raise bad_request(f"unknown query parameter(s) {unknown}; performance takes 'since' and 'until'")
    since = parse_time(query["since"], "since") if "since" in query else None
    until = parse_time(query["until"], "until") if "until" in query else None
    if since is not None and until is not None and until <= since:
        raise bad_request("until must be later than since")
    service.authorize(key, name)
    if not service.repository.has_model(name):
        raise RequestError(404, f"model '{name}' is not in the repository")
    scores, labels, versions = service.outcomes.joined(name, None if version is None else int(version), since, until)
    overall = performance(scores, labels)
    per_version = {str(v): performance(scores[versions == v], labels[versions == v]) for v in sorted(set(versions))}
    service.outcomes.publish(name, overall, per_version)
    body = {"model_name": name, "since": since, "until": until, **overall, "versions": per_version}
    if version is not None:
        body["model_version"] = int(version)
    return json_reply(body)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "outcomes", "POST", "/v1/outcomes", "data", post_outcomes, None, "outcomes", "Outcomes of served predictions"
    ),
    Endpoint(
        "performance",
        "GET",
        "/v1/models/{name}/performance",
        "data",
        get_performance,
        None,
        "outcomes",
        "Realised performance of a model over its matured outcomes, overall and per version",
    ),
    Endpoint(
        "performance_version",
        "GET",
        "/v1/models/{name}/versions/{version}/performance",
        "data",
        get_performance,
        None,
        "outcomes",
        "Realised performance of one version over its matured outcomes",
    ),
)
