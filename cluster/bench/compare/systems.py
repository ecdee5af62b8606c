"""Is each system runnable here, and installing what is missing (only on request:
`--install` or JANGADA_BENCH_INSTALL=1). A missing system is skipped, never faked:
`missing()` returns the message the table and the output show."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cluster.bench.compare.etcd import CLIENTV3, ETCD

APT_PACKAGES = {"etcd": ("etcd-server", "golang-go", "golang-etcd-server-dev"),
                "jangada-grpc": ("golang-go", "golang-etcd-server-dev"),
                "jangada-grpc-tls": ("golang-go", "golang-etcd-server-dev"),
                "grpc-noop": ("golang-go", "golang-etcd-server-dev")}
PIP_PACKAGES = {"pysyncobj": ("pysyncobj",)}
INSTALL_TIMEOUT = 900.0


def etcd_missing(exists: Callable[[str], bool] = os.path.exists,
                 which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The Debian packages etcd's side needs that are not installed."""
    out = []
    if not exists(ETCD):
        out.append("etcd-server")
    if which("go") is None and not exists("/usr/lib/go/bin/go"):
        out.append("golang-go")
    if not exists(str(CLIENTV3)):
        out.append("golang-etcd-server-dev")
    return out


def etcdload_missing(exists: Callable[[str], bool] = os.path.exists,
                     which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """What building etcdload needs and lacks (jangada-grpc and grpc-noop run no etcd server)."""
    return [p for p in etcd_missing(exists, which) if p != "etcd-server"]


def pysyncobj_missing(find: Callable[[str], object] = importlib.util.find_spec) -> list[str]:
    return [] if find("pysyncobj") is not None else ["pysyncobj"]


def missing(system: str) -> list[str]:
    """The packages `system` lacks here ([] = runnable; jangada is always)."""
    if system == "etcd":
        return etcd_missing()
    if system in ("jangada-grpc", "jangada-grpc-tls", "grpc-noop"):
        return etcdload_missing()
    if system == "pysyncobj":
        return pysyncobj_missing()
    return []


def skip_message(system: str, packages: list[str]) -> str:
    """What the output and the table say about a system that cannot run here."""
    how = (f"apt-get install -y {' '.join(packages)}" if system in APT_PACKAGES
           else f"{Path(sys.executable).name} -m pip install {' '.join(packages)}")
    return (f"not installed here (missing {', '.join(packages)}); rerun with --install "
            f"(or JANGADA_BENCH_INSTALL=1), or: {how}")


def install_requested(flag: bool, environ: dict[str, str] | None = None) -> bool:
    return flag or (environ if environ is not None else os.environ).get("JANGADA_BENCH_INSTALL") == "1"


def install(system: str, packages: list[str]) -> str | None:
    """Install `packages`; None when done, else why not (the system is then skipped)."""
    if system in APT_PACKAGES:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        steps = [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]]
    else:
        env = dict(os.environ)
        steps = [[sys.executable, "-m", "pip", "install", "-q", *packages]]
    for step in steps:
        try:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{' '.join(step[:3])} failed: {error}"
        if done.returncode != 0:
            return f"{' '.join(step[:3])} failed: {done.stderr.strip()[-300:]}"
    importlib.invalidate_caches()
    return None
