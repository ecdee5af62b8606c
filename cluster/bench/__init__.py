"""`python -m cluster.bench`: load a running jangada cluster and measure it.

    python -m cluster.bench put --processes 4 --in-flight 16 --duration 10 --plot put.png

Modules, one concept each: `options` (the command line, validated), `histogram`
(log-bucketed latency percentiles), `tally` (what a load thread counts), `worker`
(one load process: threads with a Client each), `pipeline` (`--pipeline`: one socket,
many requests in flight), `runner` (the parent: survey, spawn, progress, collect), `report`
(figures, JSON, text), `plot` (optional matplotlib), `cli` (main). How to run it
and what each figure means: docs/benchmarks.md.
"""
