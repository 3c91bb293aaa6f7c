"""Peak resident set size of this process in MiB, immune to what a parent held before exec."""

from __future__ import annotations

import sys


def peak_rss_mb() -> float | None:
    """VmHWM from /proc/self/status on Linux (per address space, so it restarts at exec), else ru_maxrss.

    ``ru_maxrss`` alone is wrong for a child started from a big parent: Linux carries the pre-exec peak
    of the forked copy into it (a stream started from a process holding TensorFlow would report ~1 GB).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 2)
    except (OSError, ValueError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0), 2)
