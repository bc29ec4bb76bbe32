"""The ASGI app (FastAPI on Starlette): `create_app(repo, ...)`, served by uvicorn (`maasfin serve`).

Layers, outermost first:
1. `_Gate` (pure ASGI middleware): request ids (X-Request-ID on every response), API-key
   authentication (401) for every path except the health checks, and for prediction requests the
   audit line and the metrics, written *before* the response leaves (so whatever the client
   received is in the audit log, including 401s, 413s, 504s and crashes).
2. Prediction and explanation requests are answered by the gate itself (`_Server.handle`): it
   reads the body under the size limit, under the request timeout, then plans (parse, authorize
   for the model (403), validate: the endpoint's protocol, protocols/), batches, predicts and
   answers (service.py). Going around the framework's routing, middleware and response objects
   halves the server's CPU per one-row request; FastAPI routes and documents everything else.
3. The routes of routes.ENDPOINTS (the Flask blueprint registers the same table).

Models load in the lifespan start-up, in the worker process, never in `create_app`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from maasfin.serving import bridge, codec, explaining, schemas
from maasfin.serving.batching import Batcher
from maasfin.serving.config import ServingConfig
from maasfin.serving.endpoints import Endpoint
from maasfin.serving.errors import RequestError
from maasfin.serving.exchange import (
    Exchange,
    Plan,
    Reply,
    body_digest,
    decode_content,
    error_reply,
    new_request_id,
    too_large,
)
from maasfin.serving.metrics import CONTENT_TYPE_LATEST
from maasfin.serving.routes import ENDPOINTS, OPEN_PATHS
from maasfin.serving.service import Service
from maasfin.version import VERSION

log = logging.getLogger("maasfin.serving")

_ROUTES = [(re.compile("^" + re.sub(r"\{([a-z_]+)\}", r"(?P<\1>[^/]+)", e.path) + "$"), e) for e in ENDPOINTS]
_ROUTES_BY_METHOD = {m: [r for r in _ROUTES if r[1].method == m] for m in {e.method for e in ENDPOINTS}}
HEALTH_PATHS = OPEN_PATHS
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
_PLAN_INLINE_BYTES = 32 * 1024  # bodies above this are parsed in a thread, off the event loop
_REPLY_INLINE_ROWS = 1024  # replies above this are encoded in a thread
_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+; wait_for (one more task) before


def _route(method: str, path: str) -> tuple[Endpoint, dict] | None:
    """(endpoint, path parameters) of a request that reaches a route of routes.ENDPOINTS (one of
    this method first; a path of another method's route is answered 405 by the framework), or None."""
    if not path.startswith(("/v", "/metrics")):
        return None
    for pattern, e in _ROUTES_BY_METHOD.get(method, ()):
        m = pattern.match(path)
        if m is not None:
            return e, m.groupdict()
    for pattern, e in _ROUTES:
        m = pattern.match(path)
        if m is not None:
            return e, m.groupdict()
    return None


def _error_of(held: list) -> str | None:
    """The `error` of a held JSON error response's body, for its audit line."""
    if not held or held[0]["status"] < 400:
        return None
    body = b"".join(m.get("body", b"") for m in held[1:])
    try:
        doc = json.loads(body)
    except Exception:  # noqa: BLE001 - not JSON: the audit line says so
        return "(an error response without a JSON body)"
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, str) else "(an error response without an 'error' field)"


def _response(reply: Reply) -> Response:
    return Response(content=reply.body, status_code=reply.status, headers=reply.headers, media_type=reply.media_type)


async def _send_reply(send, reply: Reply, request_id: str | None = None) -> None:
    headers = [(b"content-type", reply.media_type.encode()), (b"content-length", str(len(reply.body)).encode())]
    headers += [
        (k.lower().encode(), v.encode())
        for k, v in reply.headers.items()
        if request_id is None or k.lower() != "x-request-id"
    ]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


class _Gate:
    def __init__(self, app, server: _Server):
        self.app = app
        self.server = server
        self.service = service = server.service
        self.exempt = HEALTH_PATHS | (DOCS_PATHS if service.config.public_docs else frozenset())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        service = self.service
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}  # names are lower case
        client = scope.get("client")
        ex = None
        route = _route(method, path)
        if route is not None:  # every request that reaches a route gets its audit line
            ex = route[0].exchange(method, path, client[0] if client else None, route[1])
        elif path in DOCS_PATHS:  # the OpenAPI document and its viewers too
            ex = Exchange("operations", method, path, client[0] if client else None, observe=False)
        request_id = ex.request_id if ex is not None else new_request_id()
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
                if ex.error is None:
                    ex.error = _error_of(held)
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
        if (
            route is not None and route[0].predicts and method == "POST"
        ):  # predictions skip the framework: read, plan, batch, encode, audit, answer
            await self._predict(route, headers, receive, send, ex)
            return
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as e:
            if ex is not None and not finished:
                ex.error = f"internal error ({type(e).__name__})"
                await self._finish(ex, 500)
            raise

    async def _predict(self, route, headers, receive, send, ex: Exchange) -> None:
        endpoint, params = route
        try:
            try:
                reply = await self.server.handle(endpoint, params, headers, receive, ex)
            except Exception as e:  # noqa: BLE001 - answered and audited as a 500
                log.exception("request %s failed", ex.request_id)
                ex.error = f"internal error ({type(e).__name__})"
                reply = Reply(500, codec.dumps({"error": "internal server error"}))
        except BaseException as e:  # cancelled (the client went away): audited, then re-raised
            ex.error = f"internal error ({type(e).__name__})"
            await self._finish(ex, 500)
            raise
        out = await self._finish(ex, reply.status)
        await _send_reply(send, reply if out is None else out, ex.request_id)

    async def _finish(self, ex: Exchange, status: int) -> Reply | None:
        service = self.service
        try:
            if service.finish_blocks:
                await asyncio.get_running_loop().run_in_executor(None, service.finish, ex, status)
            else:
                service.finish(ex, status)
        except Exception as e:  # noqa: BLE001
            log.exception("audit log write failed for request %s", ex.request_id)
            return Reply(
                500,
                codec.dumps(
                    {
                        "error": f"the audit log could not be written ({type(e).__name__}); "
                        "the prediction was not returned"
                    }
                ),
                {"x-request-id": ex.request_id},
            )
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
            name, ver, service = version.name, str(version.version), self.service
            metrics = service.metrics
            b = Batcher(
                lambda xs: service.predict_rows(version, xs),
                self.executor,
                max_batch_size=cfg.max_batch_size,
                max_latency_ms=cfg.max_latency_ms,
                max_concurrency=self.threads,
                max_queue=cfg.max_queue,
                on_batch=lambda rows, n: metrics.observe_batch(name, ver, rows, n),
                chunk_rows=cfg.chunk_rows,
            )
            version.attachments["batcher"] = b
            loop = asyncio.get_running_loop()
            version.on_unload(lambda _v: loop.call_soon_threadsafe(b.close))
        return b

    async def handle(self, e: Endpoint, params, headers, receive, ex: Exchange) -> Reply:
        """A prediction or explanation request, from its path parameters, headers and ASGI
        `receive` (the body is read here, under the size limit and the request timeout)."""
        return await self._timed(ex, self._answer(e, params, headers, receive, ex))

    async def read_body(self, receive, headers) -> bytes:
        """The request body, under the size limit and the body timeout (408)."""
        limit = self.service.config.max_body_bytes
        too_big = too_large(limit)
        declared = headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                raise RequestError(400, "the Content-Length header is not a number")
            if len(declared) > 18 or int(declared) > limit:
                raise too_big
        timeout = self.service.config.body_timeout_s
        try:
            if _timeout is None:
                body = await asyncio.wait_for(self._receive_body(receive, limit, too_big), timeout)
            else:
                async with _timeout(timeout):
                    body = await self._receive_body(receive, limit, too_big)
        except asyncio.TimeoutError:
            raise RequestError(
                408, f"the request body did not arrive within the server's body timeout of {timeout:g} s"
            ) from None
        return decode_content(body, headers.get("content-encoding"), limit)

    @staticmethod
    async def _receive_body(receive, limit: int, too_big: RequestError) -> bytes:
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                raise RequestError(400, "the client disconnected before sending the whole request body")
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _timed(self, ex: Exchange, work) -> Reply:
        """`work`'s reply, or its RequestError's, or 504 past the request timeout."""
        timeout = self.service.config.request_timeout_s
        try:
            if _timeout is None:
                return await asyncio.wait_for(work, timeout)
            async with _timeout(timeout):
                return await work
        except asyncio.TimeoutError:
            e = RequestError(504, f"the request did not complete within the server's timeout of {timeout:g} s")
        except RequestError as err:
            e = err
        ex.error = e.message
        return error_reply(e)

    async def _answer(self, e: Endpoint, params, headers, receive, ex: Exchange) -> Reply:
        """Reads the body, plans (inline, or in a thread for large bodies and explanations),
        predicts through the version's batcher, then answers (explanations in the worker pool)."""
        body = await self.read_body(receive, headers)
        if self.service.audit is not None:
            ex.body_sha256 = body_digest(body)
        plan = await self._plan(e, params, headers, body, ex)
        try:
            y = await self.batcher(plan.lease.version).submit(plan.xs)
            if plan.explain is None:
                if y.shape[0] <= _REPLY_INLINE_ROWS:
                    return self.service.reply(plan, y)
                # a large reply is encoded in a thread, so the event loop keeps serving small requests
                return await asyncio.get_running_loop().run_in_executor(self.plan_executor, self.service.reply, plan, y)
            return await asyncio.get_running_loop().run_in_executor(self.executor, explaining.explain, plan, y)
        finally:
            plan.lease.release()

    async def _plan(self, e: Endpoint, params, headers, body: bytes, ex: Exchange) -> Plan:
        if e.kind == "predict" and len(body) <= _PLAN_INLINE_BYTES:
            return e.call(self.service, ex, body, params, headers)
        cf = self.plan_executor.submit(e.call, self.service, ex, body, params, headers)
        try:
            return await asyncio.wrap_future(cf)
        except asyncio.CancelledError:  # timed out while parsing: release the lease it will take
            cf.add_done_callback(_release_planned)
            raise

    def call(self, request: Request, fn, service: Service, params, headers: bool = False) -> Response:
        """A non-prediction endpoint: RequestError becomes its status and {"error": ...}."""
        extra = {"headers": request.headers} if headers else {}
        try:
            return _response(fn(service, request.scope["state"].get("maasfin_key"), params, **extra))
        except RequestError as e:
            return _response(error_reply(e))


def _release_planned(f) -> None:
    """Releases the lease of a plan made after its request was given up."""
    if not f.cancelled() and f.exception() is None:
        f.result().lease.release()


def _add_route(app: FastAPI, server: _Server, e: Endpoint, errors: dict) -> None:
    """Registers one endpoint of routes.ENDPOINTS, with its OpenAPI description."""
    service = server.service
    if e.kind in ("predict", "explain"):  # answered by _Gate before routing; here for the OpenAPI document

        async def handler(request: Request):
            ex = request.scope["state"]["maasfin_exchange"]
            return _response(await server.handle(e, request.path_params, request.headers, request.receive, ex))
    elif e.kind == "metrics":

        async def handler(request: Request):
            try:
                service.authorize_metrics(request.scope["state"].get("maasfin_key"))
            except RequestError as err:
                return _response(error_reply(err))
            await asyncio.get_running_loop().run_in_executor(None, service.evaluate_drift)
            return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)
    elif e.slow or e.kind == "data":  # in a thread; "data" routes also get the query string and body

        async def handler(request: Request):
            return await asyncio.get_running_loop().run_in_executor(
                None, server.call, request, e.call, service, await bridge.route_params(request, e), e.headers
            )
    else:

        async def handler(request: Request):
            return server.call(request, e.call, service, request.path_params, e.headers)

    extra: dict = {}
    names = [p[1:-1] for p in re.findall(r"\{[a-z_]+\}", e.path)]
    if names:
        extra["parameters"] = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]
    if e.body is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{e.body}"}}},
        }
    responses = {} if e.kind in ("open", "metrics") else dict(errors)
    if e.response is not None:
        responses[200] = {"model": getattr(schemas, e.response)}
    elif e.slow:
        what = "PSI per feature and the score, with bands" if "drift" in e.name else e.summary
        responses[200] = {"description": what}
    app.add_api_route(
        e.path,
        handler,
        methods=[e.method],
        name=e.name,
        tags=[e.tag],
        summary=e.summary,
        responses=responses,
        openapi_extra=extra or None,
    )


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
        bridge.connect_batcher(service, server.batcher, asyncio.get_running_loop())  # gRPC joins REST batches
        await asyncio.get_running_loop().run_in_executor(None, server.start)
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, server.stop)

    app = FastAPI(
        title="maasfin model server",
        version=VERSION,
        lifespan=lifespan,
        description="Predictions from the models of a maasfin model repository: a simple JSON API, "
        "TensorFlow Serving's REST API and the Open Inference Protocol (v2). "
        "Send the API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    )
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
    for endpoint in ENDPOINTS:
        _add_route(app, server, endpoint, errors)

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
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                }
                doc["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    app.add_middleware(_Gate, server=server)
    return app
