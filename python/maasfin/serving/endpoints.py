"""What an endpoint is: its method, path, kind and how it calls the service (routes.py lists them).

Each protocol module (protocols/) declares its own endpoints; routes.py puts them in one table,
which the ASGI app (app.py) and the Flask blueprint (flask_app.py) both serve, so they differ only
in how they read a request and send a reply. By kind, `call` is:

- "predict" / "explain": `call(service, ex, body, params, headers) -> Plan` parses and validates
  the request and leases the model version (an explain plan carries its options); the front end
  reads the body under the size limit before, and predicts and answers after (service.py);
- "read": `call(service, key, params) -> Reply` (plus `headers=` when the endpoint sets `headers`,
  as the model card does to answer Accept: text/html); an API key is required when keys are on;
- "open": like "read", but answered without a key (the v2 health checks);
- "metrics": None; the Prometheus text (drift gauges are evaluated first);
- "data": `call(service, key, params) -> Reply` with the query string in `params["query"]` and
  the body in `params["body"]`, run in a thread (the outcome endpoints, outcomes/api.py).

`params` are the path parameters; `headers` a case-insensitive mapping of request headers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from maasfin.serving.errors import bad_request
from maasfin.serving.exchange import Exchange
from maasfin.serving.repository import VERSION_RE


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # Starlette style: /v2/models/{name}/infer
    kind: str
    call: Callable | None
    protocol: str | None = None  # "simple" | "tfserving" | "v2" for prediction endpoints
    tag: str = ""
    summary: str = ""
    response: str | None = None  # schemas.<name> of the 200 body (OpenAPI)
    body: str | None = None  # schemas.<name> of the request body (OpenAPI)
    slow: bool = False  # the ASGI app runs it in a thread (drift reports)
    headers: bool = False  # a "read" call also gets the request headers (headers=...)
    extra: dict = field(default_factory=dict)

    @property
    def predicts(self) -> bool:
        return self.kind in ("predict", "explain")

    def exchange(self, method: str, path: str, client: str | None, params: dict) -> Exchange:
        """The audit record of a request that reached this endpoint. Read routes are audited with
        the protocol they belong to ("tfserving", "v2", or "operations" for drift and /metrics),
        the model and version their URL names, and are not counted in the request metrics."""
        if self.predicts:
            return Exchange(self.protocol, method, path, client)
        if self.path.startswith("/v2"):
            protocol = "v2"
        elif self.tag == "operations":
            protocol = "operations"
        else:
            protocol = "tfserving"
        ex = Exchange(protocol, method, path, client, observe=False)
        ex.model = params.get("name")
        version = params.get("version")
        if isinstance(version, str) and VERSION_RE.match(version):
            ex.version = int(version)
        return ex


def url_version(version: str | None) -> str | None:
    """The {version} of a URL, which must be a version number, or None."""
    if version is not None and not VERSION_RE.match(version):
        raise bad_request(f"version {version!r} in the URL is not a version number")
    return version
