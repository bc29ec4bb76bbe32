"""Bytes in and out of `.maas` files: the zip archive (members read under size, count,
compression-ratio and name limits), safetensors blobs (validated completely before the
safetensors library sees them), and atomic writes (temporary file, fsync, os.replace, fsync of
the directory: a crash leaves the old file or the new one, never a torn one)."""
from __future__ import annotations

import io
import math
import os
import re
import stat
import tempfile
import zipfile

import numpy as np

from maasfin.saving.file_format import (LIMITS, MAX_MEMBERS, MAX_RANK, MiB, ModelFileError, fail, check_int, check_list, loads,
                                 check_object, check_str, type_name)

def encode_safetensors(tensors: dict, metadata: dict[str, str]) -> bytes:
    import safetensors.numpy
    return safetensors.numpy.save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
                                  metadata=metadata)


def parse_safetensors(blob: bytes, src: str, what: str, max_tensors: int):
    """Validates a safetensors blob completely before handing it to the safetensors library:
    header size, strict JSON, float32 only, shapes, and offsets that tile the data exactly."""
    if len(blob) < 8:
        raise fail(src, f"{what} is truncated ({len(blob)} bytes)")
    n = int.from_bytes(blob[:8], "little")
    if n < 2 or n > LIMITS["safetensors_header"] or 8 + n > len(blob):
        raise fail(src, f"{what} has an invalid header length {n} for a member of {len(blob)} bytes")
    header = loads(blob[8:8 + n], src, f"{what} header")
    if not isinstance(header, dict):
        raise fail(src, f"{what} header must be an object, got {type_name(header)}")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise fail(src, f"{what} __metadata__ must map strings to strings")
    if len(header) > max_tensors:
        raise fail(src, f"{what} holds {len(header)} tensors, more than the {max_tensors} expected")
    data_len = len(blob) - 8 - n
    spans = []
    for name, e in header.items():
        where = f"{what} tensor {name!r}"
        check_str(name, src, f"{what} tensor name", 2048)
        check_object(e, src, where, ("dtype", "shape", "data_offsets"))
        if e["dtype"] != "F32":
            raise fail(src, f"{where} has dtype {e['dtype']!r}; only F32 (float32) is allowed")
        shape = check_list(e["shape"], src, f"{where} shape", MAX_RANK)
        for i, d in enumerate(shape):
            check_int(d, src, f"{where} shape[{i}]", 0, 2**40)
        offs = check_list(e["data_offsets"], src, f"{where} data_offsets", 2)
        if len(offs) != 2:
            raise fail(src, f"{where} data_offsets must be [begin, end]")
        begin, end = (check_int(o, src, f"{where} data_offsets", 0, data_len) for o in offs)
        if end - begin != 4 * math.prod(shape):
            raise fail(src, f"{where} spans {end - begin} bytes but shape {shape} needs {4 * math.prod(shape)}")
        spans.append((begin, end, name))
    cursor = 0
    for begin, end, name in sorted(spans):
        if begin == end:
            continue
        if begin != cursor:
            raise fail(src, f"{what} tensor {name!r} starts at byte {begin}, expected {cursor} "
                             "(tensors must tile the data without gaps or overlaps)")
        cursor = end
    if cursor != data_len:
        raise fail(src, f"{what} has {data_len - cursor} bytes after its last tensor")
    try:
        import safetensors.numpy
        arrays = safetensors.numpy.load(bytes(blob))
    except Exception as e:  # the library's own checks, after ours
        raise fail(src, f"{what} could not be decoded: {e}") from None
    out = {}
    for name, e in header.items():
        a = arrays.get(name)
        if a is None or a.dtype != np.float32 or list(a.shape) != e["shape"]:
            raise fail(src, f"{what} tensor {name!r} decoded inconsistently with its header")
        out[name] = np.array(a, dtype=np.float32, copy=True, order="C")
    return out, meta


# -- archives ------------------------------------------------------------------------------------
_DATE = (1980, 1, 1, 0, 0, 0)


def write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def write_archive(f, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(f, "w") as zf:
        for name, data in members.items():
            write_member(zf, name, data)


def _unsafe_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return (name.startswith(("/", "\\")) or ".." in parts or "\x00" in name
            or bool(re.match(r"^[A-Za-z]:", name)))


def read_archive(data: bytes, src: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict[str, bytes]:
    """The members of a zip archive, read defensively: only `allowed` names, each at most once,
    stored or deflated, unencrypted, each read with a size cap and a compression-ratio cap."""
    if len(data) > LIMITS["archive"]:
        raise fail(src, f"is {len(data)} bytes, more than the limit of {LIMITS['archive']}")
    if len(data) < 22 or data[:4] != b"PK\x03\x04":
        raise fail(src, "is not a maasfin model file (not a zip archive)")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception as e:  # BadZipFile, struct/zlib/Unicode errors on hostile directories, ...
        raise fail(src, f"is not a valid zip archive (truncated or corrupt: {e})") from None
    if len(infos) > MAX_MEMBERS:
        raise fail(src, f"has {len(infos)} members; a model file has at most {len(allowed)}")
    seen: set[str] = set()
    declared = 0
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            raise fail(src, f"has a member with an unsafe name {name!r} (absolute path or '..')")
        if name in seen:
            raise fail(src, f"has a duplicate member {name!r}")
        seen.add(name)
        if name not in allowed:
            if name == "model.weights.h5":
                raise fail(src, "is a Keras .keras archive, not a .maas file; load it with load_model('<path>.keras')")
            raise fail(src, f"has an unexpected member {name!r}; allowed members: {', '.join(allowed)}")
        if info.flag_bits & 0x1:
            raise fail(src, f"member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise fail(src, f"member {name!r} uses unsupported compression method {info.compress_type}")
        if info.file_size > LIMITS[name]:
            raise fail(src, f"member {name!r} declares {info.file_size} bytes, more than the limit of {LIMITS[name]}")
        declared += info.file_size
    missing = [n for n in required if n not in seen]
    if missing:
        raise fail(src, f"is missing member(s) {missing}")
    if declared > LIMITS["total"]:
        raise fail(src, f"members declare {declared} bytes in total, more than the limit of {LIMITS['total']}")
    out, total = {}, 0
    for info in infos:
        name, limit = info.filename, LIMITS[info.filename]
        buf = bytearray()
        try:
            with zf.open(info) as f:
                while True:  # never trust the header: read with a cap, and watch the ratio
                    chunk = f.read(min(MiB, limit + 1 - len(buf)))
                    if not chunk:
                        break
                    buf += chunk
                    if len(buf) > limit:
                        raise fail(src, f"member {name!r} is larger than the limit of {limit} bytes")
                    if (info.compress_type == zipfile.ZIP_DEFLATED and len(buf) > LIMITS["ratio_floor"]
                            and len(buf) > LIMITS["compression_ratio"] * max(info.compress_size, 1)):
                        raise fail(src, f"member {name!r} expands more than {LIMITS['compression_ratio']}:1 "
                                         "(a zip bomb?)")
        except ModelFileError:
            raise
        except Exception as e:  # CRC mismatch, bad local header, zlib error, truncation
            raise fail(src, f"member {name!r} is corrupt: {e}") from None
        if len(buf) != info.file_size:
            raise fail(src, f"member {name!r} holds {len(buf)} bytes but its header says {info.file_size}")
        total += len(buf)
        if total > LIMITS["total"]:
            raise fail(src, f"members hold more than the limit of {LIMITS['total']} bytes in total")
        out[name] = bytes(buf)
    return out


# -- atomic writes -------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def atomic_write(path, write) -> None:
    """Calls `write(file)` on a temporary file next to `path`, then fsyncs it and renames it onto
    `path` (os.replace) and fsyncs the directory: readers see the old file or the new one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to '{path}': it is a directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~UMASK)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def read_file(path, src: str) -> bytes:
    """The file's bytes, read once (later checks see one consistent snapshot). Non-blocking open
    and fstat first, so a FIFO or device is refused instead of hanging or streaming forever."""
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise fail(src, "is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        if st.st_size > LIMITS["archive"]:
            raise fail(src, f"is {st.st_size} bytes, more than the limit of {LIMITS['archive']}")
        data = f.read(LIMITS["archive"] + 1)
    if len(data) > LIMITS["archive"]:
        raise fail(src, f"is more than the limit of {LIMITS['archive']} bytes")
    return data
