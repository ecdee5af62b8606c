"""Slow password work off the actor thread.

Password hashes are slow by design (cluster/kv/passwords.py: PBKDF2, a good
fraction of a second), and the actor thread must never stop for that long: it
ticks Raft. So Authenticate, UserAdd and UserChangePassword hand their hashing
or verifying to one worker thread here, and the actor picks up the outcome on a
later loop turn (`finish`, a cheap `if` when nothing is done), within one poll
timeout of the work ending, and carries on with it (a proposal, a reply) on its
own thread.

The queue is bounded: a node flooded with password requests answers
too-many-requests instead of piling up seconds of hashing.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

#: Password jobs waiting or running at once, by default.
DEFAULT_LIMIT = 32

_STOP = object()


class PasswordWork:
    """`submit(compute, then)`: `compute()` runs on the worker, `then(result)` on
    the thread that calls `finish()` (the actor). A `compute` that raises hands
    its exception to `then` as the result, so the actor always answers."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.done: deque[tuple[Callable[[Any], None], Any]] = deque()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending = 0  # submitted and not yet finished on the actor
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return self._pending

    @property
    def running(self) -> bool:
        """Whether the worker thread has been started (and not closed)."""
        return self._thread is not None

    def submit(self, compute: Callable[[], Any], then: Callable[[Any], None]) -> bool:
        """Queue a job; False (nothing queued) when `limit` jobs are pending."""
        if self._pending >= self.limit:
            return False
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="password-work", daemon=True)
            self._thread.start()
        self._pending += 1
        self._jobs.put((compute, then))
        return True

    def finish(self) -> None:
        """Run the continuations of the jobs done so far (actor thread)."""
        done = self.done
        while done:
            then, result = done.popleft()
            self._pending -= 1
            then(result)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (after the job it is running) and drop what is queued."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._jobs.put(_STOP)
        thread.join(timeout)

    def _work(self) -> None:
        jobs, done = self._jobs, self.done
        while True:
            job = jobs.get()
            if job is _STOP:
                return
            compute, then = job
            try:
                result = compute()
            except Exception as error:  # noqa: BLE001 - handed to the actor, which answers
                result = error
            done.append((then, result))
