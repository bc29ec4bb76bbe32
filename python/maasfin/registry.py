"""The classes a model file may name, registered by kind by the modules that define them.

Loading a file never resolves a name outside these tables, so a file cannot reach arbitrary
code. Each family registers the classes it exports (`register_exports`) when it is imported;
`maasfin`'s package import loads every family, so the tables are complete before any load.
"""

from __future__ import annotations

KINDS = ("layer", "loss", "metric", "optimizer", "schedule", "regularizer", "constraint", "model")

_tables: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}


def register(kind: str, cls: type, name: str | None = None) -> type:
    """Adds `cls` to the `kind` table under `name` (its class name by default)."""
    if kind not in _tables:
        raise ValueError(f"unknown registry kind {kind!r}; kinds: {', '.join(KINDS)}")
    _tables[kind][name or cls.__name__] = cls
    return cls


def register_exports(kind: str, namespace: dict, names, base: type) -> None:
    """Registers the subclasses of `base` among `names` (a module's __all__) in `namespace`."""
    for name in names:
        obj = namespace.get(name)
        if isinstance(obj, type) and issubclass(obj, base) and obj is not base and obj.__name__ == name:
            register(kind, obj)


def classes(kind: str) -> dict[str, type]:
    """A copy of the `kind` table: class name -> class."""
    if kind not in _tables:
        raise ValueError(f"unknown registry kind {kind!r}; kinds: {', '.join(KINDS)}")
    return dict(_tables[kind])


def get(kind: str, name: str) -> type | None:
    """The registered class called `name`, or None."""
    return _tables[kind].get(name)
