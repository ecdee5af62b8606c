"""How often the loop publishes its metrics snapshot: often while it is read, rarely
otherwise (node/telemetry.py's Board, node/metrics_http.py)."""
from __future__ import annotations

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


def test_a_scrape_marks_the_board_as_read() -> None:
    board = Board()
    server = MetricsServer("127.0.0.1:0", board, lambda: "", "", clock=lambda: 42.0)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as answer:
            assert answer.status == 200
        assert board.asked_at == 42.0
    finally:
        server.stop()
