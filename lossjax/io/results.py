"""Labelled results: their layout and attributes, provenance, and loading them back.

The dataset's dimensions are the sweep's axes that were given as lists, in the order
``loss, activation, hidden_activation, depth, width, optimizer, estimator, dtype, steps``
(static) then ``learning_rate``, the init axes (``init``; or ``w0``, ``b0``; or
``init_scheme``, ``init_scale``, ``init_bias``, ``init_bias_std``), ``seed``, ``target``
(batched). Axes given as a single value are scalar coordinates. Per-layer variables
(``layer_*``) add a ``layer`` dimension: layer ``i`` is hidden layer ``i`` for ``i < depth``
and layer ``depth`` is the output layer (NaN beyond it for shallower networks). Trajectories
(``traj_*``, when ``record_every > 0``) add a ``step`` dimension: the values at θ_0, θ_k, …,
θ_T. ``outcome`` holds codes with CF ``flag_values``/``flag_meanings`` attributes;
:func:`outcome_labels` turns them into names.

A results folder holds ``results.zarr`` (the store, written chunk by chunk: see
:mod:`lossjax.io.store`), ``progress/`` (its done chunks), ``provenance.json`` (timings and
machine facts), ``sweep.toml`` (the sweep as written), ``results.nc`` (netCDF-4 via h5netcdf,
one self-describing file: written at the end for small results, by :func:`save` or ``lossjax
export`` for any) and whatever a report adds: for a sweep too large to commit, its report
writes ``summary.nc``, the few counts its tables and figures are made from (:func:`save_summary`),
so that ``lossjax report`` remakes them without the results (:func:`load_summary`). Every file is written to a temporary name in the
same folder and moved into place with :func:`os.replace`, so an interruption leaves the
previous file or none, never a truncated one. :func:`load` reads the store if there is one.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lossjax.core import metrics
from lossjax.io import store as store_lib
from lossjax.io.atomic import atomic_write

RESULTS_FILE = "results.nc"
SUMMARY_FILE = "summary.nc"
#: The attribute that marks a report's summary (its value: the report that wrote it).
SUMMARY_ATTR = "lossjax_summary_of"
SWEEP_FILE = "sweep.toml"
FORMAT_VERSION = 2
class ResultsError(ValueError):
    """A results folder is missing, incomplete or corrupt."""


def layout_of(sweep, configs: Sequence, chunk: int) -> store_lib.Layout:
    """The flat layout of a sweep's results (see :mod:`lossjax.io.store`), ``chunk`` runs per chunk."""
    record_steps = None
    if sweep.record_every:
        record_steps = tuple(int(s) for s in np.arange(0, max(c.steps for c in configs) + 1, sweep.record_every))
    return store_lib.Layout(
        static=tuple((a.name, tuple(a.values), a.dim) for a in sweep.static_axes),
        batched=tuple((a.name, tuple(a.values), a.dim) for a in sweep.batched_axes),
        n_layers=max(c.model.n_layers for c in configs),
        record_steps=record_steps,
        float_dtype="float64" if any(c.dtype == "float64" for c in configs) else "float32",
        chunk=int(chunk),
    )


def data_attrs(sweep, dataset) -> dict[str, Any]:
    """The attributes that describe the data (identical on every rerun)."""
    return {
        "lossjax_format": FORMAT_VERSION,
        "name": sweep.name,
        "description": sweep.description,
        "report": sweep.report,
        "sweep": sweep.source,
        "dataset": sweep.dataset,
        "dataset_description": dataset.description,
        "n_runs": sweep.n_runs,
        "thresholds": json.dumps(_thresholds_dict(sweep.thresholds)),
    }


def provenance(devices, *, compile_time_s: float, run_time_s: float, wall_time_s: float, processes: int = 1) -> dict:
    """Timings and machine facts of a run (kept apart from the data: they change on every run)."""
    return {
        "versions": json.dumps(package_versions()),
        "backend": _backend(),
        "devices": json.dumps([str(d) for d in devices]),
        "processes": int(processes),
        "compile_time_s": float(compile_time_s),
        "run_time_s": float(run_time_s),
        "wall_time_s": float(wall_time_s),
        "peak_rss_mb": peak_rss_mb(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _thresholds_dict(thresholds) -> dict:
    return dataclasses.asdict(thresholds)


def _backend() -> str:
    import jax

    return jax.default_backend()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (NaN where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover (Windows)
        return float("nan")
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(kib / 1024 if platform.system() != "Darwin" else kib / 2**20)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("lossjax", "jax", "jaxlib", "optax", "flax", "numpy", "xarray", "h5netcdf", "zarr", "dask"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def outcome_labels(outcome: xr.DataArray) -> xr.DataArray:
    """Outcome codes as names ('converged', 'slow', 'stalled', 'diverged')."""
    names = np.asarray(metrics.OUTCOMES, dtype=object)
    return xr.apply_ufunc(lambda c: names[c.astype(int)], outcome)


def outcome_shares(ds: xr.Dataset, over: Sequence[str] | None = None) -> xr.Dataset:
    """Share of runs with each outcome, reducing the dimensions ``over`` (default: all)."""
    shares = {name: (ds.outcome == code).mean(dim=over) for code, name in enumerate(metrics.OUTCOMES)}
    return xr.Dataset(shares)


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def save(ds: xr.Dataset, folder: str | os.PathLike) -> Path:
    """Writes ``ds`` (and its sweep) to ``folder`` atomically; returns the results file's path."""
    folder = Path(folder)
    path = folder / RESULTS_FILE
    encoding = {name: {"zlib": True, "complevel": 4} for name in ds.data_vars}
    atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding))
    source = ds.attrs.get("sweep", "")
    atomic_write(folder / SWEEP_FILE, lambda tmp: tmp.write_text(source, encoding="utf-8"))
    return path


def load(folder: str | os.PathLike, lazy: bool | None = None, partial: bool = False) -> xr.Dataset:
    """Loads the results of a sweep: ``lossjax.load("results/nielsen")``.

    Args:
      folder: a results folder (or the path of a ``results.nc``). A folder's ``results.zarr``
        store is read if present, else its ``results.nc``.
      lazy: dask-backed arrays, read on demand (default: lazy when the results exceed
        :data:`lossjax.io.store.EAGER_BYTES`; netCDF files are always read whole).
      partial: accept a store whose sweep has not finished (missing runs hold NaN / -1).
    Returns:
      The :class:`xarray.Dataset`.
    Raises:
      ResultsError: the folder or file is missing, incomplete, or not lossjax results.
    """
    folder = Path(folder)
    if folder.suffix != ".nc" and (folder / store_lib.STORE).exists():
        try:
            return store_lib.Store(folder).open(lazy=lazy, partial=partial)
        except store_lib.StoreError as e:
            raise ResultsError(str(e)) from None
    path = folder if folder.suffix == ".nc" else folder / RESULTS_FILE
    if not path.parent.is_dir():
        raise ResultsError(f"no results folder {str(path.parent)!r}; run `lossjax run SPEC.toml --out {path.parent}` first")
    if not path.is_file():
        raise ResultsError(
            f"results folder {str(path.parent)!r} has no {store_lib.STORE} or {RESULTS_FILE}; it holds "
            f"{sorted(p.name for p in path.parent.iterdir())}; rerun the sweep to recreate it"
        )
    try:
        with xr.open_dataset(path, engine="h5netcdf") as opened:
            ds = opened.load()
    except Exception as e:  # h5py/netCDF raise many types for a damaged file
        raise ResultsError(f"{str(path)!r} is corrupt or not a netCDF file ({type(e).__name__}: {e}); rerun the sweep") from None
    if "lossjax_format" not in ds.attrs:
        raise ResultsError(f"{str(path)!r} is a netCDF file but not lossjax results (no 'lossjax_format' attribute)")
    return ds


def is_summary(ds: xr.Dataset) -> bool:
    """Whether ``ds`` is a report's summary (:func:`save_summary`), not the results themselves."""
    return SUMMARY_ATTR in ds.attrs


def save_summary(summary: xr.Dataset, results: xr.Dataset, folder: str | os.PathLike, report: str) -> Path:
    """Writes a report's summary of ``results`` to ``folder/summary.nc`` (compressed netCDF).

    The summary keeps the results' attributes (the sweep, its thresholds, timings and machine)
    and is marked with ``report``, the name of the report that reduced the results to it; that
    report remakes its tables and figures from it alone (``lossjax report`` reads it when the
    folder has no results). Returns the file's path.
    """
    path = Path(folder) / SUMMARY_FILE
    out = summary.copy()
    out.attrs = {**results.attrs, SUMMARY_ATTR: report}
    encoding = {name: {"zlib": True, "complevel": 9, "shuffle": True} for name in out.data_vars}
    atomic_write(path, lambda tmp: out.to_netcdf(tmp, engine="h5netcdf", encoding=encoding))
    return path


def load_summary(folder: str | os.PathLike) -> xr.Dataset:
    """The summary a report wrote into ``folder`` (see :func:`save_summary`); raises :class:`ResultsError`."""
    path = Path(folder) / SUMMARY_FILE
    if not path.is_file():
        raise ResultsError(f"{str(folder)!r} has no {SUMMARY_FILE}")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as opened:
            ds = opened.load()
    except Exception as e:  # h5py/netCDF raise many types for a damaged file
        raise ResultsError(f"{str(path)!r} is corrupt or not a netCDF file ({type(e).__name__}: {e})") from None
    if not is_summary(ds):
        raise ResultsError(f"{str(path)!r} is not a lossjax report summary (no {SUMMARY_ATTR!r} attribute)")
    return ds


def summary_frame(ds: xr.Dataset):
    """The per-run results as a :class:`pandas.DataFrame`: one row per run, one column per result.

    ``ds.to_dataframe()`` repeats every per-run value on each trajectory step and layer; this
    keeps the per-run variables only (trajectories ``traj_*`` are left out), indexes the rows by
    the sweep's dimensions, and spreads a per-layer variable over columns ``<name>[<layer>]``.
    ``outcome`` is given by name.
    """
    import pandas as pd

    dims = [d for d in ds.dims if d not in ("step", "layer")]
    columns = {}
    for name, var in ds.data_vars.items():
        if "step" in var.dims:
            continue
        if "layer" in var.dims:
            for i in range(ds.sizes["layer"]):
                columns[f"{name}[{i}]"] = var.isel(layer=i, drop=True)
        elif name == "outcome":
            columns[name] = outcome_labels(var)
        else:
            columns[name] = var
    flat = xr.Dataset(columns)
    if not dims:
        return pd.DataFrame({k: [v.values.item()] for k, v in flat.data_vars.items()})
    frame = flat.to_dataframe()
    return frame[[c for c in columns if c in frame.columns]]
