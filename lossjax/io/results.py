"""Labelled results: assemble an :class:`xarray.Dataset`, save it atomically, load it back.

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

A results folder holds ``results.nc`` (netCDF-4 via h5netcdf: self-describing, no pickle),
``sweep.toml`` (the sweep as written) and whatever a report adds (figures, tables). Every file
is written to a temporary name in the same folder and moved into place with
:func:`os.replace`, so an interruption leaves the previous file or none, never a truncated one.
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
from lossjax.io.atomic import atomic_write

RESULTS_FILE = "results.nc"
SWEEP_FILE = "sweep.toml"
FORMAT_VERSION = 1

#: How each kind of quantity (see :class:`lossjax.core.metrics.Quantity`) is stored, and its fill
#: value where a run has no value (a layer beyond a shallower network's depth).
STORAGE = {"count": np.int32, "step": np.int32, "flag": np.int8, "outcome": np.int8}
FILL = {"real": np.nan, "count": metrics.NEVER, "step": metrics.NEVER, "flag": 0, "outcome": -1}


def attributes(q: metrics.Quantity) -> dict[str, Any]:
    """The netCDF attributes of a result variable: its description, and its codes."""
    attrs: dict[str, Any] = {"description": q.doc}
    if q.kind == "outcome":
        attrs.update(flag_values=np.arange(len(metrics.OUTCOMES), dtype=np.int8), flag_meanings=" ".join(metrics.OUTCOMES))
    if q.kind == "step":
        attrs["never"] = metrics.NEVER
    return attrs


class ResultsError(ValueError):
    """A results folder is missing, incomplete or corrupt."""


def assemble(sweep, results: Sequence, *, dataset, devices, wall_time_s: float) -> xr.Dataset:
    """Builds the labelled dataset from per-combination host results (see module docstring)."""
    static_axes = sweep.static_axes
    batched_axes = sweep.batched_axes
    batched_shape = tuple(len(a.values) for a in batched_axes)
    static_shape = tuple(len(a.values) for a in static_axes)
    n_layers = max(r.config.model.n_layers for r in results)
    any_f64 = any(r.config.dtype == "float64" for r in results)
    float_dtype = np.float64 if any_f64 else np.float32

    def static_index(combo):
        return tuple(a.values.index(combo[a.name]) for a in static_axes)

    data_vars: dict[str, Any] = {}
    dims = [a.name for a in static_axes] + [a.name for a in batched_axes]
    for q in metrics.RESULTS:
        shape = static_shape + batched_shape + ((n_layers,) if q.per_layer else ())
        array = np.full(shape, FILL[q.kind], float_dtype if q.kind == "real" else STORAGE[q.kind])
        for r in results:
            value = np.asarray(r.summary[q.name])
            if q.per_layer:
                value = value.reshape(batched_shape + (value.shape[-1],))
                array[static_index(r.combo) + (Ellipsis, slice(0, value.shape[-1]))] = value
            else:
                array[static_index(r.combo)] = value.reshape(batched_shape).astype(array.dtype)
        data_vars[q.name] = (dims + (["layer"] if q.per_layer else []), array, attributes(q))

    record_steps = None
    if any(r.trajectory is not None for r in results):
        every = sweep.record_every
        max_steps = max(r.config.steps for r in results)
        record_steps = np.arange(0, max_steps + 1, every)
        for q in metrics.OBSERVED:
            field = q.name
            sample = next(r.trajectory[field] for r in results)
            per_layer = sample.ndim == 3
            shape = static_shape + batched_shape + (len(record_steps),) + ((n_layers,) if per_layer else ())
            array = np.full(shape, np.nan, float_dtype)
            for r in results:
                value = np.asarray(r.trajectory[field]).astype(float_dtype)
                value = value.reshape(batched_shape + value.shape[1:])
                index = static_index(r.combo) + (Ellipsis, slice(0, value.shape[len(batched_shape)]))
                if per_layer:
                    index = index + (slice(0, value.shape[-1]),)
                array[index] = value
            var_dims = dims + ["step"] + (["layer"] if per_layer else [])
            data_vars[f"traj_{field}"] = (var_dims, array, {"description": q.doc})

    coords: dict[str, Any] = {}
    for a in static_axes + batched_axes:
        if a.name == "init":
            labels = [f"w={w:g},b={b:g}" for w, b in a.values]
            coords["init"] = ("init", labels)
            coords["init_w"] = ("init", np.asarray([w for w, _ in a.values]))
            coords["init_b"] = ("init", np.asarray([b for _, b in a.values]))
        else:
            coords[a.name] = (a.name, list(a.values))
    coords["layer"] = ("layer", np.arange(n_layers))
    if record_steps is not None:
        coords["step"] = ("step", record_steps)
    ds = xr.Dataset(data_vars, coords=coords)
    # Axes given as single values: drop the length-1 dimension, keep a scalar coordinate.
    scalar = [a.name for a in static_axes + batched_axes if not a.dim]
    ds = ds.squeeze(scalar, drop=False)
    if n_layers == 1:
        ds = ds.squeeze("layer", drop=True)
    ds.attrs = {
        "lossjax_format": FORMAT_VERSION,
        "name": sweep.name,
        "description": sweep.description,
        "report": sweep.report,
        "sweep": sweep.source,
        "dataset": sweep.dataset,
        "dataset_description": dataset.description,
        "n_runs": sweep.n_runs,
        "versions": json.dumps(package_versions()),
        "backend": _backend(),
        "devices": json.dumps([str(d) for d in devices]),
        "compile_time_s": float(sum(r.compile_time_s for r in results)),
        "run_time_s": float(sum(r.run_time_s for r in results)),
        "wall_time_s": float(wall_time_s),
        "peak_rss_mb": peak_rss_mb(),
        "thresholds": json.dumps(_thresholds_dict(sweep.thresholds)),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return ds


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
    for name in ("lossjax", "jax", "jaxlib", "optax", "flax", "numpy", "xarray", "h5netcdf"):
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


def load(folder: str | os.PathLike) -> xr.Dataset:
    """Loads the results of a sweep: ``lossjax.load("results/nielsen")``.

    Args:
      folder: a results folder (or the path of its ``results.nc``).
    Returns:
      The :class:`xarray.Dataset`, fully in memory (the file is closed).
    Raises:
      ResultsError: the folder or file is missing, or the file is not lossjax results.
    """
    folder = Path(folder)
    path = folder if folder.suffix == ".nc" else folder / RESULTS_FILE
    if not path.parent.is_dir():
        raise ResultsError(f"no results folder {str(path.parent)!r}; run `lossjax run SPEC.toml --out {path.parent}` first")
    if not path.is_file():
        raise ResultsError(
            f"results folder {str(path.parent)!r} has no {RESULTS_FILE}; it holds "
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
