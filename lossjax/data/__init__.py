"""Datasets: small synthetic tasks, MNIST-1D and IDX loaders, as float64 numpy arrays."""
