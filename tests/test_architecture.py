"""The dependency rules of ARCHITECTURE.md, enforced by walking imports with `ast`.

* node/raft imports the standard library only, and none of its I/O, clock, thread or
  global-randomness modules: the core is sans-I/O and deterministic.
* cluster never imports node; supervisor never imports node (it spawns processes).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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


def test_core_type_checks_strictly() -> None:
    """STYLE.md §9: the core is fully typed; `mypy --strict node/raft` stays clean."""
    from mypy import api

    stdout, stderr, status = api.run(["--strict", "--no-incremental", "--hide-error-context",
                                      str(ROOT / "node" / "raft")])
    assert status == 0, f"mypy --strict node/raft failed:\n{stdout}{stderr}"
