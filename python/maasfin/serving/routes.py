"""The server's endpoints, one table: each protocol's own, then the operations endpoints.

The ASGI app (app.py) and the Flask blueprint (flask_app.py) both serve this table; each
protocol module (protocols/) declares its endpoints, and what an endpoint is and how it calls the
service is in endpoints.py. The order is the OpenAPI document's.
"""

from __future__ import annotations

from maasfin.serving import cards, console
from maasfin.serving.endpoints import Endpoint, url_version
from maasfin.serving.exchange import Exchange, Reply, json_reply
from maasfin.serving.outcomes import api as outcomes_api
from maasfin.serving.protocols import simple, tfserving, v2


def drift_report(service, key, params) -> Reply:
    """GET /v1/models/{name}[/versions/{v}]/drift: PSI per feature and for the score."""
    version = url_version(params.get("version"))
    ex = Exchange("tfserving", "GET", "", None, key=key)
    with service.lease(ex, params["name"], version) as v:
        return json_reply(service.drift.report(v))


OPERATIONS: tuple[Endpoint, ...] = (
    Endpoint(
        "drift",
        "GET",
        "/v1/models/{name}/drift",
        "read",
        drift_report,
        None,
        "operations",
        "Drift of the newest version's recent inputs",
        slow=True,
    ),
    Endpoint(
        "drift_version",
        "GET",
        "/v1/models/{name}/versions/{version}/drift",
        "read",
        drift_report,
        None,
        "operations",
        "Drift of one version's recent inputs",
        slow=True,
    ),
)
METRICS = Endpoint("metrics", "GET", "/metrics", "metrics", None, None, "operations", "Prometheus metrics")

ENDPOINTS: tuple[Endpoint, ...] = (
    simple.ENDPOINTS
    + tfserving.ENDPOINTS
    + OPERATIONS
    + cards.ENDPOINTS
    + console.ENDPOINTS
    + outcomes_api.ENDPOINTS
    + v2.ENDPOINTS
    + (METRICS,)
)

OPEN_PATHS = frozenset(e.path for e in ENDPOINTS if e.kind == "open")
