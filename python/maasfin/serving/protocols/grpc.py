"""The Open Inference Protocol v2 over gRPC: `inference.GRPCInferenceService` (`maasfin serve --grpc-port`).

ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer (tensors as
typed `contents` or as `raw_input_contents`), from the KServe proto in oip/ (generated modules
committed; scripts/gen_grpc.sh). A request is translated to the v2 REST protocol's JSON header
and binary section and goes through the same plan, decode, predict and accounting as REST
(v2.py, Service): the same validation messages, audit lines (protocol "grpc"), metrics, routing
and outcome store. Outputs are returned as `raw_output_contents` (little-endian FP32), as
Triton does. API keys come as metadata `authorization: Bearer <key>` (or `x-api-key`); a
missing or wrong key is UNAUTHENTICATED, a key not allowed on the model PERMISSION_DENIED.
Under the ASGI app (`maasfin serve`), predictions go through the same per-version batcher as REST
requests (`Service.batch_predict`), so gRPC and REST requests are merged; elsewhere one request
per predict call.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from maasfin.serving import codec, routing
from maasfin.serving.errors import RequestError
from maasfin.serving.exchange import Exchange
from maasfin.serving.protocols import v2

try:  # the [grpc] extra
    import grpc

    from maasfin.serving.protocols.oip import grpc_predict_v2_pb2 as pb
    from maasfin.serving.protocols.oip import grpc_predict_v2_pb2_grpc as pb_grpc
except ImportError:  # pragma: no cover - depends on the environment
    grpc = pb = pb_grpc = None

__all__ = ["GRPC_INSTALL", "check_available", "serve"]

log = logging.getLogger("maasfin.serving")

GRPC_INSTALL = 'pip install "maasfin[grpc]"'
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CONTENTS = {  # datatype -> InferTensorContents field
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP16": "fp32_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def _status(http: int):
    return {
        400: grpc.StatusCode.INVALID_ARGUMENT,
        401: grpc.StatusCode.UNAUTHENTICATED,
        403: grpc.StatusCode.PERMISSION_DENIED,
        404: grpc.StatusCode.NOT_FOUND,
        409: grpc.StatusCode.ALREADY_EXISTS,
        413: grpc.StatusCode.RESOURCE_EXHAUSTED,
        415: grpc.StatusCode.INVALID_ARGUMENT,
        422: grpc.StatusCode.INVALID_ARGUMENT,
        503: grpc.StatusCode.UNAVAILABLE,
        504: grpc.StatusCode.DEADLINE_EXCEEDED,
    }.get(http, grpc.StatusCode.INTERNAL)


def _param(p) -> object:
    kind = p.WhichOneof("parameter_choice")
    return None if kind is None else getattr(p, kind)


def to_v2(request) -> tuple[dict, bytes]:
    """(JSON header, binary section) of a ModelInferRequest, as the v2 REST protocol takes them."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise RequestError(
            400, f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: one per input"
        )
    inputs = []
    for i, t in enumerate(request.inputs):
        d = {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
        params = {k: _param(v) for k, v in t.parameters.items()}
        if raw:
            params["binary_data_size"] = len(raw[i])
        else:
            field = _CONTENTS.get(t.datatype)
            if field is None:
                raise RequestError(400, f"inputs[{i}] ('{t.name}'): datatype {t.datatype!r} is not supported")
            d["data"] = list(getattr(t.contents, field))
        if params:
            d["parameters"] = params
        inputs.append(d)
    header = {"inputs": inputs}
    if request.id:
        header["id"] = request.id
    if request.outputs:
        header["outputs"] = [{"name": o.name} for o in request.outputs]
    params = {k: _param(v) for k, v in request.parameters.items()}
    if params:
        header["parameters"] = params
    return header, b"".join(raw)


class Servicer(pb_grpc.GRPCInferenceServiceServicer if pb_grpc is not None else object):
    """The RPCs, each over the service (auth from metadata, errors as gRPC status codes)."""

    def __init__(self, service):
        self.service = service

    def _key(self, context):
        md = {k.lower(): v for k, v in context.invocation_metadata()}
        return self.service.authenticate(md.get("authorization"), md.get("x-api-key")), md

    def _read(self, context, fn, params: dict, open_: bool = False) -> dict:
        try:
            key = None if open_ else self._key(context)[0]
            reply = fn(self.service, key, params)
        except RequestError as e:
            context.abort(_status(e.status), e.message)
        return codec.parse_json(reply.body) if reply.body else {}

    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.service.repository.ready())

    def ModelReady(self, request, context):
        params = {"name": request.name, "version": request.version or None}
        return pb.ModelReadyResponse(ready=bool(self._read(context, v2.model_ready, params).get("ready")))

    def ServerMetadata(self, request, context):
        d = self._read(context, v2.server_metadata, {})
        return pb.ServerMetadataResponse(name=d["name"], version=d["version"], extensions=d["extensions"])

    def ModelMetadata(self, request, context):
        d = self._read(context, v2.model_metadata, {"name": request.name, "version": request.version or None})
        tensors = [pb.ModelMetadataResponse.TensorMetadata(**t) for t in ("inputs", "outputs") for t in d[t]]
        n_in = len(d["inputs"])
        return pb.ModelMetadataResponse(
            name=d["name"],
            versions=d["versions"],
            platform=d["platform"],
            inputs=tensors[:n_in],
            outputs=tensors[n_in:],
        )

    def ModelInfer(self, request, context):
        service = self.service
        ex = Exchange("grpc", "POST", "/inference.GRPCInferenceService/ModelInfer", context.peer())
        plan = None
        status, reply = 500, None
        try:
            ex.key, md = self._key(context)
            ex.routing_key = routing.routing_key(md.get("x-routing-key"), "metadata x-routing-key")
            header, binary = to_v2(request)
            req = v2.Request(header, binary)
            version = v2.url_version(request.model_version or None)
            plan = service.plan(ex, request.model_name, version, None, v2.decode_request, req)
            if service.batch_predict is not None:  # through the ASGI app's batcher, merged with REST requests
                y = service.batch_predict(plan.lease.version, plan.xs).result(service.config.request_timeout_s)
            else:
                y = service.predict(plan)
            service.reply(plan, y)  # finiteness, audit outputs, drift window, outcome scores
            a = plan.answer
            out = pb.ModelInferResponse.InferOutputTensor(name=a.output_name, datatype="FP32", shape=list(y.shape))
            reply = pb.ModelInferResponse(
                model_name=a.name,
                model_version=str(a.version),
                id=request.id or ex.request_id,
                outputs=[out],
                raw_output_contents=[np.ascontiguousarray(y, dtype="<f4").tobytes()],
            )
            status = 200
        except RequestError as e:
            status, ex.error = e.status, e.message
        except TimeoutError:
            status, ex.error = 504, f"the request took longer than {service.config.request_timeout_s:g} s"
        except Exception as e:  # noqa: BLE001 - answered and audited as INTERNAL
            log.exception("gRPC request %s failed", ex.request_id)
            ex.error = f"internal error ({type(e).__name__})"
        finally:
            if plan is not None:
                plan.lease.release()
        try:
            service.finish(ex, status)
        except Exception as e:  # noqa: BLE001
            log.exception("audit log write failed for request %s", ex.request_id)
            context.abort(grpc.StatusCode.INTERNAL, f"the audit log could not be written ({type(e).__name__})")
        context.set_trailing_metadata((("x-request-id", ex.request_id),))
        if status != 200:
            context.abort(_status(status), ex.error or "internal server error")
        return reply


def check_available() -> None:
    """ImportError naming the extra when grpcio or protobuf is missing."""
    if grpc is None:
        raise ImportError(f"maasfin serve --grpc-port needs grpcio and protobuf: {GRPC_INSTALL}")


def serve(service, port: int, host: str = "0.0.0.0", threads: int = 8):
    """Starts the gRPC server of `service` on host:port (SO_REUSEPORT: every worker binds it) and
    returns it (`.stop(grace)`)."""
    check_available()
    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="maasfin-grpc"),
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(service), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC port {host}:{port} could not be bound")
    server.start()
    log.info("gRPC (Open Inference Protocol) on %s:%d", host, bound)
    return server
