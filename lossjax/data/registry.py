"""The registry of datasets, :data:`DATASETS`, and :func:`make_dataset`, which validates a
request against the dataset's declared parameters before making it."""

from __future__ import annotations

from typing import Any

from lossjax.core.params import check_all
from lossjax.data import idx, mnist1d, synthetic, teacher
from lossjax.data.base import SEED, Dataset, DatasetInfo

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "make_dataset"]

#: Every dataset by name: its maker, one line of description, its parameters' defaults
#: (``params``) and declarations (``declared``).
DATASETS: dict[str, DatasetInfo] = {
    **synthetic.ENTRIES,
    **teacher.ENTRIES,
    **mnist1d.ENTRIES,
    **idx.ENTRIES,
}


def make_dataset(name: str, *, seed: int = 0, **params: Any) -> Dataset:
    """Make the dataset ``name`` with ``params`` overriding its defaults.

    Args:
      name: a key of :data:`DATASETS`.
      seed: integer in [0, 2**32); the same ``(name, seed, params)`` gives identical arrays.
      **params: any of the dataset's parameters (see ``DATASETS[name].declared``).

    Returns:
      A :class:`Dataset` of float64 arrays.

    Raises:
      ValueError: unknown ``name``, unknown parameter, or a bad value (the message names
        the offending parameter), or a malformed data file (the message names the file).
      DatasetFileNotFoundError: a data directory or file is missing (a ValueError too).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(sorted(DATASETS))}")
    info = DATASETS[name]
    values = check_all(info.declared, params, owner=f"dataset {name!r}")
    return info.maker(seed=SEED.check(seed), **values)
