"""Reports of the neuron study (registered in :mod:`lossjax.reports`)."""

from __future__ import annotations

from lossjax.reports import register  # noqa: F401
