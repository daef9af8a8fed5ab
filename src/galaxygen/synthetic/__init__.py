"""Synthetic inputs with known content, for the tests, the benchmarks and trying the commands without data.

`halos`: FoF-like halo catalogues (power-law masses, member particles); `camels`: files in CAMELS'
on-disk format (N-body snapshot, Subfind catalogue), the inverse of :mod:`galaxygen.sources.camels`.
Nothing else in the package imports this unit.
"""
