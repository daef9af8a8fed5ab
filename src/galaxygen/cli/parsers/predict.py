"""`galaxygen predict RUN BOX...`: the options (the work: :mod:`galaxygen.cli.predict`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import add_device, add_overwrite, add_scale, calls


def register(sub) -> None:
    p = sub.add_parser(
        "predict", help="predict galaxy fields for DM boxes with a trained run",
        description="Write one prediction box file per input box into --out, named after the input box "
                    "(<name>.h5, or <name>_r<k>.h5 for several samples): fields/galaxies holds the predicted "
                    "galaxies per voxel, fields/dm, params and halos are copied from the input, and /meta "
                    "records what it was made from (hashes of the input's fields). A box the run was trained "
                    "on gets a warning; one with another box size, voxel size or redshift is refused unless "
                    "--allow-mismatch. OUT is written whole (a temporary folder renamed at the end), except with "
                    "--shard: then box by box, and a box whose files are there is skipped.")
    p.add_argument("run", help="run directory written by `galaxygen train`")
    p.add_argument("boxes", nargs="+", help="input box files or folders of *.h5 box files")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples", type=int, default=1,
                   help="realisations per input box (poisson / structured counts, diffusion samples; default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the sampling (default 0)")
    p.add_argument("--tile", type=int, default=None,
                   help="inference tile side [voxels] (default: the run config's infer.tile)")
    p.add_argument("--halo", type=int, default=None,
                   help="context around each tile [voxels] (default: the run config's halo; null there: each "
                        "network's receptive radius, exact whatever the tile); a smaller halo is faster and "
                        "approximate")
    p.add_argument("--batch", type=int, default=None, help="tiles per forward pass (default: infer.batch)")
    p.add_argument("--counts", choices=("round", "total", "poisson", "structured"), default=None,
                   help="two-phase runs: round the expected counts per voxel, round them keeping the box "
                        "total (largest remainders; galaxies in the likeliest voxels), draw them from a "
                        "Poisson law, or draw a structured realisation (a central at each rate peak, "
                        "Poisson satellites around it) (default: the run config's `counts`)")
    p.add_argument("--sharpen", type=float, default=None,
                   help="two-phase runs: redistribute the expected counts inside each peak region as "
                        "(rate x classifier probability) to this power, keeping the region's total (1: "
                        "unchanged; default: the run config's `sharpen`)")
    p.add_argument("--sharpen-satellites", type=float, default=None,
                   help="two-phase runs: sharpen the satellites apart, to this power of the score (the "
                        "central keeps --sharpen) (default: the run config's `sharpen_satellites`; "
                        "null there: the satellites are sharpened with the central)")
    p.add_argument("--steps", type=int, default=None,
                   help="diffusion runs: ancestral sampling steps (default: the run config's)")
    p.add_argument("--mean", action="store_true", default=None,
                   help="diffusion runs: also write the mean of the samples")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="predict boxes whose box size, voxel size or redshift differ from the run's training "
                        "boxes (default: refuse them)")
    add_scale(p)
    add_device(p)
    add_overwrite(p)
    calls(p, "galaxygen.cli.predict")

