"""Ctrl-C leaves nothing half-done: one line and exit code 130 in the CLI, no output folder, a rerun works."""

from __future__ import annotations

import signal

import pytest

from evaluate_helpers import as_prediction, clustered_truth, write_set
from galaxygen.cli import main
from galaxygen.interrupts import call_interruptibly, is_interrupt, sigint_ignored


def _numba_interrupt():
    """What numba raises for a Ctrl-C inside a compiled kernel (seen with `galaxygen simulate`)."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        raise SystemError("CPUDispatcher(<function _first_plane>) returned a result with an exception set") from exc


def test_ctrl_c_inside_a_numba_kernel_is_one_line_and_exit_code_130(tmp_path, monkeypatch, capsys):
    from galaxygen.sources.universe import suite

    def interrupted(out_dir, cfg, scale=None):
        _numba_interrupt()

    monkeypatch.setattr(suite, "simulate_suite", interrupted)
    assert main(["simulate", str(tmp_path / "out"), "--boxes", "1", "--particles", "16"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "galaxygen simulate: interrupted\n" and captured.out == ""


def test_other_system_errors_still_surface(tmp_path, monkeypatch):
    from galaxygen.sources.universe import suite

    def broken(out_dir, cfg, scale=None):
        raise SystemError("a real bug")

    monkeypatch.setattr(suite, "simulate_suite", broken)
    with pytest.raises(SystemError, match="a real bug"):
        main(["simulate", str(tmp_path / "out"), "--boxes", "1"])


def test_interrupt_helpers():
    with pytest.raises(SystemError) as info:
        _numba_interrupt()
    assert is_interrupt(info.value) and is_interrupt(KeyboardInterrupt())
    assert not is_interrupt(SystemError("x")) and not is_interrupt(None)
    handler = signal.getsignal(signal.SIGINT)
    with sigint_ignored():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is handler
    try:  # in a worker a Ctrl-C becomes a plain KeyboardInterrupt (picklable, no lost cause)
        with pytest.raises(KeyboardInterrupt) as info:
            call_interruptibly(_numba_interrupt)
        assert info.value.__cause__ is None
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # ignored again between jobs
        assert call_interruptibly(int, "7") == 7
    finally:
        signal.signal(signal.SIGINT, handler)


def test_interrupted_evaluate_leaves_no_output_and_reruns(tmp_path, make_box, monkeypatch, capsys):
    from galaxygen.report import figures

    truth = clustered_truth(make_box, "CV_0", seed=0, grid=16)
    tdir = write_set(tmp_path / "truth", [truth])
    pdir = write_set(tmp_path / "pred", [as_prediction(truth, truth.galaxies)])
    out = tmp_path / "report"
    argv = ["evaluate", "--truth", str(tdir), "--pred", f"p={pdir}", "--out", str(out)]

    def ctrl_c(metrics):  # after slices.png was written
        raise KeyboardInterrupt

    monkeypatch.setattr(figures, "power_figure", ctrl_c)
    assert main(argv) == 130
    assert capsys.readouterr().err == "galaxygen evaluate: interrupted\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred", "truth"]  # no report, no temporary folder
    monkeypatch.undo()
    assert main(argv) == 0
    assert {"metrics.json", "report.html", "slices.png", "power.png"} <= {p.name for p in out.iterdir()}
