"""Reports of the MLP study (issue 5), registered in :mod:`lossjax.reports`.

Four experiments, each a sweep file in ``experiments/``:

- ``mlp_depth``: depth × hidden activation × loss on MNIST-1D: per-layer gradient-norm profile
  at init and over training, stall rate and test accuracy per cell;
- ``mlp_glorot``: Glorot & Bengio (2010), Figure 2: per-layer activation mean/std over training
  of a 4-hidden-layer sigmoid net with the "standard" init, against the normalised init and tanh;
- ``mlp_dying_relu``: Lu, Shin, Su & Karniadakis (2020): share of ReLU networks born dead by
  width and depth, zero / random / shifted biases;
- ``mlp_phase``: init scale × depth stall-rate map for sigmoid, tanh and ReLU.

The pure helpers (no I/O) come first; the report functions (figures, tables) after them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from lossjax import plots
from lossjax.reports import register


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------


def single_input_dead_probability(width: int | np.ndarray, depth: int | np.ndarray) -> np.ndarray:
    """P(a zero-bias ReLU net of ``depth`` hidden layers of ``width`` units outputs 0 at one input x ≠ 0).

    With zero biases and weights drawn from a continuous distribution symmetric about 0, a
    hidden layer fed a non-zero vector h gives pre-activations w_j·h that are independent
    across units and positive or negative with probability ½ each, so the whole layer is zero
    with probability 2^-width, and the net is zero at x once any of its ``depth`` layers is:
    ``1 − (1 − 2^-width)^depth``. A net is born dead only if its output is constant over the
    whole input set; with zero biases it is positively homogeneous, so constant means 0
    everywhere, hence zero at any one input: this probability is an *upper bound* on the
    born-dead probability over many inputs (tight for one input; derived here, not quoted
    from Lu et al.).
    """
    width = np.asarray(width, dtype=float)
    depth = np.asarray(depth, dtype=float)
    return 1.0 - (1.0 - 2.0 ** (-width)) ** depth


def stall_share(ds: xr.Dataset, over) -> xr.DataArray:
    """Share of runs whose outcome is ``stalled`` (code 2), reducing the dimensions ``over``."""
    from lossjax import metrics

    return (ds.outcome == metrics.STALLED).mean(dim=over)


def _dims(ds: xr.Dataset, names) -> list[str]:
    return [n for n in names if n in ds.dims]


@register("mlp_depth", "MLP study: depth × activation × loss on MNIST-1D (gradient profiles, stalls)")
def report_depth(ds: xr.Dataset, folder: Path) -> list[Path]:
    return []


@register("mlp_glorot", "MLP study: Glorot & Bengio 2010 Fig. 2, per-layer activations over training")
def report_glorot(ds: xr.Dataset, folder: Path) -> list[Path]:
    return []


@register("mlp_dying_relu", "MLP study: born-dead ReLU networks by width and depth (Lu et al. 2020)")
def report_dying_relu(ds: xr.Dataset, folder: Path) -> list[Path]:
    return []


@register("mlp_phase", "MLP study: init scale × depth stall-rate map for sigmoid, tanh, ReLU")
def report_phase(ds: xr.Dataset, folder: Path) -> list[Path]:
    return []
