"""Learning galaxies from dark matter: the two-phase network and the shared training machinery.

Modules: ``data`` (splits, transform, periodic crops, symmetries), ``blocks``/``unet``/``r2unet``/
``inception``/``models`` (the networks and their registry), ``losses``, ``two_phase`` (threshold
search, mask x counts, the phase tasks), ``two_phase_task`` (train / predict a run), ``trainer``
(generic Trainer), ``checkpoint``, ``distributed`` (DDP via torchrun), ``infer`` (tiled whole-box
inference, prediction box files), ``receptive`` (networks' receptive radii, the exact halo), ``tasks``
(the registry behind `galaxygen train` / `predict`).
See docs/training.md.
"""
