"""`chaos --drop` / `--check` refuse a cluster whose config does not enable fault
injection, with a message that says how to turn it on (supervisor/chaos.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cluster.discovery import ClusterState, Layout
from supervisor.chaos import require_fault_injection
from supervisor.configgen import prepare_config
from supervisor.control import ControlError


def state_for(tmp_path: Path, fault_injection: bool) -> ClusterState:
    layout = Layout(tmp_path / "data")
    spec = prepare_config(layout, 3, fault_injection=fault_injection)
    return ClusterState(spec.cluster_id, str(layout.config), str(layout.root), 1, 0.0)


def test_a_cluster_without_the_switch_is_refused_with_the_way_to_enable_it(tmp_path: Path) -> None:
    with pytest.raises(ControlError) as refused:
        require_fault_injection(state_for(tmp_path, False), "chaos --drop")
    message = str(refused.value)
    assert "chaos --drop" in message and "[faults] injection = true" in message
    assert "python -m supervisor up --fault-injection" in message


def test_a_cluster_with_the_switch_passes(tmp_path: Path) -> None:
    require_fault_injection(state_for(tmp_path, True), "chaos --check")


def test_an_unreadable_config_is_a_clear_error(tmp_path: Path) -> None:
    state = ClusterState("c", str(tmp_path / "missing.toml"), str(tmp_path), 1, 0.0)
    with pytest.raises(ControlError, match="cannot read the cluster's config"):
        require_fault_injection(state, "chaos --drop")
