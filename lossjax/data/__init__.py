"""Datasets for lossjax: small synthetic tasks and loaders, as float64 numpy arrays.

Everything here is pure numpy (no jax) and deterministic given ``seed``; the training
engine casts the arrays to the run's dtype. Use :func:`make_dataset`::

    ds = make_dataset("blobs2d", seed=3, n_train=128)
    ds.x_train.shape   # (128, 2)
    ds.y_train.shape   # (128, 1), values in {0., 1.}

Conventions (every dataset):

* ``x_*`` has shape ``(n, n_features)``.
* Two-class tasks have ONE output unit: ``y_*`` has shape ``(n, 1)`` with values in
  ``{0., 1.}`` and ``n_classes == 2``. Tasks with ``K > 2`` classes are one-hot:
  ``y_*`` has shape ``(n, K)`` and ``n_classes == K``.
* Train and test sets are drawn from independent random streams spawned from ``seed``,
  so the training set does not change when ``n_test`` changes (and vice versa).
* ``seed`` is an integer in [0, 2**32). Sizes ``n_train`` and ``n_test`` are positive
  integers, at most 10**7 for the generated sets (``single`` has no test set; for
  ``mnist`` / ``fashion_mnist`` the default ``None`` means every example in the files).
* ``mnist`` / ``fashion_mnist`` with ``flatten=False`` are the one exception to the 2-D
  ``x``: images keep their shape ``(n, rows, cols)``.

Every dataset declares its parameters (type, range, default, one line of meaning) as
:class:`~lossjax.core.params.Param` in ``DATASETS[name].declared``; :func:`make_dataset`
checks a request against them, so a bad value fails in one line naming the parameter.

Modules: :mod:`~lossjax.data.synthetic` (single, blobs, xor, moons, spirals),
:mod:`~lossjax.data.teacher`, :mod:`~lossjax.data.mnist1d` (generated, cached on disk, see
:func:`cache_dir`), :mod:`~lossjax.data.idx` (MNIST and Fashion-MNIST from IDX files, see
:func:`read_idx`), :mod:`~lossjax.data.registry` (:data:`DATASETS`, :func:`make_dataset`) and
:mod:`~lossjax.data.base` (the shared types). Missing files raise
:class:`DatasetFileNotFoundError` (both a ``FileNotFoundError`` and a ``ValueError``);
malformed files raise ``ValueError`` naming the file and the problem.
"""

from lossjax.data.base import Dataset, DatasetInfo
from lossjax.data.idx import IDX_FILES, DatasetFileNotFoundError, parse_idx, read_idx
from lossjax.data.mnist1d import cache_dir
from lossjax.data.registry import DATASETS, make_dataset
from lossjax.data.teacher import teacher_network

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetFileNotFoundError",
    "DatasetInfo",
    "IDX_FILES",
    "cache_dir",
    "make_dataset",
    "parse_idx",
    "read_idx",
    "teacher_network",
]
