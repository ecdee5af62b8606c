"""Cluster specs: shipped configs load from anywhere; problems name their field."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cluster.spec import SpecError, load_spec, parse_spec, shipped_configs


def test_shipped_configs_load_by_name_from_any_directory(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for name, size in (("cluster-1", 1), ("cluster-3.toml", 3), ("cluster-5", 5)):
            spec = load_spec(name)
            assert len(spec.members) == size and spec.ids == tuple(range(1, size + 1))
    finally:
        os.chdir(cwd)
    assert shipped_configs() == ["cluster-1.toml", "cluster-3.toml", "cluster-5.toml"]


def test_a_spec_survives_a_round_trip_through_toml(tmp_path: Path) -> None:
    spec = load_spec("cluster-5")
    path = tmp_path / "c.toml"
    path.write_text(spec.to_toml())
    again = load_spec(path)
    assert again.members == spec.members and again.timing == spec.timing and again.limits == spec.limits


def _doc(**changes: Any) -> dict[str, Any]:
    doc = tomllib.loads(load_spec("cluster-3").to_toml())
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        table = doc
        for part in path:
            table = table[int(part)] if part.isdigit() else table[part]
        if value is None:
            del table[last]
        else:
            table[last] = value
    return doc


@pytest.mark.parametrize("changes, field", [
    ({"cluster__id": "bad id!"}, "cluster.id"),
    ({"cluster__id": None}, "cluster.id"),
    ({"cluster__data_dir": "data/shared"}, "cluster.data_dir"),
    ({"timing__tick_ms": 0}, "timing.tick_ms"),
    ({"timing__tick_ms": "10"}, "timing.tick_ms"),
    ({"timing__election_ticks": 3}, "timing.election_ticks"),
    ({"timing__typo": 3}, "timing.typo"),
    ({"storage__fsync": "sometimes"}, "storage.fsync"),
    ({"limits__max_batch": -1}, "limits.max_batch"),
    ({"snapshot__chunk_bytes": 1 << 30}, "snapshot.chunk_bytes"),
    ({"members__1__peer": "127.0.0.1:7000"}, "members[1].peer"),
    ({"members__1__client": "tcp://127.0.0.1:99999"}, "members[1].client"),
    ({"members__2__id": 1}, "members[2].id"),
    ({"members__2__id": 0}, "members[2].id"),
    ({"members__2__peer": "tcp://127.0.0.1:7101"}, "members[2].peer"),
    ({"members": []}, "members"),
    ({"members__2__grpc": "tcp://127.0.0.1:7303"}, "members[2].grpc"),
    ({"members__2__grpc": "127.0.0.1:7303"}, "members[2].grpc"),
    ({"members__1__gateway": "http://127.0.0.1:0"}, "members[1].gateway"),
    ({"members__1__gateway": "http://127.0.0.1:70000"}, "members[1].gateway"),
    ({"members__1__gateway": 7402}, "members[1].gateway"),
    ({"members__0__grpc_bind": "http://*:7301"}, "members[0].grpc_bind"),
    ({"members__0__gateway_bind": "0.0.0.0:7401"}, "members[0].gateway_bind"),
    ({"members__2__grpc": "http://127.0.0.1:7301"}, "members[2].grpc"),
    ({"members__2__gateway": "http://127.0.0.1:7103"}, "members[2].gateway"),
    ({"members__1__metrics": "https://127.0.0.1:7502"}, "members[1].metrics"),
    ({"members__1__metrics": "127.0.0.1:7502"}, "members[1].metrics"),
    ({"members__2__metrics": "http://127.0.0.1:7401"}, "members[2].metrics"),
    ({"extra": {}}, "extra"),
])
def test_problems_name_the_bad_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_doc(**changes), "test.toml")
    assert info.value.field == field
    assert str(info.value).startswith(f"test.toml: {field}: ")


def test_unknown_member_and_missing_file_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="--id"):
        load_spec("cluster-3").member(9)
    with pytest.raises(SpecError, match="--config"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)


def test_other_hosts_addresses_are_accepted() -> None:
    doc = _doc(members__0__peer="tcp://node1.example.com:7101", members__0__peer_bind="tcp://*:7101")
    spec = parse_spec(doc)
    assert spec.member(1).peer_bind_address == "tcp://*:7101"
    assert spec.member(1).peer == "tcp://node1.example.com:7101"


def test_shipped_configs_give_every_member_grpc_and_gateway_urls() -> None:
    for name in shipped_configs():
        for member in load_spec(name).members:
            assert member.grpc == f"http://127.0.0.1:{7300 + member.id}"
            assert member.gateway == f"http://127.0.0.1:{7400 + member.id}"
            assert member.grpc_bind_address == f"127.0.0.1:{7300 + member.id}"
            assert member.gateway_bind_address == f"127.0.0.1:{7400 + member.id}"


def test_etcd_faces_are_optional_and_may_bind_elsewhere(tmp_path: Path) -> None:
    doc = _doc(members__0__grpc=None, members__0__gateway="",
               members__1__grpc_bind="http://0.0.0.0:7302", members__1__gateway_bind="http://[::]:7402")
    spec = parse_spec(doc)
    assert (spec.member(1).grpc, spec.member(1).gateway) == ("", "")
    assert (spec.member(1).grpc_bind_address, spec.member(1).gateway_bind_address) == ("", "")
    assert spec.member(2).grpc == "http://127.0.0.1:7302"
    assert spec.member(2).grpc_bind_address == "0.0.0.0:7302"
    assert spec.member(2).gateway_bind_address == "[::]:7402"
    path = tmp_path / "c.toml"
    path.write_text(spec.to_toml())
    assert load_spec(path).members == spec.members
    secure = _doc(tls={"cert": "c.pem", "key": "k.pem"})
    for member in secure["members"]:
        member["grpc"], member["gateway"] = (member[k].replace("http://", "https://") for k in ("grpc", "gateway"))
    assert parse_spec(secure).member(1).metrics == "http://127.0.0.1:7501"  # the faces are https, metrics not


def test_the_metrics_endpoint_is_optional_plain_http_even_with_tls(tmp_path: Path) -> None:
    spec = parse_spec(_doc(members__0__metrics=None))
    assert spec.member(1).metrics == "" and spec.member(1).metrics_address == ""
    assert spec.member(2).metrics == "http://127.0.0.1:7502"
    assert spec.member(2).metrics_address == "127.0.0.1:7502"
    path = tmp_path / "c.toml"
    path.write_text(spec.to_toml())
    assert load_spec(path).members == spec.members
    secure = _doc(tls={"cert": "c.pem", "key": "k.pem"})
    for member in secure["members"]:
        member["grpc"], member["gateway"] = (member[k].replace("http://", "https://") for k in ("grpc", "gateway"))
    assert parse_spec(secure).member(1).metrics == "http://127.0.0.1:7501"  # the faces are https, metrics not
