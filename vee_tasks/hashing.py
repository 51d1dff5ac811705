"""A stable hash of exception ids: the same draw for an id on every run and machine."""

from __future__ import annotations

GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def splitmix64(ids, stream: int = 0):
    """splitmix64 of each id (a bijection of 64-bit integers that scatters neighbouring ids),
    as uint64. Each `stream` is another draw per id, in practice independent of the others:
    the audit sample (stream 0) and the training sample (stream 1) do not favour the same
    exceptions."""
    import numpy as np

    offset = np.uint64((GOLDEN_GAMMA * (stream + 1)) % (1 << 64))
    x = np.asarray(ids, dtype=np.int64).view(np.uint64) + offset
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
