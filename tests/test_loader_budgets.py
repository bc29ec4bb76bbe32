"""Loaders stay within a memory budget: a file, hostile or not, loads within 4x the tensor bytes it
declares plus a fixed allowance, or is refused with a ModelFileError before the memory is
allocated. Each bomb below is a small file that cost gigabytes before its budget existed:

- HDF5 compression inside a Keras file (deflated chunks, or a dataset never written whose reads
  return its fill value): the HDF5 reader checks each dataset's declared size before reading it;
- a config.json of millions of tiny JSON values: counted before json.loads;
- an architecture far larger than the weights the file carries (a model saved unbuilt), or whose
  activations for a tile of rows are huge: checked on a graph that allocates nothing.

The memory tests run the load in a fresh process and read its peak RSS (VmHWM after resetting
it, or ru_maxrss), and the HDF5 reader's peak (RUSAGE_CHILDREN)."""

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import h5py
import numpy as np
import pytest

from maasfin import saving
from maasfin.layers import Dense, Input, RepeatVector
from maasfin.models import Model, Sequential, from_bytes, load_model
from maasfin.saving import ModelFileError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras")
MB = 1_000_000
ALLOWANCE = 200 * MB  # interpreter, libraries and scratch: what a load may use beyond 4x its tensors


# -- building the bombs ------------------------------------------------------------------------------
def _members(blob: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(members: dict, method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _fixture(name: str) -> bytes:
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def _h5(path: str, n: int, mode: str, base: bytes | None = None) -> bytes:
    """HDF5 bytes (a copy of `base` if given) plus a float32 dataset `path` of n elements that
    takes almost no room in the file: "fill" is never written, so reading it returns its fill
    value; "gzip" is written as deflated chunks of zeros."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        if base is not None:
            with h5py.File(io.BytesIO(base), "r") as src:
                for key in src:
                    src.copy(src[key], h5, name=key)
                for k, v in src.attrs.items():
                    h5.attrs[k] = v
        chunk = min(n, 1 << 20)
        if mode == "fill":
            h5.create_dataset(path, shape=(n,), dtype="f4", chunks=(chunk,), fillvalue=1.0)
        else:
            d = h5.create_dataset(path, shape=(n,), dtype="f4", chunks=(chunk,), compression="gzip", compression_opts=9)
            zeros = np.zeros(chunk, np.float32)
            for i in range(0, n, chunk):
                d[i : i + min(chunk, n - i)] = zeros[: min(chunk, n - i)]
    return buf.getvalue()


def keras_bomb(n: int = 250_000_000, mode: str = "fill") -> bytes:
    """seq.keras whose model.weights.h5 is replaced by one dataset of n floats (1 GB by default)."""
    m = _members(_fixture("seq.keras"))
    m["model.weights.h5"] = _h5("layers/dense/vars/0", n, mode)
    return _zip(m)


def legacy_bomb(n: int = 250_000_000) -> bytes:
    """seq.h5 (a legacy Keras file) with one more weight of n floats, never written."""
    return _h5("model_weights/extra/extra/w", n, "fill", base=_fixture("seq.h5"))


def weights_h5_bomb(n: int = 250_000_000) -> bytes:
    """A Keras .weights.h5 file for seq.keras's model with a first kernel of n floats."""
    return _h5("layers/dense/vars/0", n, "fill")


def _small_model():
    return Sequential([Dense(8, activation="relu", input_dim=4, name="dense"), Dense(1, name="out")], name="small")


def _with_hashes(m: dict) -> dict:
    meta = json.loads(m["metadata.json"])
    for name in ("weights.safetensors", "optimizer.safetensors"):
        if name in m:
            meta["sha256"][name] = hashlib.sha256(m[name]).hexdigest()
    return {**m, "metadata.json": json.dumps(meta).encode()}


def config_bomb(unit: bytes = b"[[[[[[[[]]]]]]]],", size: int = 16 << 20) -> bytes:
    """A .maas whose config.json is just under its 16 MiB limit, almost all of it nested empty
    lists in a layer's config (parsed, each list costs ~90 bytes: ~800 MB), stored uncompressed."""
    m = _members(_small_model().to_bytes())
    doc = json.loads(m["config.json"])
    doc["model"]["config"]["layers"][0]["config"]["junk"] = "JUNK"
    text = json.dumps(doc).encode()
    junk = (b"[" + unit * ((size - len(text)) // len(unit))).rstrip(b",") + b"]"
    m["config.json"] = text.replace(b'"JUNK"', junk)
    return _zip(_with_hashes(m), zipfile.ZIP_STORED)


def unbuilt_bomb(units=(20_000, 15_000)) -> bytes:
    """A model saved before it was built: no weights, and layers that need 300M parameters
    (1.2 GB, twice that with gradients) for a single input feature once data arrives."""
    return Sequential([Dense(u, name=f"d{i}") for i, u in enumerate(units)], name="lazy").to_bytes()


def activation_bomb(repeats: int = 10_000_000) -> bytes:
    """No weights at all, but 640M floats per sample out of RepeatVector: 2.5 GB for one row."""
    x = Input(shape=(64,), name="x")
    return Model(x, RepeatVector(repeats, name="rep")(x), name="wide").to_bytes()


def safetensors_header_bomb(n: int = 200_000) -> bytes:
    """A .weights.safetensors whose 14 MB header lists n empty tensors: 12 JSON values each."""
    header = {"__metadata__": {"format": "maasfin.weights", "format_version": "1", "layers": "[]"}}
    header.update({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n)})
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw


def _write(tmp_path, name: str, blob: bytes) -> str:
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(blob)
    return path


# -- each bomb is refused, naming the limit ------------------------------------------------------------
@pytest.mark.parametrize("mode", ["fill", "gzip"])
def test_keras_file_with_hdf5_compression_is_refused(tmp_path, mode):
    blob = keras_bomb(100_000_000 if mode == "gzip" else 250_000_000, mode)
    assert len(blob) < 20_000
    with pytest.raises(
        ModelFileError,
        match=r"model.weights.h5 layers/dense/vars/0 declares \d+ bytes of float32 "
        r"data, more than the \d+ left of its budget of \d+ bytes "
        r"\(LIMITS\['(ratio_floor|compression_ratio)'\]",
    ):
        load_model(_write(tmp_path, "bomb.keras", blob))


def test_legacy_h5_and_weights_h5_with_fill_values_are_refused(tmp_path):
    with pytest.raises(
        ModelFileError,
        match=r"HDF5 file model_weights/extra/extra/w declares 1000000000 bytes.*"
        r"LIMITS\['compression_ratio'\] 100 x the file's \d+ bytes",
    ):
        load_model(_write(tmp_path, "bomb.h5", legacy_bomb()))
    model = load_model(os.path.join(FIXTURES, "seq.keras"))
    before = model.get_weights()
    with pytest.raises(
        ModelFileError,
        match=r"weights file layers/dense/vars/0 declares 1000000000 bytes.*"
        r"LIMITS\['ratio_floor'\]",
    ):
        model.load_weights(_write(tmp_path, "bomb.weights.h5", weights_h5_bomb()))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_hdf5_budget_follows_the_limits(tmp_path, monkeypatch):
    # 4 MB of fill values in a file of a few KB: more than the 1 MiB floor and 100x the file.
    path = _write(tmp_path, "small.keras", keras_bomb(1_000_000))
    with pytest.raises(ModelFileError, match=r"declares 4000000 bytes"):
        load_model(path)
    monkeypatch.setitem(saving.LIMITS, "ratio_floor", 8 << 20)  # now allowed: the shape check refuses it
    with pytest.raises(ModelFileError, match=r"layers/dense holds 1 weights, layer 'hidden' has 2"):
        load_model(path)
    monkeypatch.setitem(saving.LIMITS, "model.weights.h5", 1 << 20)  # the overall cap still applies
    with pytest.raises(ModelFileError, match=r"the limit LIMITS\['model.weights.h5'\] of 1048576"):
        load_model(path)


def test_config_of_millions_of_tiny_values_is_refused_before_parsing(monkeypatch):
    blob = config_bomb()
    with pytest.raises(
        ModelFileError,
        match=r"config.json holds about \d+ JSON values, more than the limit of "
        r"1000000 \(LIMITS\['json_values'\]\)",
    ):
        from_bytes(blob)
    small = _small_model().to_bytes()
    monkeypatch.setitem(saving.LIMITS, "json_values", 20)
    with pytest.raises(ModelFileError, match=r"json holds about \d+ JSON values, more than the limit of 20"):
        from_bytes(small)


def test_json_value_count_ignores_strings():
    from maasfin.saving.file_format import json_values

    for text in [
        "[1,2,3]",
        '{"a":1,"b":[2,{"c":3}]}',
        '"a,b:[{"',
        r'["a\"],[", 1]',
        r'["a\\", 1, 2]',
        r'{"x\\\"y": [1, {"k": "v,:"}]}',
        "[[1], [2, 3]]",
        "7",
    ]:

        def count(x):
            if isinstance(x, list):
                return 1 + sum(count(v) for v in x)
            if isinstance(x, dict):
                return 1 + sum(1 + count(v) for v in x.values())
            return 1

        assert json_values(text.encode()) == count(json.loads(text)), text
    assert json_values(b"[]") == 2  # an empty container counts as if it held one value: a bound


def test_unbuilt_model_larger_than_its_allowance_is_refused(tmp_path, monkeypatch):
    blob = unbuilt_bomb()
    assert len(blob) < 2000
    with pytest.raises(
        ModelFileError,
        match=r"the model was saved unbuilt \(no weights\) and its layers need "
        r"1200220000 bytes of parameters for a single input feature, more than "
        r"the limit of 67108864 \(LIMITS\['unbuilt_weights'\]\)",
    ):
        from_bytes(blob)
    small = Sequential([Dense(3, name="h"), Dense(1, name="o")]).to_bytes()
    assert not from_bytes(small).built
    monkeypatch.setitem(saving.LIMITS, "unbuilt_weights", 16)
    with pytest.raises(ModelFileError, match=r"LIMITS\['unbuilt_weights'\]"):
        from_bytes(small)


def test_activations_beyond_their_budget_are_refused(monkeypatch):
    with pytest.raises(
        ModelFileError,
        match=r"the layers' outputs take 2560000256 bytes per sample, \d+ for 32 rows, "
        r"more than the activation budget of 268435456 bytes "
        r"\(LIMITS\['activation_memory'\], or twice the weights if more\)",
    ):
        from_bytes(activation_bomb())
    ok = activation_bomb(100)
    assert from_bytes(ok).output_shape == (None, 100, 64)
    monkeypatch.setitem(saving.LIMITS, "activation_memory", 1000)
    with pytest.raises(ModelFileError, match=r"activation budget of 1000 bytes"):
        from_bytes(ok)
    # Larger weights allow larger activations: 2x the weights (here 808 000 bytes, for 140 800).
    heavy = Sequential([Dense(1000, input_dim=100, name="a")])
    assert from_bytes(heavy.to_bytes()).built


def test_weights_safetensors_with_a_huge_header_is_refused(tmp_path):
    model = _small_model()
    with pytest.raises(
        ModelFileError,
        match=r"weights file header holds about \d+ JSON values, more than the "
        r"limit of 1000000",
    ):
        model.load_weights(_write(tmp_path, "bomb.weights.safetensors", safetensors_header_bomb()))


def test_core_refuses_an_arena_larger_than_allowed():
    from maasfin import _core

    g = _core.Graph()
    x = g.add_input([4], "x")
    node = g.add_layer(Dense(8, name="d")._make_core_named(), [x])
    with pytest.raises(ValueError, match=r"the model needs 40 parameters, more than the 39 allowed"):
        g.build(node, 0, 39)
    g2 = _core.Graph()
    g2.build(g2.add_layer(Dense(8, name="d")._make_core_named(), [g2.add_input([4], "x")]), 0, 40)
    assert g2.param_count == 40


def test_loaded_weights_are_views_of_the_file_not_copies(tmp_path):
    from maasfin.saving.archive import parse_safetensors, read_archive

    blob = Sequential([Dense(8, input_dim=4, name="dense")]).to_bytes()
    members = read_archive(
        blob,
        "m",
        ("config.json", "weights.safetensors", "metadata.json"),
        ("config.json", "weights.safetensors", "metadata.json"),
    )
    assert isinstance(members["weights.safetensors"], memoryview)  # stored: a view of the file
    weights, _ = parse_safetensors(members["weights.safetensors"], "m", "weights", 10)
    kernel = weights["dense/kernel"]
    assert kernel.shape == (4, 8) and not kernel.flags.owndata and not kernel.flags.writeable


# -- peak memory of a load, measured in a fresh process ---------------------------------------------------
_MEASURE = textwrap.dedent("""
    import json, resource, sys
    import h5py, numpy as np
    import maasfin
    from maasfin.models import load_model
    from maasfin.saving import ModelFileError

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))

    path, target = sys.argv[1], sys.argv[2]
    model = load_model(target) if target != "-" else None
    try:
        with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current RSS
            f.write("5")
        base = status("VmRSS")
    except OSError:
        base = status("VmHWM")
    out = {}
    try:
        if model is None:
            m = load_model(path)
            xs = [np.zeros((1,) + tuple(s), np.float32) for s in m._input_shapes] if m.built else None
            if xs is not None:
                m.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
        else:
            model.load_weights(path)
        out["outcome"] = "loaded"
    except ModelFileError as e:
        out["outcome"] = "refused: " + str(e)[:300]
    out["growth"] = max(0, status("VmHWM") - base)
    out["child"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps(out))
""")


def _peak(path: str, into: str = "-") -> dict:
    """Loads `path` (or load_weights it into the model of file `into`) in a fresh process; returns
    its outcome and peak RSS growth, and the HDF5 reader's peak RSS (0 when it did not run)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, path, into], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _declared(path: str) -> int:
    """The tensor bytes a file declares: float32 datasets of HDF5, tensors of safetensors."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] == b"PK\x03\x04":
        m = _members(raw)
        blob = m.get("weights.safetensors", b"") + m.get("optimizer.safetensors", b"")
        return len(m.get("model.weights.h5", b"")) + len(blob)
    return len(raw)


BOMBS = {
    "keras_fill.keras": lambda: keras_bomb(250_000_000, "fill"),
    "keras_gzip.keras": lambda: keras_bomb(100_000_000, "gzip"),
    "legacy.h5": legacy_bomb,
    "config.maas": config_bomb,
    "unbuilt.maas": unbuilt_bomb,
    "activations.maas": activation_bomb,
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bombs_are_refused_within_the_budget(tmp_path, name):
    path = _write(tmp_path, name, BOMBS[name]())
    r = _peak(path)
    assert r["outcome"].startswith("refused: "), r
    assert r["growth"] < 4 * _declared(path) + ALLOWANCE, r
    assert r["child"] < 4 * _declared(path) + ALLOWANCE, r


@pytest.mark.parametrize(
    "name, blob", [("bomb.weights.h5", weights_h5_bomb), ("bomb.weights.safetensors", safetensors_header_bomb)]
)
def test_load_weights_bombs_are_refused_within_the_budget(tmp_path, name, blob):
    path = _write(tmp_path, name, blob())
    r = _peak(path, into=os.path.join(FIXTURES, "seq.keras"))
    assert r["outcome"].startswith("refused: "), r
    assert r["growth"] < 4 * _declared(path) + ALLOWANCE and r["child"] < 4 * _declared(path) + ALLOWANCE, r


@pytest.mark.parametrize("suffix", [".maas", ".keras", ".h5", ".weights.safetensors", ".weights.h5"])
def test_a_normal_model_loads_within_four_times_its_weights(tmp_path, suffix):
    """A positive control: ~40 MB of Dense weights load (and predict a row) within 4x + allowance."""
    model = Sequential(
        [Dense(2000, activation="relu", input_dim=5000, name="wide"), Dense(1, name="out")], name="control"
    )
    path = str(tmp_path / f"control{suffix}")
    if suffix.startswith(".weights"):
        model.save_weights(path)
        into = str(tmp_path / "control.maas")
        model.save(into)
    else:
        model.save(path)
        into = "-"
    r = _peak(path, into)
    assert r["outcome"] == "loaded", r
    weights = 4 * (5000 * 2000 + 2000 + 2000 + 1)
    assert _declared(path) >= weights
    assert r["growth"] < 4 * weights + ALLOWANCE, r
    assert r["child"] < 4 * weights + ALLOWANCE, r
