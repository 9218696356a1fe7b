"""lossjax: train grids of small models as one compiled JAX program and measure when learning stalls.

Quick use::

    import lossjax
    ds = lossjax.run_sweep("experiments/nielsen.toml")   # or: lossjax run experiments/nielsen.toml
    ds = lossjax.load("results/nielsen")                  # an xarray.Dataset
    ds.to_dataframe()                                      # for pandas users

Modules: :mod:`~lossjax.losses`, :mod:`~lossjax.activations`, :mod:`~lossjax.models`,
:mod:`~lossjax.optimizers`, :mod:`~lossjax.datasets`, :mod:`~lossjax.metrics` (every measured
quantity, defined once), :mod:`~lossjax.train` (one run as a pure function),
:mod:`~lossjax.sweep` (sweep files), :mod:`~lossjax.runner` (compile, chunk, shard),
:mod:`~lossjax.results` (labelled results on disk), :mod:`~lossjax.reports` and
:mod:`~lossjax.plots` (figures), :mod:`~lossjax.bench`, :mod:`~lossjax.cli`.
"""

from importlib import metadata as _metadata

from lossjax.metrics import NEVER, OUTCOMES, Thresholds
from lossjax.results import ResultsError, load, outcome_labels, outcome_shares, save
from lossjax.runner import run_sweep
from lossjax.sweep import Sweep, SweepError, load_sweep, parse_sweep

try:
    __version__ = _metadata.version("lossjax")
except _metadata.PackageNotFoundError:  # pragma: no cover
    __version__ = "0+unknown"

__all__ = [
    "NEVER",
    "OUTCOMES",
    "ResultsError",
    "Sweep",
    "SweepError",
    "Thresholds",
    "load",
    "load_sweep",
    "outcome_labels",
    "outcome_shares",
    "parse_sweep",
    "run_sweep",
    "save",
]
