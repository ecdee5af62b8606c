"""The password worker (node/password_work.py): slow work off the actor thread,
its outcome handed back to the thread that calls `finish`, bounded."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from node.password_work import PasswordWork


@pytest.fixture
def work() -> Any:
    w = PasswordWork(limit=3)
    yield w
    w.close()


def wait_done(work: PasswordWork, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(work.done) < count:
        assert time.monotonic() < deadline, "the worker never finished"
        time.sleep(0.001)


def test_jobs_run_on_the_worker_and_continue_on_the_finishing_thread(work: PasswordWork) -> None:
    ran_on: list[str] = []
    continued: list[tuple[str, Any]] = []

    def compute() -> int:
        ran_on.append(threading.current_thread().name)
        return 42

    assert work.submit(compute, lambda result: continued.append((threading.current_thread().name, result)))
    assert len(work) == 1
    wait_done(work, 1)
    assert not continued  # nothing runs on the actor until it asks
    work.finish()
    assert ran_on == ["password-work"] and continued == [(threading.current_thread().name, 42)]
    assert len(work) == 0 and not work.done


def test_a_failing_job_hands_its_exception_to_the_continuation(work: PasswordWork) -> None:
    got: list[Any] = []

    def boom() -> None:
        raise ValueError("bad hash")

    work.submit(boom, got.append)
    wait_done(work, 1)
    work.finish()
    assert isinstance(got[0], ValueError)


def test_the_queue_is_bounded_until_the_actor_finishes_jobs(work: PasswordWork) -> None:
    got: list[int] = []
    for i in range(3):
        assert work.submit(lambda i=i: i, got.append)
    assert not work.submit(lambda: 99, got.append)  # full: refused, nothing queued
    wait_done(work, 3)
    work.finish()
    assert got == [0, 1, 2] and work.submit(lambda: 3, got.append)


def test_no_thread_until_the_first_job_and_close_stops_it() -> None:
    work = PasswordWork()
    assert not work.running  # started lazily
    work.close()  # nothing to stop
    work.submit(lambda: 1, lambda _: None)
    threads = [t for t in threading.enumerate() if t.name == "password-work"]
    assert threads and all(t.daemon for t in threads)
    assert work.running
    work.close()
    assert all(not t.is_alive() for t in threads) and not work.running
