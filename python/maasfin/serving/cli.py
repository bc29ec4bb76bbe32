"""`maasfin serve REPO` and `maasfin keys ...` (wired into maasfin/__main__.py).

Nothing heavy is imported at module level: `maasfin demo` and `--help` never import the web stack.

Multi-worker mode (`--workers N`): uvicorn starts N fresh processes (spawn, not fork); each builds
the app from the configuration passed in the environment (MAASFIN_SERVE_CONFIG), sets its oneDNN
threads to `--threads` (default cores // N, so the workers do not oversubscribe the cores), and
loads the repository itself. Nothing touches oneDNN in the parent. Each worker writes its own
audit file (`PATH.<pid>`), PROMETHEUS_MULTIPROC_DIR (a temporary directory unless set) lets
/metrics report the sum over workers, and the drift windows live in a fresh temporary directory
(ServingConfig.drift_dir) so that drift reports and gauges cover every worker's traffic.
"""

from __future__ import annotations

import json
import os
import sys

_CONFIG_ENV = "MAASFIN_SERVE_CONFIG"

# The server's dependencies: the `serve` extra of pyproject.toml (the Keras API installs without them).
SERVE_DEPENDENCIES = ("fastapi", "uvicorn", "httptools", "prometheus_client", "orjson")
SERVE_INSTALL = "pip install 'maasfin[serve]'"


def missing_dependencies() -> list[str]:
    """The server's dependencies that are not installed."""
    import importlib.util

    return [m for m in SERVE_DEPENDENCIES if importlib.util.find_spec(m) is None]


def add_subcommands(sub) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve the models of a model repository over HTTP",
        description="Serve REPO/<name>/<version>/model.maas over HTTP: POST /v1/predict, "
        "TF Serving's /v1/models/..., the Open Inference Protocol /v2/..., "
        "/metrics and /docs. See docs/serving.md.",
    )
    serve.add_argument("repo", metavar="MODEL_REPO", help="directory holding <name>/<version>/model.maas")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--api-keys", metavar="FILE", help="JSON file of hashed API keys (maasfin keys add)")
    serve.add_argument("--audit-log", metavar="PATH", help="append one JSON line per prediction request here")
    serve.add_argument(
        "--audit-outputs",
        choices=("hash", "values"),
        default="hash",
        help="log the outputs' SHA-256 (default) or the outputs themselves",
    )
    serve.add_argument("--audit-fsync", action="store_true", help="fsync every audit line before responding")
    serve.add_argument(
        "--audit-max-bytes",
        type=int,
        default=100 * 1024 * 1024,
        help="rotate the audit log past this size (default 100 MiB)",
    )
    serve.add_argument("--audit-backups", type=int, default=10, help="rotated audit files kept (default 10)")
    serve.add_argument(
        "--audit-refused-rate",
        type=float,
        default=10.0,
        help="audit lines of refused (4xx) requests per second per key or client address (default 10)",
    )
    serve.add_argument(
        "--audit-refused-burst",
        type=int,
        default=100,
        help="... of which this many at once; beyond, one summary line counts the dropped ones (default 100)",
    )
    serve.add_argument("--max-batch-size", type=int, default=256, help="rows merged into one predict call")
    serve.add_argument(
        "--chunk-rows",
        type=int,
        default=4096,
        help="larger requests run in chunks of this many rows, with other requests between them (default 4096)",
    )
    serve.add_argument(
        "--max-latency-ms",
        type=float,
        default=2.0,
        help="longest a request waits for others to join its batch (default 2)",
    )
    serve.add_argument(
        "--poll-seconds",
        type=float,
        default=5.0,
        help="how often the repository is checked for new versions (0: never; default 5)",
    )
    serve.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024, help="request body limit")
    serve.add_argument("--request-timeout", type=float, default=30.0, help="seconds before a request gets 504")
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds for a request's whole header block; then 408 and the connection is closed (default 10)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=20.0,
        help="seconds for a request's whole body after its headers; then 408 (default 20)",
    )
    serve.add_argument(
        "--max-header-bytes",
        type=int,
        default=32 * 1024,
        help="larger header blocks get 431 and the connection is closed (default 32768)",
    )
    serve.add_argument(
        "--threads", type=int, default=None, help="oneDNN threads per worker (default: cores // workers)"
    )
    serve.add_argument(
        "--predict-threads",
        type=int,
        default=None,
        help="threads running predict calls per worker (default: cores // workers)",
    )
    serve.add_argument(
        "--drift-window",
        type=int,
        default=5000,
        help="recent rows per model version kept for drift reports and PSI gauges (0: off; default 5000)",
    )
    serve.add_argument("--public-docs", action="store_true", help="serve /docs and /openapi.json without a key")
    serve.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="also serve the Open Inference Protocol over gRPC on this port (needs maasfin[grpc])",
    )
    serve.add_argument(
        "--store",
        metavar="PATH_OR_URL",
        help="outcome store: a SQLite file (shared by the workers) or postgresql://user@host/db",
    )
    serve.add_argument(
        "--store-retention-days", type=float, default=None, help="purge stored predictions older than this"
    )
    serve.add_argument(
        "--store-inputs",
        choices=("hash", "none"),
        default="hash",
        help="store each request's input digest (SHA-256, as the audit log) with its predictions, or not",
    )
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(run=run_serve)

    keys = sub.add_parser("keys", help="manage an API keys file (stores only SHA-256 hashes)")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    add = ksub.add_parser("add", help="create a key, print it once, store its hash")
    add.add_argument("file")
    add.add_argument("name")
    add.add_argument("--models", default="", help="comma-separated model names, or '*' for all")
    add.add_argument("--scopes", default="", help="comma-separated scopes: 'metrics' may read /metrics")
    rm = ksub.add_parser("remove", help="remove a key")
    rm.add_argument("file")
    rm.add_argument("name")
    ls = ksub.add_parser("list", help="list key names and their models")
    ls.add_argument("file")
    keys.set_defaults(run=run_keys)


def _config_from_args(args):
    from maasfin.serving.config import ServingConfig

    return ServingConfig(
        repo=os.path.abspath(args.repo),
        api_keys=args.api_keys and os.path.abspath(args.api_keys),
        audit_log=args.audit_log and os.path.abspath(args.audit_log),
        audit_outputs=args.audit_outputs,
        audit_fsync=args.audit_fsync,
        audit_max_bytes=args.audit_max_bytes,
        audit_backups=args.audit_backups,
        audit_refused_rate=args.audit_refused_rate,
        audit_refused_burst=args.audit_refused_burst,
        max_batch_size=args.max_batch_size,
        max_latency_ms=args.max_latency_ms,
        chunk_rows=args.chunk_rows,
        poll_seconds=args.poll_seconds,
        max_body_bytes=args.max_body_bytes,
        request_timeout_s=args.request_timeout,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        max_header_bytes=args.max_header_bytes,
        num_threads=args.threads,
        predict_threads=args.predict_threads,
        public_docs=args.public_docs,
        workers=args.workers,
        drift_window=args.drift_window,
        grpc_port=args.grpc_port,
        grpc_host=args.host,
        store=args.store,
        store_retention_days=args.store_retention_days,
        store_inputs=args.store_inputs,
    )


def run_serve(args) -> int:
    import dataclasses

    missing = missing_dependencies()
    if missing:
        print(
            f"maasfin serve: the server's dependencies are not installed ({', '.join(missing)}); "
            f"install them with: {SERVE_INSTALL}",
            file=sys.stderr,
        )
        return 2
    try:
        config = _config_from_args(args)
        if not os.path.isdir(config.repo):
            raise ValueError(f"model repository '{config.repo}' is not a directory")
        if config.api_keys:
            from maasfin.serving.auth import read_keys_file

            read_keys_file(config.api_keys)  # fail now, with the reason, not in every worker
    except ValueError as e:
        print(f"maasfin serve: {e}", file=sys.stderr)
        return 2
    import uvicorn

    import maasfin.serving.transport as transport

    common = dict(
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=config.max_header_bytes,
    )
    if config.workers == 1:
        from maasfin.serving.app import create_app

        http = transport.protocol_class(config.header_timeout_s, config.max_header_bytes)
        uvicorn.run(create_app(config=config), http=http, **common)
        return 0
    common["http"] = transport.HTTP_PROTOCOL
    os.environ[transport.LIMITS_ENV] = json.dumps(
        {"header_timeout_s": config.header_timeout_s, "max_header_bytes": config.max_header_bytes}
    )
    import atexit
    import shutil
    import tempfile

    if config.drift_window > 0 and config.drift_dir is None:  # workers merge their drift windows here
        config.drift_dir = tempfile.mkdtemp(prefix="maasfin-drift-")
        atexit.register(shutil.rmtree, config.drift_dir, True)
    os.environ[_CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        made = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="maasfin-metrics-")
        atexit.register(shutil.rmtree, made, True)
    uvicorn.run("maasfin.serving.cli:worker_app", factory=True, workers=config.workers, **common)
    return 0


def worker_app():
    """The app of one worker process (uvicorn --workers imports this by name)."""
    from maasfin.serving.app import create_app
    from maasfin.serving.config import ServingConfig

    return create_app(config=ServingConfig(**json.loads(os.environ[_CONFIG_ENV])))


def run_keys(args) -> int:
    import maasfin.serving.auth as auth

    try:
        if args.keys_command == "add":
            models = [m.strip() for m in args.models.split(",") if m.strip()]
            scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
            key = auth.add_key(args.file, args.name, models, scopes=scopes)
            print(key)
            granted = f"models: {', '.join(models)}" + (f"; scopes: {', '.join(scopes)}" if scopes else "")
            print(
                f"key '{args.name}' ({granted}) added to {args.file}; only its SHA-256 is "
                "stored, so keep the key above now: it cannot be shown again",
                file=sys.stderr,
            )
        elif args.keys_command == "remove":
            auth.remove_key(args.file, args.name)
        else:
            for e in auth.read_keys_file(args.file).values():
                print(f"{e.name}\t{','.join(e.models)}" + (f"\tscopes={','.join(e.scopes)}" if e.scopes else ""))
    except (OSError, ValueError) as e:
        print(f"maasfin keys: {e}", file=sys.stderr)
        return 2
    return 0
