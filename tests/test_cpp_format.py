"""Every C++ file under cpp/ is formatted as .clang-format says, by the clang-format that the test
extra pins (other versions format some constructs differently). To fix a failure:

    clang-format -i $(find cpp -name '*.cpp' -o -name '*.hpp')
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPP_SUFFIXES = {".cpp", ".hpp", ".cc", ".h", ".hh", ".cxx", ".hxx", ".ipp", ".inl"}


def _pinned_version() -> str:
    pin = re.search(r'"clang-format==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin, "pyproject.toml's test extra must pin clang-format to an exact version"
    return pin.group(1)


def _clang_format() -> str:
    """The clang-format of this environment (the PyPI wheel's), else the first one on PATH."""
    scripts = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    exe = shutil.which("clang-format", path=os.pathsep.join(scripts)) or shutil.which("clang-format")
    if exe is None:
        pytest.fail("clang-format is not installed: pip install '.[test]'")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"clang-format version ([0-9.]+)", version)
    if found is None or found.group(1) != _pinned_version():
        pytest.fail(
            f"{exe} is {version.strip()!r}, the test extra pins clang-format=={_pinned_version()}: "
            f"pip install '.[test]'"
        )
    return exe


def _cpp_files() -> list[Path]:
    return sorted(p for p in (ROOT / "cpp").rglob("*") if p.is_file() and p.suffix in CPP_SUFFIXES)


def misformatted(files: list[Path], root: Path = ROOT) -> list[str]:
    """The files (relative to root) that clang-format would change, from one clang-format run."""
    names = [str(p.relative_to(root)) for p in files]
    run = subprocess.run(
        [_clang_format(), "--dry-run", "--Werror", "--style=file", *names], cwd=root, capture_output=True, text=True
    )
    bad = sorted({m.group(1) for m in re.finditer(r"^(.+?):\d+:\d+: (?:error|warning):", run.stderr, re.M)})
    assert bad or run.returncode == 0, f"clang-format failed: {run.stderr}"
    return bad


def test_every_cpp_file_is_clang_formatted():
    files = _cpp_files()
    assert (ROOT / ".clang-format").is_file()
    assert len(files) > 50, f"found only {len(files)} C++ files under cpp/"
    bad = misformatted(files)
    assert not bad, "not formatted as .clang-format says (run clang-format -i on them): " + ", ".join(bad)


def test_the_check_catches_a_misformatted_file(tmp_path):
    # A formatted file, then the same file with one statement misindented, next to a copy of the style.
    shutil.copy(ROOT / ".clang-format", tmp_path / ".clang-format")
    text = (ROOT / "cpp" / "src" / "kernels" / "dispatch.cpp").read_text()
    assert "\n    if (" in text
    (tmp_path / "good.cpp").write_text(text)
    (tmp_path / "bad.cpp").write_text(text.replace("\n    if (", "\n  if  (", 1))
    assert misformatted([tmp_path / "good.cpp", tmp_path / "bad.cpp"], tmp_path) == ["bad.cpp"]
