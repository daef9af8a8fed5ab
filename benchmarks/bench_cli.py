"""Start-up time of the `galaxygen` command: `galaxygen --help` and `galaxygen COMMAND --help`.

Each figure is the best of --repeat fresh processes (wall clock, output discarded), beside the bare
interpreter (`python -c pass`) measured in the same run. The parsers import no science (torch,
numba, scipy: tests/test_cli_foundation.py); a command's work module is imported only when it runs.
Usage: python benchmarks/bench_cli.py [--repeat 5] [--command "galaxygen"]

Measured on the project's 2-core machine (shared, load about 4), best of 5, `python -m galaxygen`:

    python -c pass                    0.01 s
    galaxygen --help                  0.09 s   (before the parsers were split from the work: 2.6 s, best of 3)
    galaxygen COMMAND --help          0.09-0.13 s for every command and action (before: 2.2-3.9 s)
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

COMMANDS = (
    (), ("info",), ("power",), ("simulate",), ("ingest",), ("ingest", "camels"), ("ingest", "cmd"), ("hod",),
    ("hod", "fit"), ("hod", "populate"), ("train",), ("predict",), ("evaluate",), ("demo",))


def best_wall(argv: list[str], repeat: int) -> float:
    """Best wall-clock seconds of `repeat` runs of `argv` in fresh processes (each must succeed)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per figure, best kept (default 5)")
    ap.add_argument("--command", default=f"{sys.executable} -m galaxygen",
                    help="how to start galaxygen (default: this interpreter's `-m galaxygen`)")
    args = ap.parse_args()
    start = shlex.split(args.command)
    print(f"{'python -c pass':<34} {best_wall([sys.executable, '-c', 'pass'], args.repeat):6.2f} s")
    for words in COMMANDS:
        seconds = best_wall([*start, *words, "--help"], args.repeat)
        print(f"{' '.join(('galaxygen', *words, '--help')):<34} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
