"""Seconds of one compiled call of a sweep's first program: training alone, no compile, no I/O.

Usage::

    python experiments/bench/study_call.py SWEEP.toml [--no-records]

Builds the runner's plan for the sweep on the devices at hand, compiles its first program for one
call (``--no-records``: with ``record_every = 0``), runs it once warm, then twice more, and prints
the better of the two, in seconds and in µs per block-step. To compare two versions of lossjax,
run it alternately from each tree (``PYTHONPATH=<tree>``). The `mlp_glorot` figures of
``results/bench/ab_every.txt`` came from this script on the 2-core CPU.
"""

from __future__ import annotations

import sys
import time

from lossjax import host

host.use_all_cpu_cores()

import numpy as np  # noqa: E402

from lossjax import config  # noqa: E402
from first_call import first_call  # noqa: E402  (beside this script)

CALLS = 2  # timed calls after the warm one; the better is printed


def main(path: str, records: bool) -> None:
    sweep = config.load_sweep(path)
    call = first_call(sweep, records)
    call()  # warm
    best = np.inf
    for _ in range(CALLS):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    print(f"{sweep.name}: one call of {call.runs} runs in blocks of {call.block} on {len(call.devices)} device(s), "
          f"{call.config.steps} steps, records every {call.config.record_every or 'never'}: {best:.3f} s, "
          f"{1e6 * best / call.block_steps:.1f} µs per block-step")

if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] != "--no-records"):
        sys.exit(__doc__)
    main(args[0], records=len(args) == 1)
