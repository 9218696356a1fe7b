"""``lossjax bench``: the engine timed against plain baselines in one run."""
