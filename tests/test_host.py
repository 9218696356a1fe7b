"""XLA's CPU devices: ``import lossjax`` gives one per core whether or not jax came first.

Each case runs in a fresh interpreter (the device count is fixed once per process); the
expected counts are what the environment asks for, not what lossjax computes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _devices(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "LOSSJAX_CPU_DEVICES")}
    environ.update(env, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120)


@pytest.mark.parametrize("order", ["lossjax first", "jax first"])
def test_one_device_per_requested_core(order):
    imports = "import lossjax, jax" if order == "lossjax first" else "import jax, lossjax"
    done = _devices(f"{imports}; print(len(jax.devices()))", LOSSJAX_CPU_DEVICES="3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3"]


def test_explicit_xla_flag_wins():
    done = _devices("import lossjax, jax; print(len(jax.devices()))",
                    LOSSJAX_CPU_DEVICES="3", XLA_FLAGS="--xla_force_host_platform_device_count=5")
    assert done.stdout.split() == ["5"], done.stderr


def test_after_a_jax_operation_a_warning_names_the_fix():
    code = "import jax; jax.numpy.zeros(1).block_until_ready(); import lossjax; print(len(jax.devices()))"
    done = _devices(code, LOSSJAX_CPU_DEVICES="3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]
    assert "import lossjax before any jax operation" in done.stderr
    assert "--xla_force_host_platform_device_count=3" in done.stderr
