"""Bytes in and out of `.maas` files: the zip archive (members read under size, count,
compression-ratio and name limits; stored members are views of the file's bytes, not copies),
safetensors blobs (validated completely, then read as views of the blob), and atomic writes
(temporary file, fsync, os.replace, fsync of the directory: a crash leaves the old file or the
new one, never a torn one)."""

from __future__ import annotations

import io
import math
import os
import re
import stat
import tempfile
import zipfile
import zlib

import numpy as np

from maasfin.saving.file_format import (
    LIMITS,
    MAX_MEMBERS,
    MAX_RANK,
    MiB,
    ModelFileError,
    check_int,
    check_list,
    check_object,
    check_str,
    fail,
    loads,
    type_name,
)


def encode_safetensors(tensors: dict, metadata: dict[str, str]) -> bytes:
    import safetensors.numpy

    return safetensors.numpy.save(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, metadata=metadata
    )


def parse_safetensors(blob, src: str, what: str, max_tensors: int):
    """The float32 tensors of a safetensors blob (bytes or a memoryview), as read-only views of
    it, after validating it completely: header size, strict JSON, float32 only, shapes, and
    offsets that tile the data exactly."""
    view = memoryview(blob).cast("B")
    if len(view) < 8:
        raise fail(src, f"{what} is truncated ({len(view)} bytes)")
    n = int.from_bytes(view[:8], "little")
    if n < 2 or n > LIMITS["safetensors_header"] or 8 + n > len(view):
        raise fail(src, f"{what} has an invalid header length {n} for a member of {len(view)} bytes")
    header = loads(view[8 : 8 + n], src, f"{what} header")
    if not isinstance(header, dict):
        raise fail(src, f"{what} header must be an object, got {type_name(header)}")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise fail(src, f"{what} __metadata__ must map strings to strings")
    if len(header) > max_tensors:
        raise fail(src, f"{what} holds {len(header)} tensors, more than the {max_tensors} expected")
    data_len = len(view) - 8 - n
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
            raise fail(
                src,
                f"{what} tensor {name!r} starts at byte {begin}, expected {cursor} "
                "(tensors must tile the data without gaps or overlaps)",
            )
        cursor = end
    if cursor != data_len:
        raise fail(src, f"{what} has {data_len - cursor} bytes after its last tensor")
    # Views of the blob, not copies: loading costs the file's bytes once, not three times. A
    # tensor whose floats are not aligned (a file from another writer) is copied.
    out = {}
    for name, e in header.items():
        begin, end = (8 + n + o for o in e["data_offsets"])
        if begin == end:
            out[name] = np.zeros(e["shape"], np.float32)
            continue
        a = np.frombuffer(view, dtype="<f4", count=(end - begin) // 4, offset=begin).reshape(e["shape"])
        out[name] = a if a.flags.aligned else a.copy()
    return out, meta


# -- archives ------------------------------------------------------------------------------------
_DATE = (1980, 1, 1, 0, 0, 0)
_ALIGN_EXTRA = 0xD935  # the zip extra field that pads a member's data to alignment (as Android's zipalign)


def write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    if info.compress_type == zipfile.ZIP_STORED:  # 64-byte aligned data: the reader's float views are aligned
        start = zf.fp.tell() + 30 + len(name.encode("utf-8")) + 4
        info.extra = _ALIGN_EXTRA.to_bytes(2, "little") + (-start % 64).to_bytes(2, "little") + bytes(-start % 64)
    zf.writestr(info, data)


def write_archive(f, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(f, "w") as zf:
        for name, data in members.items():
            write_member(zf, name, data)


def _unsafe_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or "\x00" in name or bool(re.match(r"^[A-Za-z]:", name))


def _stored_view(data: bytes, info: zipfile.ZipInfo, src: str) -> memoryview | None:
    """A stored member as a read-only view of the archive's bytes (its CRC checked), so that a
    model's weights are held once; None when the member is not plainly stored (read it instead)."""
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        return None
    h = info.header_offset
    local = data[h : h + 30]
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise fail(src, f"member {info.filename!r} is corrupt: bad local file header")
    start = h + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    if start + info.file_size > len(data):
        raise fail(src, f"member {info.filename!r} is corrupt: it ends after the end of the file")
    view = memoryview(data)[start : start + info.file_size]
    if zlib.crc32(view) != info.CRC:
        raise fail(src, f"member {info.filename!r} is corrupt: Bad CRC-32 for file {info.filename!r}")
    return view.toreadonly()


def read_archive(data: bytes, src: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
    """The members of a zip archive, read defensively: only `allowed` names, each at most once,
    stored or deflated, unencrypted, each read with a size cap and a compression-ratio cap.
    Stored members are memoryviews of `data`, deflated ones bytes."""
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
            if name.lower().endswith((".pkl", ".pickle", ".joblib", ".pt", ".pth")):
                raise fail(src, f"holds a pickle {name!r}; pickles run code when loaded and are refused")
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
        stored = _stored_view(data, info, src)
        if stored is not None:
            total += len(stored)
            if total > LIMITS["total"]:
                raise fail(src, f"members hold more than the limit of {LIMITS['total']} bytes in total")
            out[name] = stored
            continue
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
                    if (
                        info.compress_type == zipfile.ZIP_DEFLATED
                        and len(buf) > LIMITS["ratio_floor"]
                        and len(buf) > LIMITS["compression_ratio"] * max(info.compress_size, 1)
                    ):
                        raise fail(
                            src, f"member {name!r} expands more than {LIMITS['compression_ratio']}:1 (a zip bomb?)"
                        )
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
