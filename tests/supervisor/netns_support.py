"""Whether network namespaces can be made here, for the tests that need them
(skipped with the reason otherwise), and what of ours is left in the kernel."""
from __future__ import annotations

import subprocess

from supervisor import netns


def unavailable() -> str | None:
    """Why namespace tests cannot run here, or None."""
    try:
        netns.require()
    except netns.NetnsUnavailable as error:
        return str(error)
    return None


def leftovers(names: list[str]) -> list[str]:
    """Those of `names` that still exist as a namespace or a link."""
    spaces = netns.namespaces()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    present = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
    return [n for n in names if n in spaces or n in present]
