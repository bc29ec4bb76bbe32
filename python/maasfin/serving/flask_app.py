"""`flask_blueprint(repo, ...)`: every endpoint of `maasfin serve` inside an existing Flask app.

    from flask import Flask
    from maasfin.serving import flask_blueprint

    app = Flask(__name__)
    app.register_blueprint(flask_blueprint("/srv/models", api_keys="keys.json"), url_prefix="/ml")

The endpoints are those of routes.ENDPOINTS, as in the ASGI app: the simple API, TF Serving's
REST API, the Open Inference Protocol v2 (JSON and binary tensors), explanations, drift and
/metrics. Same decoding, validation, answers, API keys and audit lines as `maasfin serve`
(service.py, protocols/), with each request predicted on its own thread (the WSGI server's;
predict is thread-safe and releases the GIL); there is no cross-request batching in WSGI. The
repository loads at the first request (or at `blueprint.maasfin.start()`), so a pre-forking WSGI
server may import the app before it forks. The WSGI server's own timeouts apply (e.g. gunicorn
--timeout). Needs Flask: `pip install "maasfin[flask]"`.
"""

from __future__ import annotations

import logging
import re
import threading

from flask import Blueprint, Response, request

from maasfin.serving import codec, explaining
from maasfin.serving.config import ServingConfig
from maasfin.serving.endpoints import Endpoint
from maasfin.serving.errors import RequestError
from maasfin.serving.exchange import Exchange, Reply, body_digest, decode_content, error_reply, too_large
from maasfin.serving.metrics import CONTENT_TYPE_LATEST
from maasfin.serving.routes import ENDPOINTS
from maasfin.serving.service import Service

log = logging.getLogger("maasfin.serving")


def flask_blueprint(repo=None, *, config: ServingConfig | None = None, name: str = "maasfin", **options) -> Blueprint:
    """A Blueprint serving repository `repo` with the endpoints of `maasfin serve` (docs/serving.md):
    /v1/predict, /v1/explain, TF Serving's /v1/models/..., the v2 protocol's /v2/..., /metrics.

    Options are those of ServingConfig (api_keys, audit_log, poll_seconds, max_body_bytes, ...);
    batching and threading options do not apply. `num_threads`, if given, sets maasfin's
    process-wide oneDNN thread count when the blueprint starts.
    """
    if config is None:
        if repo is None:
            raise TypeError("flask_blueprint: pass the repository path (or config=ServingConfig(...))")
        config = ServingConfig(repo=repo, **options)
    service = Service(config)
    bp = Blueprint(name, __name__)
    bp.maasfin = service
    lock = threading.Lock()

    def ensure_started() -> None:
        if not service.started:
            with lock:
                if not service.started:
                    service.start(set_threads=config.num_threads is not None)

    def respond(reply: Reply, request_id: str | None = None) -> Response:
        headers = dict(reply.headers)
        if request_id is not None:
            headers["X-Request-ID"] = request_id
        return Response(reply.body, status=reply.status, headers=headers, content_type=reply.media_type)

    def read_body() -> bytes:
        limit = config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise too_large(limit)
        body = request.stream.read(limit + 1)
        if len(body) > limit:
            raise too_large(limit)
        return decode_content(body, request.headers.get("Content-Encoding"), limit)

    def accounted(ex: Exchange, run, authenticate: bool = True) -> Response:
        """A request that reached a route: `run()` gives the Reply; RequestError and crashes become
        replies, and the audit line (and a prediction's metrics) are written before the response leaves."""
        try:
            if authenticate:
                ex.key = service.authenticate(request.headers.get("Authorization"), request.headers.get("X-API-Key"))
            reply = run()
        except RequestError as e:
            ex.error = e.message
            reply = error_reply(e)
        except Exception as e:  # noqa: BLE001 - answered and audited as a 500
            log.exception("request %s failed", ex.request_id)
            ex.error = f"internal error ({type(e).__name__})"
            reply = Reply(500, codec.dumps({"error": "internal server error"}))
        try:
            service.finish(ex, reply.status)
        except Exception as e:  # noqa: BLE001
            log.exception("audit log write failed for request %s", ex.request_id)
            reply = Reply(
                500,
                codec.dumps(
                    {
                        "error": f"the audit log could not be written ({type(e).__name__}); "
                        "the prediction was not returned"
                    }
                ),
            )
        return respond(reply, ex.request_id)

    def body_of(ex: Exchange) -> bytes:
        body = read_body()
        if service.audit is not None:
            ex.body_sha256 = body_digest(body)
        return body

    def predict(e: Endpoint, params: dict) -> Response:
        ensure_started()
        ex = e.exchange("POST", request.path, request.remote_addr, params)

        def run() -> Reply:
            plan = e.call(service, ex, body_of(ex), params, request.headers)
            try:
                y = service.predict(plan)
                return service.reply(plan, y) if plan.explain is None else explaining.explain(plan, y)
            finally:
                plan.lease.release()

        return accounted(ex, run)

    def read(e: Endpoint, params: dict) -> Response:
        ensure_started()
        ex = e.exchange(e.method, request.path, request.remote_addr, params)
        extra = {"headers": request.headers} if e.headers else {}
        return accounted(ex, lambda: e.call(service, ex.key, params, **extra), authenticate=e.kind != "open")

    def metrics(e: Endpoint, params: dict) -> Response:
        ensure_started()
        ex = e.exchange(e.method, request.path, request.remote_addr, params)

        def run() -> Reply:
            service.authorize_metrics(ex.key)
            service.evaluate_drift()
            return Reply(200, service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

        return accounted(ex, run)

    def data(e: Endpoint, params: dict) -> Response:
        try:
            return read(e, {**params, "query": request.args.to_dict(), "body": read_body()})
        except RequestError as err:
            return respond(error_reply(err))

    kinds = {"predict": predict, "explain": predict, "read": read, "open": read, "metrics": metrics, "data": data}
    for e in ENDPOINTS:

        def view(_e=e, **params):
            return kinds[_e.kind](_e, params)

        bp.add_url_rule(_flask_path(e.path), endpoint=e.name, view_func=view, methods=[e.method])
    return bp


def _flask_path(path: str) -> str:
    """`/v1/models/{name}:predict` -> `/v1/models/<name>:predict`."""
    return re.sub(r"\{([a-z_]+)\}", r"<\1>", path)
