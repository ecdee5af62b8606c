"""The supervisor's roster (members.json): who runs now, across `up`s."""
from __future__ import annotations

from pathlib import Path

import pytest

from cluster.discovery import Layout
from supervisor.configgen import generate_spec
from supervisor.roster import Member, Roster, RosterError, load_roster, save_roster
from supervisor.spawn import node_command


def test_members_are_the_configs_minus_removed_plus_added(tmp_path: Path) -> None:
    spec = generate_spec(3, base_port=7100)
    roster = Roster()
    assert [m.id for m in roster.current(spec)] == [1, 2, 3] and roster.next_id(spec) == 4
    roster.add(Member(4, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", ("tcp://127.0.0.1:7201",)))
    roster.remove(1)
    roster.remove(1)
    assert [m.id for m in roster.current(spec)] == [2, 3, 4]
    roster.remove(4)
    assert [m.id for m in roster.current(spec)] == [2, 3]
    assert roster.next_id(spec) == 5  # ids are never reused


def test_the_roster_round_trips_and_a_missing_file_is_empty(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert load_roster(layout) == Roster()
    roster = Roster([Member(4, "tcp://h:1", "tcp://h:2", ("tcp://h:3",), "http://h:5", "http://h:6"),
                     Member(5, "tcp://h:7", "tcp://h:8", ("tcp://h:3",))], [2])
    save_roster(layout, roster)
    assert load_roster(layout) == roster


def test_a_roster_written_before_the_etcd_faces_still_loads(tmp_path: Path) -> None:
    (tmp_path / "members.json").write_text('{"version": 1, "added": [{"id": 4, "peer": "tcp://h:1", '
                                           '"client": "tcp://h:2", "join": ["tcp://h:3"]}], "removed": []}')
    assert load_roster(Layout(tmp_path)).added == [Member(4, "tcp://h:1", "tcp://h:2", ("tcp://h:3",))]


def test_the_configs_members_keep_their_etcd_faces() -> None:
    spec = generate_spec(2, base_port=7100)
    assert [(m.grpc, m.gateway) for m in Roster().current(spec)] == [
        ("http://127.0.0.1:7301", "http://127.0.0.1:7401"), ("http://127.0.0.1:7302", "http://127.0.0.1:7402")]


@pytest.mark.parametrize("text", ["{", '{"version": 9, "added": [], "removed": []}', '{"version": 1}',
                                  '{"version": 1, "added": [{"id": 4}], "removed": []}'])
def test_an_unreadable_roster_is_an_error_naming_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / "members.json").write_text(text)
    with pytest.raises(RosterError, match="members.json"):
        load_roster(Layout(tmp_path))


def test_an_added_member_is_started_with_join(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    command = node_command(layout, 4, Member(4, "tcp://h:1", "tcp://h:2", ("tcp://h:3", "tcp://h:4")))
    assert command[command.index("--join") + 1] == "tcp://h:3,tcp://h:4"
    assert command[command.index("--peer") + 1] == "tcp://h:1"
    assert "--grpc" not in command and "--gateway" not in command
    assert "--join" not in node_command(layout, 1)
    faced = node_command(layout, 4, Member(4, "tcp://h:1", "tcp://h:2", ("tcp://h:3",), "http://h:5", "http://h:6"))
    assert faced[faced.index("--grpc") + 1] == "http://h:5" and faced[faced.index("--gateway") + 1] == "http://h:6"
