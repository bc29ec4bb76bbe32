"""Process-wide settings of the native core."""

from __future__ import annotations

from maasfin import _core

__all__ = [
    "set_num_threads",
    "get_num_threads",
    "set_backend",
    "get_backend",
    "set_primitive_cache_capacity",
    "onednn_version",
]


def set_num_threads(n: int) -> None:
    """Threads oneDNN may use for large matrix products (small ones always run on one thread).

    In a server with several worker processes, give each worker cores // workers.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    return _core.num_threads()


def set_backend(name: str) -> None:
    """'auto' (size-based dispatch), 'reference' (Eigen only) or 'onednn' (oneDNN for every product)."""
    table = {"auto": _core.Backend.automatic, "reference": _core.Backend.reference, "onednn": _core.Backend.onednn}
    if name not in table:
        raise ValueError(f"set_backend: unknown backend {name!r}; valid: {', '.join(table)}")
    _core.set_backend(table[name])


def get_backend() -> str:
    return {_core.Backend.automatic: "auto", _core.Backend.reference: "reference", _core.Backend.onednn: "onednn"}[
        _core.get_backend()
    ]


def set_primitive_cache_capacity(n: int) -> None:
    """Maximum number of cached oneDNN primitives (one per distinct problem shape)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_primitive_cache_capacity: n must be a positive integer, got {n!r}")
    _core.set_primitive_cache_capacity(n)


def onednn_version() -> str:
    return _core.onednn_version()
