"""Shared pytest configuration: float64 is needed by the reference comparisons."""

import jax

jax.config.update("jax_enable_x64", True)
