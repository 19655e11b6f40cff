"""Numba kernels: pure functions on contiguous arrays and scalars.

Nothing here touches pandas, xarray, h3 objects, files or printing; the public
layer in :mod:`riskgrid` validates and converts inputs before calling in.
"""
