"""Large requests run chunk by chunk with small requests between the chunks, and still return
exactly the predictions of one call (the latency under load: benchmarks/bench_isolation.py)."""

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from serving_support import ServerThread, credit_frame, credit_model, put

import maasfin as mf
from maasfin.serving import create_app
from maasfin.serving.batching import Batcher
from maasfin.serving.config import ServingConfig
from maasfin.serving.tiling import predict_tiled

TIMEOUT = 60


def test_small_requests_run_between_the_chunks_of_large_ones():
    calls = []
    lock = threading.Lock()
    started = threading.Event()

    def predict(xs):
        with lock:
            calls.append(int(xs[0].shape[0]))
        started.set()
        if xs[0].shape[0] > 1:
            time.sleep(0.005)  # a chunk takes a while: the one-row requests arrive in the meantime
        return xs[0][:, :1] * 2

    async def main():
        with ThreadPoolExecutor(2) as pool:
            b = Batcher(predict, pool, max_batch_size=64, max_latency_ms=0.0, max_concurrency=2, chunk_rows=128)
            big_x = np.arange(2 * 1000, dtype=np.float32).reshape(1000, 2)
            other_x = -np.arange(2 * 300, dtype=np.float32).reshape(300, 2)
            big = asyncio.ensure_future(b.submit([big_x]))
            other = asyncio.ensure_future(b.submit([other_x]))
            while not started.is_set():
                await asyncio.sleep(0.001)
            smalls = []
            for i in range(20):
                smalls.append(await b.submit([np.full((1, 2), float(i), np.float32)]))
            out_big, out_other = await big, await other
            b.close()
            return big_x, out_big, other_x, out_other, smalls

    big_x, out_big, other_x, out_other, smalls = asyncio.run(main())
    assert np.array_equal(out_big, big_x[:, :1] * 2) and np.array_equal(out_other, other_x[:, :1] * 2)
    assert [s.tolist() for s in smalls] == [[[2.0 * i]] for i in range(20)]
    chunks = [c for c in calls if c > 1]
    assert sorted(chunks) == sorted([128] * 7 + [104] + [128, 128, 44])  # 1000 and 300 rows in 128-row chunks
    # the two large requests take turns, chunk by chunk, and one-row requests ran before the last chunk
    assert calls.index(44) < len(calls) - 1 - calls[::-1].index(128)
    assert calls.index(1) < len(calls) - 1 - calls[::-1].index(128)


def test_chunk_rows_must_be_a_multiple_of_the_tile():
    with pytest.raises(ValueError, match=r"chunk_rows must be a multiple of tile \(32\), got 100"):
        ServingConfig(repo=".", chunk_rows=100)
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer"):
        ServingConfig(repo=".", chunk_rows=0)


def test_a_large_request_returns_exactly_the_predictions(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "credit", 1, credit_model(seed=51))
    model = mf.models.load_model(repo / "credit/1/model.maas", compile=False)
    n = 20_007  # 4 chunks of 4096 rows, a partial chunk and a partial tile
    x = np.ascontiguousarray(credit_frame(n, seed=52).to_numpy(np.float32))
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input_layer",
                    "shape": [n, 5],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    with ServerThread(create_app(repo, poll_seconds=0, chunk_rows=4096)) as server:
        r = requests.post(
            server.url + "/v2/models/credit/infer",
            data=head + x.tobytes(),
            headers={"Inference-Header-Content-Length": str(len(head))},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text[:300]
        k = int(r.headers["Inference-Header-Content-Length"])
        out = json.loads(r.content[:k])["outputs"][0]
        y = np.frombuffer(r.content[k:], dtype="<f4").reshape(out["shape"])
        one = requests.post(
            server.url + "/v1/predict", json={"model_name": "credit", "input_data": x[:3].tolist()}, timeout=TIMEOUT
        )
    assert out["shape"] == [n, 1]
    assert np.array_equal(y, predict_tiled(model, [x]))  # bit for bit the predictions of one call
    full = n // 32 * 32
    assert np.array_equal(y[:full], model.predict(x[:full], batch_size=32))
    assert np.array_equal(np.asarray(one.json()["predictions"], np.float32), y[:3])
