"""The pure Raft core. See docs/raft-core.md for the input/output contract."""
