"""Runs tests/etcd/goclient/main.go, etcd's own Go client (clientv3 3.4), for the
tests: `binary()` builds it (offline, with the build the compare benchmark uses for
etcdload) or skips the test saying what is missing; `run_checks` returns its one
JSON line per check; `Load` runs its put load in the background."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from cluster.bench.compare.etcd import EtcdError, build_go_program
from cluster.bench.compare.systems import etcdload_missing

SOURCE = Path(__file__).resolve().with_name("main.go")
LOAD_RUNNING_LINE = "goclient: load running"  # main.go's LoadRunningLine, on stderr


def binary() -> Path:
    """The built program; skips the test when Go or etcd's Go sources are missing."""
    lacking = etcdload_missing()
    if lacking:
        pytest.skip(f"needs {', '.join(lacking)} (Debian packages; .ci/run installs them)")
    try:
        return build_go_program(SOURCE, "goclient")
    except EtcdError as error:
        raise AssertionError(f"goclient did not build: {error}") from None


def run_checks(endpoints: list[str], checks: tuple[str, ...], step_timeout: float = 5.0,
               timeout: float = 90.0) -> list[dict[str, Any]]:
    """Each check's result line, in order (the program bounds every step by `step_timeout`)."""
    done = subprocess.run([str(binary()), "-endpoints", ",".join(endpoints), "-checks", ",".join(checks),
                           "-timeout", f"{step_timeout:g}"], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"goclient exited {done.returncode}: {done.stderr[-2000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


class Load:
    """The program's put load over one client given every endpoint, in the background;
    stderr (clientv3's own warnings included) goes to a file, so it never blocks."""

    def __init__(self, endpoints: list[str], log: Path, clients: int = 8, duration: float = 6.0,
                 op_timeout: float = 5.0) -> None:
        self.log = log
        self.duration = duration
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(binary()), "-mode", "load", "-endpoints", ",".join(endpoints), "-clients", str(clients),
                 "-duration", f"{duration:g}", "-timeout", f"{op_timeout:g}"],
                stdout=subprocess.PIPE, stderr=err, text=True)

    def wait_running(self, timeout: float = 15.0) -> float:
        """Once the load runs: the wall-clock time it said so."""
        deadline = time.monotonic() + timeout
        while LOAD_RUNNING_LINE not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"the load did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.02)
        return time.time()

    def result(self) -> dict[str, Any]:
        """Its JSON result, once it ends (it bounds itself by its duration and one put's deadline)."""
        try:
            out, _ = self.proc.communicate(timeout=self.duration + 60)
        except subprocess.TimeoutExpired:
            self.close()
            raise AssertionError("the load overran its duration") from None
        if self.proc.returncode != 0:
            raise AssertionError(f"the load exited {self.proc.returncode}: "
                                 f"{self.log.read_text(errors='replace')[-2000:]}")
        return dict(json.loads(out.strip().splitlines()[-1]))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # ours, by handle
            self.proc.communicate()
