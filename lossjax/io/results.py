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

import contextlib
import dataclasses
import datetime
import json
import os
import platform
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lossjax.core import metrics

RESULTS_FILE = "results.nc"
SWEEP_FILE = "sweep.toml"
FORMAT_VERSION = 1

#: One-line description of every variable (the definitions are in :mod:`lossjax.metrics`).
VARIABLE_DOCS = {
    "loss_initial": "loss L_0 at the initial parameters",
    "loss_final": "loss L_T after the last of T updates (whole training set)",
    "loss_min": "minimum loss over steps 0..T",
    "output_initial": "mean output a of the first output unit at θ_0",
    "output_final": "mean output a of the first output unit at θ_T",
    "error_final": "mean |a − y| at θ_T",
    "accuracy_final": "training accuracy at θ_T",
    "test_loss": "test loss at θ_T (NaN without a test set)",
    "test_accuracy": "test accuracy at θ_T (NaN without a test set)",
    "steps_to_target": "first step t at which the target is reached; -1: never",
    "zero_grad_steps": "update steps whose gradient is exactly 0 in every parameter",
    "tiny_grad_steps": "update steps whose gradient norm is below tiny_grad",
    "saturated_init": "fraction of units saturated at θ_0",
    "saturated_final": "fraction of units saturated at θ_T",
    "saturated_mean": "fraction of units saturated, averaged over update steps",
    "dead_init": "fraction of units dead at θ_0",
    "dead_final": "fraction of units dead at θ_T",
    "born_dead": "1 if the output is the same for every training input at θ_0",
    "longest_plateau": "longest run of steps with relative improvement < plateau_tau before the target",
    "first_nonfinite": "first step with a NaN/inf loss or parameter; -1: never",
    "outcome": "converged, slow, stalled or diverged (codes; see flag_meanings)",
    "layer_saturated_init": "per layer: fraction of saturated units at θ_0",
    "layer_saturated_final": "per layer: fraction of saturated units at θ_T",
    "layer_saturated_mean": "per layer: fraction of saturated units, averaged over update steps",
    "layer_dead_init": "per layer: fraction of dead units at θ_0",
    "layer_dead_final": "per layer: fraction of dead units at θ_T",
    "layer_dormant_init": "per layer: fraction of τ-dormant units at θ_0 (Sokar et al. 2023)",
    "layer_dormant_final": "per layer: fraction of τ-dormant units at θ_T",
    "layer_grad_norm_init": "per layer: 2-norm of the weights' gradient at θ_0",
    "layer_grad_norm_mean": "per layer: 2-norm of the weights' gradient, averaged over update steps",
    "layer_grad_norm_final": "per layer: 2-norm of the weights' gradient at θ_T",
}
TRAJECTORY_DOCS = {
    "loss": "loss L_t",
    "error": "mean |a − y|",
    "accuracy": "accuracy",
    "grad_norm": "gradient 2-norm over all parameters",
    "grad_is_zero": "1 if the gradient is exactly 0 in every parameter",
    "finite": "1 if the loss and every parameter are finite",
    "output": "mean output a of the first output unit",
    "logit": "mean pre-activation z of the first output unit",
    "grad_w": "dC/dw of the output layer's first weight",
    "grad_b": "dC/db of the output layer's first bias",
    "layer_grad_norm": "per layer: 2-norm of the weights' gradient",
    "layer_saturated": "per layer: fraction of saturated units",
    "layer_dead": "per layer: fraction of dead units",
    "layer_dormant": "per layer: fraction of τ-dormant units",
    "layer_act_mean": "per layer: mean activation over batch and units",
    "layer_act_std": "per layer: standard deviation of the activations",
}
INT_FIELDS = {"steps_to_target", "zero_grad_steps", "tiny_grad_steps", "longest_plateau", "first_nonfinite"}


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
    for field, doc in VARIABLE_DOCS.items():
        per_layer = field.startswith("layer_")
        shape = static_shape + batched_shape + ((n_layers,) if per_layer else ())
        if field == "outcome":
            array = np.full(shape, -1, np.int8)
        elif field == "born_dead":
            array = np.zeros(shape, np.int8)
        elif field in INT_FIELDS:
            array = np.full(shape, metrics.NEVER, np.int32)
        else:
            array = np.full(shape, np.nan, float_dtype)
        for r in results:
            value = np.asarray(r.summary[field])
            if per_layer:
                value = value.reshape(batched_shape + (value.shape[-1],))
                array[static_index(r.combo) + (Ellipsis, slice(0, value.shape[-1]))] = value
            else:
                array[static_index(r.combo)] = value.reshape(batched_shape).astype(array.dtype)
        var_dims = dims + (["layer"] if per_layer else [])
        attrs = {"description": doc}
        if field == "outcome":
            attrs.update(flag_values=np.arange(len(metrics.OUTCOMES), dtype=np.int8), flag_meanings=" ".join(metrics.OUTCOMES))
        if field in INT_FIELDS and field in ("steps_to_target", "first_nonfinite"):
            attrs["never"] = metrics.NEVER
        data_vars[field] = (var_dims, array, attrs)

    record_steps = None
    if any(r.trajectory is not None for r in results):
        every = sweep.record_every
        max_steps = max(r.config.steps for r in results)
        record_steps = np.arange(0, max_steps + 1, every)
        for field, doc in TRAJECTORY_DOCS.items():
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
            data_vars[f"traj_{field}"] = (var_dims, array, {"description": doc})

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


def atomic_write(path: Path, write) -> None:
    """Calls ``write(tmp_path)`` then moves the temporary file onto ``path``.

    The temporary file lives in the same folder (so :func:`os.replace` is atomic) and is
    removed if writing fails or is interrupted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
