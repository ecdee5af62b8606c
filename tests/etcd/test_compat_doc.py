"""docs/etcd-compatibility.md cannot drift from what it describes: its RPC table
lists exactly the RPCs of the generated service descriptors (cluster/etcdpb), its
etcdctl table names every command of the installed etcdctl, and every test file
either table cites exists. Parses the Markdown only; starts no cluster."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from google.protobuf.descriptor import FileDescriptor

from cluster.etcdpb import rpc_pb2, v3election_pb2, v3lock_pb2

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "etcd-compatibility.md"
TESTS = ROOT / "tests" / "etcd"
STATUSES = {"supported", "differs", "not supported"}


def table_rows(section: str) -> list[list[str]]:
    """The cells of the data rows of the first table under `## <section>`."""
    text = PAGE.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def descriptor_rpcs(*files: FileDescriptor) -> set[str]:
    return {f"{service.name}.{method.name}"
            for file in files for service in file.services_by_name.values() for method in service.methods}


def cited_test_files(rows: list[list[str]]) -> set[str]:
    return {name for row in rows for name in re.findall(r"test_\w+\.py", row[-1])}


def test_the_rpc_table_lists_exactly_the_generated_rpcs() -> None:
    rows = table_rows("RPCs")
    listed = [row[0].strip("`") for row in rows]
    assert len(listed) == len(set(listed)), "an RPC is listed twice"
    expected = descriptor_rpcs(rpc_pb2.DESCRIPTOR, v3lock_pb2.DESCRIPTOR, v3election_pb2.DESCRIPTOR)
    assert set(listed) == expected
    assert len(expected) == 5 + 1 + 5 + 5 + 7 + 16 + 2 + 5  # etcd 3.4: KV Watch Lease Cluster Maintenance Auth Lock Election


def test_every_row_has_a_status_and_a_difference_where_it_differs() -> None:
    for section in ("RPCs", "etcdctl commands"):
        for row in table_rows(section):
            assert row[1] in STATUSES, row
            if row[1] != "supported":
                assert row[2], f"{row[0]} {row[1]} without saying how"


def test_cited_test_files_exist() -> None:
    cited = cited_test_files(table_rows("RPCs")) | cited_test_files(table_rows("etcdctl commands"))
    assert cited
    missing = sorted(name for name in cited if not (TESTS / name).is_file())
    assert not missing


@pytest.mark.skipif(shutil.which("etcdctl") is None, reason="etcdctl is not installed")
def test_the_etcdctl_table_names_every_command_of_etcdctl() -> None:
    etcdctl = shutil.which("etcdctl")
    assert etcdctl
    help_text = subprocess.run([etcdctl, "--help"], capture_output=True, text=True, timeout=10,
                               env={**os.environ, "ETCDCTL_API": "3"}).stdout
    commands_block = help_text.split("COMMANDS:", 1)[1].split("OPTIONS:", 1)[0]
    commands = [re.split(r"\t+", line.strip())[0].split() for line in commands_block.splitlines() if line.strip()]
    assert len(commands) > 40
    cells = [row[0] for row in table_rows("etcdctl commands")]
    for words in commands:
        if len(words) == 1:
            found = any(f"`{words[0]}`" in cell for cell in cells)
        else:
            found = any(f"`{words[0]} " in cell and words[1] in re.findall(r"[a-z][a-z-]*", cell) for cell in cells)
        assert found, " ".join(words)
