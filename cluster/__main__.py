"""`python -m cluster`: the etcdctl-like command line (cluster/cli.py)."""
from __future__ import annotations

from cluster.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
