"""Packaging: `import maasfin` stays light, and the server's dependencies are an extra."""
from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ("pandas", "fastapi", "uvicorn", "h5py", "tqdm", "starlette", "prometheus_client", "orjson", "flask")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_import_maasfin_leaves_heavy_modules_out():
    r = _run(f"""
        import sys
        import maasfin, maasfin.layers, maasfin.models, maasfin.utils, maasfin.callbacks, maasfin.serving
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_dataframe_is_recognised_once_pandas_is_imported():
    r = _run("""
        import sys, numpy as np
        import maasfin as mf
        from maasfin.layers import Dense
        import pandas as pd
        m = mf.Sequential([Dense(1, input_dim=2)])
        df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
        m.compile(optimizer="sgd", loss="mse")
        m.fit(df, np.zeros(2), epochs=1, verbose=0)
        print(m.feature_names)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['a', 'b']"


_BLOCK = """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("fastapi", "uvicorn", "prometheus_client", "orjson", "starlette"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Block())
"""


def test_serve_without_server_dependencies_names_the_extra(tmp_path):
    r = _run(_BLOCK + f"""
    import importlib.util
    importlib.util.find_spec = lambda name, package=None: None if name in ("fastapi", "orjson") else 1
    from maasfin.__main__ import main
    sys.exit(main(["serve", {str(tmp_path)!r}]))
    """)
    assert r.returncode == 2
    assert "pip install 'maasfin[serve]'" in r.stderr and "fastapi" in r.stderr


def test_create_app_without_server_dependencies_names_the_extra():
    r = _run(_BLOCK + """
    import maasfin.serving
    try:
        maasfin.serving.create_app
    except ModuleNotFoundError as e:
        print(e)
    """)
    assert r.returncode == 0, r.stderr
    assert "pip install 'maasfin[serve]'" in r.stdout
