"""What the ASGI app (app.py) lends to other parts: its batchers to gRPC threads, raw requests to "data" routes.

- `connect_batcher(service, batcher, loop)` sets `service.batch_predict(version, xs)`, which a
  thread outside the event loop (the gRPC server's, protocols/grpc.py) calls to have `xs` predicted
  through the version's batcher, merged with the REST requests; it returns a concurrent Future.
- `route_params(request, endpoint)`: the `params` of a route's call: the path parameters, plus the
  query string ("query") and the body ("body") for endpoints of kind "data" (outcomes/api.py).
"""

from __future__ import annotations

import asyncio

__all__ = ["connect_batcher", "route_params"]


def connect_batcher(service, batcher, loop: asyncio.AbstractEventLoop) -> None:
    async def submit(version, xs):
        return await batcher(version).submit(xs)

    service.batch_predict = lambda version, xs: asyncio.run_coroutine_threadsafe(submit(version, xs), loop)


async def route_params(request, endpoint) -> dict:
    if endpoint.kind != "data":
        return request.path_params
    return {**request.path_params, "query": dict(request.query_params), "body": await request.body()}
