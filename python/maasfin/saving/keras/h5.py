"""Keras HDF5 read in a sandboxed child process, and where each Keras weight lives in a file."""

from __future__ import annotations

import re

import numpy as np

from maasfin.saving import archive, file_format
from maasfin.saving.file_format import LIMITS, fail


def keras_snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: how Keras names a layer's group in model.weights.h5."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def config_get(d, key):
    return d.get(key) if isinstance(d, dict) else None


# The HDF5 C library is not hardened against hostile files (a few flipped bits can crash it), so
# HDF5 is never parsed in this process. A child (`python -I`, memory and CPU limits, a timeout)
# walks the file, following hard links only, and sends back every float32 dataset under the
# requested groups as safetensors, with an index of groups, the attributes maasfin needs, refused
# links and skipped datasets. A crash of the child is a ModelFileError here, not a dead server.
# HDF5 compresses inside the file (deflated chunks, fill values of datasets never written), so a
# tiny file can declare gigabytes: each dataset's declared size is checked against what is left of
# the budget before it is read, and the child writes each dataset out as it reads it.
_CHILD = r"""
import io, json, math, sys
def fail(code, msg):
    sys.stderr.write(msg[:2000]); sys.stderr.flush(); sys.exit(code)
mem, seconds, budget = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
prefixes = [p for p in sys.argv[4].split(",") if p]
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
except Exception:
    pass
try:
    import h5py, numpy as np
except ImportError as e:
    fail(2, "MAASFIN-IMPORT " + str(e))
WANT = ("model_config", "training_config", "keras_version", "backend", "weight_names", "layer_names", "name")
def value(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, str):
        return v
    if isinstance(v, np.ndarray) and (v.dtype.kind in "OSU" or v.size == 0):
        return [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in v.reshape(-1).tolist()]
    return None
index = {"groups": {}, "links": {}, "skipped": {}}
datasets, state = [], {"objects": 0, "bytes": 0}
def walk(group, path, depth):
    if depth > 32:
        fail(3, "groups are nested more than 32 levels deep")
    children = []
    for name in group:
        state["objects"] += 1
        if state["objects"] > 100000:
            fail(3, "holds more than 100000 objects")
        child = name if not path else path + "/" + name
        children.append(name)
        if not path and prefixes and name not in prefixes:
            continue
        link = group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            index["links"][child] = type(link).__name__
            continue
        obj = group[name]
        if isinstance(obj, h5py.Group):
            walk(obj, child, depth + 1)
        elif isinstance(obj, h5py.Dataset):
            if obj.is_virtual or obj.external:
                index["skipped"][child] = "refers to data outside the file"
            elif obj.dtype != np.float32:
                index["skipped"][child] = "has dtype %s; only float32 is read" % obj.dtype
            else:
                nbytes = 4 * math.prod(int(d) for d in obj.shape)  # declared: checked before reading
                if nbytes > budget - state["bytes"]:
                    fail(4, "%s %d %d" % (child, nbytes, budget - state["bytes"]))
                state["bytes"] += nbytes
                datasets.append((child, obj))
    attrs = {}
    for k in WANT:
        if k in group.attrs:
            v = value(group.attrs[k])
            if v is not None:
                attrs[k] = v
    index["groups"][path] = {"children": children, "attrs": attrs}
try:
    f = h5py.File(io.BytesIO(sys.stdin.buffer.read()), "r")
except Exception as e:
    fail(3, "is not a readable HDF5 file (%s)" % e)
try:
    walk(f, "", 0)
except Exception as e:
    fail(3, "could not be read as HDF5 (%s: %s)" % (type(e).__name__, e))
header, offset = {"__metadata__": {"index": json.dumps(index)}}, 0
for name, obj in datasets:
    n = 4 * math.prod(int(d) for d in obj.shape)
    header[name] = {"dtype": "F32", "shape": [int(d) for d in obj.shape], "data_offsets": [offset, offset + n]}
    offset += n
head = json.dumps(header).encode("utf-8")
head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned
out = sys.stdout.buffer
out.write(len(head).to_bytes(8, "little") + head)
try:
    for name, obj in datasets:  # safetensors, one dataset in memory at a time
        a = np.ascontiguousarray(obj[()], dtype="<f4")
        if a.shape != obj.shape:
            fail(3, "dataset %s was read with shape %s, not %s" % (name, a.shape, obj.shape))
        out.write(a.reshape(-1).view(np.uint8).data)
        del a
    out.flush()
except Exception as e:
    fail(3, "could not be read as HDF5 (%s: %s)" % (type(e).__name__, e))
"""


def hdf5_budget(size: int) -> tuple[int, str]:
    """The float32 bytes HDF5 data from a file of `size` bytes may declare, and why: compression may
    expand it LIMITS['compression_ratio'] times (at least to LIMITS['ratio_floor']), within
    LIMITS['model.weights.h5']."""
    ratio, floor, cap = LIMITS["compression_ratio"], LIMITS["ratio_floor"], LIMITS["model.weights.h5"]
    if cap <= max(floor, ratio * size):
        return cap, f"the limit LIMITS['model.weights.h5'] of {cap}"
    if ratio * size >= floor:
        return ratio * size, f"LIMITS['compression_ratio'] {ratio} x the file's {size} bytes"
    return floor, f"LIMITS['ratio_floor'] {floor}, the least any HDF5 data may declare"


def extract_h5(data, src: str, what: str, prefixes: tuple[str, ...], file_size: int | None = None):
    """(tensors by HDF5 path, index) of an HDF5 blob, read by the sandboxed child. The float32 data
    it may declare is bounded by the size of the file it came from (a .keras archive may inflate
    it first): `file_size`, by default the blob's."""
    import subprocess
    import sys

    budget, why = hdf5_budget(len(data) if file_size is None else file_size)
    seconds = int(LIMITS["hdf5_seconds"])
    mem = int(LIMITS["hdf5_memory"]) + 3 * len(data) + budget
    env = {k: v for k, v in __import__("os").environ.items() if k in ("PATH", "LD_LIBRARY_PATH", "HOME", "LANG")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD, str(mem), str(seconds), str(budget), ",".join(prefixes)],
            input=data,
            capture_output=True,
            timeout=2 * seconds + 10,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise fail(src, f"{what}: the HDF5 reader did not finish within {2 * seconds + 10} s") from None
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode < 0:
        raise fail(
            src,
            f"{what}: the HDF5 reader crashed on this file (signal {-proc.returncode}); the file is corrupt or hostile",
        )
    if proc.returncode == 2 and err.startswith("MAASFIN-IMPORT"):
        raise ImportError("loading Keras .keras/.h5 files needs h5py: pip install 'maasfin[keras]'")
    if proc.returncode == 3:
        raise fail(src, f"{what} {err}")
    if proc.returncode == 4:
        path, declared, left = err.rsplit(" ", 2)
        raise fail(
            src,
            f"{what} {path} declares {declared} bytes of float32 data, more than the {left} left of "
            f"its budget of {budget} bytes ({why}): HDF5 compression or fill values inflate it",
        )
    if proc.returncode != 0:
        raise fail(src, f"{what}: the HDF5 reader failed (exit status {proc.returncode}): {err[-300:]}")
    tensors, meta = archive.parse_safetensors(proc.stdout, src, f"{what} (as read)", 1_000_000)
    index = file_format.loads(meta.get("index", "").encode("utf-8"), src, f"{what} index")
    file_format.check_object(index, src, f"{what} index", ("groups", "links", "skipped"))
    return tensors, index


class H5:
    """The extracted view of an HDF5 file: groups with children and attributes, float32 tensors."""

    def __init__(self, tensors: dict, index: dict, src: str, what: str):
        self.tensors, self.index, self.src, self.what = tensors, index, src, what

    def group(self, path: str) -> dict:
        g = self.index["groups"].get(path)
        if not isinstance(g, dict):
            self._missing(path)
        return g

    def attrs(self, path: str) -> dict:
        a = self.group(path).get("attrs")
        return a if isinstance(a, dict) else {}

    def dataset(self, path: str, shape: tuple) -> np.ndarray:
        a = self.tensors.get(path)
        if a is None:
            self._missing(path)
        if tuple(a.shape) != tuple(shape):
            raise fail(
                self.src, f"{self.what} {path} has shape {tuple(a.shape)}, the architecture needs {tuple(shape)}"
            )
        return a

    def _missing(self, path: str):
        if path in self.index["links"]:
            raise fail(
                self.src, f"{self.what} {path} is a {self.index['links'][path]}; only plain HDF5 objects are read"
            )
        if path in self.index["skipped"]:
            raise fail(self.src, f"{self.what} {path} {self.index['skipped'][path]}")
        raise fail(self.src, f"{self.what} has no {path}")


def _group_specs(specs) -> dict[str, list]:
    by_layer: dict[str, list] = {}
    for key, shape in specs:
        lname, _, _ = key.partition("/")  # weight names may hold '/', Keras layer names never do
        by_layer.setdefault(lname, []).append((key, shape))
    return by_layer


def keras_paths(model_cfg) -> dict[str, tuple[str, dict]]:
    """Layer name -> (its group in model.weights.h5 ("layers/dense_1"), its Keras entry): Keras
    names the groups by class, in the order of model.layers (which excludes the InputLayer in a
    Sequential model)."""
    cfg, counts, paths = model_cfg["config"], {}, {}
    for e in cfg["layers"]:
        if model_cfg["class_name"] == "Sequential" and e["class_name"] == "InputLayer":
            continue
        base = keras_snake(e["class_name"])
        n = counts.get(base, 0)
        counts[base] = n + 1
        paths[e["config"]["name"]] = (f"layers/{base}" if n == 0 else f"layers/{base}_{n}", e)
    return paths


RECURRENT = ("SimpleRNN", "LSTM", "GRU")
# MultiHeadAttention keeps its weights in four sublayers, in this (Keras get_weights) order.
_MHA_GROUPS = ("query_dense", "key_dense", "value_dense", "output_dense")


def _vars(h5: H5, group: str, src: str) -> list[str]:
    """The datasets of one Keras variable group, "<group>/vars/0", "/1", ... in order."""
    path = f"{group}/vars"
    stored = [str(c) for c in h5.group(path).get("children", [])]
    if sorted(stored) != sorted(str(i) for i in range(len(stored))):
        raise fail(src, f"model.weights.h5 {path} holds {sorted(stored)}, not variables 0..{len(stored) - 1}")
    return [f"{path}/{i}" for i in range(len(stored))]


def _var_paths(h5: H5, group: str, entry: dict, src: str) -> list[str]:
    """A layer's datasets in model.weights.h5, in Keras's get_weights order (maasfin's order too)."""
    kind = entry.get("class_name")
    if kind in RECURRENT:
        return _vars(h5, f"{group}/cell", src)
    if kind == "Bidirectional":
        inner = entry["config"]["layer"]
        return _var_paths(h5, f"{group}/forward_layer", inner, src) + _var_paths(
            h5, f"{group}/backward_layer", inner, src
        )
    if kind == "TimeDistributed":
        return _var_paths(h5, f"{group}/layer", entry["config"]["layer"], src)
    if kind == "MultiHeadAttention":
        return [p for sub in _MHA_GROUPS for p in _vars(h5, f"{group}/{sub}", src)]
    if kind == "Normalization":  # an adapted Normalization: mean, variance, then Keras's unused int count
        return _vars(h5, group, src)[:2]
    return _vars(h5, group, src)


def _config_state(entry, items, src: str):
    """Weights maasfin keeps as arrays but Keras keeps in the layer's config, or None: a
    Discretization's bin_boundaries (Keras has no variable for them)."""
    if config_get(entry, "class_name") != "Discretization" or len(items) != 1:
        return None
    key, shape = items[0]
    bounds = config_get(config_get(entry, "config"), "bin_boundaries")
    try:
        a = np.asarray(bounds, dtype=np.float32)
    except (TypeError, ValueError):
        raise fail(src, f"Keras layer {key.partition('/')[0]!r} (Discretization) has invalid bin_boundaries") from None
    if a.shape != tuple(shape) or not np.all(np.isfinite(a)):
        raise fail(
            src,
            f"Keras layer {key.partition('/')[0]!r} (Discretization) has bin_boundaries of shape "
            f"{a.shape}, the layer needs {tuple(shape)}",
        )
    return {key: a}


def weights_from_keras_h5(h5: H5, paths: dict[str, tuple[str, dict]], src: str):
    def resolve(specs) -> dict:
        out = {}
        for lname, items in _group_specs(specs).items():
            state = _config_state(paths.get(lname, (None, None))[1], items, src)
            if state is not None:
                out.update(state)
                continue
            if lname not in paths:
                raise fail(src, f"layer '{lname}' has no weights in model.weights.h5")
            group, entry = paths[lname]
            stored = _var_paths(h5, group, entry, src)
            if len(stored) != len(items):
                raise fail(
                    src, f"model.weights.h5 {group} holds {len(stored)} weights, layer '{lname}' has {len(items)}"
                )
            for path, (key, shape) in zip(stored, items):
                out[key] = h5.dataset(path, shape)
        return out

    return resolve


def weights_from_legacy_h5(h5: H5, src: str, entries: dict | None = None):
    def resolve(specs) -> dict:
        out = {}
        for lname, items in _group_specs(specs).items():
            state = _config_state((entries or {}).get(lname), items, src)
            if state is not None:
                out.update(state)
                continue
            names = h5.attrs(f"model_weights/{lname}").get("weight_names", [])
            if (
                isinstance(names, list)
                and len(names) == len(items) + 1
                and str(names[-1]).endswith("/count")
                and len(items) == 2
                and str(items[0][0]).endswith("/mean")
            ):
                names = names[:-1]  # an adapted Normalization's count, which maasfin does not keep
            if (
                not isinstance(names, list)
                or len(names) != len(items)
                or not all(isinstance(n, str) and ".." not in n.split("/") for n in names)
            ):
                raise fail(
                    src,
                    f"model_weights/{lname} lists {len(names) if isinstance(names, list) else '?'} "
                    f"weights, the layer has {len(items)}",
                )
            for (key, shape), wname in zip(items, names):
                out[key] = h5.dataset(f"model_weights/{lname}/{wname}".replace("//", "/"), shape)
        return out

    return resolve


# -- compile config --------------------------------------------------------------------------------
