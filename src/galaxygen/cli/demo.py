"""`galaxygen demo`: the end-to-end run on the embedded default (built-in universe)."""

from __future__ import annotations

from galaxygen.cli.common import add_device, add_overwrite, emit_json


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the whole pipeline on the embedded default, end to end",
        description="Simulate a built-in CV set for two galaxy-surrogate variants, fit the HOD, train the "
                    "two-phase network and a short diffusion model, predict the test boxes (also across "
                    "variants), evaluate model vs HOD vs truth and write report.html.")
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--size", choices=("tiny", "small", "full"), default="small",
                   help="tiny: 16^3 voxels, about two minutes (tests); small: 64^3 voxels in a 25 Mpc/h box, "
                        "under 15 minutes on 2 CPU cores; full: 256^3 voxels, the design's scale, for a GPU "
                        "(default: small)")
    p.add_argument("--seed", type=int, default=0, help="base random seed of the simulations and samples (default 0)")
    p.add_argument("--json", action="store_true", help="print the stage statuses and headline rows as JSON")
    add_device(p)
    add_overwrite(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from galaxygen.pipelines.demo import run_demo
    from galaxygen.evaluate import headline_text, versus_baseline_text

    demo = run_demo(args.out, args.size, overwrite=args.overwrite, device=args.device, seed=args.seed)
    if args.json:
        emit_json({"stages": demo.stages, "headline": demo.metrics["headline"],
                   "versus_baseline": demo.metrics["versus_baseline"],
                   "report": str(demo.path("report", "report.html"))})
        return 0
    print()
    print(headline_text(demo.metrics["headline"]))
    print()
    print(versus_baseline_text(demo.metrics["versus_baseline"]))
    print(f"\nreport: {demo.path('report', 'report.html')}")
    return 0
