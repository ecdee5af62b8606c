"""The --netns plan, its commands and the partition rules, without root: pure."""
from __future__ import annotations

from pathlib import Path

import pytest

from cluster.discovery import Layout
from supervisor import netns
from supervisor.__main__ import main
from supervisor.configgen import ConfigConflict, generate_spec, prepare_config
from supervisor.partitions import NetworkFaults, cut_command, isolate_script

IFNAMSIZ = 15  # the kernel's longest interface name


def test_names_fit_the_kernel_and_differ_between_data_directories(tmp_path: Path) -> None:
    a = netns.plan_for(tmp_path / "a", list(range(1, 100)))
    b = netns.plan_for(tmp_path / "b", [1, 2, 3])
    names = [a.bridge, *(a.host_veth(i) for i in a.ids), *(a.node_veth(i) for i in a.ids)]
    assert max(len(n) for n in names) <= IFNAMSIZ
    assert len(set(names)) == len(names)
    assert a.bridge != b.bridge and a.namespace(1) != b.namespace(1) and a.subnet != b.subnet
    assert all(n.startswith(netns.PREFIX) for n in names)


def test_the_host_has_dot_one_and_node_n_dot_n_plus_one_in_one_private_slash_24(tmp_path: Path) -> None:
    plan = netns.plan_for(tmp_path, [1, 2, 3])
    first, second, third = (int(x) for x in plan.subnet.split("."))
    assert first == 10 and 100 <= second < 228 and 0 <= third < 256
    assert plan.host_address == f"{plan.subnet}.1"
    assert plan.hosts() == {1: f"{plan.subnet}.2", 2: f"{plan.subnet}.3", 3: f"{plan.subnet}.4"}
    assert netns.plan_for(tmp_path, [1, 2, 3]) == plan  # the same directory: the same plan


def test_ids_outside_the_subnet_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1..250"):
        netns.plan_for(tmp_path, [0, 1])


def test_the_record_round_trips_and_names_everything_down_removes(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert netns.load(layout) is None
    plan = netns.plan_for(tmp_path, [1, 2])
    netns.save(layout, plan)
    assert netns.load(layout) == plan
    text = (tmp_path / netns.RECORD).read_text()
    for name in (plan.bridge, plan.namespace(1), plan.namespace(2), plan.host_veth(1), plan.host_veth(2)):
        assert f'"{name}"' in text
    assert netns.node_prefix(layout, 2)[-3:] == ["netns", "exec", plan.namespace(2)]
    assert netns.node_prefix(layout, 7) == []  # not in the plan: runs where the supervisor is


def test_each_node_gets_a_namespace_a_veth_on_the_bridge_and_its_address(tmp_path: Path) -> None:
    plan = netns.plan_for(tmp_path, [1, 2])
    assert netns.bridge_commands(plan)[1] == ["ip", "addr", "add", f"{plan.subnet}.1/24", "dev", plan.bridge]
    commands = netns.node_commands(plan, 2)
    assert commands[0] == ["ip", "netns", "add", plan.namespace(2)]
    assert ["ip", "link", "set", plan.host_veth(2), "master", plan.bridge] in commands
    assert ["ip", "-n", plan.namespace(2), "addr", "add", f"{plan.subnet}.3/24", "dev", plan.node_veth(2)] \
        in commands
    # every command names only this plan's devices and namespaces
    for argv in commands:
        assert any(plan.tag in word for word in argv)


def test_a_netns_config_puts_every_member_on_its_namespace_address(tmp_path: Path) -> None:
    plan = netns.plan_for(tmp_path, [1, 2, 3])
    spec = prepare_config(Layout(tmp_path), 3, hosts=plan.hosts())
    assert [m.peer for m in spec.members] == [f"tcp://{plan.address(i)}:{7100 + i}" for i in (1, 2, 3)]
    assert [m.metrics for m in spec.members] == [f"http://{plan.address(i)}:{7500 + i}" for i in (1, 2, 3)]
    assert prepare_config(Layout(tmp_path), 3, hosts=plan.hosts()) == spec  # reused as it is


def test_a_loopback_config_is_not_silently_moved_into_namespaces(tmp_path: Path) -> None:
    prepare_config(Layout(tmp_path), 3)
    with pytest.raises(ConfigConflict, match="namespace addresses"):
        prepare_config(Layout(tmp_path), 3, hosts=netns.plan_for(tmp_path, [1, 2, 3]).hosts())
    assert all("127.0.0.1" in m.peer for m in generate_spec(2).members)


def test_a_split_drops_both_directions_from_one_side() -> None:
    script = isolate_script(["10.1.2.3", "10.1.2.4"])
    assert "hook input" in script and "ip saddr { 10.1.2.3, 10.1.2.4 } drop" in script
    assert "hook output" in script and "ip daddr { 10.1.2.3, 10.1.2.4 } drop" in script


def test_a_cut_is_the_host_end_of_the_nodes_link(tmp_path: Path) -> None:
    plan = netns.plan_for(tmp_path, [1, 2, 3])
    assert cut_command(plan, 2, down=True) == ["ip", "link", "set", plan.host_veth(2), "down"]
    assert cut_command(plan, 2, down=False)[-1] == "up"
    assert NetworkFaults(plan).heal_all() == []  # nothing done, nothing to undo


def test_up_netns_without_root_says_so_and_makes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert main(["up", "3", "--netns", "--data-dir", str(tmp_path / "d")]) == 2
    assert "--netns needs root" in capsys.readouterr().err
    assert not (tmp_path / "d" / netns.RECORD).exists()


def test_elsewhere_than_linux_the_error_names_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.sys, "platform", "darwin")
    with pytest.raises(netns.NetnsUnavailable, match="needs Linux network namespaces .this is darwin"):
        netns.require()
