"""`galaxygen info BOX`: what a box file holds.

The work of the command: its options are in :mod:`galaxygen.cli.parsers.info`.
"""

from __future__ import annotations

from galaxygen.box import read_info
from galaxygen.cli.common import emit_json


def run(args) -> int:
    info = read_info(args.box)
    if args.json:
        emit_json(info)
        return 0
    print(f"{info['path']}")
    print(f"  name      {info['name']}  (suite {info['suite']}, source {info['source']})")
    print(f"  box       {info['box_size']:g} Mpc/h, grid {info['grid']}^3, z = {info['redshift']:g}")
    params = ", ".join(f"{k}={v:g}" for k, v in sorted(info["params"].items())) or "none"
    print(f"  params    {params}")
    print(f"  dm        {info['n_dm_particles']:.0f} particles")
    print("  galaxies  " + ("none (a DM-only box)" if info["dm_only"] else
                              f"{info['n_galaxies']:.0f} galaxies in {info['occupied_voxels']} voxels"))
    print(f"  velocity  {'yes' if info['has_dm_velocity'] else 'no'}")
    for key, label in (("halos", "halos"), ("galaxies_catalog", "gal. cat.")):
        cat = info[key]
        print(f"  {label:<9} " + (f"{cat['count']} rows: {', '.join(cat['columns'])}" if cat else "no"))
    for k, v in sorted(info["meta"].items()):
        print(f"  meta      {k} = {v}")
    return 0
