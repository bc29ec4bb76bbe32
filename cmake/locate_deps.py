"""Print where the PyPI build requirements put oneDNN and Eigen, as a CMake list.

The wheels install into a data prefix (oneDNN) or a cmeel prefix (Eigen) that CMake's
default search does not reach. Reading each distribution's RECORD works both inside
pip's isolated build environment and in a plain virtualenv.
Output: <oneDNN include dir>;<libdnnl.so path>;<Eigen3Config.cmake dir>
"""
import importlib.metadata as md
import pathlib
import re
import sys


def pick(dist, ok):
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        sys.exit(f"locate_deps: the build requirement {dist!r} is not installed")
    hits = sorted(
        (pathlib.Path(d.locate_file(f)).resolve() for f in d.files or []
         if ok(pathlib.PurePosixPath(str(f)))),
        key=lambda p: len(p.name),
    )
    if not hits:
        sys.exit(f"locate_deps: {dist} has no matching file")
    return hits[0]


inc = pick("onednn-devel-cpu-gomp", lambda f: str(f).endswith("include/oneapi/dnnl/dnnl.hpp"))
lib = pick("onednn-cpu-gomp", lambda f: re.fullmatch(r"libdnnl\.so\.\d+", f.name) is not None)
eig = pick("cmeel-eigen", lambda f: f.name == "Eigen3Config.cmake")
print(f"{inc.parents[2]};{lib};{eig.parent}", end="")
