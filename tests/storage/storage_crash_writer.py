"""The victim of the crash tests: performs a seeded workload against a data dir and
prints the number of each operation once it has returned (i.e. is durable), with
the active WAL segment and its size at that moment, until it
is SIGKILLed. Run as: python storage_crash_writer.py DATA_DIR SEED [SEGMENT_BYTES]"""
from __future__ import annotations

import os
import sys

from node.storage import DataDir, StorageOptions
from storage_workload import Model, perform, workload


def main(argv: list[str]) -> int:
    data_dir, seed = argv[0], int(argv[1])
    segment_bytes = int(argv[2]) if len(argv) > 2 else 4096
    storage, _ = DataDir.open(data_dir, "crash-cluster", 1, StorageOptions(segment_bytes=segment_bytes, keep_snapshots=2))
    model = Model()
    out = sys.stdout.fileno()
    os.write(out, b"ready\n")
    for number, op in enumerate(workload(seed), start=1):
        perform(storage, model, op)
        model.apply(op)
        # Unbuffered write straight to the pipe: the ack exists only after the op returned.
        segment, size = storage.wal_end
        os.write(out, b"%d %s %d\n" % (number, segment.name.encode(), size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
