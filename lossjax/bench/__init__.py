"""``lossjax bench``: the engine timed against plain baselines in one run.

Modules, each importing only those above it:

- :mod:`~lossjax.bench.workloads`: the three workloads (a grid of the texts' single sigmoid
  neuron, a batch of small XOR MLPs, and a batch of wider MLPs on a teacher task), their sizes,
  and their sweep dicts for the engine.
- :mod:`~lossjax.bench.blocks`: running a baseline over cache-sized blocks of models.
- :mod:`~lossjax.bench.neuron_baselines`, :mod:`~lossjax.bench.mlp_baselines`: the same
  workloads written by hand in numpy, PyTorch (``torch`` and ``torch.func.vmap``) and as a
  per-model Python loop.
- :mod:`~lossjax.bench.figure`: the table and the bar chart.
- :mod:`~lossjax.bench.harness`: the lossjax rows (:func:`lossjax.run_sweep`), the timing of
  every row, and the ``lossjax bench`` command (:func:`~lossjax.bench.harness.main`).
"""

from lossjax.bench import harness
from lossjax.bench.figure import format_table, plot_bench
from lossjax.bench.harness import EngineRun, Row, lossjax_mlp, lossjax_neuron, machine_info, main, run_bench
from lossjax.bench.mlp_baselines import mlp_numpy, mlp_python_loop, mlp_torch, mlp_torch_vmap
from lossjax.bench.neuron_baselines import neuron_numpy, neuron_python_loop, neuron_torch, neuron_torch_vmap
from lossjax.bench.workloads import (
    FULL,
    MLP,
    MLP_METRICS,
    MLP_SPECS,
    MLP_WIDE,
    NEURON,
    NEURON_METRICS,
    QUICK,
    THRESHOLDS,
    WORKLOADS,
    MLPProblem,
    MLPSpec,
    NeuronSpec,
    mlp_problem,
    mlp_sweep,
    neuron_grid,
    neuron_sweep,
)

__all__ = [
    "EngineRun",
    "FULL",
    "MLP",
    "MLPProblem",
    "MLPSpec",
    "MLP_METRICS",
    "MLP_SPECS",
    "MLP_WIDE",
    "NEURON",
    "NEURON_METRICS",
    "NeuronSpec",
    "QUICK",
    "Row",
    "THRESHOLDS",
    "WORKLOADS",
    "format_table",
    "harness",
    "lossjax_mlp",
    "lossjax_neuron",
    "machine_info",
    "main",
    "mlp_numpy",
    "mlp_problem",
    "mlp_python_loop",
    "mlp_sweep",
    "mlp_torch",
    "mlp_torch_vmap",
    "neuron_grid",
    "neuron_numpy",
    "neuron_python_loop",
    "neuron_sweep",
    "neuron_torch",
    "neuron_torch_vmap",
    "plot_bench",
    "run_bench",
]
