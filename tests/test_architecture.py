"""The dependency rules of ARCHITECTURE.md, enforced by walking imports with `ast`.

* node/raft imports the standard library only, and none of its I/O, clock, thread or
  global-randomness modules: the core is sans-I/O and deterministic.
* cluster never imports node; supervisor never imports node (it spawns processes).
* the KV API (requests, results, errors, enums) is defined once, in cluster/kv: no
  other module defines a class of the same name, and the client and the state
  machine hold the very same objects.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import cluster.client
import cluster.kv
import node.statemachine.machine
import node.statemachine.query
import node.statemachine.txn

ROOT = Path(__file__).resolve().parents[1]
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
