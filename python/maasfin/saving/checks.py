"""Checks shared by every reader: metadata.json, training state, file suffixes, and the loader guard."""

from __future__ import annotations

import datetime
import hashlib
import os
import re

from maasfin.saving.file_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    OPTIMIZER,
    REPORT,
    WEIGHTS,
    ModelFileError,
    check_dict,
    check_int,
    check_object,
    check_str,
    fail,
    type_name,
    validate_user_metadata,
)


def check_suffix(path, suffixes: tuple[str, ...], what: str) -> str:
    p = os.fspath(path)
    if not isinstance(p, str):
        raise TypeError(f"{what}: filepath must be a str or os.PathLike, got {type(path).__name__}")
    if not p.endswith(suffixes):
        raise ValueError(f"{what}: the filepath must end in {' or '.join(repr(s) for s in suffixes)}, got '{p}'")
    return p


# -- loading: metadata ---------------------------------------------------------------------------
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_metadata(meta, members: dict[str, bytes], src: str) -> dict:
    if not isinstance(meta, dict):
        raise fail(src, f"metadata.json must be an object, got {type_name(meta)}")
    fmt = meta.get("format")
    if fmt != FORMAT_NAME:
        raise fail(src, f"metadata.json format is {fmt!r}, not {FORMAT_NAME!r}: not a maasfin model file")
    version = meta.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise fail(
            src,
            f"was written in model format version {version} by a newer maasfin "
            f"({meta.get('maasfin_version')!r}); this maasfin reads format version {FORMAT_VERSION}: upgrade maasfin",
        )
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise fail(src, f"has unknown model format version {version!r}; this maasfin reads version {FORMAT_VERSION}")
    check_object(
        meta,
        src,
        "metadata.json",
        ("format", "format_version", "maasfin_version", "created", "history", "sha256"),
        ("user_metadata", "training_state"),
    )
    check_str(meta["maasfin_version"], src, "metadata.json maasfin_version", 64)
    created = check_str(meta["created"], src, "metadata.json created", 64)
    try:
        when = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise fail(src, f"metadata.json created {created!r} is not an ISO-8601 time") from None
    if when.utcoffset() is None:
        raise fail(src, f"metadata.json created {created!r} has no time zone (UTC expected)")
    if meta["history"] is not None:
        h = check_object(meta["history"], src, "metadata.json history", ("epochs", "last_epoch", "logs"))
        check_int(h["epochs"], src, "metadata.json history.epochs")
        check_int(h["last_epoch"], src, "metadata.json history.last_epoch")
        logs = check_dict(h["logs"], src, "metadata.json history.logs")
        for k, v in logs.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise fail(src, f"metadata.json history.logs[{k!r}] must be a number or null")
    hashes = check_object(meta["sha256"], src, "metadata.json sha256", (WEIGHTS,), (OPTIMIZER, REPORT))
    for name in (WEIGHTS, OPTIMIZER, REPORT):
        if (name in hashes) != (name in members):
            raise fail(
                src,
                f"metadata.json sha256 {'lists' if name in hashes else 'does not list'} member "
                f"{name!r}, which the archive {'does not hold' if name in hashes else 'holds'}",
            )
        if name in hashes:
            h = hashes[name]
            if not isinstance(h, str) or not HEX64.match(h):
                raise fail(src, f"metadata.json sha256[{name!r}] must be 64 lowercase hex digits")
            if hashlib.sha256(members[name]).hexdigest() != h:
                raise fail(
                    src,
                    f"member {name!r} does not match its SHA-256 in metadata.json "
                    "(the file is corrupt or was modified)",
                )
    if "user_metadata" in meta:
        try:
            validate_user_metadata(meta["user_metadata"])
        except (TypeError, ValueError) as e:
            raise fail(src, f"metadata.json user_metadata is invalid: {e}") from None
    if "training_state" in meta:
        check_training_state(meta["training_state"], src)
    return meta


def guard(fn, src: str):
    """Runs a loader; anything but a ModelFileError escaping it is a bug, reported as one."""
    try:
        return fn()
    except ModelFileError:
        raise
    except RecursionError:
        raise fail(src, "is nested too deeply to load") from None
    except Exception as e:  # a check missing above: still refuse the file, and keep the cause
        raise fail(src, f"could not be loaded ({type(e).__name__}: {e})") from e


def check_generator_state(g, src: str, where: str) -> None:
    check_object(g, src, where, ("bit_generator", "state", "inc", "has_uint32", "uinteger"))
    if g["bit_generator"] != "PCG64":
        raise fail(src, f"{where} is not a PCG64 state")
    for k in ("state", "inc"):
        if not isinstance(g[k], str) or not re.fullmatch(r"[0-9]{1,39}", g[k]) or int(g[k]) >= 2**128:
            raise fail(src, f"{where}.{k} must be a 128-bit integer as a decimal string")
    check_int(g["has_uint32"], src, f"{where}.has_uint32", 0, 1)
    check_int(g["uinteger"], src, f"{where}.uinteger", 0, 2**32 - 1)


def check_training_state(ts, src: str) -> None:
    check_object(ts, src, "metadata.json training_state", ("epoch", "seed_generator"), ("shuffle_generator",))
    check_int(ts["epoch"], src, "training_state.epoch", 0, 2**31)
    check_generator_state(ts["seed_generator"], src, "training_state.seed_generator")
    if ts.get("shuffle_generator") is not None:
        check_generator_state(ts["shuffle_generator"], src, "training_state.shuffle_generator")
