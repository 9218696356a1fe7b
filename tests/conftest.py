"""Shared pytest configuration, in the style of Equinox's strict test harness.

- Four host CPU devices (``--xla_force_host_platform_device_count=4``), so the sharded path of
  the runner is exercised on any machine; set before jax is imported.
- float64 enabled: the reference comparisons need it. lossjax code is dtype-explicit, so float32
  runs stay float32 (tests check the dtypes of results).
- ``jax_numpy_dtype_promotion = "strict"``: a silent promotion (bfloat16 + float32 → float32,
  float32 + float64 → float64) raises instead of changing a result; a study of low-precision
  stalls must not promote by accident. ``jax_numpy_rank_promotion = "raise"``: so does a
  broadcast between arrays of different ranks.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
