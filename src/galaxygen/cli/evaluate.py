"""`galaxygen evaluate --truth BOX... --pred NAME=BOX... --out DIR`: metrics, figures, report.

The work of the command: its options are in :mod:`galaxygen.cli.parsers.evaluate`.
"""

from __future__ import annotations

from galaxygen.cli.common import emit_json
from galaxygen.errors import GalaxygenError
from galaxygen.evaluate import evaluate, headline_text, parse_pred_spec, versus_baseline_text


def run(args) -> int:
    preds: dict[str, list[str]] = {}
    for spec in args.pred:
        label, paths = parse_pred_spec(spec)
        if label in preds:
            raise GalaxygenError(f"--pred: the name {label!r} is given twice")
        preds[label] = paths
    metrics = evaluate(args.truth, preds, args.out, overwrite=args.overwrite)
    if args.json:
        emit_json({"headline": metrics["headline"], "versus_baseline": metrics["versus_baseline"],
                   "files": metrics["files"], "figures": metrics["figures"]})
        return 0
    print(headline_text(metrics["headline"]))
    if metrics["versus_baseline"]:
        print(versus_baseline_text(metrics["versus_baseline"]))
    print(f"report: {metrics['files']['report']}")
    print(f"metrics: {metrics['files']['metrics']}")
    return 0
