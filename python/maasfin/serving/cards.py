"""Model cards: GET /v1/models/{name}[/versions/{v}]/card, as JSON or, for Accept: text/html, the report's page.

The card of a served version is its name, version, feature names, the user metadata of its file
and its validation report (the `report.json` member of its `.maas` file, `model.report`), or null
when it has none. Asked for HTML (a browser), the card is the report's self-contained page
(`Report.to_html`), rendered once per loaded version; that needs the `[report]` extra. Keys apply
as on every model endpoint: a key scoped to other models gets 403.
"""

from __future__ import annotations

import threading

from maasfin.serving.endpoints import Endpoint, url_version
from maasfin.serving.errors import RequestError, not_found
from maasfin.serving.exchange import Exchange, Reply, json_reply

__all__ = ["ENDPOINTS", "card", "wants_html"]

#: The page's policy: nothing is fetched, styles are inline.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept",
}
_PAGES: dict = {}  # (name, version, id(model)) -> bytes, the newest 32 rendered
_PAGES_LOCK = threading.Lock()


def wants_html(headers) -> bool:
    """True when the Accept header lists text/html before (or without) application/json."""
    accept = (headers.get("accept") or "") if headers is not None else ""
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if "text/html" not in types:
        return False
    return "application/json" not in types or types.index("text/html") < types.index("application/json")


def card(v) -> dict:
    """The JSON card of a served version."""
    report = getattr(v.model, "report", None)
    return {
        "name": v.name,
        "version": v.version,
        "features": list(v.signature.feature_names or v.signature.input_names()),
        "metadata": v.metadata,
        "report": None if report is None else report.data,
    }


def _page(v) -> bytes:
    report = getattr(v.model, "report", None)
    if report is None:
        raise not_found(
            f"model '{v.name}' version {v.version} has no validation report "
            "(store one with model.save(path, report=model.validation_report(...)))"
        )
    key = (v.name, v.version, id(v.model))
    with _PAGES_LOCK:
        page = _PAGES.get(key)
    if page is None:
        try:
            page = report.to_html().encode("utf-8")
        except ImportError as e:
            raise RequestError(501, f"the server cannot render HTML cards: {e}") from None
        with _PAGES_LOCK:
            _PAGES[key] = page
            while len(_PAGES) > 32:
                _PAGES.pop(next(iter(_PAGES)))
    return page


def model_card(service, key, params, headers=None) -> Reply:
    """GET /v1/models/{name}[/versions/{v}]/card."""
    version = url_version(params.get("version"))
    ex = Exchange("tfserving", "GET", "", None, key=key)
    with service.lease(ex, params["name"], version) as v:
        if wants_html(headers):
            return Reply(200, _page(v), dict(HTML_HEADERS), "text/html; charset=utf-8")
        reply = json_reply(card(v))
        reply.headers["Vary"] = "Accept"
        return reply


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "card",
        "GET",
        "/v1/models/{name}/card",
        "read",
        model_card,
        None,
        "operations",
        "Model card of the newest version: validation report (JSON, or HTML for Accept: text/html)",
        slow=True,
        headers=True,
    ),
    Endpoint(
        "card_version",
        "GET",
        "/v1/models/{name}/versions/{version}/card",
        "read",
        model_card,
        None,
        "operations",
        "Model card of one version (JSON, or HTML for Accept: text/html)",
        slow=True,
        headers=True,
    ),
)
