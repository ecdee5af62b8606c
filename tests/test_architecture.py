"""The dependency rules of ARCHITECTURE.md, enforced by walking imports with `ast`.

* node/raft imports the standard library only, and none of its I/O, clock, thread or
  global-randomness modules: the core is sans-I/O and deterministic.
* cluster never imports node; supervisor never imports node (it spawns processes).
* No import cycles among the project's modules, and no module imports another
  module's private (`_name`) names (STYLE.md: "the cycle is the design telling you
  something"). The rules for both are in `import_graph` and `private_imports`.
* the KV API (requests, results, errors, enums) is defined once, in cluster/kv: no
  other module defines a class of the same name, and the client and the state
  machine hold the very same objects.
"""
from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import cluster.client
import cluster.kv
import node.statemachine.machine
import node.statemachine.query
import node.statemachine.txn

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("cluster", "node", "supervisor")
KV_PACKAGE = ROOT / "cluster" / "kv"
#: Names the node's copy of the KV API used before it moved to cluster/kv.
OLD_KV_NAMES = {"PutResult", "RangeResult", "DeleteResult", "TxnResult", "CompactResult", "LeaseGranted",
                "LeaseRevoked", "LeaseKeptAlive", "LeaseTimeToLiveResult", "LeaseList"}
#: Same name, another concept: node/storage's SnapshotCorrupt is a snapshot *file*
#: that fails its checks; the KV one is a state-machine snapshot stream that does.
SAME_NAME_OTHER_CONCEPT = {"SnapshotCorrupt"}

FORBIDDEN_IN_CORE = {"zmq", "socket", "time", "threading", "random", "os", "asyncio",
                     "subprocess", "select", "selectors", "multiprocessing", "msgpack",
                     "datetime", "io", "pathlib", "signal", "logging"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside the package
                continue
            found.append((node.lineno, node.module or ""))
    return found


def _py_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_core_imports_only_pure_standard_library() -> None:
    files = _py_files("node/raft")
    assert files, "node/raft has no modules"
    bad = []
    for path in files:
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN_IN_CORE:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            elif top not in sys.stdlib_module_names and top != "__future__":
                bad.append(f"{path.relative_to(ROOT)}:{line} imports non-stdlib {module}")
    assert not bad, "the Raft core must stay pure:\n" + "\n".join(bad)


def test_cluster_and_supervisor_never_import_node() -> None:
    bad = []
    for package in ("cluster", "supervisor"):
        for path in _py_files(package):
            for line, module in _imports(path):
                if module == "node" or module.startswith("node."):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, "dependency arrows broken:\n" + "\n".join(bad)


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The walker itself must be able to fail."""
    sample = tmp_path / "m.py"
    sample.write_text("import time\nfrom os import path\nfrom .x import y\n")
    assert [m for _, m in _imports(sample)] == ["time", "os"]


def _class_definitions(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(node.lineno, node.name) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def _kv_api_class_names() -> set[str]:
    """The classes of the KV API, and the names a second copy of them went by."""
    names = {name for name in cluster.kv.__all__ if isinstance(getattr(cluster.kv, name), type)}
    names |= {name.replace("Response", "Result") for name in names} | OLD_KV_NAMES
    return names - SAME_NAME_OTHER_CONCEPT


def _second_kv_definitions(paths: list[Path]) -> list[str]:
    forbidden = _kv_api_class_names()
    return [f"{path}:{line} defines {name}" for path in paths if KV_PACKAGE not in path.parents
            for line, name in _class_definitions(path) if name in forbidden]


def test_the_kv_api_is_defined_only_in_cluster_kv() -> None:
    """One definition of every request, result, error and enum: a copy elsewhere
    (the client's and the state machine's used to drift apart) fails here."""
    paths = [path for package in ("cluster", "node", "supervisor") for path in _py_files(package)]
    bad = _second_kv_definitions(paths)
    assert not bad, "the KV API is defined in cluster/kv only:\n" + "\n".join(bad)


def test_checker_catches_a_second_kv_definition(tmp_path: Path) -> None:
    """The class walker itself must be able to fail, on a current and an old name."""
    sample = tmp_path / "m.py"
    sample.write_text("class PutResponse:\n    pass\n\n\nclass Other:\n    class LeaseList:\n        pass\n")
    assert [name for _, name in _class_definitions(sample)] == ["PutResponse", "Other", "LeaseList"]
    assert [entry.rsplit(" ", 1)[1] for entry in _second_kv_definitions([sample])] == ["PutResponse", "LeaseList"]
    assert _second_kv_definitions([KV_PACKAGE / "requests.py"]) == []


def test_client_and_state_machine_hold_the_same_kv_objects() -> None:
    assert cluster.client.Put is node.statemachine.machine.Put is cluster.kv.Put
    assert cluster.client.Range is node.statemachine.query.Range is cluster.kv.Range
    assert cluster.client.RangeResponse is node.statemachine.query.RangeResponse is cluster.kv.RangeResponse
    assert node.statemachine.txn.is_read_only is node.statemachine.machine.is_read_only is cluster.kv.is_read_only
    assert cluster.client.encode_command is cluster.kv.encode_command
    assert node.statemachine.machine.decode_command is cluster.kv.decode_command


def test_core_type_checks_strictly() -> None:
    """STYLE.md §9: the core is fully typed; `mypy --strict node/raft` stays clean."""
    from mypy import api

    stdout, stderr, status = api.run(["--strict", "--no-incremental", "--hide-error-context",
                                      str(ROOT / "node" / "raft")])
    assert status == 0, f"mypy --strict node/raft failed:\n{stdout}{stderr}"


# -- import cycles and private names ---------------------------------------------------

Graph = dict[str, list[tuple[int, str]]]  # module -> (line, module it depends on)


def project_modules(root: Path, packages: Sequence[str] = PROJECT) -> dict[str, Path]:
    """Every module of `packages` under `root` by dotted name (a package by its own name)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _import_statements(name: str, path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names taken from it) for every import statement in the
    file, at any depth: module level, `if TYPE_CHECKING:`, inside functions. Relative
    imports are resolved against the module's package; `import a.b` takes no names."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module, [alias.name for alias in node.names]


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(modules: dict[str, Path]) -> Graph:
    """Which project module depends on which, by the import system's own rules.

    * `import a.b.c` and `from a.b.c import name` depend on `a.b.c`; `from a.b import c`
      depends on the submodule `a.b.c` when there is one, else on `a.b` (c is a name in it).
    * Importing `a.b.c` first runs `a/__init__` and `a/b/__init__`, so the importer
      depends on those packages too -- unless it is inside them: a package's `__init__`
      has already started before any of its submodules runs, so a submodule naming a
      sibling (`a.b.d` importing `a.b.c`) does not re-enter its package. That is why a
      package re-exporting its own submodules is no cycle, while a submodule importing
      a name from its own package's `__init__` (`from a.b import Name`) is one.
    * Every import statement counts, wherever it is: one inside a function only
      postpones the cycle to the first call, and one under `TYPE_CHECKING` is still
      two modules that cannot be understood (or type-checked) one without the other;
      a `typing.Protocol` on the consumer's side is the way out (cluster/watch.py).
    """
    graph: Graph = {}
    for name, path in modules.items():
        inside = set(_parents(name)) | ({name} if path.name == "__init__.py" else set())
        edges = []
        for line, module, names in _import_statements(name, path):
            targets = [f"{module}.{n}" if f"{module}.{n}" in modules else module for n in names] or [module]
            for target in targets:
                if target not in modules:
                    continue  # the standard library or a third-party package
                edges += [(line, package) for package in _parents(target)
                          if package in modules and package not in inside]
                edges.append((line, target))
        graph[name] = sorted(set(edge for edge in edges if edge[1] != name))
    return graph


def import_cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted:
    every module in one depends, through the others, on itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for _, target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for module in sorted(graph):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(cycles)


def describe_cycles(root: Path, modules: dict[str, Path], graph: Graph) -> list[str]:
    """Each cycle with the import lines that make it, for the failure message."""
    out = []
    for cycle in import_cycles(graph):
        out.append("cycle: " + " <-> ".join(cycle))
        out += [f"  {modules[m].relative_to(root)}:{line} imports {target}"
                for m in cycle for line, target in graph[m] if target in cycle]
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(modules: dict[str, Path], root: Path) -> list[str]:
    """`from x import _y` (and `import x._y`) anywhere: another module's private name.

    The one exception is a package's own private submodule (h11's style: small private
    modules behind the package's `__init__`): `_wire` may be imported by any module
    inside the package that holds it, never from outside it."""
    bad = []
    for name, path in modules.items():
        inside = set(_parents(name)) | ({name} if path.name == "__init__.py" else set())
        for line, module, names in _import_statements(name, path):
            parts = module.split(".")
            # `import a.b._c` takes the submodule _c from a.b (a top-level `_thread` is nobody's private name).
            taken = [(module, n) for n in names] or [(".".join(parts[:i]), parts[i]) for i in range(1, len(parts))]
            for owner, item in taken:
                if _is_private(item) and not (f"{owner}.{item}" in modules and owner in inside):
                    bad.append(f"{path.relative_to(root)}:{line} imports {item} from {owner}")
    return bad


def test_no_import_cycles() -> None:
    """No module of cluster/, node/, supervisor/ depends on itself through others.
    A dependency is any import statement (module level, function level, TYPE_CHECKING)
    of a project module, relative imports resolved, `from pkg import submodule` going to
    the submodule, plus the packages whose `__init__` that import runs first -- except
    the importer's own packages, which are already running. So a package re-exporting
    its submodules is not a cycle; a submodule taking a name from its own package's
    `__init__` is. (`import_graph` states the rule in full.)"""
    modules = project_modules(ROOT)
    cycles = describe_cycles(ROOT, modules, import_graph(modules))
    assert not cycles, "import cycles among the project's modules:\n" + "\n".join(cycles)


def test_no_module_imports_another_modules_private_names() -> None:
    bad = private_imports(project_modules(ROOT), ROOT)
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def _plant(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project_modules(root, ("pkg", "other"))


@pytest.mark.parametrize("files, cycles", [
    pytest.param({"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n",
                  "pkg/b.py": "def f():\n    from pkg.a import X\n"},
                 [["pkg.a", "pkg.b"]], id="a function-level import closes a cycle"),
    pytest.param({"pkg/__init__.py": "", "pkg/a.py": "from . import b\n",
                  "pkg/b.py": "from .c import y\n", "pkg/c.py": "from ..pkg.a import z\n"},
                 [["pkg.a", "pkg.b", "pkg.c"]], id="relative imports are resolved"),
    pytest.param({"pkg/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n",
                  "pkg/a.py": "from pkg import B\n"},
                 [["pkg", "pkg.a"]], id="a submodule importing a name from its own package"),
    pytest.param({"pkg/__init__.py": "from other.m import X\n", "pkg/a.py": "",
                  "other/__init__.py": "", "other/m.py": "import pkg.a\n"},
                 [["other.m", "pkg"]], id="importing a submodule from outside runs its package"),
    pytest.param({"pkg/__init__.py": "from pkg.a import A\nfrom .b import B\n", "pkg/a.py": "from pkg.b import B\n",
                  "pkg/b.py": "from pkg import c\n", "pkg/c.py": "import os\n",
                  "other/__init__.py": "", "other/m.py": "import pkg\nfrom pkg.a import A\n"},
                 [], id="a package re-exporting its submodules is no cycle"),
])
def test_cycle_checker_on_planted_samples(tmp_path: Path, files: dict[str, str], cycles: list[list[str]]) -> None:
    """The cycle checker itself must be able to fail, and must not cry wolf."""
    modules = _plant(tmp_path, files)
    graph = import_graph(modules)
    assert import_cycles(graph) == cycles
    assert bool(describe_cycles(tmp_path, modules, graph)) == bool(cycles)


def test_private_import_checker_on_planted_samples(tmp_path: Path) -> None:
    modules = _plant(tmp_path, {
        "pkg/__init__.py": "from ._wire import encode\nfrom . import _wire\n",
        "pkg/_wire.py": "def encode(): ...\n",
        "pkg/a.py": "from pkg import _wire\nfrom .b import _helper, public\nfrom __future__ import annotations\n",
        "pkg/b.py": "def g():\n    from pkg.a import _lock\nfrom pkg.a import __doc__\n",
        "other/__init__.py": "", "other/m.py": "from pkg import _wire\nimport pkg._wire\nimport _thread, os.path\n",
    })
    assert sorted(private_imports(modules, tmp_path)) == [
        "other/m.py:1 imports _wire from pkg",
        "other/m.py:2 imports _wire from pkg",
        "pkg/a.py:2 imports _helper from pkg.b",
        "pkg/b.py:2 imports _lock from pkg.a",
    ]
