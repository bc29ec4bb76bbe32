"""`flask_blueprint(repo, ...)`: the simple and TF Serving endpoints inside an existing Flask app.

    from flask import Flask
    from maasfin.serving import flask_blueprint

    app = Flask(__name__)
    app.register_blueprint(flask_blueprint("/srv/models", api_keys="keys.json"), url_prefix="/ml")

Same decoding, validation, answers, API keys and audit lines as `maasfin serve` (service.py), with
each request predicted on its own thread (the WSGI server's; predict is thread-safe and releases
the GIL); there is no cross-request batching in WSGI. The repository loads at the first request
(or at `blueprint.maasfin.start()`), so a pre-forking WSGI server may import the app before it
forks. The WSGI server's own timeouts apply (e.g. gunicorn --timeout). Needs Flask:
`pip install "maasfin[flask]"`.
"""
from __future__ import annotations

import logging
import threading

from flask import Blueprint, Response, request

from maasfin.serving import codec
from maasfin.serving.errors import RequestError
from maasfin.serving.service import (Exchange, Reply, Service, ServingConfig, body_digest, decode_content,
                                     error_reply, too_large)

log = logging.getLogger("maasfin.serving")


def flask_blueprint(repo=None, *, config: ServingConfig | None = None, name: str = "maasfin",
                    **options) -> Blueprint:
    """A Blueprint serving repository `repo`: POST /v1/predict, POST /v1/models/<m>[/versions/<v>|
    /labels/<l>]:predict, GET /v1/models/<m>[/versions/<v>], GET /v1/models/<m>/metadata.

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
        if not service._started:
            with lock:
                if not service._started:
                    service.start(set_threads=config.num_threads is not None)

    def respond(reply: Reply, request_id: str | None = None) -> Response:
        headers = dict(reply.headers)
        if request_id is not None:
            headers["X-Request-ID"] = request_id
        return Response(reply.body, status=reply.status, headers=headers, mimetype=reply.media_type)

    def read_body() -> bytes:
        limit = config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise too_large(limit)
        body = request.stream.read(limit + 1)
        if len(body) > limit:
            raise too_large(limit)
        return decode_content(body, request.headers.get("Content-Encoding"), limit)

    def predict(planner) -> Response:
        ensure_started()
        ex = Exchange("simple" if request.path.endswith("/v1/predict") else "tfserving", "POST", request.path,
                      request.remote_addr)
        try:
            ex.key = service.authenticate(request.headers.get("Authorization"), request.headers.get("X-API-Key"))
            body = read_body()
            if service.audit is not None:
                ex.body_sha256 = body_digest(body)
            plan = planner(ex, body)
            try:
                reply = plan.encode(service.predict(plan))
            finally:
                plan.lease.release()
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
            reply = Reply(500, codec.dumps({"error": f"the audit log could not be written ({type(e).__name__}); "
                                                     "the prediction was not returned"}))
        return respond(reply, ex.request_id)

    def read(fn, *args) -> Response:
        ensure_started()
        try:
            key = service.authenticate(request.headers.get("Authorization"), request.headers.get("X-API-Key"))
            return respond(fn(key, *args))
        except RequestError as e:
            return respond(error_reply(e))

    @bp.post("/v1/predict")
    def simple_predict():
        return predict(service.plan_simple)

    @bp.post("/v1/models/<name>:predict")
    def tf_predict(name):
        return predict(lambda ex, body: service.plan_tfserving(ex, name, None, None, body))

    @bp.post("/v1/models/<name>/versions/<version>:predict")
    def tf_predict_version(name, version):
        return predict(lambda ex, body: service.plan_tfserving(ex, name, version, None, body))

    @bp.post("/v1/models/<name>/labels/<label>:predict")
    def tf_predict_label(name, label):
        return predict(lambda ex, body: service.plan_tfserving(ex, name, None, label, body))

    @bp.get("/v1/models/<name>")
    def tf_status(name):
        return read(service.tf_status, name)

    @bp.get("/v1/models/<name>/versions/<version>")
    def tf_status_version(name, version):
        return read(service.tf_status, name, version)

    @bp.get("/v1/models/<name>/metadata")
    def tf_metadata(name):
        return read(service.tf_metadata, name)

    @bp.get("/v1/models/<name>/versions/<version>/metadata")
    def tf_metadata_version(name, version):
        return read(service.tf_metadata, name, version)

    @bp.get("/v1/models/<name>/drift")
    def drift(name):
        return read(service.drift_report, name)

    @bp.get("/v1/models/<name>/versions/<version>/drift")
    def drift_version(name, version):
        return read(service.drift_report, name, version)

    return bp
