#!/usr/bin/env bash
# The GPU checks of results/bench_gpu in one go, for a machine whose jax sees a GPU.
#
# Usage (from the repository's root, lossjax importable):
#
#     bash experiments/bench/gpu_check.sh OUT_FOLDER [PYTEST_SECONDS]
#
# Writes into OUT_FOLDER:
# - machine_and_tf32.txt: the GPU, the versions, and float32 products at XLA's default precision
#   against "highest";
# - block_budget.txt: the engine's training seconds by block budget;
# - bench.json, bench.png, bench.txt: `lossjax bench` (torch rows on CUDA when torch sees the GPU);
# - tests.txt: the test suite, from the root, one line per test (stopped after PYTEST_SECONDS,
#   default 400, so that a limited lease still returns what ran).
set -uo pipefail
out=${1:?usage: bash experiments/bench/gpu_check.sh OUT_FOLDER [PYTEST_SECONDS]}
seconds=${2:-400}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
{
  nvidia-smi -L
  python3 -c "import jax, numpy; print('jax', jax.__version__, jax.devices(), 'numpy', numpy.__version__)"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || true
  python3 experiments/bench/matmul_precision.py
} > "$out/machine_and_tf32.txt" 2>&1
python3 experiments/bench/block_budget.py 16 64 256 1024 > "$out/block_budget.txt" 2>&1
python3 -m lossjax.cli bench --json "$out/bench.json" --figure "$out/bench.png" 2>&1 | grep -v "^timing " > "$out/bench.txt"
timeout "$seconds" python3 -m pytest -v -n 8 -p no:cacheprovider -rfE --tb=short > "$out/tests.txt" 2>&1
grep -E "passed|failed" "$out/tests.txt" | tail -1
