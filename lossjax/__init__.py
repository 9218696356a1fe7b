"""lossjax: train grids of small models as one compiled JAX program and measure when learning stalls.

Quick use::

    import lossjax
    ds = lossjax.run_sweep("experiments/neuron/nielsen.toml")   # or: lossjax run experiments/neuron/nielsen.toml
    ds = lossjax.load("results/nielsen")                         # an xarray.Dataset
    lossjax.summary_frame(ds)                                     # one row per run, for pandas users

Layers, lowest first; every import runs down (checked by tests/test_layers.py):

- :mod:`lossjax.host`: CPU cores, the cache folder, XLA's device setup (pure Python).
- :mod:`lossjax.core`: pure JAX numerics: losses, activations, gradient estimators, models,
  optimisers, every measured quantity (:mod:`lossjax.core.metrics`, declared once) and the
  training program (:mod:`lossjax.core.train`, one run as a pure function).
- :mod:`lossjax.io`: results on disk, atomic writes, figures and tables.
- :mod:`lossjax.data`: datasets.
- :mod:`lossjax.reports`: finds a study's report function by reference.
- :mod:`lossjax.config`: the sweep schema, declared once.
- :mod:`lossjax.runner`: compiles, chunks and shards a sweep.
- :mod:`lossjax.bench` and :mod:`lossjax.cli`.

Studies live beside their sweep files in ``experiments/<study>/``, outside the package.

``import lossjax`` exposes one XLA CPU device per core (so a sweep run from Python uses every
core, as the CLI does) unless a jax operation has already run (then it warns);
``LOSSJAX_CPU_DEVICES=N`` chooses N (see :func:`lossjax.host.use_all_cpu_cores`).
"""

from importlib import metadata as _metadata

from lossjax import host as _host

_host.use_all_cpu_cores()

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
    "summary_frame": "lossjax.io.results",
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
