"""The key-range convention every request shares (etcd's).

`range_end == b""` means the single key `key`; `range_end == ALL_KEYS_END`
(b"\\0") means every key >= `key`; otherwise the half-open interval
[key, range_end). `prefix_end` turns a prefix into its range end.
"""
from __future__ import annotations

#: The range end meaning "to the end of the key space" (etcd's convention).
ALL_KEYS_END = b"\0"


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix`
    (etcd's GetPrefixRangeEnd); `ALL_KEYS_END` if there is none."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return ALL_KEYS_END
    return stripped[:-1] + bytes([stripped[-1] + 1])
