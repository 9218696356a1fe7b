"""Shared pytest configuration.

- Four host CPU devices (``--xla_force_host_platform_device_count=4``), so the sharded path of
  the runner is exercised on any machine; set before jax is imported.
- float64 enabled: the reference comparisons need it. lossjax code is dtype-explicit, so float32
  runs stay float32 (tests check the dtypes of results).
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
