"""lossjax: train grids of small models as one compiled JAX program and measure when learning stalls.

Quick use::

    import lossjax
    ds = lossjax.run_sweep("experiments/neuron/nielsen.toml")   # or: lossjax run experiments/neuron/nielsen.toml
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

# Public names, imported lazily so that `import lossjax` (and the CLI) can configure XLA before
# jax is first imported.
_EXPORTS = {
    "NEVER": "lossjax.core.metrics",
    "OUTCOMES": "lossjax.core.metrics",
    "Thresholds": "lossjax.core.metrics",
    "ResultsError": "lossjax.io.results",
    "load": "lossjax.io.results",
    "save": "lossjax.io.results",
    "outcome_labels": "lossjax.io.results",
    "outcome_shares": "lossjax.io.results",
    "run_sweep": "lossjax.runner",
    "Sweep": "lossjax.config",
    "SweepError": "lossjax.config",
    "load_sweep": "lossjax.config",
    "parse_sweep": "lossjax.config",
}

try:
    __version__ = _metadata.version("lossjax")
except _metadata.PackageNotFoundError:  # pragma: no cover
    __version__ = "0+unknown"

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lossjax' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
