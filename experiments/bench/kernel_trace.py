"""The XLA kernels a call runs, from ``jax.profiler``: shared by the profiling scripts beside this one."""

from __future__ import annotations

import collections
import glob
import gzip
import json
import tempfile
from collections.abc import Callable

import jax


def kernel_times(fn: Callable[[], object], calls: int = 1) -> tuple[collections.Counter, collections.Counter]:
    """(total µs, count) per XLA kernel name over ``calls`` profiled calls of ``fn()``. Python frames,
    the executor's own spans, the loops and the ``end:`` markers are left out."""
    with tempfile.TemporaryDirectory() as folder:
        jax.profiler.start_trace(folder)
        for _ in range(calls):
            fn()
        jax.profiler.stop_trace()
        (path,) = glob.glob(f"{folder}/**/*.trace.json.gz", recursive=True)
        with gzip.open(path) as trace_file:
            events = json.load(trace_file)["traceEvents"]
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") == "X" and not name.startswith(("$", "Thunk", "Pjit", "while", "end:")):
            total[name] += e.get("dur", 0)
            count[name] += 1
    return total, count
