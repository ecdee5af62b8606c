"""`python -m cluster.bench.compare` (the same as `python -m cluster.bench compare`)."""
from __future__ import annotations

from cluster.bench.compare.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
