"""The XLA kernels a call runs, from ``jax.profiler``: shared by the profiling scripts beside this one."""

from __future__ import annotations

import collections
import glob
import gzip
import json
import re
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


def product_kernels(hlo_text: str) -> set[str]:
    """Names of the kernels of an optimized HLO module (``compiled.as_text()``) that multiply matrices:
    dots, and fusions (XNNPACK's ``ynn_fusion`` among them) whose computation holds a dot. XNNPACK
    also runs reductions, so a kernel's name does not say which it is."""
    bodies, callers, products = {}, {}, set()
    name = None
    for line in hlo_text.splitlines():
        head = re.match(r"^(?:ENTRY )?%(\S+) ", line)
        if head and line.rstrip().endswith("{"):
            name = head.group(1)
            bodies[name] = []
            continue
        if name is not None:
            bodies[name].append(line)
        instruction = re.match(r"\s*(?:ROOT )?%(\S+) = .*? (dot|fusion)\(", line)
        if instruction:
            op, kind = instruction.groups()
            if kind == "dot":
                products.add(op)
            called = re.search(r"calls=%([^,\s]+)", line)
            if called:
                callers[op] = called.group(1)
    with_dot = {c for c, lines in bodies.items() if any(re.search(r"= \S+ dot\(", line) for line in lines)}
    return products | {op for op, c in callers.items() if c in with_dot}
