"""Several processes on one sweep: ``jax.distributed`` joins them; each trains its share of chunks.

A sweep's runs are independent, so the processes need no collectives to train: process ``i`` of
``N`` takes every chunk ``k`` (numbered program-major over the sweep) with ``k % N == i``, trains
it on its own devices and writes its region of the shared results store. ``jax.distributed``
(gloo CPU collectives; NCCL on GPU) gives each process its index and count, and the two
barriers: once the store exists (process 0 creates it) and when every chunk is written
(process 0 then writes the provenance, the netCDF export and the report, and hosts the
coordinator, so it is the last to leave).

Ways to start the processes:

- ``lossjax run SPEC --processes N`` starts N local processes (:func:`spawn`), coordinator on
  localhost, each with its share of the CPU cores;
- on a cluster the scheduler starts them (``srun``, ``mpirun``, a job array): ``--distributed``
  lets ``jax.distributed.initialize()`` detect the coordinator, count and index (SLURM, Open
  MPI), or ``--coordinator HOST:PORT --num-processes N --process-id I`` (or the variables
  ``LOSSJAX_COORDINATOR``, ``LOSSJAX_NUM_PROCESSES``, ``LOSSJAX_PROCESS_ID``) give them. The
  results folder must be on a file system every process sees.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from lossjax import host

#: Environment variables read by :func:`initialize` when no flags are given.
ENV = {"coordinator": "LOSSJAX_COORDINATOR", "num_processes": "LOSSJAX_NUM_PROCESSES", "process_id": "LOSSJAX_PROCESS_ID"}
#: How long a process waits at a barrier for the others (the slowest share of a long sweep).
BARRIER_TIMEOUT_S = 7 * 24 * 3600

_state = {"joined": False}


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               auto: bool = False) -> bool:
    """Joins this process to the others (``jax.distributed.initialize``); False when alone.

    Flags win over the ``LOSSJAX_*`` variables; ``auto`` lets jax detect the cluster (SLURM,
    Open MPI). Must run before jax creates its backends.
    """
    coordinator = coordinator or os.environ.get(ENV["coordinator"]) or None
    if num_processes is None and os.environ.get(ENV["num_processes"]):
        num_processes = int(os.environ[ENV["num_processes"]])
    if process_id is None and os.environ.get(ENV["process_id"]):
        process_id = int(os.environ[ENV["process_id"]])
    if not auto and coordinator is None:
        return False
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if auto and coordinator is None:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
    _state["joined"] = True
    return True


def index() -> int:
    """This process's index (0 when alone)."""
    if not _state["joined"]:
        return 0
    import jax

    return jax.process_index()


def count() -> int:
    """The number of processes (1 when alone)."""
    if not _state["joined"]:
        return 1
    import jax

    return jax.process_count()


def barrier(name: str) -> None:
    """Waits until every process has reached the barrier ``name`` (nothing when alone)."""
    if count() == 1:
        return
    from jax._src import distributed as jax_distributed

    client = getattr(jax_distributed.global_state, "client", None)
    if client is not None and hasattr(client, "wait_at_barrier"):
        client.wait_at_barrier(f"lossjax-{name}", BARRIER_TIMEOUT_S * 1000)
    else:  # pragma: no cover (older jax): a collective over every device
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv: list[str], n: int, quiet: bool = False) -> int:
    """Runs ``lossjax`` with ``argv`` in ``n`` local processes joined through a coordinator on
    localhost; returns the worst exit code. Each process gets ``cores // n`` XLA CPU devices.
    Process 0 shows the progress; Ctrl-C reaches every process (same process group)."""
    port = free_port()
    devices = max(1, host.cpu_cores() // n)
    children = []
    for i in range(n):
        env = dict(os.environ, **{host.DEVICES_VARIABLE: str(devices), ENV["coordinator"]: f"localhost:{port}",
                                  ENV["num_processes"]: str(n), ENV["process_id"]: str(i)})
        if "xla_force_host_platform_device_count" in env.get("XLA_FLAGS", ""):
            del env["XLA_FLAGS"]  # the device count comes from LOSSJAX_CPU_DEVICES
        extra = ["--quiet"] if (i > 0 or quiet) and "--quiet" not in argv else []
        children.append(subprocess.Popen([sys.executable, "-m", "lossjax.cli", *argv, *extra], env=env))
    codes = []
    try:
        for child in children:
            codes.append(child.wait())
    except KeyboardInterrupt:
        for child in children:  # they got the SIGINT too; wait for their messages
            try:
                codes.append(child.wait(timeout=30))
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGKILL)
                codes.append(130)
        return 130
    return next((c for c in codes if c != 0), 0)
