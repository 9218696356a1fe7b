"""Refuse before training whatever would fail later: the output folder, memory and disk, and the
values that only make sense together (a target against the loss's range, a loss against the
dataset's outputs).

Every check raises :class:`~lossjax.config.SweepError` (the CLI prints it on one line and exits
with code 2) and writes nothing; :func:`probe_folder` is the one that creates the results folder,
and the runner calls it last, just before compiling.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from lossjax.config import Sweep, SweepError

#: Losses whose targets may be any real number; every other loss reads targets in [0, 1]
#: (probabilities, labels, or {0, 1} mapped to ±1).
REGRESSION_LOSSES = ("quadratic", "mse", "mae", "huber")
#: Losses that need several outputs (a softmax over classes).
MULTI_OUTPUT_LOSSES = ("softmax_ce",)
#: Share of the available memory a sweep may plan to use.
MEMORY_SHARE = 0.8


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def check_values(sweep: Sweep, n_outputs: int) -> None:
    """Targets against each loss's range, and losses against the dataset's outputs."""
    losses = [c["loss"] for c in sweep.static_combinations()]
    for loss in dict.fromkeys(losses):
        base = loss.split(":", 1)[0]
        if base in MULTI_OUTPUT_LOSSES and n_outputs < 2:
            raise SweepError(f"{sweep.name}: [train].loss = {loss!r} needs a dataset with several outputs (classes); "
                             f"dataset {sweep.dataset!r} has {n_outputs}: use 'bce' for one output")
        targets = [t for a in sweep.axes if a.name == "target" for t in a.values]
        if base not in REGRESSION_LOSSES:
            bad = [t for t in targets if not 0.0 <= t <= 1.0]
            if bad:
                raise SweepError(f"{sweep.name}: [data].target = {bad[0]!r} is outside [0, 1], the targets loss "
                                 f"{loss!r} reads (probabilities or labels); regression losses "
                                 f"({', '.join(REGRESSION_LOSSES)}) take any finite target")
    for a in sweep.axes:
        if a.name == "target" and any(t != t or t in (float("inf"), float("-inf")) for t in a.values):
            raise SweepError(f"{sweep.name}: [data].target must be finite, got {list(a.values)}")


def check_folder(folder: Path) -> None:
    """Checks, without creating anything, that ``folder`` can be created and written."""
    if str(folder) in ("", "."):
        pass
    for part in folder.parts:
        if len(os.fsencode(part)) > 255:
            raise SweepError(f"output folder {str(folder)[:80]!r}...: the name {part[:40]!r}... is "
                             f"{len(part)} characters, more than a file name may have (255 bytes)")
    if folder.exists() and not folder.is_dir():
        raise SweepError(f"output folder {str(folder)!r} exists and is a file; give --out a folder")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise SweepError(f"output folder {str(folder)!r} cannot be created: {str(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SweepError(f"output folder {str(folder)!r} cannot be written: no write permission on {str(existing)!r}")


def probe_folder(folder: Path) -> None:
    """Creates ``folder`` and writes and removes a file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".tmp-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        reason = "file name too long" if e.errno == errno.ENAMETOOLONG else (e.strerror or str(e))
        raise SweepError(f"output folder {str(folder)!r} cannot be written: {reason}") from None


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux MemAvailable, else physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 1 << 60


def device_memory(device) -> int | None:
    """Bytes an accelerator's allocator may use (``memory_stats()["bytes_limit"]``); None for a CPU
    device, whose memory is the host's (:func:`available_memory`), or where the backend does not say."""
    if device.platform == "cpu":
        return None
    try:
        stats = device.memory_stats()
    except Exception:  # pragma: no cover (a backend without memory statistics)
        return None
    return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


def free_disk(folder: Path) -> int:
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        return shutil.disk_usage(existing).free
    except OSError:  # pragma: no cover
        return 1 << 60


def check_fit(name: str, *, call_bytes: int, chunk_bytes: int, kept_bytes: int, disk_bytes: int,
              folder: Path | None, runs_per_chunk: int, n_chunks: int, device_bytes: int | None = None) -> None:
    """Refuses a sweep whose working memory or results would not fit, with the numbers.

    Args:
      call_bytes: device working memory of one compiled call (estimate).
      chunk_bytes: host memory of one chunk's results and inputs.
      kept_bytes: results kept in memory to the end (no results folder: the whole grid).
      disk_bytes: results written to the folder (uncompressed; an upper bound).
      device_bytes: an accelerator's memory (:func:`device_memory`), which a call must fit; None:
        the devices are the host's CPU, and a call shares the host's memory with the results.
    """
    if device_bytes is not None and call_bytes > device_bytes * MEMORY_SHARE:
        raise SweepError(
            f"{name}: needs about {gib(call_bytes)} of device memory per compiled call, "
            f"{call_bytes / (device_bytes * MEMORY_SHARE):.1f}x the {gib(device_bytes * MEMORY_SHARE)} the device "
            f"has: lower [run].memory_mb or make the model or batch smaller"
        )
    memory = available_memory() * MEMORY_SHARE
    host_call = call_bytes if device_bytes is None else 0  # a call on an accelerator is in the device's memory
    need = host_call + chunk_bytes + kept_bytes
    if need > memory:
        raise SweepError(
            f"{name}: needs about {gib(need)} of memory ("
            + (f"{gib(host_call)} per compiled call + " if host_call else "") + f"{gib(chunk_bytes)} per "
            f"chunk of {runs_per_chunk:,} runs" + (f" + {gib(kept_bytes)} of results kept to the end" if kept_bytes else "")
            + f"), {need / memory:.1f}x the {gib(memory)} available: "
            + ("lower [run].chunk_size or memory_mb" if host_call < memory else "make the model or batch smaller")
        )
    if folder is not None:
        free = free_disk(folder)
        if disk_bytes > free:
            raise SweepError(f"{name}: results need up to {gib(disk_bytes)} on disk ({n_chunks:,} chunks of "
                             f"{gib(chunk_bytes)}), {disk_bytes / free:.1f}x the {gib(free)} free under {str(folder)!r}")


def check_report(sweep: Sweep, layout, attrs: dict) -> None:
    """Runs the sweep's report on stand-in results of the sweep's shape (plausible constant values)
    in a scratch folder: a report that reads dimensions or variables this sweep lacks (an MLP
    report on a neuron sweep) is refused now rather than after training. Skipped for results
    above :data:`REPORT_CHECK_BYTES`."""
    if not sweep.report or layout.bytes_per_run() * layout.n_runs * layout.n_programs > REPORT_CHECK_BYTES:
        return
    import contextlib
    import io

    import numpy as np

    from lossjax import reports
    from lossjax.io import figures, store

    values = {"real": 0.5, "count": 1, "step": 1, "flag": 0, "outcome": 0, "code": 0}
    kinds = {name: ("real" if np.dtype(dt).kind == "f" else "count") for name, (_, dt, _, _) in layout.variables().items()}
    kinds["outcome"], kinds["born_dead"], kinds["stall_cause"] = "outcome", "flag", "code"
    piece = {name: np.full(layout.shape(dims), values[kinds[name]], dt)
             for name, (dims, dt, _, _) in layout.variables().items()}
    ds = store.labelled(piece, layout, attrs)
    report = reports.load(sweep.report)
    with tempfile.TemporaryDirectory(prefix="lossjax-report-check-") as scratch:
        try:
            with contextlib.redirect_stdout(io.StringIO()), figures.not_rendered():
                report(ds, Path(scratch))
        except (KeyError, AttributeError, IndexError) as e:
            raise SweepError(f"{sweep.name}: report {sweep.report!r} does not fit this sweep (on results of its shape "
                             f"it fails: {type(e).__name__}: {str(e)[:160]}); change `report` in the sweep file") from None
        except Exception:  # noqa: BLE001 (values, not shapes: the real results decide)
            pass
        finally:
            try:
                import matplotlib.pyplot as plt

                plt.close("all")
            except ImportError:  # pragma: no cover
                pass


#: Largest results a report is tried on before training (stand-in values, in memory).
REPORT_CHECK_BYTES = 64 << 20
