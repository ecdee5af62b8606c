"""Users, roles and `auth enable` are replicated state: they survive a member that
catches up by an installed snapshot (its log was compacted past everything it
missed) and a restart of the whole cluster (WAL replay over a snapshot)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cluster.kv import Put, Range, RangeResponse, decode_result, encode_command, prefix_end
from cluster.kv.auth import (
    AuthEnable, AuthStatus, AuthStatusResponse, Permission, PermType, RoleAdd, RoleGrantPermission, UserAdd,
    UserGet, UserGetResponse, UserGrantRole,
)
from cluster.kv.errors import PermissionDenied, UserEmpty
from cluster.protocol import KvReply, KvRequest
from node.localcluster import LocalCluster
from tests.node.test_auth_cluster import AUTH, TIMING, Raw, refused

pytestmark = pytest.mark.timeout(180)


def _serializable(raw: Raw, node: int, body: object, token: str) -> object:
    """`body` answered from `node`'s own applied state (no leader involved)."""
    data = encode_command(body, user="root")
    reply = raw.call(lambda rid: KvRequest(rid, data, True, token), node)
    assert isinstance(reply, KvReply), reply
    return decode_result(reply.result)


def test_users_and_roles_survive_a_snapshot_install_and_a_full_restart(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, size=3, timing=TIMING, auth=AUTH, snapshot={"applied_entries": 20}) as cluster:
        cluster.start_all()
        cluster.wait_for_leader()
        raw = Raw(cluster)
        try:
            leader = cluster.wait_for_leader()
            behind = next(i for i in cluster.ids if i != leader)
            cluster.kill(behind)
            for body in (UserAdd("root", password="rootpw"), UserGrantRole("root", "root"),
                         UserAdd("reader", password="readerpw"), RoleAdd("app-reader"),
                         RoleGrantPermission("app-reader", Permission(PermType.READ, b"/app/", prefix_end(b"/app/"))),
                         UserGrantRole("reader", "app-reader"), Put(b"/app/a", b"1"), AuthEnable()):
                raw.ok(body)
            root = raw.login("root", "rootpw")
            for i in range(60):  # past two snapshots: the killed member's gap is compacted away
                raw.ok(Put(b"/app/k%d" % i, b"v"), root)
            cluster.start(behind)
            installed = cluster.wait_caught_up(behind, cluster.status_of(leader)["commit_index"])
            assert "installed snapshot" in cluster.log_text(behind), cluster.log_tails()
            assert installed["applied_index"] >= 60

            # the member that only has the snapshot knows the users, roles and auth on
            # (not the tokens issued before it: they live in each member's memory, so
            # log in again and let that member apply the new token's entry)
            root = raw.login("root", "rootpw")
            cluster.wait_caught_up(behind, cluster.status_of(cluster.wait_for_leader())["commit_index"])
            status = _serializable(raw, behind, AuthStatus(), root)
            assert isinstance(status, AuthStatusResponse) and status.enabled
            reader = _serializable(raw, behind, UserGet("reader"), root)
            assert isinstance(reader, UserGetResponse) and reader.roles == ("app-reader",)

            # the whole cluster restarted: auth still on, the reader's permission intact
            for node in cluster.ids:
                cluster.stop(node)
            cluster.start_all()
            cluster.wait_for_leader()
            token = raw.login("reader", "readerpw")
            assert isinstance(raw.ok(Range(b"/app/a"), token), RangeResponse)
            refused(raw.kv(Put(b"/app/a", b"2"), token), PermissionDenied)
            refused(raw.kv(Range(b"/app/a")), UserEmpty)
        finally:
            raw.close()
