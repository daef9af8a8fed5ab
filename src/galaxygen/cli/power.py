"""`galaxygen power BOX [--json] [--out FILE]`: P(k), or cross-power and r(k) with another box's field.

The work of the command: its options are in :mod:`galaxygen.cli.parsers.power`.
"""

from __future__ import annotations

from galaxygen.box import read_box
from galaxygen.cli.common import emit_json
from galaxygen.errors import GalaxygenError
from galaxygen.io import check_writable
from galaxygen.stats.power import cross_power, power_spectrum


def run(args) -> int:
    if args.out:
        check_writable(args.out, args.overwrite)  # before the work: nothing to lose on a refusal
    box = read_box(args.box, catalogs=False, velocity=False, allow_dm_only=args.field == "dm")
    field = getattr(box, args.field)
    opts = dict(bin_width=args.bin_width, k_max=args.k_max, scheme="ngp")
    if args.cross:
        other = read_box(args.cross, catalogs=False, velocity=False,
                         allow_dm_only=(args.cross_field or args.field) == "dm")
        if (other.grid, other.box_size) != (box.grid, box.box_size):
            raise GalaxygenError(f"{args.cross}: grid {other.grid} / box {other.box_size} Mpc/h differ from "
                                 f"{args.box}: grid {box.grid} / box {box.box_size} Mpc/h")
        res = cross_power(field, getattr(other, args.cross_field or args.field), box.box_size, **opts)
        out = {"box": args.box, "field": args.field, "cross": args.cross,
               "cross_field": args.cross_field or args.field, **res.as_dict()}
        rows = zip(res.k, res.p_aa, res.p_bb, res.p_ab, res.r, res.n_modes)
        header = f"{'k [h/Mpc]':>10} {'P_a':>12} {'P_b':>12} {'P_ab':>12} {'r':>7} {'N_modes':>8}"
        fmt = "{:10.4f} {:12.4e} {:12.4e} {:12.4e} {:7.4f} {:8.0f}"
    else:
        res = power_spectrum(field, box.box_size, **opts)
        out = {"box": args.box, "field": args.field, **res.as_dict()}
        rows = zip(res.k, res.power, res.n_modes)
        header = f"{'k [h/Mpc]':>10} {'P [(Mpc/h)^3]':>14} {'N_modes':>8}"
        fmt = "{:10.4f} {:14.4e} {:8.0f}"
    if args.out:
        emit_json(out, args.out, overwrite=args.overwrite)
    if args.json:
        emit_json(out)
    if args.out or args.json:
        return 0
    print(header)
    for row in rows:
        print(fmt.format(*row))
    sn = out.get("shot_noise", out.get("shot_noise_a"))
    if sn:
        print(f"shot noise 1/n̄ = {sn:.4e} (Mpc/h)^3 (not subtracted)")
    return 0
