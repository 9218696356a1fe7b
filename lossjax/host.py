"""The machine lossjax runs on: CPU cores, the cache folder, and how XLA is set up for them.

Pure Python, imported before jax: :func:`use_all_cpu_cores` must run before jax creates its CPU
backend, which is why ``import lossjax`` calls it and imports everything else lazily.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Set to a positive integer to choose the number of XLA host devices (default: one per core).
DEVICES_VARIABLE = "LOSSJAX_CPU_DEVICES"


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def cache_root() -> Path:
    """lossjax's cache folder: ``$LOSSJAX_CACHE``, else ``$XDG_CACHE_HOME/lossjax``, else
    ``~/.cache/lossjax``. Generated data (MNIST-1D) and compiled programs are kept there."""
    if os.environ.get("LOSSJAX_CACHE"):
        return Path(os.environ["LOSSJAX_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lossjax"


def use_all_cpu_cores() -> None:
    """Exposes one XLA host device per CPU core, so the runner shards a grid across cores.

    XLA runs each CPU device's program on about one thread; with one device per core the grid
    is split across them (about 2x on 2 cores). Takes effect only before jax is imported; an
    explicit ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` wins, and
    ``LOSSJAX_CPU_DEVICES=N`` chooses N.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in flags:
        return
    wanted = os.environ.get(DEVICES_VARIABLE, "")
    count = int(wanted) if wanted.isdigit() and int(wanted) > 0 else cpu_cores()
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def use_compilation_cache() -> None:
    """Keeps compiled programs on disk (``cache_root()/xla``), so rerunning a sweep skips XLA
    compilation of the programs it already built. Does nothing if the folder can't be made."""
    import jax

    folder = cache_root() / "xla"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
