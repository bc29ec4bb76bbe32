"""The serving package's structure: model privates, imports, cycles, file sizes and docstrings.

Serving uses only the public model interface (`model.signature`, `prepare_inputs`,
`predict_arrays`, `drift_reference`) and the public names of a few maasfin modules; these checks
read the source with `ast`, so they hold for code paths no other test reaches.
"""

import ast
import pathlib

import pytest

SERVING = pathlib.Path(__file__).resolve().parents[1] / "python" / "maasfin" / "serving"
# maasfin modules serving may import from, and the names of maasfin._core it may use
ALLOWED = {
    "maasfin",
    "maasfin.models",
    "maasfin.data",
    "maasfin.signature",
    "maasfin.explain",
    "maasfin.explain.monitoring",
    "maasfin.saving",
    "maasfin.config",
    "maasfin.version",
    "maasfin._core",
}
CORE_NAMES = {"first_nonfinite"}
MAX_LINES = 500


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_name(path: pathlib.Path, root: pathlib.Path = SERVING) -> str:
    parts = ["maasfin", "serving", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _generated(path: pathlib.Path) -> bool:
    """protoc's output (protocols/oip/*_pb2*.py, scripts/gen_grpc.sh): not ours to shape."""
    return path.stem.endswith(("_pb2", "_pb2_grpc"))


def _sources(root: pathlib.Path = SERVING) -> dict:
    return {
        _module_name(p, root): (p, ast.parse(p.read_text(), str(p)))
        for p in sorted(root.rglob("*.py"))
        if not _generated(p)
    }


def _imports(tree: ast.Module, module: str, is_package: bool):
    """(imported module, name or None, node) for every import statement, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None, node
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            for a in node.names:
                yield base, a.name, node


def private_uses(tree: ast.Module) -> list[str]:
    """Every `<expr>._name` whose receiver is not `self`/`cls`, and every getattr/hasattr/setattr
    with a constant `_name`: reads of another object's (such as a model's) private state."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def bad_imports(tree: ast.Module, module: str, is_package: bool) -> list[str]:
    """Imports of private names, and of maasfin modules outside serving other than ALLOWED."""
    found = []
    for target, name, node in _imports(tree, module, is_package):
        where = f"line {node.lineno}: {ast.unparse(node)}"
        if not (target == "maasfin" or target.startswith("maasfin.")):
            continue
        full = f"{target}.{name}" if name is not None and target == "maasfin" else target
        if full.startswith("maasfin.serving"):
            if name is not None and _private(name):
                found.append(where)
            continue
        if full not in ALLOWED:
            found.append(where)
        elif name is not None and _private(name) and full != "maasfin._core":
            found.append(where)
    return found


def core_uses(tree: ast.Module) -> list[str]:
    """Uses of maasfin._core other than its ALLOWED names."""
    return [
        f"line {n.lineno}: {ast.unparse(n)}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "_core"
        and n.attr not in CORE_NAMES
    ]


def import_cycles(sources: dict) -> list[list[str]]:
    """Cycles among the serving modules (function-local imports included)."""
    graph = {}
    for module, (path, tree) in sources.items():
        deps = set()
        for target, name, _ in _imports(tree, module, path.name == "__init__.py"):
            for cand in ((f"{target}.{name}" if name else None), target):
                if cand in sources and cand != module:
                    deps.add(cand)
                    break
        graph[module] = deps
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


SOURCES = _sources()


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_serving_reads_no_private_attribute(module):
    path, tree = SOURCES[module]
    assert private_uses(tree) == [], f"{path}: private attributes of other objects"


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_serving_imports_only_public_names_of_allowed_modules(module):
    path, tree = SOURCES[module]
    assert bad_imports(tree, module, path.name == "__init__.py") == []
    assert core_uses(tree) == []


def test_serving_has_no_import_cycle():
    assert import_cycles(SOURCES) == []


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_serving_files_are_short_and_open_with_a_summary_line(module):
    path, tree = SOURCES[module]
    assert len(path.read_text().splitlines()) < MAX_LINES
    doc = ast.get_docstring(tree, clean=False)
    assert doc, f"{path} has no module docstring"
    lines = doc.splitlines()
    assert lines[0].strip() and (len(lines) == 1 or not lines[1].strip()), (
        f"{path}: the docstring's first line is not a one-line summary: {lines[:2]}"
    )


def test_the_checks_catch_what_they_are_for(tmp_path):
    """Each check fails on a sample of what it forbids (and passes `self._x`)."""
    code = (
        "import maasfin.layers\nfrom maasfin.training import TrainingMixin\nfrom maasfin.data import _is_frame\n"
        "from maasfin import _core, data\n"
        "def f(self, model):\n    self._ok = 1\n    _core.encode(1)\n    _core.first_nonfinite(1)\n"
        "    return model._graph, getattr(model, '_drift_reference', None), data.to_float_array\n"
    )
    tree = ast.parse(code)
    assert [u.split(": ")[1] for u in private_uses(tree)] == [
        "model._graph",
        "getattr(model, '_drift_reference', None)",
    ]
    assert len(bad_imports(tree, "maasfin.serving.x", False)) == 3
    assert core_uses(tree) == ["line 7: _core.encode"]
    pkg = tmp_path / "serving"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""A package."""\n')
    (pkg / "a.py").write_text('"""A."""\nfrom maasfin.serving import b\n')
    (pkg / "b.py").write_text('"""B."""\ndef f():\n    from maasfin.serving.a import g\n')
    assert import_cycles(_sources(pkg)) == [["maasfin.serving.a", "maasfin.serving.b", "maasfin.serving.a"]]
