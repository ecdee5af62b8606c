"""Deliberately broken builds, TEST ONLY: proof that the chaos check can fail.

    JANGADA_TEST_UNSAFE=ack-before-commit JANGADA_TEST_UNSAFE_I_KNOW=1 python -m node ...

Not reachable from any config: no cluster.toml field, no command-line flag and no
supervisor option sets it; only these two environment variables, read once at
start-up by `python -m node`. The mode alone is refused (the node exits 2), so a
stray variable cannot break a real deployment by itself, and an unknown mode is
refused too. A node running broken says so in its log at start-up, in capitals.

Modes:

  ack-before-commit   the leader counts an entry as committed as soon as it is in
                      its OWN durable log (commit index = the highest match index
                      instead of the quorum's, §5.3 / §5.4.2 ignored): it applies
                      it and acknowledges the client before any follower has it.
                      A leader isolated or killed with such entries loses
                      acknowledged writes; `supervisor chaos --check` reports
                      not linearizable / lost writes / diverged replicas
                      (tests/supervisor/test_chaos_check.py).

Acknowledging before *fsync* cannot be shown with real processes: SIGKILL does not
lose what the page cache holds, only a machine crash does. The simulator, whose
disk drops everything not synced at a crash, shows that bug is caught
(tests/simulation/test_simulator_itself.py::test_catches_votes_that_are_not_persisted
sends vote and append acknowledgements before the persist), and the Figure 8
commit-term bug (tests/scenarios/test_classic_traps.py).
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

ENV_MODE = "JANGADA_TEST_UNSAFE"
ENV_CONFIRM = "JANGADA_TEST_UNSAFE_I_KNOW"
MODES = ("ack-before-commit",)


class UnsafeRefused(Exception):
    """The unsafe mode was asked for without its confirmation, or is unknown."""


def requested(environ: Mapping[str, str]) -> str | None:
    """The unsafe mode to run with, or None; UnsafeRefused says why not."""
    mode = environ.get(ENV_MODE, "")
    if not mode:
        return None
    if mode not in MODES:
        raise UnsafeRefused(f"{ENV_MODE}={mode!r} is not a known test mode ({', '.join(MODES)})")
    if environ.get(ENV_CONFIRM) != "1":
        raise UnsafeRefused(f"{ENV_MODE}={mode} deliberately breaks safety; it is for tests only and "
                            f"needs {ENV_CONFIRM}=1 as well")
    return mode


def install(mode: str, log: logging.Logger) -> None:
    """Break this process's Raft core as `mode` says. Called once, before the core exists."""
    from node.raft import core  # here: `python -m node --help` imports this module, not the core

    if mode == "ack-before-commit":
        def own_log_commits(incoming: Collection[int], outgoing: Collection[int],
                            match: Mapping[int, int]) -> int:
            return max(match[v] for v in (*incoming, *outgoing))

        # The core counts commits with the joint rule (a simple configuration is its
        # special case): the name it calls is the one to break.
        core.joint_committed_index = own_log_commits  # type: ignore[assignment]
    else:
        raise UnsafeRefused(f"unknown test mode {mode!r}")
    log.warning("UNSAFE TEST BUILD: %s=%s: this node does NOT keep Raft's promises", ENV_MODE, mode)
