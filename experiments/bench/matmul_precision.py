"""float32 matrix products on jax's default device: XLA's default precision against ``precision="highest"``.

Usage: ``python experiments/bench/matmul_precision.py``. Multiplies two float32 512 × 512 matrices
of standard normal entries and prints, for each precision, the largest entry error against float64
numpy over the largest entry. On a CPU both are float32 arithmetic (1.12e-6 both on the 2-core
CPU); on an NVIDIA GPU XLA's default is TF32 (H200: 2.93e-4 against 2.87e-7 at "highest"),
which is why lossjax traces its programs under
``jax.default_matmul_precision("highest")`` (``lossjax.core.train.MATMUL_PRECISION``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def main() -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((512, 512)).astype(np.float32) for _ in range(2))
    exact = a.astype(np.float64) @ b.astype(np.float64)

    def error(out) -> float:
        return float(np.abs(np.asarray(out, np.float64) - exact).max() / np.abs(exact).max())

    for precision in (None, "highest"):
        out = jax.jit(lambda x, y, p=precision: jnp.matmul(x, y, precision=p))(a, b)
        print(f"float32 512x512 matmul, precision={precision}: max |error| / max |exact| = {error(out):.2e}")
    with jax.default_matmul_precision("highest"):
        out = jax.jit(lambda x, y: x @ y)(a, b)
    print(f"under jax.default_matmul_precision('highest'): {error(out):.2e}")


if __name__ == "__main__":
    main()
