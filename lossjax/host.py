"""The machine lossjax runs on: CPU cores, the cache folder, and how XLA is set up for them.

Pure Python, imported before jax: :func:`use_all_cpu_cores` must run before jax creates its CPU
backend, which is why ``import lossjax`` calls it and imports everything else lazily.
"""

from __future__ import annotations

import os
import sys
import warnings
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
    is split across them (about 2x on 2 cores). Before jax is imported this sets
    ``--xla_force_host_platform_device_count``; after, as long as jax has not yet created its
    backends, the ``jax_num_cpu_devices`` option. Once a jax operation has run, the device count
    is fixed: a warning says so and sweeps use one core. An explicit
    ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` or ``jax_num_cpu_devices`` wins, and
    ``LOSSJAX_CPU_DEVICES=N`` chooses N.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    wanted = os.environ.get(DEVICES_VARIABLE, "")
    count = int(wanted) if wanted.isdigit() and int(wanted) > 0 else cpu_cores()
    jax = sys.modules.get("jax")
    if jax is None:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
        return
    if count == 1 or getattr(jax.config, "jax_num_cpu_devices", -1) != -1:
        return
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except (AttributeError, RuntimeError):  # an older jax, or its backends already exist
        if jax.default_backend() != "cpu":
            return
        warnings.warn(
            f"lossjax: jax ran before lossjax was imported, so XLA has its default CPU devices and a sweep may use "
            f"one of this machine's {count} cores; import lossjax before any jax operation, or set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={count}",
            stacklevel=3,
        )


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
