"""`python -m supervisor`: spawns and supervises a jangada cluster.

The supervisor is issue #5. Until it lands this entry point says so plainly and
exits non-zero: it must never pretend that a cluster is running.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    wanted = " ".join(args) or "(no command)"
    print(
        f"jangada: `python -m supervisor {wanted}` is not available yet: the node process, "
        "transport and supervisor are still being built (issues #3-#5).\n"
        "What works today: the Raft core and its deterministic simulator -- run\n"
        "    python -m node.simulation --seeds 1000",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
