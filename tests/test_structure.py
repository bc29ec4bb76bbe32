"""The package's shape: imports point one way, no private names cross modules, files stay small."""

import ast
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "python" / "maasfin"
MAX_LINES = 500


def _module_name(path):
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _is_package(name):
    return MODULES[name].name == "__init__.py"


def _resolve(name, node):
    """The absolute module an ImportFrom names (relative imports resolved against `name`)."""
    if node.level == 0:
        return node.module or ""
    base = name.split(".") if _is_package(name) else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(target):
    """The longest prefix of `target` that is a module of the package (or the compiled core)."""
    parts = target.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES or candidate in ("maasfin._core", "maasfin._testing"):
            return candidate
        parts.pop()
    return None


def _imports(name):
    """(imported module, imported names, line) for every import in module `name`."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, [], node.lineno, alias.asname))
        elif isinstance(node, ast.ImportFrom):
            found.append((_resolve(name, node), [a.name for a in node.names], node.lineno, None))
    return tree, found


def _graph():
    edges = {name: set() for name in MODULES}
    for name in MODULES:
        _, found = _imports(name)
        for target, names, _, _ in found:
            if not target.startswith("maasfin"):
                continue
            for imported in names or [None]:
                full = f"{target}.{imported}" if imported else target
                mod = _known(full)
                if mod and mod in MODULES and mod != name:
                    edges[name].add(mod)
                    # importing a.b.c runs a/__init__ and a/b/__init__ first (the root and the
                    # importer's own packages are already being imported)
                    for pkg in _ancestor_packages(mod) - _ancestor_packages(name) - {"maasfin"}:
                        edges[name].add(pkg)
    return edges


def _cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _ancestor_packages(name):
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_imports_form_no_cycle():
    # A package's face (__init__) may import its own submodules; a submodule importing its
    # package's face would close a loop, which the check below reports like any other.
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _private_uses(name):
    tree, found = _imports(name)
    bad = []
    module_aliases = {}
    for target, names, line, asname in found:
        if not target.startswith("maasfin"):
            continue
        for imported in names:
            full = f"{target}.{imported}"
            if _known(full) == full:
                module_aliases[imported] = full
            if (
                imported.startswith("_")
                and not imported.startswith("__")
                and full
                not in (
                    "maasfin._core",
                    "maasfin._testing",
                )
            ):
                # a module's own package may hand it private names only if they are a submodule
                if _known(full) != full:
                    bad.append(f"{name}:{line} imports {target}.{imported}")
            if imported.startswith("_") and _known(full) == full and full not in ("maasfin._core",):
                bad.append(f"{name}:{line} imports private module {full}")
        if not names:
            module_aliases[asname or target.split(".")[0]] = target if asname else target.split(".")[0]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            owner = module_aliases[node.value.id]
            if owner != name and f"{owner}.{node.attr}" != "maasfin._core":
                bad.append(f"{name}:{node.lineno} uses {owner}.{node.attr}")
    return bad


def test_no_module_imports_another_modules_private_names():
    bad = [b for name in MODULES for b in _private_uses(name)]
    assert bad == [], "private names used across modules:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small_and_says_what_it_is(name):
    path = MODULES[name]
    text = path.read_text()
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT.parent)} has {lines} lines (limit {MAX_LINES})"
    doc = ast.get_docstring(ast.parse(text), clean=False)
    assert doc, f"{path.relative_to(ROOT.parent)} opens without a docstring"
    first = doc.strip().splitlines()[0]
    assert first.strip(), f"{path.relative_to(ROOT.parent)}: empty first docstring line"


def test_function_local_imports_are_only_for_optional_dependencies():
    # Heavy or optional third-party packages are imported where used; maasfin's own modules
    # are imported at the top, so the import graph above is the whole truth.
    allowed_local = {"maasfin._testing"}
    bad = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom):
                    target = _resolve(name, node)
                elif isinstance(node, ast.Import):
                    target = node.names[0].name
                else:
                    continue
                if target.startswith("maasfin") and target not in allowed_local and not _lazy_ok(name, target):
                    bad.append(f"{name}:{node.lineno} imports {target} inside {func.name}()")
    assert bad == [], "function-local imports of maasfin modules:\n" + "\n".join(sorted(set(bad)))


# Command-line entry points load a subcommand's modules only when it runs, so `maasfin --help`
# works without the [serve] extra and `import maasfin` stays light.
LAZY = {
    ("maasfin.__main__", "maasfin.demo"),
    ("maasfin.__main__", "maasfin.serving.cli"),
}


def _lazy_ok(name, target):
    if (name, target) in LAZY:
        return True
    if name == "maasfin.serving.cli" and target.startswith("maasfin.serving."):
        return True
    # A package face's __getattr__ may import its own submodules lazily.
    return _is_package(name) and target.startswith(name + ".")
