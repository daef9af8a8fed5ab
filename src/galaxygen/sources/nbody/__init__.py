"""Your own DM: N-body outputs of any code -> DM-only box files (``galaxygen ingest nbody``).

* `units`: length units (Mpc/h, kpc/h, Mpc, kpc) from a snapshot's own records or the caller.
* `snapshot`: Gadget / AREPO / SWIFT HDF5 snapshot headers (single or multi-file); the particles
  are read and painted with the CAMELS snapshot reader (`galaxygen.sources.camels.snapshot`).
* `arrays`: a positions array or a density grid (``.npy``, or an HDF5 dataset ``FILE:DATASET``).
* `ingest`: one box per input, painted at a given grid or at a trained run's voxel size.
"""
