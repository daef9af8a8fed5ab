"""The training machinery every learned model uses; it knows nothing of any one model.

Modules: ``run`` (a run directory's lifecycle: start, resume, records, trained weights),
``data`` (data config, splits, input transform, boxes in memory), ``crops`` (periodic crops with
the cube's symmetries, the sample stream), ``trainer`` (the generic Trainer), ``logs`` (what it
records), ``checkpoint``, ``distributed`` (DDP via torchrun), ``tiling`` (tiled whole-box
inference), ``receptive`` (networks' receptive radii, the exact halo), ``run_inputs`` (what a run
was trained on, checked at prediction), ``params`` (conditioning parameters and their
standardisation). See docs/training.md.
"""
