"""Small helpers shared by the benchmark scripts (run them from the project root)."""

from __future__ import annotations

import resource


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total
