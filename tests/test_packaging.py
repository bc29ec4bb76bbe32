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
    r = _run(
        _BLOCK
        + f"""
    import importlib.util
    importlib.util.find_spec = lambda name, package=None: None if name in ("fastapi", "orjson") else 1
    from maasfin.__main__ import main
    sys.exit(main(["serve", {str(tmp_path)!r}]))
    """
    )
    assert r.returncode == 2
    assert "pip install 'maasfin[serve]'" in r.stderr and "fastapi" in r.stderr


def test_create_app_without_server_dependencies_names_the_extra():
    r = _run(
        _BLOCK
        + """
    import maasfin.serving
    try:
        maasfin.serving.create_app
    except ModuleNotFoundError as e:
        print(e)
    """
    )
    assert r.returncode == 0, r.stderr
    assert "pip install 'maasfin[serve]'" in r.stdout


def test_the_bare_install_runs_the_demo(tmp_path):
    """`pip install .` without extras: a fresh venv with only the declared dependencies and the
    package's installed files (the extension included) runs `python -m maasfin demo`."""
    import os
    import pathlib
    import shutil

    import tomllib

    import maasfin
    from maasfin import _core

    root = pathlib.Path(__file__).resolve().parents[1]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", *deps], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    site = pathlib.Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    shutil.copytree(
        pathlib.Path(maasfin.__file__).parent,
        site / "maasfin",
        ignore=shutil.ignore_patterns("__pycache__"),
        dirs_exist_ok=True,
    )
    for lib in pathlib.Path(_core.__file__).parent.glob("*.so"):  # _core, _testing and the core library
        shutil.copy2(lib, site / "maasfin" / lib.name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run(
        [str(py), "-I", "-m", "maasfin", "demo", "--verbose", "0"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "AUC" in r.stdout or "auc" in r.stdout.lower(), r.stdout[-2000:]
    installed = subprocess.run(
        [str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    for extra in ("fastapi", "uvicorn", "h5py", "flask", "scikit-learn"):
        assert f"{extra}==" not in installed
