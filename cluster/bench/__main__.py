"""`python -m cluster.bench`: the benchmark (cluster/bench/cli.py)."""
from __future__ import annotations

from cluster.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
