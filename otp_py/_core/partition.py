"""Which partition a key belongs to: a stable hash, the same in every process.

A partitioned supervisor (:func:`otp_py.partitioned`) runs N identical partitions,
ids ``"0"`` to ``"N-1"``; ``sup.partition(key)`` routes a key to one. The route must
not depend on the process or the run (Python's ``hash()`` of a string does, per
process), so keys are hashed here: an int ``k`` goes to ``abs(k) % N``, as Elixir's
``PartitionSupervisor`` routes integers; a ``str`` (as UTF-8) or ``bytes`` key to
``crc32(key) % N``. Other keys are refused: their ``repr`` is not stable.
"""

from __future__ import annotations

import zlib
from typing import Any

__all__ = ["partition_of"]


def partition_of(key: Any, partitions: int) -> int:
    """The index (``0 <= index < partitions``) of the partition for ``key``.

    Raises TypeError for a key that is not an int, str or bytes, and ValueError if
    ``partitions`` is not a positive int."""
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be a positive int; got {partitions!r}")
    if isinstance(key, bool) or not isinstance(key, int | str | bytes):
        raise TypeError(f"a partition key must be an int, str or bytes (a stable hash "
                        f"needs a stable encoding); got {type(key).__name__} {key!r}")
    if isinstance(key, int):
        return abs(key) % partitions
    data = key.encode("utf-8") if isinstance(key, str) else key
    return zlib.crc32(data) % partitions
