"""Shape and dtype checks shared by the elementwise losses and the batch objectives."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check(name: str, a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ: {a.shape} vs {b.shape} (no broadcasting)")
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise ValueError(f"{name}: predictions must be floating point, got {a.dtype}")
    return a, b


def _acc_dtype(dtype) -> jnp.dtype:
    """Where counts and sums accumulate: float32, or float64 for float64 inputs (no promotion
    rule involved, so it holds under ``jax_numpy_dtype_promotion = "strict"``)."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


# --------------------------------------------------------------------------------------
# Elementwise losses.
# --------------------------------------------------------------------------------------


