"""The numerical core: pure JAX, no I/O.

Losses, activations, gradient estimators, models, optimisers, the measured quantities
(:mod:`lossjax.core.metrics`, which declares every result field once) and the training program
(:mod:`lossjax.core.train`). Nothing here imports from the rest of lossjax.
"""
