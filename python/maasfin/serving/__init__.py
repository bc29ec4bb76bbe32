"""Serving: a model repository with versions and labels behind three protocols (docs/serving.md).

The protocols are a simple JSON API, TensorFlow Serving's REST API and the Open Inference Protocol
v2 (protocols/).

    from maasfin.serving import create_app        # ASGI app (FastAPI), run with uvicorn
    from maasfin.serving import flask_blueprint   # the same endpoints inside an existing Flask app

or from a shell: `maasfin serve REPO`. Names are imported lazily, so importing this package (or
`maasfin serve --help`) costs nothing until a server is made.
"""

from __future__ import annotations

__all__ = [
    "create_app",
    "flask_blueprint",
    "ServingConfig",
    "ModelRepository",
    "AuditLog",
    "KeyStore",
    "add_key",
    "input_digest",
    "predict_tiled",
    "RequestError",
]

_SERVE_DEPENDENCIES = ("fastapi", "starlette", "pydantic", "uvicorn", "prometheus_client", "orjson", "flask")

_WHERE = {
    "create_app": "maasfin.serving.app",
    "flask_blueprint": "maasfin.serving.flask_app",
    "ServingConfig": "maasfin.serving.config",
    "ModelRepository": "maasfin.serving.repository",
    "AuditLog": "maasfin.serving.audit",
    "input_digest": "maasfin.serving.audit",
    "KeyStore": "maasfin.serving.auth",
    "add_key": "maasfin.serving.auth",
    "predict_tiled": "maasfin.serving.tiling",
    "RequestError": "maasfin.serving.errors",
}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        try:
            module = importlib.import_module(_WHERE[name])
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] in _SERVE_DEPENDENCIES:
                raise ModuleNotFoundError(
                    f"maasfin.serving.{name} needs the server's dependencies ({e.name} is "
                    "missing): pip install 'maasfin[serve]'",
                    name=e.name,
                ) from e
            raise
        return getattr(module, name)
    raise AttributeError(f"module 'maasfin.serving' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
