"""Mutation fuzz of estimator files: 1,200 mutated ONNX members (hashes made to match, so the graph
checks are reached) and whole archives; loading gives a model or a ModelFileError, nothing else."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402

import maasfin as mf  # noqa: E402
from maasfin.saving import ModelFileError, from_bytes, save_estimator  # noqa: E402


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    df = mf.datasets.load_credit().iloc[:300]
    y = (df.pop("Status") == "bad").astype(int).to_numpy()
    x = df[mf.datasets.CREDIT_NUMERIC_COLUMNS].fillna(0)
    est = GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(x, y)
    path = tmp_path_factory.mktemp("fuzz") / "m.maas"
    save_estimator(est, path, x)
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}, path.read_bytes()


def _archive(members: dict) -> bytes:
    meta = json.loads(members["metadata.json"])
    meta["sha256"]["model.onnx"] = hashlib.sha256(members["model.onnx"]).hexdigest()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in {**members, "metadata.json": json.dumps(meta).encode()}.items():
            z.writestr(k, v)
    return buf.getvalue()


def _mutate(blob: bytes, rng) -> bytes:
    b = bytearray(blob)
    op = rng.integers(4)
    if op == 0:  # flip bytes
        for _ in range(rng.integers(1, 8)):
            i = rng.integers(len(b))
            b[i] = rng.integers(256)
    elif op == 1:  # truncate
        del b[rng.integers(len(b)) :]
    elif op == 2:  # delete a span
        i = rng.integers(len(b))
        del b[i : i + rng.integers(1, 64)]
    else:  # duplicate a span elsewhere
        i, j = rng.integers(len(b), size=2)
        b[j:j] = b[i : i + rng.integers(1, 64)]
    return bytes(b)


def _outcome(data: bytes) -> str:
    try:
        model = from_bytes(data)
    except ModelFileError:
        return "refused"
    model.predict(np.zeros((2, len(model.feature_names)), np.float32))  # a graph that loads must also run
    return "loaded"


def test_mutated_onnx_members_give_only_model_file_errors(members):
    m, _ = members
    rng = np.random.default_rng(0)
    outcomes = [_outcome(_archive({**m, "model.onnx": _mutate(m["model.onnx"], rng)})) for _ in range(800)]
    assert outcomes.count("refused") > 400  # most mutations break the graph; each is refused cleanly


def test_mutated_archives_give_only_model_file_errors(members):
    _, data = members
    rng = np.random.default_rng(1)
    outcomes = [_outcome(_mutate(data, rng)) for _ in range(400)]
    assert outcomes.count("refused") > 300
