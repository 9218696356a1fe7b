"""The results store: a sweep's results streamed to disk chunk by chunk, resumable, lazy to read.

Why Zarr (v3, through xarray): a sweep's results are a few dozen arrays over the runs of each
compiled program, written in pieces by one or many processes and read whole or in slices.
Zarr keeps each array as independently written, compressed chunk files plus JSON metadata
(self-describing: names, dtypes, attributes), so a finished chunk of runs is a handful of
small files written once and never rewritten; two processes writing different chunks never
touch the same file (no locks), and xarray/dask open the store lazily, so a notebook reduces
10^8 runs without loading them. netCDF-4/HDF5 would need one writer at a time (HDF5 has no
concurrent writes without MPI-IO) and rewrites shared metadata; a folder of ``.npy`` pieces
would need our own format description. ``results.nc`` stays as a one-file export.

Layout of ``results.zarr`` (the *flat* layout): every variable has dimensions
``(program, run[, step][, layer])``: ``program`` is the index of a static combination (C order
over the static axes), ``run`` the row of the batched grid (C order over the batched axes).
Zarr chunks are ``(1, chunk)`` along them, one per chunk of the sweep, so the region a chunk
writes is exactly its own files. A :class:`Layout` (JSON in the store's attributes) holds the
axes and their values; :func:`labelled` turns the flat arrays (numpy or dask) into the labelled
dataset of :mod:`lossjax.io.results`, by reshaping, with no copy.

Beside the store, ``progress/`` holds one marker per finished chunk (``p<program>-c<chunk>.json``,
written atomically after the chunk's data are on disk and synced): together they are the
manifest of done chunks. Markers, not one manifest file, because several processes finish
chunks at once and each creates its own file, with no read-modify-write race. A chunk whose
marker is missing is trained again, so a chunk cut off half-written is simply rewritten.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lossjax.core import metrics, summaries
from lossjax.io.atomic import atomic_write

STORE = "results.zarr"
PROGRESS = "progress"
PROVENANCE = "provenance.json"
#: A store below this size is loaded into memory by :func:`open_store` (above: lazily, dask).
EAGER_BYTES = 256 << 20

#: How each kind of quantity (see :class:`lossjax.core.metrics.Quantity`) is stored, and its fill
#: value where a run has no value (a layer beyond a shallower network's depth).
STORAGE = {"count": np.int32, "step": np.int32, "flag": np.int8, "probe": np.int8, "outcome": np.int8, "code": np.int8}
FILL = {"real": np.nan, "count": metrics.NEVER, "step": metrics.NEVER, "flag": 0, "probe": metrics.NOT_PROBED,
        "outcome": -1, "code": -1}


def attributes(q: metrics.Quantity) -> dict[str, Any]:
    """The attributes of a result variable: its description, and its codes."""
    attrs: dict[str, Any] = {"description": q.doc}
    if q.kind in ("outcome", "code"):
        names = metrics.CODES[q.name]
        attrs.update(flag_values=np.arange(len(names), dtype=np.int8), flag_meanings=" ".join(names))
    if q.kind == "step":
        attrs["never"] = metrics.NEVER
    if q.kind == "probe":
        attrs.update(flag_values=np.asarray([metrics.NOT_PROBED, 0, 1], np.int8), flag_meanings="not_probed no yes")
    return attrs


@dataclasses.dataclass(frozen=True)
class Layout:
    """What the flat arrays mean: the axes, the programs' shapes and the chunking.

    Attributes:
      static, batched: ``(name, values, dim)`` of each static / batched axis, in results order.
      n_layers: layers of the deepest program (the ``layer`` dimension).
      record_steps: the recorded steps (``step`` coordinate), or ``None`` without trajectories.
      float_dtype: ``"float32"`` or ``"float64"`` (float64 if any program runs in float64).
      chunk: runs per chunk (a chunk is a contiguous range of one program's runs).
    """

    static: tuple[tuple[str, tuple, bool], ...]
    batched: tuple[tuple[str, tuple, bool], ...]
    n_layers: int
    record_steps: tuple[int, ...] | None
    float_dtype: str
    chunk: int

    @property
    def n_programs(self) -> int:
        return math.prod(len(v) for _, v, _ in self.static)

    @property
    def n_runs(self) -> int:
        """Runs per program (the batched grid)."""
        return math.prod(len(v) for _, v, _ in self.batched)

    @property
    def chunks_per_program(self) -> int:
        return math.ceil(self.n_runs / self.chunk)

    def chunk_ids(self) -> list[tuple[int, int]]:
        """Every chunk of the sweep as (program, chunk), program-major."""
        return [(p, c) for p in range(self.n_programs) for c in range(self.chunks_per_program)]

    def bounds(self, c: int) -> tuple[int, int]:
        return c * self.chunk, min((c + 1) * self.chunk, self.n_runs)

    def variables(self) -> dict[str, tuple[tuple[str, ...], np.dtype, Any, dict]]:
        """``{name: (flat dims, dtype, fill, attributes)}`` of every stored variable."""
        real = np.dtype(self.float_dtype)
        out = {}
        for q in summaries.RESULTS:
            dims = ("program", "run") + (("layer",) if q.per_layer else ())
            out[q.name] = (dims, real if q.kind == "real" else np.dtype(STORAGE[q.kind]), FILL[q.kind], attributes(q))
        if self.record_steps is not None:
            for q in metrics.OBSERVED:
                dims = ("program", "run", "step") + (("layer",) if q.per_layer else ())
                out[f"traj_{q.name}"] = (dims, real, np.nan, {"description": q.doc})
        return out

    def shape(self, dims: tuple[str, ...], runs: int | None = None, programs: int | None = None) -> tuple[int, ...]:
        sizes = {"program": self.n_programs if programs is None else programs, "run": self.n_runs if runs is None else runs,
                 "layer": self.n_layers, "step": len(self.record_steps or ())}
        return tuple(sizes[d] for d in dims)

    def bytes_per_run(self) -> int:
        """Bytes one run takes in the results (uncompressed)."""
        return sum(dt.itemsize * math.prod(self.shape(dims[2:])) for dims, dt, _, _ in self.variables().values())

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Layout":
        raw = json.loads(text)

        def axes(items):
            return tuple((n, tuple(tuple(v) if isinstance(v, list) else v for v in values), bool(d)) for n, values, d in items)

        steps = raw["record_steps"]
        return cls(axes(raw["static"]), axes(raw["batched"]), int(raw["n_layers"]),
                   None if steps is None else tuple(steps), raw["float_dtype"], int(raw["chunk"]))


def empty_piece(layout: Layout, runs: int, programs: int = 1) -> dict[str, np.ndarray]:
    """Host arrays for ``programs`` × ``runs`` in the flat layout, filled with each variable's fill value."""
    return {name: np.full(layout.shape(dims, runs, programs), fill, dt) for name, (dims, dt, fill, _) in layout.variables().items()}


def fill_piece(piece: dict[str, np.ndarray], p: int, lo: int, summary: Mapping, trajectory: Mapping | None) -> None:
    """Copies one program's host results (runs ``lo:lo+n``) into ``piece`` (flat layout), padding
    shallower networks' layers and shorter trajectories with the fill value."""
    for q in summaries.RESULTS:
        value = np.asarray(summary[q.name])
        target = piece[q.name][p, lo : lo + len(value)]
        if q.per_layer:
            target[:, : value.shape[-1]] = value
        else:
            target[...] = value.reshape(target.shape)
    if trajectory is not None:
        for q in metrics.OBSERVED:
            value = np.asarray(trajectory[q.name])
            target = piece[f"traj_{q.name}"][p, lo : lo + len(value)]
            index = (slice(None), slice(0, value.shape[1])) + ((slice(0, value.shape[-1]),) if q.per_layer else ())
            target[index] = value


def init_labels(points) -> list[str]:
    """The ``init`` coordinate's labels ``"w=<w>,b=<b>"`` of explicit (w, b) points: 6 significant
    digits (``w=0.6,b=0.9``), widened digit by digit until every label is unique, up to 17 digits,
    where distinct float64 values always print differently (a sweep refuses repeated points).
    (1.0000001, 2) and (1.0000002, 2) are ``w=1.0000001,b=2`` and ``w=1.0000002,b=2``, and every other
    label of that sweep gets 8 digits too (``w=2,b=2`` stays ``w=2,b=2``: trailing zeros are dropped)."""
    points = [(float(w), float(b)) for w, b in points]
    for digits in range(6, 18):
        labels = [f"w={w:.{digits}g},b={b:.{digits}g}" for w, b in points]
        if len(set(labels)) == len(labels):
            return labels
    raise ValueError(f"repeated init points: {points}")


def labelled(flat: Mapping[str, Any], layout: Layout, attrs: Mapping[str, Any]) -> xr.Dataset:
    """The labelled dataset (see :mod:`lossjax.io.results`) from flat arrays (numpy or dask); a
    variable of ``layout`` that ``flat`` lacks (a store from before that quantity existed) is left out."""
    static_shape = tuple(len(v) for _, v, _ in layout.static)
    batched_shape = tuple(len(v) for _, v, _ in layout.batched)
    dims = [n for n, _, _ in layout.static] + [n for n, _, _ in layout.batched]
    variables = layout.variables()
    data_vars = {}
    for name, (flat_dims, _, _, var_attrs) in variables.items():
        if name not in flat:
            continue
        array = flat[name]
        extra = tuple(array.shape[2:])
        data_vars[name] = (dims + list(flat_dims[2:]), array.reshape(static_shape + batched_shape + extra), var_attrs)
    coords: dict[str, Any] = {}
    for name, values, _ in layout.static + layout.batched:
        if name == "init":
            coords["init"] = ("init", init_labels(values))
            coords["init_w"] = ("init", np.asarray([w for w, _ in values]))
            coords["init_b"] = ("init", np.asarray([b for _, b in values]))
        else:
            coords[name] = (name, list(values))
    coords["layer"] = ("layer", np.arange(layout.n_layers))
    if layout.record_steps is not None:
        coords["step"] = ("step", np.asarray(layout.record_steps))
    ds = xr.Dataset(data_vars, coords=coords)
    # Axes given as single values: drop the length-1 dimension, keep a scalar coordinate.
    ds = ds.squeeze([n for n, _, d in layout.static + layout.batched if not d], drop=False)
    if layout.n_layers == 1:
        ds = ds.squeeze("layer", drop=True)
    ds.attrs = dict(attrs)
    return ds


# --------------------------------------------------------------------------------------
# The store on disk
# --------------------------------------------------------------------------------------


class StoreError(ValueError):
    """A results store is missing, incomplete, or belongs to another sweep."""


class Store:
    """A results folder's ``results.zarr`` and ``progress/`` markers."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / STORE
        self.progress = self.folder / PROGRESS

    def exists(self) -> bool:
        return (self.path / "zarr.json").is_file()

    # -- creation ----------------------------------------------------------------------

    def create(self, layout: Layout, attrs: Mapping[str, Any]) -> None:
        """Writes the store's metadata (no data: unwritten chunks read as fill values).

        The store is built under a temporary name and renamed into place, so a store either
        exists whole or not at all.
        """
        import dask.array as da

        self.__dict__.pop("_arrays", None)
        self.__dict__.pop("_layout", None)
        tmp = self.folder / f".tmp-{STORE}.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        variables, encoding = {}, {}
        for name, (dims, dt, fill, var_attrs) in layout.variables().items():
            shape = layout.shape(dims)
            chunks = tuple(1 if d == "program" else layout.chunk if d == "run" else n for d, n in zip(dims, shape))
            variables[name] = (dims, da.full(shape, fill, dtype=dt, chunks=chunks), var_attrs)
            encoding[name] = {"chunks": chunks, "fill_value": fill}
        ds = xr.Dataset(variables, attrs={**attrs, "lossjax_layout": layout.to_json()})
        try:
            ds.to_zarr(tmp, mode="w-", compute=False, zarr_format=3, consolidated=False, encoding=encoding)
            shutil.rmtree(self.progress, ignore_errors=True)
            os.replace(tmp, self.path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def remove(self) -> None:
        """Deletes the store, its markers and provenance (``--restart``)."""
        self.__dict__.pop("_arrays", None)
        self.__dict__.pop("_layout", None)
        shutil.rmtree(self.path, ignore_errors=True)
        shutil.rmtree(self.progress, ignore_errors=True)
        (self.folder / PROVENANCE).unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------------------

    def attrs(self) -> dict[str, Any]:
        try:
            meta = json.loads((self.path / "zarr.json").read_text(encoding="utf-8"))
            return dict(meta.get("attributes", {}))
        except (OSError, ValueError) as e:
            raise StoreError(f"{str(self.path)!r} is not a readable results store ({e}); start over with --restart") from None

    def layout(self) -> Layout:
        return Layout.from_json(self.attrs()["lossjax_layout"])

    def missing_variables(self) -> list[str]:
        """The variables this version of lossjax writes that the store has no array for (a store
        written by an older version, before a quantity was added)."""
        stored = {p.name for p in self.path.iterdir() if (p / "zarr.json").is_file()}
        return sorted(set(self.layout().variables()) - stored)

    def done(self) -> set[tuple[int, int]]:
        """The chunks whose marker exists."""
        out = set()
        if self.progress.is_dir():
            for f in self.progress.glob("p*-c*.json"):
                p, c = f.stem[1:].split("-c")
                out.add((int(p), int(c)))
        return out

    def markers(self) -> list[dict]:
        out = []
        for f in sorted(self.progress.glob("p*-c*.json")) if self.progress.is_dir() else ():
            try:
                out.append(json.loads(f.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                pass
        return out

    # -- writing -----------------------------------------------------------------------

    def write(self, p: int, c: int, piece: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> None:
        """Writes chunk ``c`` of program ``p`` (arrays ``(1, runs, ...)``), syncs it, then marks it done."""
        layout = self.layout_cached()
        lo, hi = layout.bounds(c)
        # Straight into the zarr arrays, every variable's write at once on zarr's event loop (the
        # pieces hold the stored dtypes; nothing to encode): 27 ms for a chunk of 36 variables where
        # one array after another took 64 ms and xarray's region write 152 ms (2,112 runs, 2-core CPU).
        from zarr.core.sync import sync

        arrays = self._arrays_cached()
        region = (slice(p, p + 1), slice(lo, hi))

        async def write_all():
            await asyncio.gather(*(arrays[name].setitem(region, piece[name]) for name in layout.variables()))

        sync(write_all())
        if hasattr(os, "sync"):
            os.sync()  # the chunk's files reach the disk before its marker does
        marker = {"program": p, "chunk": c, "runs": [lo, hi], **info, "written": time.time()}
        text = json.dumps(marker)

        def write_marker(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())

        atomic_write(self.progress / f"p{p}-c{c}.json", write_marker)

    def layout_cached(self) -> Layout:
        if not hasattr(self, "_layout"):
            self._layout = self.layout()
        return self._layout

    def _arrays_cached(self) -> dict:
        """The store's arrays by name, opened once (``zarr.AsyncArray``: written concurrently)."""
        if not hasattr(self, "_arrays"):
            import zarr.api.asynchronous as zarr_async
            from zarr.core.sync import sync

            async def open_arrays():
                group = await zarr_async.open_group(str(self.path), mode="r+", zarr_format=3)
                names = list(self.layout_cached().variables())
                return dict(zip(names, await asyncio.gather(*(group.getitem(n) for n in names))))

            self._arrays = sync(open_arrays())
        return self._arrays

    def open(self, lazy: bool | None = None, partial: bool = False) -> xr.Dataset:
        """The labelled results (dask-backed when ``lazy``; default: lazy above :data:`EAGER_BYTES`).

        Raises :class:`StoreError` if chunks are missing, unless ``partial`` (missing runs then
        hold fill values: NaN, -1). A store written by an older lossjax opens without the
        quantities added since (:meth:`missing_variables`), as its netCDF export would.
        """
        attrs = self.attrs()
        layout = Layout.from_json(attrs.pop("lossjax_layout"))
        attrs.pop("sweep_id", None)
        missing = len(layout.chunk_ids()) - len(self.done() & set(layout.chunk_ids()))
        if missing and not partial:
            raise StoreError(
                f"{str(self.folder)!r} holds {len(layout.chunk_ids()) - missing} of {len(layout.chunk_ids())} chunks; "
                f"rerun the same `lossjax run` command to finish it (or load it with partial=True)"
            )
        provenance = self.folder / PROVENANCE
        if provenance.is_file():
            attrs.update(json.loads(provenance.read_text(encoding="utf-8")))
        flat = xr.open_zarr(self.path, consolidated=False, mask_and_scale=False, decode_times=False)
        if lazy is None:
            lazy = layout.bytes_per_run() * layout.n_runs * layout.n_programs > EAGER_BYTES
        arrays = {name: (flat[name].data if lazy else flat[name].values) for name in layout.variables() if name in flat}
        return labelled(arrays, layout, attrs)
