"""MNIST and Fashion-MNIST from IDX files: the IDX parser and the two loaders.

Both datasets read a directory ``path`` holding the four files of :data:`IDX_FILES` (each may be
gzip-compressed, with a ``.gz`` suffix) and keep the first ``n_train`` / ``n_test`` examples in
file order. Missing files raise :class:`DatasetFileNotFoundError`; malformed files raise
``ValueError`` naming the file and the problem.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lossjax.core.params import REQUIRED, Param
from lossjax.data.base import Dataset, DatasetInfo, description, one_hot


class DatasetFileNotFoundError(FileNotFoundError, ValueError):
    """A dataset path or file is missing. Also a ValueError: ``path`` has a bad value."""


# IDX type code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "IDX format").
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file into an array with native byte order.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions ``d``, then ``d`` big-endian
    uint32 sizes, then the big-endian data in C order.

    Raises:
      ValueError: naming ``source`` and the problem (bad magic number, unknown type code,
        truncated header or data, trailing bytes).
    """
    if len(data) < 4:
        raise ValueError(
            f"{source}: truncated IDX header ({len(data)} bytes, need at least 4)"
        )
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"{source}: bad magic number 0x{data[:4].hex()} (an IDX file starts with two "
            f"zero bytes, a type code and the number of dimensions)"
        )
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(
            f"{source}: bad magic number 0x{data[:4].hex()}: unknown IDX type code "
            f"0x{code:02X} (known: {known})"
        )
    if ndim == 0:
        raise ValueError(f"{source}: bad magic number 0x{data[:4].hex()}: 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{source}: truncated IDX header: {ndim} dimensions need {header} bytes, "
            f"file has {len(data)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise ValueError(
            f"{source}: truncated IDX data: shape {shape} of {dtype.name} needs "
            f"{expected} bytes, found {found}"
        )
    if found > expected:
        raise ValueError(
            f"{source}: {found - expected} unexpected trailing bytes after IDX data of "
            f"shape {shape}"
        )
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed when its name ends in ``.gz``); see :func:`parse_idx`."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetFileNotFoundError(f"IDX file not found: {path}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip file ({e})") from None
    return parse_idx(data, source=str(path))


def _find_idx_files(path: Path) -> dict[str, Path]:
    expected = ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())
    if not path.exists():
        raise DatasetFileNotFoundError(
            f"parameter 'path': directory {path} does not exist; it should hold {expected}"
        )
    if not path.is_dir():
        raise DatasetFileNotFoundError(
            f"parameter 'path': {path} is not a directory; it should hold {expected}"
        )
    found, missing = {}, []
    for role, base in IDX_FILES.items():
        for candidate in (path / base, path / f"{base}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(f"{base}[.gz]")
    if missing:
        raise DatasetFileNotFoundError(
            f"parameter 'path': {path} lacks {', '.join(missing)} (expected files: {expected})"
        )
    return found


def _load_split(
    images_path: Path, labels_path: Path, n: int | None, n_name: str
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(
            f"{images_path}: expected 3 dimensions (n, rows, cols), got {images.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected 1 dimension (n,), got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"label/image count mismatch: {images_path.name} has {images.shape[0]} images, "
            f"{labels_path.name} has {labels.shape[0]} labels"
        )
    if images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 pixels, got {images.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"{labels_path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}"
        )
    if n is not None:
        if n > images.shape[0]:
            raise ValueError(
                f"parameter {n_name!r}={n} exceeds the {images.shape[0]} examples in "
                f"{images_path.name}"
            )
        images, labels = images[:n], labels[:n]
    return images, labels.astype(np.int64)


@dataclasses.dataclass(frozen=True)
class _DirectoryParam(Param):
    """A directory, given as a string or an :class:`os.PathLike`; returned as a string."""

    def check(self, value: Any, where: str | None = None) -> Any:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            label = where or f"parameter {self.name!r}"
            raise ValueError(f"{label} must be {self.describe_type()}, got {value!r}")
        return value

    def describe_type(self) -> str:
        return "a directory holding " + ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())


IDX_PARAMS = (
    _DirectoryParam("path", str, "where the four IDX files are", REQUIRED),
    Param("n_train", int, "training examples, the first in the file (none: all)", None,
          minimum=1, nullable=True),
    Param("n_test", int, "test examples, the first in the file (none: all)", None,
          minimum=1, nullable=True),
    Param("flatten", bool, "images as vectors (false: keep (rows, cols))", True),
    Param("normalise", bool, "pixels divided by 255, into [0, 1]", True),
)


def _make_idx_dataset(name: str, summary: str) -> Callable[..., Dataset]:
    def maker(
        *,
        seed: int,
        path: str,
        n_train: int | None,
        n_test: int | None,
        flatten: bool,
        normalise: bool,
    ) -> Dataset:
        del seed  # the first n_train / n_test examples are used, in file order
        files = _find_idx_files(Path(path).expanduser())
        splits = [
            _load_split(files["train_images"], files["train_labels"], n_train, "n_train"),
            _load_split(files["test_images"], files["test_labels"], n_test, "n_test"),
        ]
        if splits[0][0].shape[1:] != splits[1][0].shape[1:]:
            raise ValueError(
                f"train images are {splits[0][0].shape[1:]} but test images are "
                f"{splits[1][0].shape[1:]}"
            )
        out = []
        for images, labels in splits:
            x = images.astype(np.float64)
            if normalise:
                x /= 255.0
            if flatten:
                x = x.reshape(x.shape[0], -1)
            out += [x, one_hot(labels, 10)]
        params = dict(
            path=path, n_train=n_train, n_test=n_test, flatten=flatten, normalise=normalise
        )
        return Dataset(name, *out, 10, description(name, summary, None, params))

    maker.__name__ = f"_make_{name}"
    return maker



ENTRIES = {
    "mnist": DatasetInfo.declare(
        _make_idx_dataset("mnist", "MNIST digits from IDX files"),
        "MNIST from IDX files in directory `path` (all examples unless n_train/n_test)",
        IDX_PARAMS,
    ),
    "fashion_mnist": DatasetInfo.declare(
        _make_idx_dataset("fashion_mnist", "Fashion-MNIST from IDX files"),
        "Fashion-MNIST from IDX files in directory `path` (all examples unless n_train/n_test)",
        IDX_PARAMS,
    ),
}
