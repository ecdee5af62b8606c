"""`python -m supervisor status` shows the raised alarms (supervisor/status.py):
in --json per node, and once per alarm under the human table."""
from __future__ import annotations

import json

from supervisor.status import NodeStatus, alarm_lines


def node(node_id: int, *alarms: dict[str, object]) -> NodeStatus:
    return NodeStatus(id=node_id, pid=100 + node_id, alive=True, role="follower", term=2, leader=1, commit_index=9,
                      applied_index=9, last_index=9, snapshot_index=0, wal_bytes=1, rss_bytes=1, restarts=0,
                      client="tcp://127.0.0.1:1", peer="tcp://127.0.0.1:2", state="running", last_exit="",
                      alarms=tuple(alarms))


def test_every_alarm_any_node_reports_is_shown_once() -> None:
    corrupt = {"member_id": 3, "alarm": "CORRUPT"}
    nospace = {"member_id": 1, "alarm": "NOSPACE"}
    statuses = [node(1, nospace, corrupt), node(2, nospace, corrupt), node(3)]
    assert alarm_lines(statuses) == [
        "ALARM NOSPACE raised for node 1 (what to do: docs/operations.md, alarms)",
        "ALARM CORRUPT raised for node 3 (what to do: docs/operations.md, alarms)",
    ]
    assert alarm_lines([node(1)]) == []


def test_the_json_status_lists_each_nodes_alarms() -> None:
    shown = json.loads(json.dumps(node(2, {"member_id": 3, "alarm": "CORRUPT"}).to_dict()))
    assert shown["alarms"] == [{"member_id": 3, "alarm": "CORRUPT"}]
    assert json.loads(json.dumps(node(2).to_dict()))["alarms"] == []
