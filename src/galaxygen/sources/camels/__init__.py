"""Real data -> box files: CAMELS simulations (`camels`) and CAMELS Multifield Dataset grids (`cmd`).

Modules: `layout` (where a simulation's files are, both directory layouts), `snapshot` (N-body
snapshots read and painted in chunks), `subfind` (halo and galaxy catalogues), `params`
(CosmoAstroSeed files read by their header), `hdf5` (file access with clear errors), `runner`
(the resumable per-box loop). See docs/camels.md.
"""
