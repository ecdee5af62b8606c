"""Config generation: N members on 127.0.0.1, free or fixed ports, reused across `up`s."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cluster.discovery import Layout
from cluster.spec import load_spec, parse_spec
from supervisor.configgen import ConfigConflict, generate_spec, member_ports, prepare_config


@pytest.mark.parametrize("size", [1, 2, 3, 7, 11])
def test_any_size_gets_distinct_loopback_ports(size: int) -> None:
    spec = generate_spec(size)
    assert spec.ids == tuple(range(1, size + 1))
    addresses = [a for m in spec.members for a in (m.peer, m.client)]
    assert len(set(addresses)) == 2 * size
    assert all(a.startswith("tcp://127.0.0.1:") for a in addresses)


def test_generated_spec_round_trips_through_toml(tmp_path: Path) -> None:
    spec = generate_spec(5)
    path = tmp_path / "c.toml"
    path.write_text(spec.to_toml())
    loaded = load_spec(path)
    assert loaded.members == spec.members and loaded.cluster_id == spec.cluster_id
    assert loaded.timing == load_spec("cluster-3").timing  # timing comes from the shipped config
    assert loaded.data_dir == "node-{id}"


def test_base_port_gives_the_shipped_scheme() -> None:
    assert member_ports(3, 7100) == [(7101, 7201, 7301, 7401, 7501), (7102, 7202, 7302, 7402, 7502),
                                     (7103, 7203, 7303, 7403, 7503)]
    spec = generate_spec(3, base_port=7100)
    assert [m.client for m in spec.members] == [f"tcp://127.0.0.1:{p}" for p in (7201, 7202, 7203)]
    assert spec.members == load_spec("cluster-3").members  # the shipped scheme, etcd faces included


def test_free_ports_give_each_member_four_distinct_faces() -> None:
    spec = generate_spec(3)
    addresses = [a.rsplit(":", 1)[1] for m in spec.members for a in (m.peer, m.client, m.grpc, m.gateway)]
    assert len(set(addresses)) == 12
    assert all(m.grpc.startswith("http://127.0.0.1:") and m.gateway.startswith("http://127.0.0.1:")
               for m in spec.members)


@pytest.mark.parametrize("size, base", [(0, None), (100, None), (3, 80), (3, 65500), (3, 65300)])
def test_out_of_range_sizes_and_ports_are_refused(size: int, base: int | None) -> None:
    with pytest.raises(ValueError):
        member_ports(size, base)


def test_a_second_up_reuses_the_config(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    first = prepare_config(layout, 3)
    assert layout.config.is_file()
    again = prepare_config(layout, None)
    assert again.cluster_id == first.cluster_id and again.members == first.members
    assert prepare_config(layout, 3).members == first.members


def test_a_different_size_on_existing_data_is_a_conflict(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    prepare_config(layout, 3)
    with pytest.raises(ConfigConflict, match="3-node cluster"):
        prepare_config(layout, 5)


def test_an_explicit_config_is_copied_with_local_data_dirs(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    spec = prepare_config(layout, None, config="cluster-5")
    assert len(spec.members) == 5 and spec.data_dir == "node-{id}"
    assert parse_spec(tomllib.loads(layout.config.read_text())).cluster_id == "jangada-5"
    with pytest.raises(ConfigConflict):
        prepare_config(layout, 3, config="cluster-3")


def test_fault_injection_is_off_unless_up_asks_for_it(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    assert not prepare_config(layout, 3).faults.injection
    on = prepare_config(layout, None, fault_injection=True)  # the existing config, switched on
    assert on.faults.injection and "injection = true" in layout.config.read_text()
    assert prepare_config(layout, None).faults.injection  # a later `up` keeps what the config says
    other = Layout(tmp_path / "copied")
    assert prepare_config(other, None, config="cluster-3", fault_injection=True).faults.injection
