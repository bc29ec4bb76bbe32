"""Style is checked, not debated: ruff's lint rules and formatter (pyproject.toml [tool.ruff]) hold everywhere."""

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PATHS = ["python", "tests", "benchmarks"]


def _ruff(*args):
    exe = shutil.which("ruff") or str(pathlib.Path(sys.executable).with_name("ruff"))
    return subprocess.run([exe, *args, *PATHS], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_is_clean():
    r = _ruff("check", "--no-cache", "--output-format", "concise")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def test_ruff_format_is_applied():
    r = _ruff("format", "--no-cache", "--check")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
