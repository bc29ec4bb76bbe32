"""The ASGI app (FastAPI on Starlette): `create_app(repo, ...)`, served by uvicorn (`maasfin serve`).

Layers, outermost first:
1. `_Gate` (pure ASGI middleware): request ids (X-Request-ID on every response), API-key
   authentication (401) for every path except the health checks, and for prediction requests the
   audit line and the metrics, written *before* the response leaves (so whatever the client
   received is in the audit log, including 401s, 413s, 504s and crashes).
2. The routes: each reads its body under the size limit, under the request timeout, then plans
   (parse, authorize for the model (403), validate), batches, predicts and encodes
   (service.py, codec.py).

Models load in the lifespan start-up, in the worker process, never in `create_app`.
"""
from __future__ import annotations

import asyncio
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from maasfin.serving import codec, schemas
from maasfin.serving.batching import Batcher
from maasfin.serving.errors import RequestError
from maasfin.serving.metrics import CONTENT_TYPE_LATEST
from maasfin.serving.service import (Exchange, Reply, Service, ServingConfig, body_digest, decode_content, error_reply,
                                     too_large)
from maasfin.serving.signature import predict_tiled

log = logging.getLogger("maasfin.serving")

PREDICT_PATH = re.compile(r"^/v1/predict$|^/v1/explain$|^/v1/models/[^/]+(?:/versions/[0-9]+)?:explain$"
                          r"|^/v1/models/[^/]+(?:/versions/[^/]+|/labels/[^/]+)?:predict$"
                          r"|^/v2/models/[^/]+(?:/versions/[^/]+)?/infer$")
HEALTH_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
_PLAN_INLINE_BYTES = 32 * 1024  # bodies above this are parsed in a thread, off the event loop


def _protocol(path: str) -> str:
    if path in ("/v1/predict", "/v1/explain"):
        return "simple"
    return "tfserving" if path.startswith("/v1/") else "v2"


def _response(reply: Reply) -> Response:
    return Response(content=reply.body, status_code=reply.status, headers=reply.headers, media_type=reply.media_type)


async def _send_reply(send, reply: Reply) -> None:
    headers = [(b"content-type", reply.media_type.encode()), (b"content-length", str(len(reply.body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


class _Gate:
    def __init__(self, app, service: Service):
        self.app = app
        self.service = service
        self.exempt = HEALTH_PATHS | (DOCS_PATHS if service.config.public_docs else frozenset())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        service = self.service
        path, method = scope["path"], scope["method"]
        headers = Headers(scope=scope)
        client = scope.get("client")
        ex = None
        if method == "POST" and PREDICT_PATH.match(path):
            ex = Exchange(_protocol(path), method, path, client[0] if client else None)
        request_id = ex.request_id if ex is not None else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["maasfin_exchange"] = ex
        early = None
        key = None
        if service.keys is not None and path not in self.exempt:
            try:
                key = service.authenticate(headers.get("authorization"), headers.get("x-api-key"))
            except RequestError as e:
                early = e
        state["maasfin_key"] = key
        if ex is not None:
            ex.key = key
        held: list = []
        finished = False

        async def send_wrapper(message):
            nonlocal finished
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", request_id.encode())]
                if ex is None:
                    await send(message)
                else:
                    held.append(message)
                return
            if ex is not None and message["type"] == "http.response.body":
                held.append(message)
                if message.get("more_body", False):
                    return
                finished = True
                out = await self._finish(ex, held[0]["status"])
                if out is not None:  # the audit line could not be written: no answer without it
                    held[:] = []
                    await _send_reply(send, out)
                    return
                for m in held:
                    await send(m)
                held.clear()
                return
            await send(message)

        if early is not None:
            if ex is not None:
                ex.error = early.message
            await _send_reply(send_wrapper, error_reply(early))
            return
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as e:
            if ex is not None and not finished:
                ex.error = f"internal error ({type(e).__name__})"
                await self._finish(ex, 500)
            raise

    async def _finish(self, ex: Exchange, status: int) -> Reply | None:
        service = self.service
        try:
            if service.audit is not None and service.audit.fsync:
                await asyncio.get_running_loop().run_in_executor(None, service.finish, ex, status)
            else:
                service.finish(ex, status)
        except Exception as e:  # noqa: BLE001
            log.exception("audit log write failed for request %s", ex.request_id)
            return Reply(500, codec.dumps({"error": f"the audit log could not be written ({type(e).__name__}); "
                                                    "the prediction was not returned"}),
                         {"x-request-id": ex.request_id})
        return None


class _Server:
    """The routes' shared state: the service, the predict thread pool and the batchers."""

    def __init__(self, service: Service):
        self.service = service
        self.executor: ThreadPoolExecutor | None = None
        self.plan_executor: ThreadPoolExecutor | None = None
        self.threads = 1

    def start(self) -> None:
        self.service.start()
        threads = self.threads = self.service.config.predict_threads or self.service.config.threads_per_worker()
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maasfin-predict")
        self.plan_executor = ThreadPoolExecutor(max_workers=max(2, threads), thread_name_prefix="maasfin-decode")

    def stop(self) -> None:
        self.service.stop()
        for ex in (self.executor, self.plan_executor):
            if ex is not None:
                ex.shutdown(wait=True)

    def batcher(self, version) -> Batcher:
        b = version.attachments.get("batcher")
        if b is None:
            cfg = self.service.config
            name, ver, tile, model = version.name, str(version.version), cfg.tile, version.model
            metrics = self.service.metrics
            b = Batcher(lambda xs: predict_tiled(model, xs, tile), self.executor,
                        max_batch_size=cfg.max_batch_size, max_latency_ms=cfg.max_latency_ms,
                        max_concurrency=self.threads, max_queue=cfg.max_queue,
                        on_batch=lambda rows, n: metrics.observe_batch(name, ver, rows, n))
            version.attachments["batcher"] = b
            loop = asyncio.get_running_loop()
            version.on_unload(lambda _v: loop.call_soon_threadsafe(b.close))
        return b

    async def read_body(self, request: Request) -> bytes:
        limit = self.service.config.max_body_bytes
        too_big = too_large(limit)
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    raise too_big
            except ValueError:
                raise RequestError(400, "the Content-Length header is not a number") from None
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise too_big
            chunks.append(chunk)
        return decode_content(b"".join(chunks), request.headers.get("content-encoding"), limit)

    async def predict(self, request: Request, planner) -> Response:
        ex: Exchange = request.scope["state"]["maasfin_exchange"]
        timeout = self.service.config.request_timeout_s
        try:
            return await asyncio.wait_for(self._predict(request, ex, planner), timeout)
        except asyncio.TimeoutError:
            e = RequestError(504, f"the request did not complete within the server's timeout of {timeout:g} s")
        except RequestError as err:
            e = err
        ex.error = e.message
        return _response(error_reply(e))

    async def _predict(self, request: Request, ex: Exchange, planner) -> Response:
        body = await self.read_body(request)
        if self.service.audit is not None:
            ex.body_sha256 = body_digest(body)
        if len(body) <= _PLAN_INLINE_BYTES:
            plan = planner(ex, body)
        else:
            cf = self.plan_executor.submit(planner, ex, body)
            try:
                plan = await asyncio.wrap_future(cf)
            except asyncio.CancelledError:  # timed out while parsing: release the lease it will take
                cf.add_done_callback(lambda f: f.exception() is None and f.result().lease.release())
                raise
        try:
            y = await self.batcher(plan.lease.version).submit(plan.xs)
            reply = plan.encode(y)
        finally:
            plan.lease.release()
        return _response(reply)

    async def explain(self, request: Request, path_model: tuple | None = None) -> Response:
        """POST /v1/explain: predictions through the batcher (so they equal /v1/predict's), then
        attributions and reason codes in the worker pool."""
        ex: Exchange = request.scope["state"]["maasfin_exchange"]
        timeout = self.service.config.request_timeout_s

        async def run():
            body = await self.read_body(request)
            if self.service.audit is not None:
                ex.body_sha256 = body_digest(body)
            plan, options = await asyncio.wrap_future(
                self.plan_executor.submit(self.service.plan_explain, ex, body, path_model))
            try:
                y = await self.batcher(plan.lease.version).submit(plan.xs)
                loop = asyncio.get_running_loop()
                reply = await loop.run_in_executor(self.executor, self.service.explain, plan, y, options)
            finally:
                plan.lease.release()
            return _response(reply)
        try:
            return await asyncio.wait_for(run(), timeout)
        except asyncio.TimeoutError:
            e = RequestError(504, f"the request did not complete within the server's timeout of {timeout:g} s")
        except RequestError as err:
            e = err
        ex.error = e.message
        return _response(error_reply(e))

    def call(self, request: Request, fn, *args) -> Response:
        """A non-prediction endpoint: RequestError becomes its status and {"error": ...}."""
        try:
            return _response(fn(request.scope["state"].get("maasfin_key"), *args))
        except RequestError as e:
            return _response(error_reply(e))


def create_app(repo=None, *, config: ServingConfig | None = None, **options) -> FastAPI:
    """The ASGI app serving the models of repository `repo` (options: see ServingConfig).

    Nothing is loaded here: models load when the app starts (its lifespan), in the process that
    serves, so a pre-forking server may create the app before it forks.
    """
    if config is None:
        if repo is None:
            raise TypeError("create_app: pass the repository path (or config=ServingConfig(...))")
        config = ServingConfig(repo=repo, **options)
    elif options or repo is not None:
        raise TypeError("create_app: pass either config= or the repository and options, not both")
    service = Service(config)
    server = _Server(service)

    @asynccontextmanager
    async def lifespan(app):
        await asyncio.get_running_loop().run_in_executor(None, server.start)
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, server.stop)

    import maasfin
    app = FastAPI(title="maasfin model server", version=maasfin.__version__, lifespan=lifespan,
                  description="Predictions from the models of a maasfin model repository: a simple JSON API, "
                              "TensorFlow Serving's REST API and the Open Inference Protocol (v2). "
                              "Send the API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.")
    app.state.maasfin = service
    app.state.maasfin_server = server

    async def http_error(request, exc: StarletteHTTPException):
        return _response(Reply(exc.status_code, codec.dumps({"error": str(exc.detail)}), dict(exc.headers or {})))

    async def validation_error(request, exc: RequestValidationError):
        return _response(Reply(400, codec.dumps({"error": str(exc.errors())})))

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)

    err = {"model": schemas.ErrorResponse}
    errors = {400: err, 401: err, 403: err, 404: err, 413: err, 503: err, 504: err}

    def body_of(model):
        return {"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}

    # -- simple ------------------------------------------------------------------------------
    @app.post("/v1/predict", tags=["simple"], summary="Predict (simple JSON)",
              responses={200: {"model": schemas.SimplePredictResponse}, **errors},
              openapi_extra=body_of(schemas.SimplePredictRequest))
    async def simple_predict(request: Request):
        return await server.predict(request, service.plan_simple)

    @app.post("/v1/explain", tags=["simple"], summary="Predict and explain: attributions and reason codes",
              responses=errors)
    async def simple_explain(request: Request):
        return await server.explain(request)

    @app.post("/v1/models/{name}:explain", tags=["TF Serving"], summary="Explain, newest version (KServe v1 style)",
              responses=errors)
    async def tf_explain(request: Request, name: str):
        return await server.explain(request, (name, None))

    @app.post("/v1/models/{name}/versions/{version}:explain", tags=["TF Serving"], summary="Explain, one version",
              responses=errors)
    async def tf_explain_version(request: Request, name: str, version: str):
        if not version.isdigit():
            return _response(error_reply(RequestError(400, f"version must be a number, got {version!r}")))
        return await server.explain(request, (name, version))

    # -- TF Serving REST ---------------------------------------------------------------------
    tf_ok = {200: {"model": schemas.TFPredictResponse}, **errors}
    tf_body = body_of(schemas.TFPredictRequest)

    @app.post("/v1/models/{name}:predict", tags=["TF Serving"], summary="Predict, newest version",
              responses=tf_ok, openapi_extra=tf_body)
    async def tf_predict(request: Request, name: str):
        return await server.predict(request, lambda ex, body: service.plan_tfserving(ex, name, None, None, body))

    @app.post("/v1/models/{name}/versions/{version}:predict", tags=["TF Serving"], summary="Predict, one version",
              responses=tf_ok, openapi_extra=tf_body)
    async def tf_predict_version(request: Request, name: str, version: str):
        return await server.predict(request, lambda ex, body: service.plan_tfserving(ex, name, version, None, body))

    @app.post("/v1/models/{name}/labels/{label}:predict", tags=["TF Serving"], summary="Predict, labelled version",
              responses=tf_ok, openapi_extra=tf_body)
    async def tf_predict_label(request: Request, name: str, label: str):
        return await server.predict(request, lambda ex, body: service.plan_tfserving(ex, name, None, label, body))

    status_ok = {200: {"model": schemas.TFStatusResponse}, **errors}

    @app.get("/v1/models/{name}", tags=["TF Serving"], summary="Version states", responses=status_ok)
    async def tf_status(request: Request, name: str):
        return server.call(request, service.tf_status, name)

    @app.get("/v1/models/{name}/versions/{version}", tags=["TF Serving"], summary="One version's state",
             responses=status_ok)
    async def tf_status_version(request: Request, name: str, version: str):
        return server.call(request, service.tf_status, name, version)

    @app.get("/v1/models/{name}/metadata", tags=["TF Serving"], summary="Signature of the newest version",
             responses=errors)
    async def tf_metadata(request: Request, name: str):
        return server.call(request, service.tf_metadata, name)

    @app.get("/v1/models/{name}/versions/{version}/metadata", tags=["TF Serving"], summary="Signature of a version",
             responses=errors)
    async def tf_metadata_version(request: Request, name: str, version: str):
        return server.call(request, service.tf_metadata, name, version)

    @app.get("/v1/models/{name}/labels/{label}/metadata", tags=["TF Serving"],
             summary="Signature of a labelled version", responses=errors)
    async def tf_metadata_label(request: Request, name: str, label: str):
        return server.call(request, service.tf_metadata, name, None, label)

    drift_ok = {200: {"description": "PSI per feature and for the score, with bands"}, **errors}

    @app.get("/v1/models/{name}/drift", tags=["operations"], summary="Drift of the newest version's recent inputs",
             responses=drift_ok)
    async def drift(request: Request, name: str):
        return await asyncio.get_running_loop().run_in_executor(None, server.call, request, service.drift_report, name)

    @app.get("/v1/models/{name}/versions/{version}/drift", tags=["operations"],
             summary="Drift of one version's recent inputs", responses=drift_ok)
    async def drift_version(request: Request, name: str, version: str):
        return await asyncio.get_running_loop().run_in_executor(None, server.call, request, service.drift_report,
                                                                name, version)

    # -- Open Inference Protocol v2 ----------------------------------------------------------
    @app.get("/v2", tags=["v2"], summary="Server metadata", responses={200: {"model": schemas.V2ServerMetadata}})
    async def v2_server(request: Request):
        return _response(service.v2_server_metadata())

    @app.get("/v2/health/live", tags=["v2"], summary="Liveness (no key needed)")
    async def v2_live():
        return _response(Reply(200, codec.dumps({"live": True})))

    @app.get("/v2/health/ready", tags=["v2"], summary="Readiness: every model has a loaded version (no key needed)")
    async def v2_ready():
        return _response(service.ready_reply())

    meta_ok = {200: {"model": schemas.V2ModelMetadata}, **errors}

    @app.get("/v2/models/{name}", tags=["v2"], summary="Model metadata", responses=meta_ok)
    async def v2_model(request: Request, name: str):
        return server.call(request, service.v2_model_metadata, name)

    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], summary="Model version metadata", responses=meta_ok)
    async def v2_model_version(request: Request, name: str, version: str):
        return server.call(request, service.v2_model_metadata, name, version)

    @app.get("/v2/models/{name}/ready", tags=["v2"], summary="Model readiness")
    async def v2_model_ready(request: Request, name: str):
        return server.call(request, service.v2_model_ready, name)

    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], summary="Model version readiness")
    async def v2_model_version_ready(request: Request, name: str, version: str):
        return server.call(request, service.v2_model_ready, name, version)

    infer_ok = {200: {"model": schemas.V2InferResponse}, **errors}
    infer_body = body_of(schemas.V2InferRequest)

    @app.post("/v2/models/{name}/infer", tags=["v2"], summary="Inference (JSON or binary tensors)",
              responses=infer_ok, openapi_extra=infer_body)
    async def v2_infer(request: Request, name: str):
        hl = request.headers.get("inference-header-content-length")
        return await server.predict(request, lambda ex, body: service.plan_v2(ex, name, None, body, hl))

    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], summary="Inference on one version",
              responses=infer_ok, openapi_extra=infer_body)
    async def v2_infer_version(request: Request, name: str, version: str):
        hl = request.headers.get("inference-header-content-length")
        return await server.predict(request, lambda ex, body: service.plan_v2(ex, name, version, body, hl))

    # -- operations --------------------------------------------------------------------------
    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics():
        await asyncio.get_running_loop().run_in_executor(None, service.evaluate_drift)
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def openapi():
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in schemas.REQUEST_MODELS:
                s = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(s.pop("$defs", {}))
                components[model.__name__] = s
            if service.keys is not None:
                doc["components"]["securitySchemes"] = {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
                doc["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    app.add_middleware(_Gate, service=service)
    return app
