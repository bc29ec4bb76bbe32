"""Fuzzing the model-file reader: whatever the bytes, the outcome is a correct load or a
ModelFileError raised by a deliberate check; never another exception type, a crash or a hang.

The mutators take a `chooser` so that the same code runs under hypothesis (which shrinks
failures) and, for longer, in a plain random loop in a subprocess (where a native crash shows as
a signal instead of killing pytest).
"""

import copy
import functools
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import time
import warnings
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import maasfin as mf
from maasfin.layers import Add, Dense, Dropout, Input
from maasfin.models import Model, Sequential, from_bytes
from maasfin.saving import ModelFileError

MEMBERS = ("config.json", "weights.safetensors", "optimizer.safetensors", "metadata.json")
HOSTILE_NAMES = (
    "../config.json",
    "/abs/weights.safetensors",
    "..\\evil",
    "config.json/",
    "dir/",
    "a" * 300,
    "config.json\x00.txt",
    "CONFIG.JSON",
    "weights.safetensors ",
    "model.pkl",
    "",
    "C:\\x",
    "é.json",
)


@functools.cache
def base_archives() -> tuple[bytes, ...]:
    """Two small valid model files: a trained Sequential (Adam state) and a functional model."""
    mf.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    seq = Sequential(
        [
            Dense(4, activation="relu", input_dim=3, name="h"),
            Dropout(0.2, seed=1, name="d"),
            Dense(1, activation="sigmoid", name="o"),
        ],
        name="s",
    )
    seq.compile("adam", "bce", metrics=["accuracy"])
    seq.fit(x, y, epochs=1, batch_size=8, verbose=0)
    i = Input(shape=(3,), name="i")
    out = Dense(1, name="f_o")(Add(name="f_add")([Dense(2, name="f_a")(i), Dense(2, name="f_b")(i)]))
    fun = Model(i, out, name="f")
    fun.compile(mf.optimizers.SGD(0.1, momentum=0.5), "mse")
    fun.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return seq.to_bytes(), fun.to_bytes(include_optimizer=False)


# -- choosers --------------------------------------------------------------------------------------
class RandomChooser:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)


class HypothesisChooser:
    def __init__(self, data):
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def bytes(self, n: int) -> bytes:
        return self.data.draw(st.binary(min_size=n, max_size=n))


def choice(c, seq):
    return seq[c.int(0, len(seq) - 1)]


# -- mutators --------------------------------------------------------------------------------------
INTERESTING = [
    0,
    1,
    -1,
    2,
    3,
    7,
    2**31 - 1,
    2**31,
    2**63 - 1,
    2**64,
    -(2**63),
    10**19,
    0.5,
    -0.0,
    1e-300,
    1e308,
    True,
    False,
    None,
    "",
    "x",
    "dense",
    "h",
    "o",
    "F32",
    "F64",
    "relu",
    "Dense",
    "InputLayer",
    "Sequential",
    "Functional",
    "maasfin.model",
    "../x",
    "\x00",
    "a" * 5000,
    [],
    {},
    [1, 2],
    [4],
    [3],
    {"class_name": "Dense", "config": {}},
    {"class_name": "os.system", "config": {"name": "x"}},
]


def random_json(c, depth=0):
    kind = c.int(0, 9 if depth < 3 else 6)
    if kind <= 6:
        return copy.deepcopy(choice(c, INTERESTING))  # a copy: mutations must not alter the table
    if kind == 7:
        return c.int(-(2**64), 2**64)
    if kind == 8:
        return [random_json(c, depth + 1) for _ in range(c.int(0, 3))]
    return {
        choice(c, ["name", "units", "shape", "config", "class_name", "layers", "x"]): random_json(c, depth + 1)
        for _ in range(c.int(0, 3))
    }


def mutate_leaf(c, doc):
    """Replaces, deletes or adds one field somewhere in a JSON document."""
    if not isinstance(doc, (dict, list)) or not doc or c.int(0, 4) == 0:
        return random_json(c)
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    k = choice(c, keys)
    action = c.int(0, 5)
    if action == 0:
        if isinstance(doc, dict):
            del doc[k]
        else:
            doc.pop(k)
    elif action == 1 and isinstance(doc, dict):
        doc[choice(c, ["extra", "name", "units", "seed", "rate", "input_shape", "trainable"])] = random_json(c)
    else:
        doc[k] = mutate_leaf(c, doc[k])
    return doc


def members_of(blob: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def pack(items, fix_hashes: bool, method=zipfile.ZIP_STORED) -> bytes:
    items = list(items)
    if fix_hashes:
        d = dict(items)
        try:
            meta = json.loads(d["metadata.json"])
            for name in ("weights.safetensors", "optimizer.safetensors"):
                if name in d and name in meta["sha256"]:
                    meta["sha256"][name] = hashlib.sha256(d[name]).hexdigest()
            items = [(n, json.dumps(meta).encode() if n == "metadata.json" else b) for n, b in items]
        except (KeyError, TypeError, ValueError):
            pass
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, data in items:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def safetensors_mutation(c, blob: bytes) -> bytes:
    n = int.from_bytes(blob[:8], "little")
    try:
        header = json.loads(blob[8 : 8 + n])
    except ValueError:
        return blob
    header = mutate_leaf(c, header)
    body = json.dumps(header).encode()
    size = len(body) if c.int(0, 3) else c.int(0, 2**64 - 1)
    return size.to_bytes(8, "little") + body + blob[8 + n :]


def mutate(c, blob: bytes) -> bytes:
    kind = c.int(0, 7)
    if kind == 0 and blob:  # bit flips anywhere
        raw = bytearray(blob)
        for _ in range(c.int(1, 8)):
            raw[c.int(0, len(raw) - 1)] ^= 1 << c.int(0, 7)
        return bytes(raw)
    if kind == 1 or len(blob) < 2:  # truncation
        return blob[: c.int(0, max(len(blob) - 1, 0))]
    try:
        m = members_of(blob)
    except Exception:  # already broken by an earlier mutation: break it further at the byte level
        return mutate(c, blob) if c.int(0, 1) else blob[: c.int(0, len(blob) - 1)]
    names = [n for n in MEMBERS if n in m]
    name = choice(c, names)
    fix = c.int(0, 3) > 0
    if kind == 2:  # a member replaced by random bytes
        m[name] = c.bytes(c.int(0, 300))
    elif kind == 3:  # a member replaced by random JSON
        m[name] = json.dumps(random_json(c)).encode()
    elif kind == 4:  # one field of a JSON member changed
        j = choice(c, ["config.json", "metadata.json"])
        m[j] = json.dumps(mutate_leaf(c, json.loads(m[j]))).encode()
    elif kind == 5:  # the header of a safetensors member changed
        s = choice(c, [n for n in names if n.endswith(".safetensors")])
        m[s] = safetensors_mutation(c, m[s])
    elif kind == 6:  # re-packed with hostile, duplicate, missing or renamed members
        items = list(m.items())
        op = c.int(0, 3)
        if op == 0:
            items.append((choice(c, HOSTILE_NAMES), c.bytes(c.int(0, 50))))
        elif op == 1:
            items.append(choice(c, items))
        elif op == 2:
            items.pop(c.int(0, len(items) - 1))
        else:
            k = c.int(0, len(items) - 1)
            items[k] = (choice(c, HOSTILE_NAMES + MEMBERS), items[k][1])
        method = choice(c, [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
        return pack(items, fix, method)
    else:  # declared sizes, CRCs or flags rewritten in the zip headers; or a compressible giant
        if c.int(0, 4) == 0:
            m[name] = b" " * c.int(1 << 20, 3 << 20)
            return pack(m.items(), fix, zipfile.ZIP_DEFLATED)
        raw = bytearray(pack(m.items(), fix, choice(c, [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])))
        positions = [i for i in range(len(raw) - 4) if raw[i : i + 4] in (b"PK\x03\x04", b"PK\x01\x02")]
        at = choice(c, positions)
        field = choice(c, [6, 8, 14, 18, 22, 24, 26, 28, 30, 42] if raw[at + 2] == 1 else [6, 8, 14, 18, 22, 26, 28])
        raw[at + field : at + field + 4] = c.int(0, 2**32 - 1).to_bytes(4, "little")
        return bytes(raw)
    return pack(m.items(), fix)


# -- the oracle ------------------------------------------------------------------------------------
def check(data: bytes) -> str:
    """'loaded' (and the model works) or 'rejected' (by a deliberate check). Anything else raises."""
    try:
        model = from_bytes(data)
    except ModelFileError as e:
        assert e.__cause__ is None, f"rejected only by the catch-all: {e!r} <- {e.__cause__!r}"
        assert str(e).startswith("model bytes: ")
        return "rejected"
    if model.built:
        xs = [np.zeros((2,) + s, np.float32) for s in model._input_shapes]
        p = model.predict(xs[0] if len(xs) == 1 else xs)
        assert p.shape[0] == 2 and p.dtype == np.float32
    return "loaded"


def fuzz_loop(seconds: float, seed: int) -> dict:
    """The long loop run in a subprocess by test_long_fuzz_loop_in_a_subprocess."""
    rng = random.Random(seed)
    c = RandomChooser(rng)
    counts = {"loaded": 0, "rejected": 0}
    bases = base_archives()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        blob = mutate(c, choice(c, bases))
        if c.int(0, 2) == 0:  # sometimes a second mutation on top of the first
            try:
                blob = mutate(c, blob)
            except Exception:  # the mutator could not parse what the first one broke: keep that
                pass
        counts[check(blob)] += 1
    return counts


# -- tests -----------------------------------------------------------------------------------------
FUZZ = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_base_archives_load():
    assert [check(b) for b in base_archives()] == ["loaded", "loaded"]


@FUZZ
@given(st.data())
def test_mutated_archives_load_or_raise_model_file_error(data):
    c = HypothesisChooser(data)
    blob = base_archives()[c.int(0, 1)]
    check(mutate(c, blob))


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_rejected(raw):
    assert check(raw) == "rejected"
    assert check(b"PK\x03\x04" + raw) == "rejected"


def test_long_fuzz_loop_in_a_subprocess():
    """A native crash (segfault in a decoder) would kill pytest; in a subprocess it is a signal."""
    here = os.path.dirname(os.path.abspath(__file__))
    script = (
        f"import sys; sys.path.insert(0, {here!r}); import test_saving_fuzz as f; "
        "import json; print(json.dumps(f.fuzz_loop(float(sys.argv[1]), int(sys.argv[2]))))"
    )
    proc = subprocess.run([sys.executable, "-c", script, "8", "20240611"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"fuzz loop died with {proc.returncode}:\n{proc.stderr[-3000:]}"
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts["rejected"] > 200 and counts["loaded"] > 0, counts
