"""How often the loop publishes its metrics snapshot: often while it is read, rarely
otherwise (node/telemetry.py's Board, node/metrics_http.py)."""
from __future__ import annotations

import urllib.error
import urllib.request

from node.metrics_http import MetricsServer
from node.telemetry import PUBLISH_SECONDS, QUIET_PUBLISH_SECONDS, WATCHED_SECONDS, Board


def test_the_interval_is_short_only_while_someone_reads_the_board() -> None:
    board = Board()
    assert board.publish_interval(100.0) == QUIET_PUBLISH_SECONDS  # never read
    board.asked_at = 100.0
    assert board.publish_interval(100.0 + WATCHED_SECONDS) == PUBLISH_SECONDS
    assert board.publish_interval(100.0 + WATCHED_SECONDS + 0.1) == QUIET_PUBLISH_SECONDS
    assert PUBLISH_SECONDS < QUIET_PUBLISH_SECONDS


def test_a_scrape_marks_the_board_as_read_and_a_liveness_probe_does_not() -> None:
    board = Board()
    server = MetricsServer("127.0.0.1:0", board, lambda: "", "", clock=lambda: 42.0)
    server.start()
    try:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/livez", timeout=10)
        except urllib.error.HTTPError as refused:  # nothing published on this board: 503
            assert refused.code == 503
        assert board.asked_at == float("-inf"), "a liveness probe only reads the snapshot's age"
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as answer:
            assert answer.status == 200
        assert board.asked_at == 42.0
    finally:
        server.stop()


def test_the_face_publishes_often_only_while_read() -> None:
    from cluster.spec import load_spec
    from node.metrics_face import MetricsFace
    from node.telemetry import Telemetry

    spec = load_spec("cluster-3")
    built: list[float] = []
    now = [100.0]

    def status() -> dict[str, int]:
        built.append(now[0])
        return {"leader_id": 1}

    face = MetricsFace(spec, spec.members[0], Telemetry(), status, dict, tuple, lambda: now[0])
    ticks = [100.0 + 0.05 * i for i in range(41)]  # 2 s of loop turns, every 50 ms
    for t in ticks:
        now[0] = t
        face.maybe_publish(t)
    assert built == [100.0, 101.0, 102.0]  # unread: once a second
    face.board.asked_at = 102.0  # a scrape
    built.clear()
    for t in ticks:
        now[0] = t + 2.0
        face.maybe_publish(t + 2.0)
    assert len(built) >= 10, built  # read: every PUBLISH_SECONDS (0.1 s) over the next second
