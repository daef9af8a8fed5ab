"""`galaxygen demo`: the end-to-end run on the embedded default (built-in universe).

The work of the command: its options are in :mod:`galaxygen.cli.parsers.demo`.
"""

from __future__ import annotations

from galaxygen.cli.common import emit_json
from galaxygen.evaluate import headline_text, versus_baseline_text
from galaxygen.pipelines.demo import run_demo


def run(args) -> int:
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
