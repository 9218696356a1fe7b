"""Peak memory of 10^6, 10^7 and 10^8 neurons x 300 steps, and the time a resume loses.

Run from the repository root:

    python experiments/scale/measure.py [--sizes 1m 10m 100m] [--resume 10m] [--out /tmp/lossjax-scale]

Each sweep runs in a fresh ``lossjax run`` process; its peak resident memory is the process's
own (``peak_rss_mb`` in the folder's ``provenance.json``). The resume measurement runs the
sweep whole, then again from scratch (an empty folder), stopped with Ctrl-C (SIGINT) once half of
its chunks are on disk, and resumed: time lost = (time to the interrupt + time of the resumed
run) - time of the whole run (a second start-up, compile and the unfinished chunk's work).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def run(spec: Path, out: Path, *extra: str) -> tuple[float, subprocess.Popen]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lossjax.cli", "run", str(spec), "--out", str(out), "--quiet", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return start, proc


def finish(start: float, proc: subprocess.Popen) -> float:
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"lossjax run failed ({proc.returncode}):\n{err}")
    return time.perf_counter() - start


def done_chunks(out: Path) -> int:
    return len(list((out / "progress").glob("p*-c*.json"))) if (out / "progress").is_dir() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=["1m", "10m", "100m"])
    parser.add_argument("--resume", default="10m", help="the sweep to interrupt and resume ('' for none)")
    parser.add_argument("--out", default="/tmp/lossjax-scale")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        spec, out = HERE / f"scale_{size}.toml", Path(args.out) / size
        seconds = finish(*run(spec, out, "--restart"))
        prov = json.loads((out / "provenance.json").read_text())
        chunks = done_chunks(out)
        rows.append((size, seconds, prov["run_time_s"], prov["peak_rss_mb"], chunks))
        print(f"scale_{size}: {seconds:.1f} s wall, {prov['run_time_s']:.1f} s training, peak memory "
              f"{prov['peak_rss_mb'] / 1024:.2f} GiB, {chunks} chunks", flush=True)
    if args.resume:
        spec, out = HERE / f"scale_{args.resume}.toml", Path(args.out) / f"{args.resume}-resume"
        whole = finish(*run(spec, out, "--restart"))
        total = done_chunks(out)
        shutil.rmtree(out)  # from scratch, so that the markers counted below are this run's
        start, proc = run(spec, out)
        while done_chunks(out) < total // 2 and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        proc.communicate()
        stopped = time.perf_counter()
        kept = done_chunks(out)
        resumed = finish(*run(spec, out))
        lost = (stopped - start) + resumed - whole
        print(f"resume of scale_{args.resume}: whole run {whole:.1f} s; Ctrl-C after {sent - start:.1f} s stopped in "
              f"{stopped - sent:.1f} s keeping {kept}/{total} chunks; resumed run {resumed:.1f} s; time lost "
              f"{lost:.1f} s ({100 * lost / whole:.0f}% of the whole run)", flush=True)


if __name__ == "__main__":
    main()
